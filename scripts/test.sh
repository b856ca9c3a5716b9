#!/usr/bin/env bash
# Install everything, then run the whole test suite (real Hub, real papermill, real Docker).
# Arguments go to pytest, e.g. scripts/test.sh tests/test_units.py -x
# One layer (markers given in tests/conftest.py): scripts/test.sh -m unit   (or hub, docker, browser,
# process, slow, stack; combined as pytest allows: -m "not browser and not slow")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec .venv/bin/python -m pytest "$@"
