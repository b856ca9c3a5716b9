#!/usr/bin/env bash
# Build the runner image notebook-jobs-runner:<version> without an image registry.
#
#   bash runner-image/build.sh            (as root, with dockerd running)
#   bash runner-image/build.sh --data-science   (also the demo's second environment,
#                                                notebook-jobs-datascience:<version>; step 4)
#
# 1. base image notebook-jobs-base:bookworm from `debootstrap --variant=minbase`
#    + `docker import` (skipped when it exists; ~2.5 min the first time);
# 2. wheels for runner-image/requirements.txt downloaded on the host into
#    .cache/runner-wheels (containers cannot reach the package index);
# 3. `docker build` with BASE=notebook-jobs-base:bookworm from a context assembled in
#    .cache/runner-image-context (Dockerfile, requirements, schemas.py, runner.py, wheels), so the
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
cp "$HERE/Dockerfile" "$HERE/requirements.txt" "$HERE/schemas.py" "$ctx/"
cp "$ROOT/hub_service/runner.py" "$ctx/runner.py"
cp -l "$wheels/"*.whl "$ctx/wheels/" 2>/dev/null || cp "$wheels/"*.whl "$ctx/wheels/"
docker_build "$IMAGE" "$BASE_IMAGE" "$ctx" "$CACHE/runner-image-build.log"

# 4. With --data-science: the demo's second environment on top of the runner, from wheels
#    downloaded on the host like the runner's (pip's own wheel installs them: the runner has no pip).
if [ "${1:-}" = "--data-science" ]; then
    ds="$HERE/datascience"
    DS_IMAGE="${DS_IMAGE:-notebook-jobs-datascience:$VERSION}"
    ds_wheels="$CACHE/datascience-wheels"
    fetch_wheels "$ds_wheels" "$(sha256sum "$ds/requirements.txt" | cut -d' ' -f1)" "$CACHE/datascience-wheels.log" \
        -r "$ds/requirements.txt" pip
    ctx="$CACHE/datascience-image-context"
    rm -rf "$ctx"
    mkdir -p "$ctx/wheels"
    cp "$ds/Dockerfile" "$ds/requirements.txt" "$ctx/"
    cp -l "$ds_wheels/"*.whl "$ctx/wheels/" 2>/dev/null || cp "$ds_wheels/"*.whl "$ctx/wheels/"
    docker_build "$DS_IMAGE" "$IMAGE" "$ctx" "$CACHE/datascience-image-build.log"
fi
