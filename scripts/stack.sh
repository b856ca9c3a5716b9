#!/usr/bin/env bash
# The team deployment (docker-compose.yml): JupyterHub + DockerSpawner, the notebook-jobs
# service and PostgreSQL. Run as root (or a member of the docker group) from anywhere:
#
#   scripts/stack.sh up            build the images that are missing, write .env if absent,
#                                  start the stack, return once the Hub and the service answer
#   scripts/stack.sh down          stop users' servers and the stack; every volume is kept
#   scripts/stack.sh logs [ARGS]   docker-compose logs (e.g. -f service, --tail=100 hub)
#   scripts/stack.sh backup [DIR]  pg_dump of both databases and a tar of the service's data
#                                  into DIR (default backups/<UTC time>)
#   scripts/stack.sh restore DIR   put a backup back (the stack must be up; stops hub and
#                                  service while it restores)
#   scripts/stack.sh build         rebuild every image (after an upgrade; cached layers)
#   scripts/stack.sh upgrade       backup, build, migrate the Hub's database, up
#   scripts/stack.sh ps            docker-compose ps
#
# Env: NOTEBOOK_JOBS_ENV (the settings file, default .env at the top of the checkout; a
# second stack on one daemon takes its own file with another COMPOSE_PROJECT_NAME),
# STACK_WAIT (seconds `up` waits for the Hub and the service, default 300).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { echo "stack: $*" >&2; }
die() { log "$*"; exit 1; }

VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' hub_service/_version.py)"
export NOTEBOOK_JOBS_VERSION="$VERSION"
ENV_FILE="${NOTEBOOK_JOBS_ENV:-$ROOT/.env}"
SECRETS="DEMO_PASSWORD JUPYTERHUB_COOKIE_SECRET HUB_DB_PASSWORD SERVICE_DB_PASSWORD NOTEBOOK_JOBS_API_TOKEN NOTEBOOK_JOBS_WEBHOOK_SECRET"

need_tools() {
    if ! docker info >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] || die "no Docker daemon answers (run scripts/docker-setup.sh as root)"
        bash scripts/docker-setup.sh
    fi
    if ! command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] || die "docker-compose is missing (apt-get install docker-compose)"
        log "installing docker-compose (apt)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >&2
    fi
}

env_value() {  # the value of NAME in the settings file (empty when unset)
    sed -n "s/^$1=//p" "$ENV_FILE" 2>/dev/null | tail -1
}

project() {
    local name; name="$(env_value COMPOSE_PROJECT_NAME)"
    echo "${name:-notebook-jobs}"
}

compose() {
    local args=(--project-directory "$ROOT" -f "$ROOT/docker-compose.yml" --env-file "$ENV_FILE" -p "$(project)")
    if command -v docker-compose >/dev/null; then docker-compose "${args[@]}" "$@"; else docker compose "${args[@]}" "$@"; fi
}

write_env() {
    local new=0
    if [ ! -f "$ENV_FILE" ]; then
        log "writing $ENV_FILE (from .env.example; DEMO_PASSWORD is the dummy login's password)"
        (umask 077 && cp .env.example "$ENV_FILE")
        new=1
    fi
    local runtime=""
    if [ "$new" = 1 ] && docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
        runtime=runsc  # gVisor for jobs, where the daemon has it (scripts/docker-setup.sh)
    fi
    # every secret left empty is generated; the version follows the checkout (an upgrade's
    # images carry the new tag)
    python3 - "$ENV_FILE" "$VERSION" "$new" "$runtime" $SECRETS <<'PY'
import os, secrets, sys
path, version, new, runtime, names = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4], sys.argv[5:]
generate = {"DEMO_PASSWORD": lambda: secrets.token_urlsafe(12)}
lines, changed = open(path).read().splitlines(keepends=True), []
for i, line in enumerate(lines):
    name, eq, value = line.rstrip("\n").partition("=")
    if line.startswith("#") or not eq:
        continue
    if name in names and not value:
        value = generate.get(name, lambda: secrets.token_hex(32))()
    elif name == "NOTEBOOK_JOBS_VERSION" and value != version:
        value = version
    elif name == "NOTEBOOK_JOBS_RUNTIME" and new and runtime:
        value = runtime
    else:
        continue
    lines[i] = f"{name}={value}\n"
    changed.append(name)
if changed:
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.writelines(lines)
    os.replace(tmp, path)
    print("stack: set " + ", ".join(changed) + " in " + path, file=sys.stderr)
