# fraudpipe: every command sets up what it needs on a fresh machine (a virtualenv in .venv,
# and redis-server from Debian's packages when it is missing).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DAYS   ?= 10
RUN_DIR ?= .fraudpipe
PYTEST_ARGS ?=

.PHONY: run test test-slow setup redis chromium render validate bench bench-quick clean

$(BIN)/fraudpipe: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,kubernetes]'
	touch $@

redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "redis-server is missing: installing Debian's redis-server package"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }

## Debian's chromium, for the browser test of the Prefect UI (Playwright drives it; no browser download).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "chromium is missing: installing Debian's chromium package (about 2 minutes)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

setup: $(BIN)/fraudpipe redis

## The main job on the embedded default: DAYS simulated days, ingested and trained locally.
run: setup
	$(BIN)/python -m flows.embedded --days $(DAYS) --run-dir $(RUN_DIR)

## Unit and integration tests (real redis-server, real Prefect server); not slow, not on_cluster.
test: setup chromium
	$(BIN)/python -m pytest -m "not slow and not on_cluster" $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -m "slow and not on_cluster" $(PYTEST_ARGS)

render: setup
	$(BIN)/fraudpipe render --out deployments/argo

validate: setup
	$(BIN)/fraudpipe validate deployments

## Benchmarks: step vs day size (with the GKE sample's logic and a Parquet-read floor), history,
## backfill, queue, Argo estimate. Writes bench/results/*.json; bench/RESULTS.md holds a run.
bench: setup
	$(BIN)/python -m bench all

bench-quick: setup
	$(BIN)/python -m bench all --quick --results-dir /tmp/bench-quick

clean:
	rm -rf $(VENV) $(RUN_DIR)
