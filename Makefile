# Every target runs in .venv (made on first use). The logic lives in scripts/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install demo test test-fast lint examples bench sdk-compat check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,report,otel,postgres,asgi,django]'
	touch $@

install: $(VENV)/.installed

# The demo app on the fake API into out/demo.db, its report, a reconcile against the fake
# Admin API, and the HTML page (out/report.html).
demo: install
	rm -f out/demo.db out/demo.db-wal out/demo.db-shm out/demo.db.reconcile.json
	mkdir -p out
	$(VENV)/bin/fluxgate demo --db out/demo.db --html out/report.html

# The whole suite on every supported anthropic line: 0.50.0, 0.125.0, newest 1.x, newest 2.x.
test:
	PYTHON=$(PYTHON) scripts/test-matrix

# The whole suite once, on the newest anthropic (what `make install` put in .venv).
test-fast: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check fluxgate tests examples benchmarks
	$(VENV)/bin/ruff format --check fluxgate tests examples benchmarks
	$(VENV)/bin/mypy --strict
	$(VENV)/bin/lint-imports

# anthropic's own offline test suite, plain and with fluxgate initialised: no outcome may differ.
sdk-compat:
	PYTHON=$(PYTHON) scripts/sdk-compat

examples: install
	PY=$(PY) scripts/run-examples

bench: install
	$(PY) benchmarks/bench_overhead.py
	@for b in benchmarks/bench_split.py benchmarks/bench_profile.py benchmarks/bench_beside.py benchmarks/bench_flusher.py benchmarks/bench_report.py benchmarks/bench_postgres.py benchmarks/bench_instructions.py; do \
		if [ -f $$b ]; then $(PY) $$b || exit 1; fi; done

check: lint test examples

clean:
	rm -rf $(VENV) .venvs out .mypy_cache .ruff_cache
