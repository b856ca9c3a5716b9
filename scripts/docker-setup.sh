#!/usr/bin/env bash
# Prepare this machine to run Notebook Jobs' docker backend: the engine, gVisor
# registered as runtime "runsc", a running dockerd, and the runner image.
#
# Idempotent; run as root:  bash scripts/docker-setup.sh
# Nothing here pulls from an image registry (none is reachable): the runner image is
# built from a debootstrap base (runner-image/build.sh).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/notebook-jobs-dockerd.log}"
DAEMON_JSON=/etc/docker/daemon.json

log() { echo "docker-setup: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "must run as root"; exit 1
fi

# 1. Packages. docker.io is Debian's engine (20.10, API 1.41); runsc is gVisor.
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v runsc >/dev/null || [ -x /usr/bin/runsc ] || missing+=(runsc)
# the team deployment (docker-compose.yml, scripts/stack.sh): Debian's docker-compose 1.29
command -v docker-compose >/dev/null || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# 2. Register gVisor. Without --network=none its sandbox fails to start here and each
# failed start leaves a runsc-sandbox process behind; ptrace is the platform that
# works without KVM.
RUNSC="$(command -v runsc || echo /usr/bin/runsc)"
mkdir -p /etc/docker
changed="$(python3 - "$DAEMON_JSON" "$RUNSC" <<'PY'
import json, os, sys
path, runsc = sys.argv[1], sys.argv[2]
conf = {}
if os.path.exists(path) and os.path.getsize(path):
    with open(path) as f:
        conf = json.load(f)
want = {"path": runsc, "runtimeArgs": ["--platform=ptrace", "--network=none"]}
if conf.get("runtimes", {}).get("runsc") == want:
    print("no")
else:
    conf.setdefault("runtimes", {})["runsc"] = want
    with open(path + ".tmp", "w") as f:
        json.dump(conf, f, indent=2)
    os.replace(path + ".tmp", path)
    print("yes")
PY
)"

# 3. The daemon. No systemd here: start it in the background, logging to a file.
daemon_up() { docker info >/dev/null 2>&1; }
if daemon_up && [ "$changed" = yes ]; then
    log "reloading dockerd configuration (runtimes)"
    kill -HUP "$(cat /var/run/docker.pid)" || true
    sleep 1
fi
if ! daemon_up; then
    log "starting dockerd (log: $DOCKERD_LOG)"
    setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        daemon_up && break
        sleep 1
    done
    daemon_up || { log "dockerd did not answer within 60 s; see $DOCKERD_LOG"; tail -20 "$DOCKERD_LOG" >&2; exit 1; }
fi
log "docker engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) is up"

# 4. The runner image (cached: a second run only re-checks layers).
bash "$ROOT/runner-image/build.sh"
