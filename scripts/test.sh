#!/usr/bin/env bash
# Install everything, then run the whole test suite (real Hub, real papermill, real Docker).
# Arguments go to pytest, e.g. scripts/test.sh tests/test_units.py -x
# One layer (markers given in tests/conftest.py): scripts/test.sh -m unit   (or hub, docker, browser,
# process, slow, stack; combined as pytest allows: -m "not browser and not slow")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"

# The whole suite (no test or layer named) ends with the team deployment, whose images take
# ~10 minutes to build on a new machine: build them in the background while the rest runs.
# The stack test waits for that build: `stack.sh up` runs deploy/build.sh, which takes the same lock.
whole_suite=1
for arg in "$@"; do
    case "$arg" in -m|-k|-m*|-k*|tests*|*.py*|*::*) whole_suite=0 ;; esac
done
if [ "$whole_suite" = 1 ] && [ "$(id -u)" = 0 ] && docker info >/dev/null 2>&1; then
    mkdir -p .cache
    echo "test: building the team deployment's images in the background (.cache/stack-prebuild.log)" >&2
    bash deploy/build.sh --missing >.cache/stack-prebuild.log 2>&1 &
    prebuild=$!
fi
status=0
.venv/bin/python -m pytest "$@" || status=$?
# a suite stopped early leaves no build half-way behind it
[ -z "${prebuild:-}" ] || wait "$prebuild" || true
exit "$status"
