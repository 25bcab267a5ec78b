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

.PHONY: run up down status test unit-and-integration test-slow lint setup lock check-lock redis chromium \
        test-packages render \
        validate bench bench-quick clean

# Python writes the bytecode of what it imports beside the source (__pycache__), so each
# module is compiled once, by the first process that imports it. An environment with
# PYTHONDONTWRITEBYTECODE set (some CI images and sandboxes) would make every process
# compile everything it imports again: ~0.3 s of CPU for this project's modules alone,
# in each of the test suite's ~200 processes. Not for the commands make runs.
unexport PYTHONDONTWRITEBYTECODE

# Every package at the exact version and hashes of requirements-dev.lock, then the project
# itself without dependencies: nothing is resolved at install time. pip installs only uv,
# from the lock's own uv line (version and hashes); uv installs the rest (parallel downloads,
# ~10x faster than pip). No compile at install (`--compile-bytecode` takes ~30 s here, for
# ~12,000 modules of which a command imports 2,000-3,000): the first import compiles one.
# The virtualenv is made without pip when the system's pip can install into it
# (`pip --python`, pip >= 22.3): ensurepip would spend ~6 s of CPU installing a pip that
# nothing here uses (uv installs everything; `.venv/bin/uv pip install X` adds a package).
UV_INSTALL = $(BIN)/uv pip install --quiet --python $(BIN)/python
$(BIN)/fraudpipe: pyproject.toml requirements-dev.lock
	if $(PYTHON) -m pip --help 2>/dev/null | grep -q -- "--python "; then \
	  $(PYTHON) -m venv --without-pip $(VENV) && PIP="$(PYTHON) -m pip --python $(BIN)/python"; \
	else $(PYTHON) -m venv $(VENV) && PIP="$(BIN)/python -m pip"; fi && \
	awk '/^uv==/ {on=1} on {print} on && !/\\$$/ {exit}' requirements-dev.lock > $(VENV)/uv.lock.txt && \
	$$PIP install --quiet --require-hashes -r $(VENV)/uv.lock.txt
	$(UV_INSTALL) --require-hashes -r requirements-dev.lock
	$(UV_INSTALL) --no-deps -e .
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
	$(UV_INSTALL) --require-hashes -r requirements-dev.lock
	$(BIN)/python -m stack check-lock

## Whether the installed packages are exactly the lock's.
check-lock: setup
	$(BIN)/python -m stack check-lock

# Debian's packages for the commands that are missing, in ONE apt-get: two at once (make -j)
# would fight over the dpkg lock. $(1): command=package pairs.
apt_install = missing=""; for pair in $(1); do command -v $${pair%%=*} >/dev/null 2>&1 || \
	  missing="$$missing $${pair\#*=}"; done; \
	[ -z "$$missing" ] || { \
	  echo "missing, installing Debian's package(s):$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; }

redis:
	@$(call apt_install,redis-server=redis-server)

## Debian's chromium, for the browser test of the Prefect UI (Playwright drives it; no browser
## download; about 2 minutes to install).
chromium:
	@$(call apt_install,chromium=chromium)

## What the tests need from the system: redis-server and chromium, in one apt-get when missing.
test-packages:
	@$(call apt_install,redis-server=redis-server chromium=chromium)

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

## Unit and integration tests (real redis-server, real Prefect server); not slow, not on_cluster;
## and the lint. With `make -j3 test` (.ci/run does) the virtualenv's install and the system
## packages run side by side, then the lint beside the tests (the tests wait on servers and
## subprocesses often enough for mypy to fit in); the tests run on TEST_WORKERS
## pytest-xdist workers: three on a 2-core machine, because a quarter of a worker's time
## is spent waiting on a server, a worker's poll or a subprocess (with two, the cores sat
## idle for that quarter).
TEST_WORKERS ?= 3
PYTEST = $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup
test: lint unit-and-integration

unit-and-integration: $(BIN)/fraudpipe test-packages
	$(PYTEST) -m "not slow and not on_cluster" $(PYTEST_ARGS)

## ruff (project config, docstring rules included) and mypy (pydantic plugin) on the packages.
lint: $(BIN)/fraudpipe
	.ci/lint

test-slow: setup
	$(PYTEST) -m "slow and not on_cluster" $(PYTEST_ARGS)

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
