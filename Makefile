# fraudpipe: every command sets up what it needs on a fresh machine (a virtualenv in .venv,
# and redis-server from Debian's packages when it is missing).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DAYS   ?= 10
RUN_DIR ?= .fraudpipe
PYTEST_ARGS ?=
# The stack `make up` keeps open: fixed ports (not Redis' 6379 nor Prefect's 4200, which
# another server may hold); override on the command line or in the environment.
REDIS_PORT   ?= 6380
PREFECT_PORT ?= 4280
# DEMO=120: every 120 s a new simulated day lands and daily-pipeline/local runs.
DEMO ?= 0
# LABELS_AFTER=7: days arrive without labels, each day's labels a week later (0: labelled).
LABELS_AFTER ?= 7
# GKE=1: also deploy the */gke deployments (they only run on a GKE cluster; their image is
# $FRAUDPIPE_IMAGE, the pushed step image: unset, the deploy stops naming it).
GKE ?= 0
STACK_ARGS = --run-dir $(RUN_DIR) --redis-port $(REDIS_PORT) --prefect-port $(PREFECT_PORT) \
             --demo $(DEMO) $(if $(filter 1 yes true,$(GKE)),--gke)

.PHONY: run up down status test test-slow lint setup lock check-lock redis chromium render \
        validate bench bench-quick clean

# Every package at the exact version and hashes of requirements-dev.lock, then the project
# itself without dependencies: nothing is resolved at install time.
$(BIN)/fraudpipe: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

## Refresh the locks after a change to pyproject.toml's dependencies (commit all three):
## requirements-dev.lock (runtime, dev and kubernetes extras: make setup, CI) and
## requirements.lock (runtime and kubernetes: the step image), the same version of every
## package they share. Versions already locked stay unless pyproject.toml excludes them;
## UPGRADE=1 takes the newest that pyproject.toml allows.
LOCK_FLAGS = --generate-hashes --universal --python-version 3.11 --quiet
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra kubernetes $(LOCK_FLAGS) \
	  $(if $(UPGRADE),--upgrade) -o requirements-dev.lock
	$(BIN)/uv pip compile pyproject.toml --extra kubernetes $(LOCK_FLAGS) \
	  -c requirements-dev.lock -o requirements.lock
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m stack check-lock

## Whether the installed packages are exactly the lock's.
check-lock: setup
	$(BIN)/python -m stack check-lock

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

## The main job: DAYS simulated days through `prefect deployment run 'daily-pipeline/local'`,
## on the stack `make up` keeps open, or on services started for this run only.
run: setup
	$(BIN)/python -m stack run --days $(DAYS) --run-dir $(RUN_DIR) --labels-after $(LABELS_AFTER)

## A local stack that stays open: redis-server, Prefect server (scheduler on), worker.
up: setup
	$(BIN)/python -m stack up $(STACK_ARGS)

status: setup
	$(BIN)/python -m stack status --run-dir $(RUN_DIR)

down: setup
	$(BIN)/python -m stack down --run-dir $(RUN_DIR)

## Unit and integration tests (real redis-server, real Prefect server); not slow, not on_cluster.
test: setup chromium lint
	$(BIN)/python -m pytest -m "not slow and not on_cluster" $(PYTEST_ARGS)

## ruff (project config, docstring rules included) and mypy (pydantic plugin) on the packages.
lint: setup
	.ci/lint

test-slow: setup
	$(BIN)/python -m pytest -m "slow and not on_cluster" $(PYTEST_ARGS)

render: setup
	FRAUDPIPE_IMAGE= $(BIN)/fraudpipe render --out deployments/argo   # the committed templates name no image

validate: setup
	$(BIN)/fraudpipe validate deployments

## Benchmarks: step vs day size (with the GKE sample's logic and a Parquet-read floor), history,
## backfill, queue, Argo estimate. Writes bench/results/*.json; bench/RESULTS.md holds a run.
bench: setup
	$(BIN)/python -m bench all

bench-quick: setup
	$(BIN)/python -m bench all --quick --results-dir /tmp/bench-quick

clean:
	-[ -x $(BIN)/python ] && $(BIN)/python -m stack down --run-dir $(RUN_DIR)
	rm -rf $(VENV) $(RUN_DIR)
