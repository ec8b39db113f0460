#!/bin/sh
# The official image's first start, in short: an empty PGDATA gets a cluster whose superuser
# is POSTGRES_USER (password POSTGRES_PASSWORD), a database POSTGRES_DB, and password
# authentication for connections over the network. Then postgres runs as the postgres user.
set -eu
if [ "${1:-}" != "postgres" ]; then
    exec "$@"
fi
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != "trust" ]; then
        echo "Database is uninitialized and superuser password is not specified." >&2
        echo "You must specify POSTGRES_PASSWORD to a non-empty value for the superuser." >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
    chown postgres "$pwfile"
    # shellcheck disable=SC2086
    as_postgres initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
        --auth-host="$auth" ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA"
    rm -f "$pwfile"
    printf 'host all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
    as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    if [ "$db" != "postgres" ]; then
        as_postgres psql -v ON_ERROR_STOP=1 --username "$user" --dbname postgres \
            -c "CREATE DATABASE \"$db\""
    fi
    as_postgres pg_ctl -D "$PGDATA" -m fast -w stop
fi
shift
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -c listen_addresses='*' "$@"
