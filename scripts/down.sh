#!/usr/bin/env bash
# `make down`: stops the services, FerretDB and Kafka, and the tests' own broker and
# server if `make test` left them running; data stays in .run/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/stack.sh" stop
"$ROOT/scripts/ferretdb.sh" stop
"$ROOT/scripts/kafka.sh" stop
FERRETDB_DATA_DIR="$RUN/test-ferretdb" "$ROOT/scripts/ferretdb.sh" stop
KAFKA_DATA_DIR="$RUN/test-kafka" "$ROOT/scripts/kafka.sh" stop
