#!/usr/bin/env bash
# `make test`: installs what is missing, starts Kafka and FerretDB if needed, validates
# the Kubernetes manifests offline, then runs the whole suite. Services under test are
# started by the tests themselves.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/python.sh"
"$ROOT/scripts/chromium.sh"
"$ROOT/scripts/kafka.sh" start
"$ROOT/scripts/ferretdb.sh" start
say "validating the Kubernetes manifests (make k8s-validate)"
"$ROOT/scripts/k8s-validate.sh"
cd "$ROOT"
exec .venv/bin/python -m pytest "$@"
