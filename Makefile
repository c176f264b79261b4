# clbench: `make bench` (sets up .venv if needed, runs SUITE, writes the report), `make test`.
# `make bench` runs JOBS runs at once (default: one per CPU core, 1 torch thread each).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SUITE  ?= default
RESULTS ?= results
ARGS   ?=
SEEDS  ?=
JOBS   ?= $(shell nproc 2>/dev/null || echo 1)
STAMP  := $(VENV)/.clbench-installed

.PHONY: setup bench quick hsu2018 report test test-fast speed lint clean-results tune

setup: $(STAMP)

# Re-installs only when pyproject.toml changes; a no-op otherwise.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,ray,tune,log]"
	touch $(STAMP)

bench: setup
	$(PY) -m benchmarks run --suite $(SUITE) --results $(RESULTS) --jobs $(JOBS) $(ARGS)

quick:
	$(MAKE) bench SUITE=quick

# `make tune SUITE=text`: the suite's [tune] protocol (docs/tuning.md); writes benchmarks/suites/tuned/SUITE.toml
tune: setup
	$(PY) -m benchmarks tune --suite $(SUITE) --results $(RESULTS) --jobs $(JOBS) $(ARGS)

# `make hsu2018 SEEDS=10` runs seeds 0..9 (default: the suite's 5); ARGS="--set ..." still applies.
hsu2018:
	$(MAKE) bench SUITE=hsu2018 ARGS='$(ARGS) $(if $(SEEDS),--set suite.seeds=[$(shell seq -s, 0 $$(($(SEEDS)-1)))])'

report: setup
	$(PY) -m reports $(RESULTS)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not integration"

speed: setup
	$(PY) -m benchmarks.measure.speed $(ARGS)

lint: setup
	$(PY) -m ruff check benchmarks strategies reports tests

clean-results:
	rm -rf $(RESULTS)
