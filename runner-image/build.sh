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
. "$HERE/../deploy/images.sh"
BASE_IMAGE="${BASE_IMAGE:-notebook-jobs-base:bookworm}"
IMAGE="${IMAGE:-notebook-jobs-runner:$VERSION}"

# 1. Base image.
debootstrap_image "$BASE_IMAGE" python3,python3-venv "$CACHE/runner-debootstrap.log"

# 2. Wheels for the image's Python (bookworm: 3.11), downloaded again only when
#    requirements.txt changes.
wheels="$CACHE/runner-wheels"
fetch_wheels "$wheels" "$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)" "$CACHE/runner-wheels.log" \
    -r "$HERE/requirements.txt"

# 3. Context and build.
ctx="$CACHE/runner-image-context"
rm -rf "$ctx"
mkdir -p "$ctx/wheels"
cp "$HERE/Dockerfile" "$HERE/requirements.txt" "$ctx/"
cp "$ROOT/hub_service/runner.py" "$ctx/runner.py"
cp -l "$wheels/"*.whl "$ctx/wheels/" 2>/dev/null || cp "$wheels/"*.whl "$ctx/wheels/"
docker_build "$IMAGE" "$BASE_IMAGE" "$ctx" "$CACHE/runner-image-build.log"
