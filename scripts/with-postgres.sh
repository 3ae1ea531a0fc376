#!/usr/bin/env bash
# Run a command with a throw-away PostgreSQL server and AUTORATER_TEST_PG_URL pointing at it.
# Installs Debian's postgresql when it is missing (needs root and apt). PostgreSQL refuses to run
# as root, so the server runs as the `postgres` user. The server is stopped on exit.
# If no server can be had and AUTORATER_REQUIRE_PG is unset, the command runs without one
# (the PostgreSQL tests are then skipped, visibly).
set -uo pipefail

PORT="${AUTORATER_PG_PORT:-55432}"
pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

if [ -z "$(pgbin)" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[with-postgres] installing postgresql from Debian" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2 \
    || echo "[with-postgres] apt-get install postgresql failed" >&2
fi

PGBIN="$(pgbin)"
started=""
if [ -n "$PGBIN" ] && id postgres >/dev/null 2>&1; then
  PGTMP="$(mktemp -d /tmp/autorater-pg.XXXXXX)"
  chown postgres: "$PGTMP"
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  if as_pg "$PGBIN/initdb" -D "$PGTMP/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$PGTMP/initdb.log" 2>&1 \
     && as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/log" -w \
          -o "-h 127.0.0.1 -p $PORT -k $PGTMP -c fsync=off -c max_connections=200" start >/dev/null; then
    started=1
    export AUTORATER_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
    echo "[with-postgres] PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT" >&2
    trap 'as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -m fast stop >/dev/null 2>&1; rm -rf "$PGTMP"' EXIT
  else
    echo "[with-postgres] could not start PostgreSQL:" >&2; cat "$PGTMP/initdb.log" "$PGTMP/log" 2>/dev/null | tail -5 >&2
  fi
fi

if [ -z "$started" ]; then
  if [ -n "${AUTORATER_REQUIRE_PG:-}" ]; then
    echo "[with-postgres] PostgreSQL is required (AUTORATER_REQUIRE_PG) but could not be started" >&2
    exit 3
  fi
  echo "[with-postgres] no PostgreSQL: the PostgreSQL tests will be skipped" >&2
fi

"$@"
