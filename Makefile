# Set-up and everyday commands. Every target that needs the environment builds it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0
PYTEST_ARGS ?=

.PHONY: demo test test-slow lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first and pinned: the CPU wheel; any later range it satisfies installs nothing more.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -e ".[dicom,serve,dask,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/neurolesion demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The browser viewer (NiiVue, npm) built into the service's static folder (git-ignored, never committed).
# Without npm, `neurolesion serve` still runs and its page says "front end not built: run make web".
WEB_BUILT := src/neurolesion/service/static/index.html
WEB_IF_NPM := $(if $(shell command -v npm 2>/dev/null),$(WEB_BUILT),)

.PHONY: web serve test-browser

web: $(WEB_BUILT)

$(WEB_BUILT): web/package.json web/package-lock.json web/index.html web/vite.config.js $(wildcard web/src/*)
	# npm install, not npm ci: npm 11's ci rejects any lock file over rollup's optional platform packages
	# ("Missing: @rollup/rollup-android-arm-eabi"), even one it has just written; install keeps the lock.
	cd web && npm install --no-audit --no-fund && npm run build

serve: $(STAMP) $(WEB_IF_NPM)
	$(BIN)/neurolesion serve

# End-to-end tests in headless Chromium (Debian's /usr/bin/chromium + the playwright Python package).
test-browser: $(STAMP) $(WEB_BUILT)
	$(BIN)/python -m pytest -m browser tests/service $(PYTEST_ARGS)
