# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format install clean bench bench-quick

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/workhooks up

test: lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Figures, ratios and where they come from: docs/performance.md. Results in var/bench/.
bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/process.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/aof_fsync.py
	$(BIN)/python bench/scale.py

bench-quick: $(STAMP)
	$(BIN)/python bench/ingest.py --quick
	$(BIN)/python bench/process.py --quick
	$(BIN)/python bench/latency.py --quick
	$(BIN)/python bench/aof_fsync.py --rounds 1 --per-round 300
	$(BIN)/python bench/scale.py --quick

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
