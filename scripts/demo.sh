#!/usr/bin/env bash
# The Antwerp demonstration on a running stack.
#   scripts/demo.sh load    loads the scenario through the services' HTTP APIs (once;
#                           `make up` runs it) and prints the summary
#   scripts/demo.sh replay  posts a new Schoten CAP alert and prints its delivery
#                           counts (`make demo`)
# Settings come from the environment (scenario/load.py: LoaderSettings), e.g.
# SCENARIO_SCALE=0.1 for a tenth of the province with the same shape.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

case "${1:-}" in
  load) say "loading the Antwerp scenario through the services' APIs" ;;
  replay) say "replaying the Schoten alert" ;;
  *) die "usage: $0 load|replay" ;;
esac
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m scenario.load "$1"
