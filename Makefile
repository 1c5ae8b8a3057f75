# Two commands, each from a fresh clone on a fresh machine: `make run` and `make test`.
# torch==2.13.0 is pinned in pyproject.toml; pip takes the CPU wheel that lies on this machine's disk.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test setup lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

run: setup
	$(BIN)/python -m elgan_ray.sweep stability

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
