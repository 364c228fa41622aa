# Kontex: the targets a newcomer guesses. `make dev` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8787
DATA   ?= .kontex

.PHONY: dev test lint format build synth deploy bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/kontex dev --host $(HOST) --port $(PORT) --data-dir $(DATA)

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/storage_growth.py

build: $(STAMP)
	$(BIN)/python layers/build.py

synth: build
	$(BIN)/python -c "print('synth: see issue 6 (infra/)')"

clean:
	rm -rf $(VENV) .build cdk.out .pytest_cache
