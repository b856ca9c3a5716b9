#!/usr/bin/env bash
# Build the team deployment's images without an image registry (as root, dockerd running).
#
#   bash deploy/build.sh             build (or bring up to date) every image of the stack
#   bash deploy/build.sh --missing   build only the images that do not exist yet
#
# Images (tags end in the service's version, from hub_service/_version.py):
#   notebook-jobs-runner     the jobs' image (runner-image/build.sh; it also makes
#                            notebook-jobs-base:bookworm, a debootstrap minbase + python3)
#   notebook-jobs-stack-base a second debootstrap image: python3, nodejs (the Hub's proxy)
#                            and PostgreSQL 15; ~3 min the first time, then kept
#   notebook-jobs-postgres   PostgreSQL for the Hub's and the service's databases
#   notebook-jobs-hub        JupyterHub + DockerSpawner + the proxy + the notebook-jobs
#                            service (the `hub` and `service` containers run this image)
#   notebook-jobs-singleuser JupyterLab + jupyterhub-singleuser + the Lab extension
#
# Python packages come from wheels downloaded here on the host into .cache/stack-wheels
# (containers cannot reach the package index), pinned to the versions installed in .venv
# (what the tests ran), and are downloaded again only when a requirement list changes.
# The service and the extension go in as wheels built from this checkout, so a rebuild
# after an upgrade (git pull) only re-runs the image's last layers.
# Env: DEBIAN_MIRROR, PIP (the pip that downloads and builds wheels).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/images.sh"
# One build at a time: scripts/test.sh starts one in the background, and `stack.sh up` waits for it here.
exec 9>"$CACHE/stack-build.lock"
flock 9
BASE_IMAGE=notebook-jobs-base:bookworm
STACK_BASE=notebook-jobs-stack-base:bookworm
RUNNER_IMAGE="notebook-jobs-runner:$VERSION"
POSTGRES_IMAGE="notebook-jobs-postgres:$VERSION"
HUB_IMAGE="notebook-jobs-hub:$VERSION"
SINGLEUSER_IMAGE="notebook-jobs-singleuser:$VERSION"
# configurable-http-proxy 4.6 runs on bookworm's nodejs 18 (5.x wants node 20)
CHP_VERSION=4.6.3

missing_only=0
[ "${1:-}" = "--missing" ] && missing_only=1
exists() { docker image inspect "$1" >/dev/null 2>&1; }
want() { [ "$missing_only" = 0 ] || ! exists "$1"; }
started=$SECONDS

# 1. The runner image and the minbase it is built on.
if want "$RUNNER_IMAGE" || ! exists "$BASE_IMAGE"; then
    bash "$ROOT/runner-image/build.sh"
fi

# 2. The stack base: one debootstrap for the Hub (python3, nodejs for its proxy) and
#    PostgreSQL, so the two images share this layer on disk. LLVM (PostgreSQL's JIT,
#    ~110 MB) is removed: the server runs with jit=off.
trim_stack_base() {
    local rootfs="$1"
    # the cluster Debian's package made at install time: the postgres image makes its own
    rm -rf "$rootfs"/var/lib/postgresql/15/main "$rootfs"/etc/postgresql/15/main
    rm -f "$rootfs"/usr/lib/x86_64-linux-gnu/libLLVM-14.so* "$rootfs"/usr/lib/postgresql/15/lib/llvmjit*
    rm -rf "$rootfs"/usr/lib/postgresql/15/lib/bitcode
}
debootstrap_image "$STACK_BASE" python3,python3-venv,nodejs,postgresql-15,ca-certificates,tzdata \
    "$CACHE/stack-debootstrap.log" trim_stack_base

# 3. Wheels built from this checkout: the service (hub_service, demand) and the Lab extension
#    (its frontend is built by scripts/setup.sh; this only packages it).
need_hub=0; need_singleuser=0
want "$HUB_IMAGE" && need_hub=1
want "$SINGLEUSER_IMAGE" && need_singleuser=1
local_wheels="$CACHE/stack-local-wheels"
if [ "$need_hub$need_singleuser" = 00 ]; then
    log "the Hub and single-user images exist"
else
    rm -rf "$local_wheels"
    mkdir -p "$local_wheels"
    log "building the service's and the extension's wheels"
    if ! { $PIP wheel --quiet --no-deps -w "$local_wheels" "${SERVICE_SRC:-$ROOT}" \
           && $PIP wheel --quiet --no-deps --no-build-isolation -w "$local_wheels" "$ROOT/extension"; } \
           >"$CACHE/stack-local-wheels.log" 2>&1; then
        tail -20 "$CACHE/stack-local-wheels.log" >&2
        log "building wheels failed (run scripts/setup.sh first: it builds the extension's frontend)"
        exit 1
    fi
