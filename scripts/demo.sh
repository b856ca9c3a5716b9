#!/usr/bin/env bash
# Install everything, then start the demo Hub with the notebook-jobs service on
# http://127.0.0.1:8000 (log in with any name; "admin" is an admin).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
mkdir -p data
exec .venv/bin/jupyterhub -f jupyterhub_config.py "$@"
