#!/usr/bin/env bash
# Build the runner image notebook-jobs-runner:<version> without an image registry.
#
#   bash runner-image/build.sh            (as root, with dockerd running)
#
# 1. base image notebook-jobs-base:bookworm from `debootstrap --variant=minbase`
#    + `docker import` (skipped when it exists; ~2.5 min the first time);
# 2. wheels for runner-image/requirements.txt downloaded on the host into
#    .cache/runner-wheels (containers cannot reach the package index);
# 3. `docker build` with BASE=notebook-jobs-base:bookworm from a context assembled in
#    .cache/runner-image-context (Dockerfile, requirements, runner.py, wheels), so the
#    repository (and its .venv) is never sent to the daemon. Docker's layer cache
#    makes a second build take seconds.
# Env: BASE_IMAGE, IMAGE, DEBIAN_MIRROR, PIP (the pip that downloads wheels).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
CACHE="$ROOT/.cache"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/hub_service/_version.py")"
BASE_IMAGE="${BASE_IMAGE:-notebook-jobs-base:bookworm}"
IMAGE="${IMAGE:-notebook-jobs-runner:$VERSION}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if [ -z "${PIP:-}" ]; then
    if [ -x "$ROOT/.venv/bin/pip" ]; then PIP="$ROOT/.venv/bin/pip"; else PIP="python3 -m pip"; fi
fi

log() { echo "build: $*" >&2; }

# 1. Base image.
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "base $BASE_IMAGE exists"
else
    log "debootstrap bookworm (minbase + python3) -> $BASE_IMAGE"
    rootfs="$(mktemp -d /tmp/notebook-jobs-rootfs.XXXXXX)"
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "$DEBIAN_MIRROR" >&2
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
           "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    tar -C "$rootfs" --numeric-owner -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
fi

# 2. Wheels for the image's Python (bookworm: 3.11), downloaded again only when
#    requirements.txt changes.
wheels="$CACHE/runner-wheels"
stamp="$wheels/.requirements.sha256"
want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
mkdir -p "$wheels"
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "wheels up to date in $wheels"
else
    log "downloading wheels into $wheels"
    if ! $PIP download --quiet --only-binary=:all: --python-version 3.11 --implementation cp \
            --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
            --platform manylinux_2_17_x86_64 \
            -d "$wheels" -r "$HERE/requirements.txt" >"$CACHE/runner-wheels.log" 2>&1; then
        tail -20 "$CACHE/runner-wheels.log" >&2
        log "pip download failed (full log: $CACHE/runner-wheels.log)"
        exit 1
    fi
    echo "$want" >"$stamp"
fi

# 3. Context and build.
ctx="$CACHE/runner-image-context"
rm -rf "$ctx"
mkdir -p "$ctx/wheels"
cp "$HERE/Dockerfile" "$HERE/requirements.txt" "$ctx/"
cp "$ROOT/hub_service/runner.py" "$ctx/runner.py"
cp -l "$wheels/"*.whl "$ctx/wheels/" 2>/dev/null || cp "$wheels/"*.whl "$ctx/wheels/"
# Same mtimes every time so that the layer cache holds across builds.
find "$ctx" -exec touch -h -d '2000-01-01 00:00:00' {} +
log "building $IMAGE from $BASE_IMAGE"
previous="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
# The legacy builder (Debian's dockerd has no BuildKit plugin here); its output is
# shown only when the build fails.
if ! DOCKER_BUILDKIT=0 docker build --build-arg BASE="$BASE_IMAGE" --build-arg VERSION="$VERSION" \
        -t "$IMAGE" "$ctx" >"$CACHE/runner-image-build.log" 2>&1; then
    tail -40 "$CACHE/runner-image-build.log" >&2
    log "docker build failed (full log: $CACHE/runner-image-build.log)"
    exit 1
fi
current="$(docker image inspect --format '{{.Id}}' "$IMAGE")"
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
    # The image this tag named before; kept if containers still use it.
    docker rmi "$previous" >/dev/null 2>&1 || true
fi
log "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
