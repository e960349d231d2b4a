#!/usr/bin/env bash
# `make down`: stops the services, FerretDB and Kafka, and the tests' and benchmarks'
# own brokers and servers if `make test` or `make bench-*` left them running; data
# stays in .run/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/stack.sh" stop
"$ROOT/scripts/ferretdb.sh" stop
"$ROOT/scripts/kafka.sh" stop
# The tests' servers on their default ports, and any started with TEST_*_PORT.
for dir in "$RUN"/test-ferretdb*/; do
  if [ -d "$dir" ]; then FERRETDB_DATA_DIR="${dir%/}" "$ROOT/scripts/ferretdb.sh" stop; fi
done
for dir in "$RUN"/test-kafka*/; do
  if [ -d "$dir" ]; then KAFKA_DATA_DIR="${dir%/}" "$ROOT/scripts/kafka.sh" stop; fi
done
FERRETDB_DATA_DIR="$RUN/bench-ferretdb" "$ROOT/scripts/ferretdb.sh" stop
KAFKA_DATA_DIR="$RUN/bench-kafka" "$ROOT/scripts/kafka.sh" stop
