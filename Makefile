# optrepro: `make run` executes every notebook (smoke profile) and writes a report; `make test` runs the test suite.
# Both create the virtual environment .venv when it is missing. PYTHON picks the interpreter that creates it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch first, pinned: this exact spec takes the local CPU wheel; any other spec downloads CUDA builds.
TORCH  ?= torch==2.13.0
WORKERS ?= 2

.PHONY: install run test lint lab report coverage clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/optrepro run --all

test: $(STAMP)
	$(BIN)/ruff check lib tests benchmarks
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadscope --nbval-lax tests notebooks

lint: $(STAMP)
	$(BIN)/ruff check lib tests benchmarks

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	$(BIN)/jupyter lab notebooks/

coverage: $(STAMP)
	$(BIN)/optrepro status --write

clean:
	rm -rf outputs/runs outputs/.ledger
