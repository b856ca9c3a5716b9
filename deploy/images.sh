# Building an image without an image registry, the one way deploy/build.sh and
# runner-image/build.sh both do it. Sourced, not run:
#
#   . "$ROOT/deploy/images.sh"
#
# Sets ROOT, CACHE, VERSION (hub_service/_version.py), DEBIAN_MIRROR and PIP (the pip that
# downloads wheels: .venv's, else python3's), and defines:
#   log MESSAGE                                "build: MESSAGE" on stderr
#   debootstrap_image TAG PACKAGES LOG [TRIM]  a bookworm minbase as the image TAG
#   fetch_wheels DIR SUM LOG PIP-ARGS...       wheels for bookworm's Python 3.11 into DIR,
#                                              again only when SUM changes
#   docker_build TAG BASE CTX LOG              the image TAG from the context CTX
# Containers cannot reach the package index, so wheels are downloaded on the host; every
# step's output goes to a log under .cache, shown only when the step fails.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
mkdir -p "$CACHE"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/hub_service/_version.py")"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if [ -z "${PIP:-}" ]; then
    if [ -x "$ROOT/.venv/bin/pip" ]; then PIP="$ROOT/.venv/bin/pip"; else PIP="python3 -m pip"; fi
fi

log() { echo "build: $*" >&2; }

# debootstrap_image TAG PACKAGES LOG [TRIM]: unless the image TAG exists, a bookworm
# minbase with PACKAGES (comma-separated) and without apt lists, docs, man pages or
# locales, imported as TAG; TRIM, when named, is a function called with the tree's path
# to remove more before the import.
debootstrap_image() {
    local tag="$1" packages="$2" out="$3" trim="${4:-}"
    if docker image inspect "$tag" >/dev/null 2>&1; then
        log "base $tag exists"
        return
    fi
    log "debootstrap bookworm (minbase + $packages) -> $tag"
    rootfs="$(mktemp -d /tmp/notebook-jobs-rootfs.XXXXXX)"  # (global: the trap reads it)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$DEBIAN_MIRROR" >"$out" 2>&1 \
        || { tail -20 "$out" >&2; log "debootstrap failed (full log: $out)"; exit 1; }
    chroot "$rootfs" apt-get clean
    [ -z "$trim" ] || "$trim" "$rootfs"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
           "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    tar -C "$rootfs" --numeric-owner -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
}

# fetch_wheels DIR SUM LOG PIP-ARGS...: `pip download` of binary wheels for the images'
# Python (bookworm: 3.11 on x86_64) into DIR, skipped while DIR's stamp says SUM (a
# checksum of what the requirements are); PIP-ARGS name them (-r, -c, more platforms).
fetch_wheels() {
    local dir="$1" sum="$2" out="$3"
    shift 3
    local stamp="$dir/.requirements.sha256"
    mkdir -p "$dir"
    if [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
        log "wheels up to date in $dir"
        return
    fi
    log "downloading wheels into $dir"
    if ! $PIP download --quiet --only-binary=:all: --python-version 3.11 --implementation cp \
            --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
            --platform manylinux_2_17_x86_64 -d "$dir" "$@" >"$out" 2>&1; then
        tail -20 "$out" >&2
        log "pip download failed (full log: $out)"
        exit 1
    fi
    echo "$sum" >"$stamp"
}

# docker_build TAG BASE CTX LOG: the image TAG from the context CTX on the image BASE, with
# the service's version; the image the tag named before is removed (kept while a
# container still uses it).
docker_build() {
    local tag="$1" base="$2" ctx="$3" out="$4"
    # Same mtimes every time, so that the layer cache holds across builds.
    find "$ctx" -exec touch -h -d '2000-01-01 00:00:00' {} +
    log "building $tag from $base"
    local previous; previous="$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
    # The legacy builder (Debian's dockerd has no BuildKit plugin here).
    if ! DOCKER_BUILDKIT=0 docker build --build-arg BASE="$base" --build-arg VERSION="$VERSION" \
            -t "$tag" "$ctx" >"$out" 2>&1; then
        tail -40 "$out" >&2
        log "docker build of $tag failed (full log: $out)"
        exit 1
    fi
    local current; current="$(docker image inspect --format '{{.Id}}' "$tag")"
    if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
        docker rmi "$previous" >/dev/null 2>&1 || true
    fi
    log "built $tag ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}
