# Helpers shared by the scripts that fetch and start the local platform.
# Sourced, not run. Everything downloaded lives in .cache/, everything running in .run/.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$ROOT/.cache"
RUN="$ROOT/.run"
LOGS="$RUN/logs"
mkdir -p "$CACHE" "$LOGS"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need() {
  # need COMMAND "what to install": one clear line instead of a stack trace.
  command -v "$1" >/dev/null 2>&1 || die "$1 is missing: $2"
}

port_open() {
  # port_open HOST PORT: true when something accepts TCP connections there.
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && { exec 3>&- 3<&-; return 0; }
  return 1
}

wait_port() {
  # wait_port NAME HOST PORT SECONDS LOG
  local name=$1 host=$2 port=$3 limit=$4 log=$5 waited=0
  until port_open "$host" "$port"; do
    if [ "$waited" -ge "$limit" ]; then
      say "$name did not answer on $host:$port within ${limit}s; last lines of $log:"
      tail -n 20 "$log" >&2 || true
      return 1
    fi
    sleep 1; waited=$((waited + 1))
  done
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