PY
    chmod 600 "$ENV_FILE"
}

wait_until_up() {
    local bind port deadline
    bind="$(env_value HUB_BIND)"; port="$(env_value HUB_PORT)"
    case "${bind:-127.0.0.1}" in 0.0.0.0|127.0.0.1|"") bind=127.0.0.1 ;; esac
    port="${port:-8000}"
    deadline=$((SECONDS + ${STACK_WAIT:-300}))
    local hub="http://$bind:$port/hub/health" service="http://$bind:$port/services/notebook-jobs/api/health"
    log "waiting for $hub and $service"
    until python3 - "$hub" "$service" <<'PY'
import sys, urllib.request
for url in sys.argv[1:]:
    try:
        urllib.request.urlopen(url, timeout=5).read()
    except Exception:
        sys.exit(1)
PY
    do
        if [ $SECONDS -ge $deadline ]; then
            compose ps >&2 || true
            compose logs --tail=30 >&2 || true
            die "the Hub or the service did not answer within ${STACK_WAIT:-300} s"
        fi
        sleep 2
    done
    log "up: the Hub is at http://$bind:$port/ ($(env_value JUPYTERHUB_AUTHENTICATOR) login)"
}

stop_user_servers() {
    local ids
    ids="$(docker ps -q --filter label=org.jupyter.notebook-jobs.role=singleuser \
                        --filter "label=org.jupyter.notebook-jobs.stack=$(project)")"
    if [ -n "$ids" ]; then
        log "stopping users' servers ($(echo "$ids" | wc -l))"
        # shellcheck disable=SC2086
        docker stop $ids >/dev/null
    fi
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    up)
        need_tools
        write_env
        bash deploy/build.sh --missing
        compose up -d --remove-orphans
        wait_until_up
        ;;
    down)
        need_tools
        [ -f "$ENV_FILE" ] || die "no $ENV_FILE: the stack was never brought up here"
        stop_user_servers
        compose down --remove-orphans  # never -v: the volumes hold the databases and every home
        ;;
    logs)
        compose logs "$@"
        ;;
    ps)
        compose ps "$@"
        ;;
    build)
        need_tools
        write_env
        bash deploy/build.sh
        ;;
    backup)
        dir="${1:-backups/$(date -u +%Y%m%dT%H%M%SZ)}"
        mkdir -p "$dir"
        chmod 700 "$dir"
        for db in jupyterhub notebook_jobs; do
            log "pg_dump $db -> $dir/$db.dump"
            compose exec -T postgres pg_dump -U postgres --format=custom "$db" >"$dir/$db.dump"
        done
        log "the service's data ($(project)-data) -> $dir/notebook-jobs-data.tar.gz"
        docker run --rm --network none -v "$(project)-data:/data:ro" --entrypoint tar \
            "notebook-jobs-hub:$VERSION" -C /data -czf - . >"$dir/notebook-jobs-data.tar.gz"
        log "backup written to $dir ($(du -sh "$dir" | cut -f1)); keep $ENV_FILE apart, with care"
        ;;
    restore)
        dir="${1:?usage: scripts/stack.sh restore DIR}"
        for f in jupyterhub.dump notebook_jobs.dump notebook-jobs-data.tar.gz; do
            [ -s "$dir/$f" ] || die "$dir/$f is missing"
        done
        log "stopping hub and service to restore"
        compose stop hub service
        for db in jupyterhub notebook_jobs; do
            log "pg_restore $db <- $dir/$db.dump"
            compose exec -T postgres pg_restore -U postgres --clean --if-exists --no-owner \
                --role="$db" -d "$db" <"$dir/$db.dump"
        done
        log "the service's data <- $dir/notebook-jobs-data.tar.gz"
        docker run --rm -i --network none -v "$(project)-data:/data" --entrypoint sh \
            "notebook-jobs-hub:$VERSION" -c 'find /data -mindepth 1 -delete && tar -C /data -xzf -' \
            <"$dir/notebook-jobs-data.tar.gz"
        compose up -d
        wait_until_up
        ;;
    upgrade)
        need_tools
        write_env
        "$0" backup
        bash deploy/build.sh
        log "migrating the Hub's database (jupyterhub upgrade-db); the service migrates its own at start"
        compose stop hub
        compose run --rm --no-deps hub jupyterhub upgrade-db -f /srv/jupyterhub/jupyterhub_config.py
        compose up -d --remove-orphans
        wait_until_up
        ;;
    *)
        sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
