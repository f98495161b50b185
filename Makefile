# Targets a newcomer can guess: run, test, lint, synth, bench. Each creates .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml uv.lock 2>/dev/null | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format unit integration infra e2e synth bench clean

install: $(STAMP)

$(STAMP): pyproject.toml uv.lock setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync -q --frozen --inexact --group dev
	@rm -f $(VENV)/.installed-*; touch $@

## run: the whole system on http://$(HOST):$(PORT) (SQLite, embedded queue, offline model unless ANTHROPIC_API_KEY is set)
run: install
	$(BIN)/python -m streaming_service.local --host $(HOST) --port $(PORT)

## test: lint, then every suite (starts a throwaway PostgreSQL for the integration tests)
test: lint
	@scripts/ensure-test-deps.sh
	$(BIN)/pytest -q tests

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# mypy cannot follow the editable shared/ -> ytresearch mapping: give it a path that can.
	@mkdir -p .typecheck && ln -sfn ../shared .typecheck/ytresearch
	MYPYPATH=.typecheck $(BIN)/mypy -p ytresearch -p functions -p streaming_service -p infra

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: install
	$(BIN)/pytest -q tests/unit

integration: install
	@scripts/ensure-test-deps.sh
	$(BIN)/pytest -q tests/integration

infra: install
	$(BIN)/pytest -q tests/infra

e2e: install
	@scripts/ensure-test-deps.sh
	$(BIN)/pytest -q tests/e2e

synth: install
	@test -d node_modules/aws-cdk || npm ci --no-audit --no-fund --silent
	npx cdk synth --quiet

bench: install
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache .ytr
