#!/usr/bin/env bash
# Install everything Notebook Jobs needs on a fresh Debian machine; safe to run again.
#
#   .venv/          the service, the Hub and the test tools
#   .venv-runner/   a lean interpreter for the local executor (papermill + ipykernel + the
#                   image's data libraries): no JupyterLab, so kernels start seconds faster
#   node_modules/   configurable-http-proxy for the Hub
#   docker          engine, gVisor and the runner image (scripts/docker-setup.sh), as root;
#                   NOTEBOOK_JOBS_DOCKER=0 skips it
#
# Extra pip packages for the demo (JupyterLab) come with: scripts/setup.sh demo
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
log() { echo "setup: $*" >&2; }

need_apt=()
command -v node >/dev/null || need_apt+=(nodejs npm)
"$PYTHON" -c "import venv, ensurepip" 2>/dev/null || need_apt+=(python3-venv)
command -v chromium >/dev/null || need_apt+=(chromium)  # the browser tests drive it with Playwright
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
log "installing the service into .venv"
extras="test"
[ "${1:-}" = "demo" ] && extras="test,demo"
# Playwright drives Debian's Chromium; it must not try to download a browser of its own
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/pip install -q -e ".[$extras]"

[ -x .venv-runner/bin/python ] || "$PYTHON" -m venv .venv-runner
log "installing the runner's packages into .venv-runner"
.venv-runner/bin/pip install -q -r runner-image/requirements.txt

if [ ! -x node_modules/.bin/configurable-http-proxy ]; then
    log "installing configurable-http-proxy (npm)"
    npm install --no-audit --no-fund --loglevel=error >&2
fi

if [ "${NOTEBOOK_JOBS_DOCKER:-1}" != 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        bash scripts/docker-setup.sh
    else
        log "not root: skipping the docker engine and image (run scripts/docker-setup.sh as root)"
    fi
fi
log "done"
