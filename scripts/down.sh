#!/usr/bin/env bash
# `make down`: stops the services, FerretDB and Kafka; data stays in .run/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/stack.sh" stop
"$ROOT/scripts/ferretdb.sh" stop
"$ROOT/scripts/kafka.sh" stop