fi
service_wheel="$(ls "$local_wheels"/jupyterhub_notebook_jobs-*.whl 2>/dev/null || true)"
extension_wheel="$(ls "$local_wheels"/jupyterlab_notebook_jobs-*.whl 2>/dev/null || true)"

# The requirements of an image: its own list, plus (hub) the service's install_requires, read
# from the wheel's metadata so that they change only when setup.cfg's do. Pinned to .venv.
constraints="$CACHE/stack-constraints.txt"
# Only the packages whose versions matter to the stack's parts meeting (the Hub and
# jupyterhub-singleuser, the service's database and notebook formats) are pinned.
pinned='^(jupyterhub|jupyterlab|jupyter[-_]server|dockerspawner|sqlalchemy|alembic|psycopg|psycopg[-_]binary|tornado|traitlets|nbformat|nbconvert|papermill|ipykernel|jupytext|scikit[-_]learn|numpy|pandas|docker)=='
if [ -x "$ROOT/.venv/bin/pip" ]; then
    "$ROOT/.venv/bin/pip" freeze --exclude-editable 2>/dev/null | grep -i -E "$pinned" >"$constraints" || true
else
    : >"$constraints"
fi
requires_dist() {  # the unconditional Requires-Dist lines of a wheel
    python3 - "$1" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    for line in z.read(meta).decode().splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            print(line.split(":", 1)[1].strip())
PY
}

# download_wheels NAME REQUIREMENTS-FILE: wheels for bookworm's Python 3.11 into .cache/stack-wheels/NAME
download_wheels() {
    local name="$1" reqs="$2"
    fetch_wheels "$CACHE/stack-wheels/$name" "$(cat "$reqs" "$constraints" | sha256sum | cut -d' ' -f1)" \
        "$CACHE/stack-wheels-$name.log" --platform linux_x86_64 -c "$constraints" -r "$reqs"
}

# build_image NAME TAG BASE: docker build of deploy/NAME with its requirements, wheels and local wheels
build_image() {
    local name="$1" tag="$2" base="$3" ctx="$CACHE/stack-context-$1"
    rm -rf "$ctx"
    mkdir -p "$ctx"
    cp -r "$HERE/$name/." "$ctx/"
    cp "$CACHE/stack-requirements-$name.txt" "$ctx/requirements.txt"
    mkdir -p "$ctx/wheels" "$ctx/local"
    cp -l "$CACHE/stack-wheels/$name/"*.whl "$ctx/wheels/" 2>/dev/null || cp "$CACHE/stack-wheels/$name/"*.whl "$ctx/wheels/" 2>/dev/null || true
    shift 3
    for extra in "$@"; do cp -r "$extra" "$ctx/local/"; done
    docker_build "$tag" "$base" "$ctx" "$CACHE/stack-build-$name.log"
}

# 4. PostgreSQL: the stack base and an entrypoint; no Python packages.
if want "$POSTGRES_IMAGE"; then
    : >"$CACHE/stack-requirements-postgres.txt"
    mkdir -p "$CACHE/stack-wheels/postgres"
    build_image postgres "$POSTGRES_IMAGE" "$STACK_BASE"
fi

# 5. The Hub (and the service): JupyterHub, DockerSpawner, the proxy, the service's wheel.
if [ "$need_hub" = 1 ]; then
    { grep -v '^\s*#' "$HERE/hub/requirements.txt" | grep -v '^\s*$'; requires_dist "$service_wheel"; } \
        >"$CACHE/stack-requirements-hub.txt"
    download_wheels hub "$CACHE/stack-requirements-hub.txt"
    proxy="$CACHE/stack-proxy"
    if [ ! -x "$proxy/node_modules/.bin/configurable-http-proxy" ]; then
        log "installing configurable-http-proxy $CHP_VERSION (npm) into $proxy"
        mkdir -p "$proxy"
        npm install --prefix "$proxy" --no-audit --no-fund --loglevel=error --omit=dev \
            "configurable-http-proxy@$CHP_VERSION" >&2
    fi
    build_image hub "$HUB_IMAGE" "$STACK_BASE" "$service_wheel" "$proxy/node_modules"
fi

# 6. The single-user server: JupyterLab, jupyterhub-singleuser (the Hub's version) and the extension.
if [ "$need_singleuser" = 1 ]; then
    { grep -v '^\s*#' "$HERE/singleuser/requirements.txt" | grep -v '^\s*$'; requires_dist "$extension_wheel"; } \
        >"$CACHE/stack-requirements-singleuser.txt"
    download_wheels singleuser "$CACHE/stack-requirements-singleuser.txt"
    build_image singleuser "$SINGLEUSER_IMAGE" "$BASE_IMAGE" "$extension_wheel"
fi

log "done in $((SECONDS - started)) s"
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep '^notebook-jobs-' >&2 || true
