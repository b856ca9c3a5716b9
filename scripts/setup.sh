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
command -v gcc >/dev/null || need_apt+=(gcc)  # the GPU tests compile a stand-in NVML driver (tests/test_gpus.py)
# the store's tests start a PostgreSQL server of their own (tests/pgtest.py); Debian keeps initdb off the PATH
command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi

# Each install is skipped while what it installs from is unchanged (a stamp of its hash in
# the venv), so a second run -- scripts/test.sh -m unit, say -- takes seconds.
digest() { cat "$@" | sha256sum | cut -c1-16; }
fresh() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
extras="test"  # includes JupyterLab: the demo's servers and the Lab extension's tests need it
svc_hash="$(digest setup.cfg pyproject.toml)-$extras"
if ! fresh .venv/.notebook-jobs-installed "$svc_hash"; then
    log "installing the service into .venv"
    # Playwright drives Debian's Chromium; it must not try to download a browser of its own
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/pip install -q -e ".[$extras]"
    echo "$svc_hash" > .venv/.notebook-jobs-installed
fi

[ -x .venv-runner/bin/python ] || "$PYTHON" -m venv .venv-runner
runner_hash="$(digest runner-image/requirements.txt)"
if ! fresh .venv-runner/.notebook-jobs-installed "$runner_hash"; then
    log "installing the runner's packages into .venv-runner"
    .venv-runner/bin/pip install -q -r runner-image/requirements.txt
    echo "$runner_hash" > .venv-runner/.notebook-jobs-installed
fi

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
ext_pkg_hash="$ext_hash-$(find extension/pyproject.toml extension/jupyterlab_notebook_jobs -type f \
                -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)"
if ! fresh .venv/.notebook-jobs-extension "$ext_pkg_hash"; then
    log "installing the JupyterLab extension into .venv"
    .venv/bin/pip install -q --no-build-isolation --no-deps ./extension
    echo "$ext_pkg_hash" > .venv/.notebook-jobs-extension
fi

if [ "${NOTEBOOK_JOBS_DOCKER:-1}" != 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        bash scripts/docker-setup.sh
    else
        log "not root: skipping the docker engine and image (run scripts/docker-setup.sh as root)"
    fi
fi
log "done"
