#!/usr/bin/env bash
# Install everything, then start the demo Hub with the notebook-jobs service on
# http://127.0.0.1:8000 (log in with any name; "admin" is an admin).
#
# With Docker (as root), the demo offers two environments: "python", the lean runner, and
# "data-science", the runner with pandas, matplotlib and scikit-learn (built here, offline:
# `runner-image/build.sh --data-science`; the tests never build it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
mkdir -p data
. "$ROOT/deploy/images.sh"
if [ "${NOTEBOOK_JOBS_DOCKER:-1}" != 0 ] && docker image inspect "notebook-jobs-runner:$VERSION" >/dev/null 2>&1; then
    bash "$ROOT/runner-image/build.sh" --data-science
    cat >data/environments_config.py <<CONFIG
# The demo's environments (written by scripts/demo.sh).
c.Environments.environments = [
    {"name": "python", "description": "The lean runner: Python 3.11, papermill, numpy, pandas",
     "image": "notebook-jobs-runner:$VERSION"},
    {"name": "data-science", "description": "The runner with pandas, matplotlib and scikit-learn",
     "image": "notebook-jobs-datascience:$VERSION", "resources": {"memory": "1GB"}},
]
CONFIG
    # (extra service options replace the demo's warm pool: it is named again)
    export NOTEBOOK_JOBS_ARGS="${NOTEBOOK_JOBS_ARGS:---DockerExecutor.warm_pool=2} --config=$ROOT/data/environments_config.py"
fi
exec .venv/bin/jupyterhub -f jupyterhub_config.py "$@"
