#!/usr/bin/env bash
# `make bench-*`: runs one benchmark script on a Kafka broker and a FerretDB server of
# the benchmarks' own (19392 and 27319, data in .run/bench-*), started if needed, so
# that a benchmark's hundred thousand records never reach the figures `make up`
# shows, nor the tests'. KAFKA_BOOTSTRAP_SERVERS / MONGODB_URI point it elsewhere.
# Usage: scripts/bench.sh scripts/bench_registry.py
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/python.sh"
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  export KAFKA_PORT=${BENCH_KAFKA_PORT:-19392} KAFKA_DATA_DIR="$RUN/bench-kafka"
  export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
fi
if [ -z "${MONGODB_URI:-}" ]; then
  export FERRETDB_PORT=${BENCH_FERRETDB_PORT:-27319} FERRETDB_DATA_DIR="$RUN/bench-ferretdb"
  export MONGODB_URI="mongodb://127.0.0.1:$FERRETDB_PORT/"
fi
"$ROOT/scripts/kafka.sh" start
"$ROOT/scripts/ferretdb.sh" start
"$ROOT/.venv/bin/python" -m shared.topics >>"$LOGS/topics.log" 2>&1 \
  || { tail -n 5 "$LOGS/topics.log" >&2; die "creating topics failed"; }
cd "$ROOT"
exec .venv/bin/python "$@"
