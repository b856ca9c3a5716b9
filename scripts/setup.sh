#!/usr/bin/env bash
# Install everything Notebook Jobs needs on a fresh Debian machine; safe to run again.
#
#   .venv/          the service, the Hub and the test tools
#   .venv-runner/   a lean interpreter for the local executor (papermill + ipykernel + the
#                   image's data libraries): no JupyterLab, so kernels start seconds faster
#   node_modules/   configurable-http-proxy for the Hub
#   extension/      the JupyterLab extension, built (npm registry only) and installed into .venv
#   docker          engine, gVisor and the runner image (scripts/docker-setup.sh), as root;
#                   NOTEBOOK_JOBS_DOCKER=0 skips it
#
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
log() { echo "setup: $*" >&2; }

need_apt=()
command -v node >/dev/null || need_apt+=(nodejs npm)
"$PYTHON" -c "import venv, ensurepip" 2>/dev/null || need_apt+=(python3-venv)
command -v chromium >/dev/null || need_apt+=(chromium)  # the browser tests drive it with Playwright
# the store's tests start a PostgreSQL server of their own (tests/pgtest.py); Debian keeps initdb off the PATH
command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
log "installing the service into .venv"
extras="test"  # includes JupyterLab: the demo's servers and the Lab extension's tests need it
# Playwright drives Debian's Chromium; it must not try to download a browser of its own
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/pip install -q -e ".[$extras]"

[ -x .venv-runner/bin/python ] || "$PYTHON" -m venv .venv-runner
log "installing the runner's packages into .venv-runner"
.venv-runner/bin/pip install -q -r runner-image/requirements.txt

if [ ! -x node_modules/.bin/configurable-http-proxy ]; then
    log "installing configurable-http-proxy (npm)"
    npm install --no-audit --no-fund --loglevel=error >&2
fi

# The JupyterLab extension: jlpm (JupyterLab's yarn) fetches from the npm registry only and
# keeps its cache in ~/.yarn/berry/cache, so a rebuild is offline and takes seconds; the
# build is skipped while its sources are unchanged. hatch-jupyter-builder then finds the
# built frontend and just packages it (no build isolation: no second JupyterLab download).
ext_hash="$(cat extension/package.json extension/yarn.lock extension/tsconfig.json extension/src/*.ts \
            extension/schema/*.json extension/style/* | sha256sum | cut -c1-16)"
ext_stamp=extension/jupyterlab_notebook_jobs/labextension/.source-hash
if [ "$(cat "$ext_stamp" 2>/dev/null)" != "$ext_hash" ]; then
    log "building the JupyterLab extension (extension/)"
    (
        cd extension
        export PATH="$ROOT/.venv/bin:$PATH"
        # npm's own registry setting wins over the one in extension/.yarnrc.yml
        YARN_NPM_REGISTRY_SERVER="$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org)"
        export YARN_NPM_REGISTRY_SERVER="${YARN_NPM_REGISTRY_SERVER%/}"
        jlpm install >&2
        jlpm build:prod >&2
    )
    echo "$ext_hash" > "$ext_stamp"
fi
.venv/bin/pip install -q --no-build-isolation --no-deps ./extension

if [ "${NOTEBOOK_JOBS_DOCKER:-1}" != 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        bash scripts/docker-setup.sh
    else
        log "not root: skipping the docker engine and image (run scripts/docker-setup.sh as root)"
    fi
fi
log "done"
