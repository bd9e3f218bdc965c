# Two entry points: `make run` (install, then serve on 127.0.0.1:8000 with data in ./data)
# and `make test` (install, then lint, type-check and run the whole test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CODE := app engine workers
ARGS ?=

.PHONY: install run test lint bench-moves clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python -m app $(ARGS)

lint: install
	$(BIN)/ruff check $(CODE) tests bench
	$(BIN)/ruff format --check $(CODE) tests bench
	$(BIN)/mypy --strict $(CODE)

test: lint
	$(BIN)/python -m pytest

bench-moves: install
	$(BIN)/python bench/moves.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
