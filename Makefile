# jobq: every task is one command. `make demo` and `make test` set everything up on their own.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The runtime dependencies only (what `make demo` needs); the full development install above includes them.
RUNTIME_STAMP := $(VENV)/.runtime-stamp

.PHONY: demo test test-unit lint format bench venv lock redis-server chromium dashboard-shot clean help kubectl

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP) $(RUNTIME_STAMP)

$(RUNTIME_STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e .
	@touch $(RUNTIME_STAMP)

venv: $(STAMP) ## Create .venv and install jobq with its pinned dependencies

demo: $(RUNTIME_STAMP) ## Run workers and a producer through a real batch on an embedded Redis (installs the runtime dependencies only)
	$(BIN)/jobq demo

test: $(STAMP) redis-server chromium kubectl ## Run the whole test suite (unit on fakeredis, integration on a real redis-server)
	$(BIN)/pytest

test-unit: $(STAMP) ## Run the unit tier only (fakeredis, injected clock): fast; no redis-server, chromium or kubectl
	$(BIN)/pytest -m "not integration and not deploy"

lint: $(STAMP) ## ruff (lint and format check); mypy --strict on worker/, tasks/, bench/ and the API type checks, relaxed on the other tests; the layer contract (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy worker tasks bench tests
	$(BIN)/lint-imports

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) redis-server ## Run the benchmarks and write bench/RESULTS.md
	$(BIN)/python -m bench

lock: $(STAMP) ## Re-pin constraints.txt from the current environment
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

redis-server: ## Install Debian's redis-server package when the binary is missing
	@command -v redis-server >/dev/null 2>&1 || .ci/install-redis-server

chromium: ## Install Debian's chromium package (the dashboard's end-to-end test) when it is missing
	@command -v chromium >/dev/null 2>&1 || .ci/install-chromium

kubectl: $(STAMP) ## Install kubectl with kustomize v5 (the deploy/k8s tests render the overlays) when it is missing
	@.ci/install-kubectl

dashboard-shot: $(STAMP) redis-server chromium ## Write docs/dashboard.png: the dashboard with live data
	$(BIN)/python -m tests.dashboard_scenario

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
