# Targets a newcomer can guess: run, test, lint, synth, bench. Each creates .venv on first use.
# Python 3.13 (the Lambda runtime and the container's): python3.13 on PATH, else pyenv's 3.13.
PYTHON ?= $(shell python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null || ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | tail -1)
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml uv.lock client/pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
# The CDK CLI and the jsii runtime run on the Node.js pinned in package.json (the `node` package
# carries a Node 22 binary into node_modules/.bin), whatever the system's node is.
NODE_STAMP := node_modules/.package-lock.json
NODE_PATH_FIRST := PATH="$(CURDIR)/node_modules/.bin:$$PATH"

.PHONY: install node run test lint format unit integration infra e2e synth cost bench clean

install: $(STAMP)

$(STAMP): pyproject.toml uv.lock setup.py client/pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.13 is needed (python3.13 on PATH, or PYTHON=/path/to/python3.13)"; exit 1; }
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync -q --frozen --inexact --group dev
	@rm -f $(VENV)/.installed-*; touch $@

node: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed (any Node.js with npm): it installs the pinned Node 22 and CDK CLI"; exit 1; }
	npm ci --no-audit --no-fund --silent

## run: the whole system on http://$(HOST):$(PORT) (SQLite, embedded queue, offline model unless ANTHROPIC_API_KEY is set)
run: install
	$(BIN)/python -m local_run --host $(HOST) --port $(PORT)

## test: lint, then every suite (starts a throwaway PostgreSQL for the integration tests)
test: lint node
	@scripts/ensure-test-deps.sh
	$(NODE_PATH_FIRST) $(BIN)/pytest -q tests

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MYPYPATH=shared:client $(BIN)/mypy -p ytresearch -p ytr -p functions -p streaming_service -p local_run -p infra

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: install
	$(BIN)/pytest -q tests/unit

integration: install
	@scripts/ensure-test-deps.sh
	$(BIN)/pytest -q tests/integration

infra: install node
	$(NODE_PATH_FIRST) $(BIN)/pytest -q tests/infra

e2e: install
	@scripts/ensure-test-deps.sh
	$(BIN)/pytest -q tests/e2e

synth: install node
	$(NODE_PATH_FIRST) npx cdk synth --quiet

## cost: what each profile costs at idle, itemised from its synthesized template (the README's table)
cost: install node
	@$(NODE_PATH_FIRST) $(BIN)/python -m infra.cost

bench: install
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache .ytr .typecheck
