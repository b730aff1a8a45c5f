#!/bin/sh
# Initialise a PostgreSQL 15 cluster and load pgbench data, logging like a real service.
# Run as root in 127.0.0.1:5000/dp/postgres:1 (Debian's postgresql-15); the server runs as
# the postgres user. PGBENCH_SCALE sets the amount of data (1 = 100,000 rows, ~15 MB).
# Checkpoints are made frequent (small max_wal_size) and logged (log_checkpoints=on) so that
# the load reports its progress through the server's own "checkpoint complete" lines.
set -eu
SCALE="${PGBENCH_SCALE:-80}"
BIN=/usr/lib/postgresql/15/bin
DATA=/tmp/pgdata
as_pg() { runuser -u postgres -- "$@"; }

echo 'Starting DB init!'
mkdir -p "$DATA"
chown postgres "$DATA"
as_pg "$BIN/initdb" -D "$DATA" -A trust -U postgres --no-sync
as_pg "$BIN/postgres" -D "$DATA" -c listen_addresses= -c unix_socket_directories=/tmp \
    -c log_checkpoints=on -c max_wal_size=32MB -c min_wal_size=32MB \
    -c checkpoint_timeout=30s -c fsync=off &
SERVER=$!
until as_pg "$BIN/pg_isready" -h /tmp -q; do sleep 0.2; done
as_pg "$BIN/pgbench" -h /tmp -U postgres -i -s "$SCALE" postgres
echo 'Finished DB init!'
if [ "${EXIT_WHEN_DONE:-0}" = 1 ]; then
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop
    wait "$SERVER" || true
    exit 0
fi
wait "$SERVER"
