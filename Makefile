# Two commands on a fresh machine with only Python: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/tracker_test
PG_REDIS_URL ?= redis://127.0.0.1:6379/15
SIZE ?= small
PYTEST_ARGS ?=

.PHONY: run test test-slow test-all test-postgres bench lint load clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %s)" % sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)  ## install, then start the whole service on the embedded default
	$(BIN)/tracker run

test: $(STAMP)  ## install, then run the test suite (without the slow fault/load tests)
	$(BIN)/python -m pytest -m "not slow" -q $(PYTEST_ARGS)

test-slow: $(STAMP)  ## the slow fault-injection and end-to-end tests
	$(BIN)/python -m pytest -m slow -q $(PYTEST_ARGS)

test-all: $(STAMP)  ## every test
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-postgres: $(STAMP)  ## the whole suite on PostgreSQL and the system Redis
	TRACKER_TEST_DATABASE_URL=$(PG_TEST_URL) REDIS_URL=$(PG_REDIS_URL) \
		$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)  ## benchmarks, each figure beside its baseline (SIZE=small|full)
	$(BIN)/python -m bench --size $(SIZE)

lint: $(STAMP)  ## ruff, mypy (strict: tracker/, api/, workers/) and the import contracts
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

load: $(STAMP)  ## a bounded mixed load test against SQLite (and PostgreSQL when reachable)
	$(BIN)/python -m bench.load

clean:  ## remove the virtualenv and caches (keeps ./var, your data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
