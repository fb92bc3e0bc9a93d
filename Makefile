# The two set-up commands of the README, and a few for maintainers.
#   make run    install everything into .venv, execute the notebooks headlessly into build/
#   make test   install what the tests need into .venv, run pytest and nbval (smoke mode)
#   make lab    open JupyterLab on notebooks/
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: run test lab notebooks bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(PIP) -e ".[all]"
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) -e ".[test]"
	@touch $@

run: $(VENV)/.installed-all
	$(BIN)/pmsp notebooks --out build

test: $(VENV)/.installed-test
	$(BIN)/ruff check pmsp_utils tests benchmarks scripts
	PMSP_SMOKE=1 MPLBACKEND=Agg $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

lab: $(VENV)/.installed-all
	$(BIN)/jupyter lab notebooks/

# Maintainers: re-execute the committed notebooks in full mode (their outputs are what GitHub shows).
notebooks: $(VENV)/.installed-all
	PMSP_SMOKE=0 $(BIN)/pmsp notebooks --in-place --out build

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf build .pytest_cache
