#!/usr/bin/env bash
# `make up`: installs what is missing, starts Kafka, FerretDB and every service,
# waits until all are ready, loads the demo scenario once and prints where to look.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
started=$(date +%s)

"$ROOT/scripts/python.sh"
"$ROOT/scripts/kafka.sh" start
"$ROOT/scripts/ferretdb.sh" start
say "creating topics from the catalogue"
"$ROOT/.venv/bin/python" -m shared.topics >>"$LOGS/topics.log" 2>&1 \
  || { tail -n 5 "$LOGS/topics.log" >&2; die "creating topics failed"; }
say "starting the services"
"$ROOT/scripts/stack.sh" start
"$ROOT/scripts/stack.sh" wait 180
say "all services ready in $(( $(date +%s) - started ))s"
if [ -x "$ROOT/scripts/demo.sh" ] && [ "${SKIP_SCENARIO:-0}" != 1 ]; then
  "$ROOT/scripts/demo.sh" load
fi
cat <<TXT

  registry   http://127.0.0.1:8001/docs
  messaging  http://127.0.0.1:8002/docs
  reports    http://127.0.0.1:8003/       (the anonymous tip line form)
  analytics  http://127.0.0.1:8004/       (the live coverage dashboard)

  Logs: make logs    Stop: make down
TXT
