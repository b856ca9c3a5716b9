#!/bin/bash
# First start (an empty $PGDATA): initdb, then the roles jupyterhub and notebook_jobs with
# the passwords from the environment, each owning its database. Every start: the server,
# listening on the stack's db network (internal; the Hub and the service only) with password
# (scram) logins for those roles only; the superuser postgres has no password and logs in
# only over the local socket (backups: `docker-compose exec postgres pg_dump ...`).
set -euo pipefail
: "${HUB_DB_PASSWORD:?HUB_DB_PASSWORD is not set (.env)}"
: "${SERVICE_DB_PASSWORD:?SERVICE_DB_PASSWORD is not set (.env)}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "postgres: first start: making the cluster in $PGDATA" >&2
    initdb -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 >&2
    {
        echo "# the stack's db network: the Hub's and the service's roles, with their passwords"
        echo "host  jupyterhub     jupyterhub     all  scram-sha-256"
        echo "host  notebook_jobs  notebook_jobs  all  scram-sha-256"
    } >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c jit=off" -w start >&2
    psql -v ON_ERROR_STOP=1 -U postgres -d postgres -q \
         -v hub_pw="$HUB_DB_PASSWORD" -v service_pw="$SERVICE_DB_PASSWORD" <<'SQL'
CREATE ROLE jupyterhub LOGIN PASSWORD :'hub_pw';
CREATE ROLE notebook_jobs LOGIN PASSWORD :'service_pw';
CREATE DATABASE jupyterhub OWNER jupyterhub;
CREATE DATABASE notebook_jobs OWNER notebook_jobs;
SQL
    pg_ctl -D "$PGDATA" -m fast -w stop >&2
fi
# jit off: the image carries no LLVM
exec postgres -D "$PGDATA" -c listen_addresses='*' -c jit=off "$@"
