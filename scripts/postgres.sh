#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (Debian's postgresql package, no service).
#
#   scripts/postgres.sh start [--dir DIR] [--port PORT]   # idempotent; prints both URLs
#   scripts/postgres.sh stop  [--dir DIR]                 # fast shutdown; fine if not running
#   scripts/postgres.sh url   [--dir DIR] [examflow|prefect]
#
# DIR defaults to var/pg (or $EXAMFLOW_PG_DIR): DIR/data holds the cluster, DIR/postgres.log
# its log, DIR/port the port it listens on. PORT defaults to $EXAMFLOW_PG_PORT, else 55432 if
# free, else a free port. The server listens on 127.0.0.1 only (no Unix socket), trusts every
# local connection (test data only, never production), and has the databases examflow_test
# (the app, psycopg) and prefect_test (the Prefect server, asyncpg). Durability is off
# (fsync, synchronous_commit, full_page_writes): a crash may lose the cluster, which is fine.
# initdb refuses to run as root: as root the cluster belongs to the "postgres" user (made by
# the package; a system user "examflow-pg" is created if there is none).
set -euo pipefail

usage() {
  sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

command=${1:-}
[ -n "$command" ] || usage
shift
dir=${EXAMFLOW_PG_DIR:-var/pg}
port=${EXAMFLOW_PG_PORT:-}
which=""
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=${2:?--dir needs a value}; shift 2 ;;
    --dir=*) dir=${1#--dir=}; shift ;;
    --port) port=${2:?--port needs a value}; shift 2 ;;
    --port=*) port=${1#--port=}; shift ;;
    examflow | prefect) which=$1; shift ;;
    *) usage ;;
  esac
done
DEFAULT_PORT=55432
SUPERUSER=postgres
DATABASES=(examflow_test prefect_test)

[ "$command" != start ] || mkdir -p "$dir"
[ ! -d "$dir" ] || dir=$(cd "$dir" && pwd -P)
data=$dir/data

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then echo "$newest"; return; fi
  if command -v pg_config >/dev/null 2>&1; then pg_config --bindir; return; fi
  local initdb
  initdb=$(command -v initdb 2>/dev/null) || die "no PostgreSQL found: apt-get install -y postgresql"
  dirname "$initdb"
}
BIN=$(bindir)
[ -x "$BIN/pg_ctl" ] || die "no pg_ctl in $BIN: apt-get install -y postgresql"

# As root, every server-side command runs as the cluster's owner.
owner=""
if [ "$(id -u)" = 0 ]; then
  if id -u postgres >/dev/null 2>&1; then
    owner=postgres
  else
    owner=examflow-pg
    id -u "$owner" >/dev/null 2>&1 ||
      useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$owner"
  fi
fi
as_owner() {
  # cd /: the owner may not be allowed into the caller's working directory
  if [ -n "$owner" ]; then (cd / && runuser -u "$owner" -- "$@"); else (cd / && "$@"); fi
}

recorded_port() { cat "$dir/port" 2>/dev/null || echo "${port:-$DEFAULT_PORT}"; }

url_of() {  # url_of DATABASE PORT
  case $1 in
    examflow_test) echo "postgresql+psycopg://$SUPERUSER@127.0.0.1:$2/examflow_test" ;;
    prefect_test) echo "postgresql+asyncpg://$SUPERUSER@127.0.0.1:$2/prefect_test" ;;
  esac
}

print_urls() {
  local p
  p=$(recorded_port)
  case $which in
    examflow) url_of examflow_test "$p" ;;
    prefect) url_of prefect_test "$p" ;;
    *) url_of examflow_test "$p"; url_of prefect_test "$p" ;;
  esac
}

running() { [ -f "$data/PG_VERSION" ] && as_owner "$BIN/pg_ctl" status -D "$data" >/dev/null 2>&1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

choose_port() {
  if [ -n "$port" ]; then
    port_in_use "$port" && die "port $port on 127.0.0.1 is in use"
    echo "$port"
    return
  fi
  local p
  for p in $DEFAULT_PORT $(seq 55433 55532); do
    if ! port_in_use "$p"; then echo "$p"; return; fi
  done
  die "no free port in $DEFAULT_PORT-55532"
}

psql_() {  # psql_ PORT SQL
  as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U "$SUPERUSER" \
    -d postgres -tAc "$2"
}

start() {
  if running; then
    [ -z "$port" ] || [ "$port" = "$(recorded_port)" ] ||
      die "already running on port $(recorded_port), not $port: stop it first"
    log "already running on 127.0.0.1:$(recorded_port) ($data)"
  else
    if [ -n "$owner" ]; then
      chown "$owner:" "$dir"
      as_owner test -w "$dir" ||
        die "user $owner cannot reach $dir (a parent folder is closed to it): use --dir"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
      log "initdb $data"
      rm -rf "$data"
      as_owner "$BIN/initdb" -D "$data" -U "$SUPERUSER" --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        die "initdb failed"
      }
      cat >>"$data/postgresql.conf" <<'EOF'

# scripts/postgres.sh: a throwaway test cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
# a server in China likely runs in this zone: the app must not depend on the server's zone
timezone = 'Asia/Shanghai'
EOF
    fi
    local p
    p=$(choose_port)
    echo "$p" >"$dir/port"
    log "starting on 127.0.0.1:$p ($data)"
    [ -z "$owner" ] || { touch "$dir/postgres.log"; chown "$owner:" "$dir/postgres.log"; }
    as_owner "$BIN/pg_ctl" start -D "$data" -l "$dir/postgres.log" -w -t 60 -o "-p $p" \
      >/dev/null || {
      tail -n 20 "$dir/postgres.log" >&2
      die "the server did not start"
    }
  fi
  local p db
  p=$(recorded_port)
  for db in "${DATABASES[@]}"; do
    if [ -z "$(psql_ "$p" "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      psql_ "$p" "CREATE DATABASE $db"
      log "created database $db"
    fi
  done
  print_urls
}

stop() {
  if running; then
    as_owner "$BIN/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null
    log "stopped ($data)"
  else
    log "not running ($data)"
  fi
}

case $command in
  start) start ;;
  stop) stop ;;
  url) print_urls ;;
  *) usage ;;
esac
