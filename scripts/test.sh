#!/usr/bin/env bash
# `make test`: installs what is missing, starts a Kafka broker and a FerretDB server of
# the tests' own (unless KAFKA_BOOTSTRAP_SERVERS / MONGODB_URI point elsewhere),
# validates the Kubernetes manifests offline, then runs the whole suite. Services under
# test are started by the tests themselves.
#
# The tests' servers listen beside the demo's (19092 and 27019, data in .run/test-*),
# so that test records never reach the figures `make up` shows, and `make test` can
# run while the demo stack is up.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/python.sh"
"$ROOT/scripts/chromium.sh"
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  # A broker on another port gets a directory of its own: two on one corrupt it.
  export KAFKA_PORT=${TEST_KAFKA_PORT:-19092}
  export KAFKA_DATA_DIR="$RUN/test-kafka${TEST_KAFKA_PORT:+-$TEST_KAFKA_PORT}"
  export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
fi
if [ -z "${MONGODB_URI:-}" ]; then
  export FERRETDB_PORT=${TEST_FERRETDB_PORT:-27019}
  export FERRETDB_DATA_DIR="$RUN/test-ferretdb${TEST_FERRETDB_PORT:+-$TEST_FERRETDB_PORT}"
  export MONGODB_URI="mongodb://127.0.0.1:$FERRETDB_PORT/"
fi
"$ROOT/scripts/kafka.sh" start
"$ROOT/scripts/ferretdb.sh" start
say "validating the Kubernetes manifests (make k8s-validate)"
"$ROOT/scripts/k8s-validate.sh"
cd "$ROOT"
exec .venv/bin/python -m pytest "$@"
