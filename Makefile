# The whole set-up: `make demo` runs the main job, `make test` passes the tests.
# Each creates .venv when missing and (re)installs the project when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean browser postgres wrk

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/flywheel demo

# The report test drives a real Chromium; install Debian's where we can (CI runs as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found: the browser test will be skipped (apt-get install chromium)"; fi; }

# The store's PostgreSQL tests start a throw-away cluster (tests/postgres.py) with Debian's server.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "PostgreSQL not found: its store tests will be skipped (apt-get install postgresql)"; fi; }

test: $(STAMP) browser postgres
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q src tests

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# The AutoML anchors (FLAML, LazyPredict, with their LightGBM and XGBoost) go into .bench-ext, seen
# only by their own processes: in .venv, LightGBM would change the ladder's boosting.
BENCH_EXT := .bench-ext
$(BENCH_EXT)/.installed: Makefile
	$(BIN)/python -m pip install --quiet --no-deps --target $(BENCH_EXT) \
	  'flaml==2.3.6' 'lazypredict==0.2.16' 'lightgbm==4.7.0' 'xgboost==3.2.0' 'tqdm==4.70.1' 'click==8.5.1'
	touch $@

# wrk, the native load generator of the serving benchmark, from Debian's packages where missing
# (the benchmark falls back to a Python load generator, and says so, where it cannot be installed).
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "wrk not found: the serving benchmark uses its Python load generator (apt-get install wrk)"; fi; }

bench: $(STAMP) $(BENCH_EXT)/.installed wrk
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(BENCH_EXT) flywheel-demo .pytest_cache .mypy_cache .ruff_cache
