# The two set-up commands of the README, and a few for maintainers.
#   make run    install everything into .venv, execute the notebooks headlessly into build/
#   make test   install what the tests need into .venv, run pytest and nbval (smoke mode)
#   make test-fast   the same without the slow tests and the notebooks, for a quick loop
#   make lab    open JupyterLab on notebooks/
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: run test test-fast test-torch lab notebooks bench clean browser

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)

# pip byte-compiles what it installs on one core; compileall does it on every core (81 s -> 64 s for the test set on 2).
# A third-party file that does not compile is left as it is, as pip leaves it (hence "|| true").
$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(PIP) --no-compile -e ".[all]"
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null || true
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) --no-compile -e ".[test]"
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null || true
	@touch $@

# Two notebooks (make run) or two test processes (make test) at once, for two cores; JOBS=1 runs one at a time
# (make test JOBS=0: in this one process).
JOBS ?= 2

# Then the default model's LiteRT copy is exported once, so that the first `pmsp localize` starts in about a second.
run: $(VENV)/.installed-all
	$(BIN)/pmsp notebooks --out build --jobs $(or $(filter-out 0,$(JOBS)),1)
	$(BIN)/pmsp prepare

# Debian's Chromium and its driver for tests/test_browser.py (JupyterLab in a real browser); skipped when present.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ($(SUDO) apt-get install -y -q chromium chromium-driver >/dev/null || \
	   ($(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium chromium-driver >/dev/null)) || \
	  echo "warning: could not install chromium and chromium-driver; tests/test_browser.py will fail in CI and skip elsewhere"

# Two test processes (pytest-xdist) for the two cores CI has, a file at a time (a notebook's cells share one kernel, a
# module's tests its fixtures), the costly files first (tests/conftest.py). JOBS=0 runs everything in this one process.
test: $(VENV)/.installed-test browser
	$(BIN)/ruff check pmsp_utils tests benchmarks scripts
	PMSP_SMOKE=1 MPLBACKEND=Agg $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	  -n $(JOBS) --dist loadfile --no-loadscope-reorder

# A quick loop while developing: everything but the tests marked slow and the notebooks (make test runs them all, as CI does).
test-fast: $(VENV)/.installed-test
	$(BIN)/ruff check pmsp_utils tests benchmarks scripts
	PMSP_SMOKE=1 MPLBACKEND=Agg $(BIN)/python -m pytest tests -m "not slow" -q

# Keras on PyTorch: installs torch (a large download, so not part of `make test`), then trains a step on it, loads the
# saved model on TensorFlow, and runs notebooks 03 and 04 on the torch backend in smoke mode.
test-torch: $(VENV)/.installed-test
	$(PIP) -e ".[torch]"
	PMSP_SMOKE=1 MPLBACKEND=Agg $(BIN)/python -m pytest tests/test_backends.py -k pytorch -q
	PMSP_SMOKE=1 MPLBACKEND=Agg KERAS_BACKEND=torch $(BIN)/python -m pytest notebooks/03_building_the_network.ipynb \
	  notebooks/04_training.ipynb --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -q

lab: $(VENV)/.installed-all
	$(BIN)/jupyter lab notebooks/

# Maintainers: re-execute the committed notebooks in full mode (their outputs are what GitHub shows).
notebooks: $(VENV)/.installed-all
	PMSP_SMOKE=0 $(BIN)/pmsp notebooks --in-place --out build

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf build .pytest_cache
