# The BIN platform. `make help` lists every target.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: help up down logs status test test-unit docs token demo k8s-validate \
	bench-registry bench-fanout bench-mail-priority bench-coverage kafka ferretdb venv

help: ## List every target with one line
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

up: ## Install what is missing, start Kafka, FerretDB and every service, load the demo
	@scripts/up.sh

down: ## Stop every service, FerretDB and Kafka (data stays in .run/)
	@scripts/down.sh

status: ## Show which service processes run and whether they are ready
	@scripts/stack.sh status

logs: ## Follow the logs of every process
	@tail -n 20 -F .run/logs/*.log

test: ## Run the whole test suite, starting Kafka and FerretDB if needed
	@scripts/test.sh

test-unit: ## Run the unit tests only (no Kafka, no database)
	@scripts/python.sh && $(PY) -m pytest tests/unit -q

venv: ## Create or refresh the virtual environment from uv.lock
	@scripts/python.sh

kafka: ## Fetch and start Kafka only
	@scripts/kafka.sh start

ferretdb: ## Build and start FerretDB only
	@scripts/ferretdb.sh start

docs: ## Write the JSON Schemas and the AsyncAPI document to docs/generated/
	@scripts/python.sh && $(PY) -m shared.asyncapi docs/generated

token: ## Print a development token: make token ROLE=zone SCOPE=ipz10
	@scripts/python.sh && $(PY) -m shared.tokens --role "$(ROLE)" --scope "$(SCOPE)"

demo: ## Replay the Schoten CAP alert on a running system and print its delivery counts
	@scripts/demo.sh replay

k8s-validate: ## Render every kustomize overlay and validate it offline against pinned schemas
	@scripts/k8s-validate.sh

bench-registry: ## Import 87,491 members across 609 BINs through the API; writes bench-results/
	@scripts/bench.sh scripts/bench_registry.py

bench-fanout: ## Fan one alert out to 87,491 members; hand-over latency and throughput
	@scripts/bench.sh scripts/bench_fanout.py

bench-mail-priority: ## Urgent alerts' hand-over latency with and without a 6,000-member mail in flight
	@scripts/bench.sh scripts/bench_mail_priority.py

bench-coverage: ## Member events at steady rates against the coverage worker; p50/p99 latency
	@scripts/bench.sh scripts/bench_coverage.py
