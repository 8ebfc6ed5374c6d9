#!/bin/sh
# First start on an empty data directory: create the cluster with the superuser and database
# named by POSTGRES_USER / POSTGRES_DB and the password from POSTGRES_PASSWORD(_FILE), as the
# official image does; then run PostgreSQL listening on the container's network.
set -eu
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
fi
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 -D "$PGDATA" > /dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        postgres --single -D "$PGDATA" postgres <<SQL > /dev/null
CREATE DATABASE "$db" OWNER "$user";
SQL
    fi
fi
exec "$@" -D "$PGDATA" -c listen_addresses='*'
