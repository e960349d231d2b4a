#!/usr/bin/env bash
# Starts and stops the service processes of the local stack in the background.
# Usage: scripts/stack.sh start|stop|status|wait
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PY="$ROOT/.venv/bin/python"
PIDS="$RUN/pids"
mkdir -p "$PIDS"

# name | command | readiness URL
PROCESSES=$(cat <<'LIST'
registry-api|-m services.registry api|http://127.0.0.1:8001/readyz
registry-relay|-m services.registry relay|
registry-directory|-m services.registry directory|
messaging-gateway|-m services.messaging gateway|
messaging-api|-m services.messaging api|http://127.0.0.1:8002/readyz
messaging-relay|-m services.messaging relay|
messaging-fanout|-m services.messaging fanout|
messaging-sender|-m services.messaging sender --channel all|
messaging-status|-m services.messaging status|
reports-api|-m services.reports api|http://127.0.0.1:8003/readyz
reports-relay|-m services.reports relay|
analytics-api|-m services.analytics api|http://127.0.0.1:8004/readyz
analytics-worker|-m services.analytics worker|
LIST
)

start() {
  while IFS='|' read -r name args _; do
    if pid_alive "$PIDS/$name.pid"; then continue; fi
    # shellcheck disable=SC2086
    # exec, so that the recorded pid is the service's own and no shell holds the
    # caller's output open.
    (cd "$ROOT" && exec nohup "$PY" $args) >>"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$PIDS/$name.pid"
  done <<<"$PROCESSES"
}

stop() {
  for pidfile in "$PIDS"/*.pid; do
    [ -f "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 1
  for pidfile in "$PIDS"/*.pid; do
    [ -f "$pidfile" ] || continue
    kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

wait_ready() {
  local limit=${1:-120}
  while IFS='|' read -r name _ url; do
    [ -n "$url" ] || continue
    local waited=0
    until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$url")" = 200 ]; do
      if ! pid_alive "$PIDS/$name.pid"; then
        say "$name exited; last lines of .run/logs/$name.log:"; tail -n 20 "$LOGS/$name.log" >&2; return 1
      fi
      if [ "$waited" -ge "$limit" ]; then
        say "$name not ready after ${limit}s: $(curl -s --max-time 3 "$url")"; return 1
      fi
      sleep 1; waited=$((waited + 1))
    done
  done <<<"$PROCESSES"
}

status() {
  while IFS='|' read -r name _ url; do
    local state=stopped
    pid_alive "$PIDS/$name.pid" && state=running
    if [ -n "$url" ]; then
      printf '  %-20s %-8s %s -> %s\n' "$name" "$state" "$url" \
        "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$url")"
    else
      printf '  %-20s %-8s\n' "$name" "$state"
    fi
  done <<<"$PROCESSES"
}

case "${1:-status}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  wait) wait_ready "${2:-120}" ;;
  *) die "usage: $0 start|stop|status|wait" ;;
esac
