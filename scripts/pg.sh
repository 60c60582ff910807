#!/usr/bin/env bash
# A private PostgreSQL cluster for logmon, built from the installed binaries.
#
#   scripts/pg.sh start|stop|status|url|psql [args]
#
# Data lives in $LOGMON_PG_DIR (default: <repo>/.data/pg). PostgreSQL refuses to run as root, so
# when this runs as root the cluster runs as the `postgres` user (runuser). The port is chosen
# free on first start and remembered in $LOGMON_PG_DIR/port. Authentication is `trust` on
# 127.0.0.1 and the private socket only: this is a development and test cluster.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${LOGMON_PG_DIR:-$repo/.data/pg}

die() { echo "pg.sh: $*" >&2; exit 1; }

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(readlink -f "$(command -v initdb)")"; return 0; }
  return 1
}

ensure_binaries() {
  bindir=$(find_bindir) && return 0
  [ "$(id -u)" = 0 ] || die "PostgreSQL server binaries not found; install the 'postgresql' package"
  echo "pg.sh: installing postgresql with apt-get" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  bindir=$(find_bindir) || die "postgresql installed but initdb still not found"
}

# Run a PostgreSQL binary as the cluster owner.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The owner must be able to reach the data dir: under a root-only checkout it cannot, so fall
# back to a short temporary directory and remember it with a symlink.
prepare_dir() {
  mkdir -p "$(dirname "$dir")"
  if [ -L "$dir" ] && [ ! -d "$(readlink "$dir")" ]; then rm -f "$dir"; fi
  if [ ! -e "$dir" ]; then
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      id postgres >/dev/null 2>&1 || die "user 'postgres' is missing (install the postgresql package)"
      chown postgres: "$dir"
      if ! runuser -u postgres -- test -w "$dir" || [ ${#dir} -gt 80 ]; then
        rmdir "$dir"
        local tmp; tmp=$(mktemp -d /tmp/logmon-pg.XXXXXX)
        chown postgres: "$tmp"; chmod 755 "$tmp"
        ln -s "$tmp" "$dir"
      fi
    fi
  fi
  real=$(readlink -f "$dir")
}

free_port() {
  python3 - <<'EOF'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
EOF
}

port_of() { cat "$dir/port" 2>/dev/null || true; }

running() { [ -f "$real/data/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$real/data" status >/dev/null 2>&1; }

# The server log is opened once, by pg_ctl, in append mode, and never rotated: bulk loads fill it
# (autosummarize's "request for BRIN range summarization ... was not recorded", ~2M lines in one
# round of benchmarks). Past 64 MB its last 10,000 lines are kept, in place: truncating an
# O_APPEND file is safe while the server writes to it.
trim_log() {
  local log="$real/server.log"
  [ -f "$log" ] && [ "$(stat -c %s "$log")" -gt $((64 << 20)) ] || return 0
  as_owner sh -c "tail -n 10000 '$log' > '$log.tail' && cat '$log.tail' > '$log' && rm -f '$log.tail'"
}

cmd_start() {
  ensure_binaries; prepare_dir
  trim_log
  if running; then return 0; fi
  if [ ! -f "$real/data/PG_VERSION" ]; then
    as_owner mkdir -p "$real/data" "$real/sock"
    as_owner "$bindir/initdb" -D "$real/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$real/initdb.log" 2>&1 \
      || { cat "$real/initdb.log" >&2; die "initdb failed"; }
    cat >>"$real/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$real/sock'
max_connections = 300
shared_buffers = 256MB
max_wal_size = 4GB
checkpoint_timeout = 15min
log_min_messages = warning
log_min_duration_statement = -1
EOF
  fi
  local port; port=$(port_of)
  if [ -z "$port" ] || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    port=$(free_port); echo "$port" > "$dir/port"
  fi
  as_owner "$bindir/pg_ctl" -D "$real/data" -l "$real/server.log" -w -t 60 -o "-p $port" start >/dev/null \
    || { tail -20 "$real/server.log" >&2; die "pg_ctl start failed"; }
  echo "pg.sh: PostgreSQL running on 127.0.0.1:$port (data: $real/data)" >&2
}

cmd_stop() {
  ensure_binaries; prepare_dir
  if running; then as_owner "$bindir/pg_ctl" -D "$real/data" -m fast -w stop >/dev/null; fi
}

cmd_status() {
  ensure_binaries; prepare_dir
  if running; then echo "running on 127.0.0.1:$(port_of) (data: $real/data)"; else echo "stopped"; return 3; fi
}

cmd_url() {
  local port; port=$(port_of)
  [ -n "$port" ] || die "cluster never started: run scripts/pg.sh start"
  echo "postgres://postgres@127.0.0.1:$port/${1:-postgres}"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) shift; cmd_url "$@" ;;
  psql) shift; exec psql "$(cmd_url logsdb)" "$@" ;;
  *) echo "usage: $0 start|stop|status|url [db]|psql [args]" >&2; exit 2 ;;
esac
