#!/usr/bin/env bash
# Builds (once) and starts FerretDB v1 with its SQLite backend on 127.0.0.1:27017.
# Does nothing when MONGODB_URI points elsewhere or a server already answers.
# Usage: scripts/ferretdb.sh start|stop|build
# FERRETDB_PORT and FERRETDB_DATA_DIR run a second, private server, e.g. for the
# end-to-end test, which must not share a server with others.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

VERSION=v1.24.2
# Our patch of its SQLite backend (below); a new patch gets a new name, so a cached
# binary without it is rebuilt.
PATCH=id-index-1
BIN="$CACHE/bin/ferretdb-$VERSION-$PATCH"
PORT=${FERRETDB_PORT:-27017}
if [ -n "${FERRETDB_DATA_DIR:-}" ]; then
  DATA=$FERRETDB_DATA_DIR; PIDFILE="$DATA/ferretdb.pid"; LOG="$DATA/ferretdb.log"
else
  DATA="$RUN/ferretdb"; PIDFILE="$RUN/ferretdb.pid"; LOG="$LOGS/ferretdb.log"
fi
URI=${MONGODB_URI:-mongodb://127.0.0.1:$PORT/}

build() {
  [ -x "$BIN" ] && return 0
  need go "install Go 1.22 or newer (https://go.dev/doc/install or Debian: apt-get install golang)"
  say "building FerretDB $VERSION with go install (once)"
  export GOPATH="$CACHE/go" GOFLAGS=-modcacherw GOTOOLCHAIN=local
  go mod download -json "github.com/FerretDB/FerretDB@$VERSION" >"$LOGS/ferretdb-build.log" 2>&1 \
    || { tail -n 20 "$LOGS/ferretdb-build.log" >&2; die "could not download FerretDB"; }
  local src="$CACHE/ferretdb-src"
  rm -rf "$src"
  cp -r "$GOPATH/pkg/mod/github.com/!ferret!d!b/!ferret!d!b@$VERSION" "$src"
  chmod -R u+w "$src"
  # The module archive lacks the version file that `bin/task gen-version` writes from
  # git; FerretDB refuses to start without it.
  echo "$VERSION" >"$src/build/version/version.txt"
  # FerretDB 1.24 indexes `_id` as sjson->'_id' but looks it up as sjson->'$._id', the
  # same JSON path spelt otherwise, so SQLite never uses the index: every update,
  # delete and find by _id scans the whole table. That makes the relay's clearing
  # quadratic in a collection's size. The lookup is spelt like the index here.
  local meta="$src/internal/backends/sqlite/metadata/metadata.go"
  grep -q "IDColumn = DefaultColumn + \"->'\$._id'\"" "$meta" \
    || die "FerretDB $VERSION: the _id lookup to patch is not where expected"
  sed -i "s/IDColumn = DefaultColumn + \"->'\$._id'\"/IDColumn = DefaultColumn + \"->'_id'\"/" "$meta"
  mkdir -p "$CACHE/bin"
  (cd "$src" && GOBIN="$CACHE/gobin" go install ./cmd/ferretdb) >>"$LOGS/ferretdb-build.log" 2>&1 \
    || { tail -n 20 "$LOGS/ferretdb-build.log" >&2; die "could not build FerretDB"; }
  mv "$CACHE/gobin/ferretdb" "$BIN"
  rm -rf "$src"
}

start() {
  case "$URI" in
    "mongodb://127.0.0.1:$PORT"*|"mongodb://localhost:$PORT"*) ;;
    *) say "database: using MONGODB_URI, starting none"; return 0 ;;
  esac
  if port_open 127.0.0.1 "$PORT"; then
    say "FerretDB: already running on 127.0.0.1:$PORT"; return 0
  fi
  build
  mkdir -p "$DATA"
  say "FerretDB: starting on 127.0.0.1:$PORT (log: $LOG)"
  # WAL with synchronous=NORMAL: a commit is not flushed to disk on its own (FerretDB
  # commits every updated document separately); a crash of the process loses nothing,
  # a power cut the last commits. FerretDB adds busy_timeout and journal_mode(wal).
  nohup "$BIN" --handler=sqlite --sqlite-url="file:$DATA/?_pragma=synchronous(normal)" \
    --state-dir="$DATA" \
    --listen-addr="127.0.0.1:$PORT" --telemetry=disable --log-level=warn \
    --debug-addr=- >>"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  wait_port FerretDB 127.0.0.1 "$PORT" 60 "$LOG"
}

stop() {
  if pid_alive "$PIDFILE"; then
    kill "$(cat "$PIDFILE")" 2>/dev/null || true
    sleep 1
    say "FerretDB: stopped"
  fi
  rm -f "$PIDFILE"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  build) build ;;
  *) die "usage: $0 start|stop|build" ;;
esac
