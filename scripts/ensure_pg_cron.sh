#!/usr/bin/env bash
# The warm-up migration's test starts a private PostgreSQL with pg_cron (it never touches the
# machine's own server): it needs the PostgreSQL 15 server binaries and Debian's pg_cron build.
set -u
PG_BIN=/usr/lib/postgresql/15/bin
have() { [ -x "$PG_BIN/initdb" ] && [ -f /usr/lib/postgresql/15/lib/pg_cron.so ]; }
have && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "ensure_pg_cron: installing postgresql-15 and postgresql-15-cron from Debian's packages" >&2
  (apt-get install -y -qq postgresql-15 postgresql-15-cron >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq postgresql-15 postgresql-15-cron; }) >&2
fi
have && exit 0
echo "ensure_pg_cron: need $PG_BIN/initdb and pg_cron (apt-get install postgresql-15 postgresql-15-cron)" >&2
exit 1
