# The two commands: `make run` and `make test`. Both build the virtualenv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=
# The unit suite runs on both cores (pytest-xdist, idle workers take tests from busy ones); XDIST="-n 0" runs it in one process.
XDIST ?= -n 2 --dist worksteal
BENCH_ARGS ?=

.PHONY: run test test-e2e test-pg bench install install-test lint clean help translations

# Compiled language catalogues (git-ignored) are built from the .po files by every target that runs the app.
CATALOGUES := $(wildcard crm/translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGUES:.po=.mo)

help:
	@echo "make run       install, migrate and serve on http://$(HOST):$(PORT)/ with a background worker"
	@echo "make test      install the test extras and run the whole suite (SQLite)"
	@echo "make test-pg   the suite against a throwaway PostgreSQL database"
	@echo "make test-e2e  browser tests in headless Chromium"
	@echo "make translations  extract the text to translate, update every language's .po, compile them"
	@echo "make bench     the shop-scale benchmark, small scale (BENCH_ARGS=\"--scale full\"; see bench/README.md)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install $(COMPILED)
	$(BIN)/crm db upgrade
	@echo ""
	@echo "  Open http://$(HOST):$(PORT)/ — on the first visit you create the admin account"
	@echo "  (and may load a demo shop). A background worker runs beside it. Stop both with Ctrl-C."
	@echo ""
	@# The worker (imports, schedules) in the background, the web app in front; Ctrl-C or the
	@# app ending stops the worker too (SIGINT: a running job stops and is queued again).
	@$(BIN)/crm worker & worker=$$!; \
	trap 'kill -INT $$worker 2>/dev/null' INT TERM; \
	$(BIN)/crm run --host $(HOST) --port $(PORT); status=$$?; \
	kill -INT $$worker 2>/dev/null; wait $$worker; exit $$status

test: install-test $(COMPILED)
	$(BIN)/ruff check crm tests bench
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -m "not e2e" $(XDIST) $(PYTEST_ARGS)

test-pg: install-test $(COMPILED)
	bash .ci/with-postgres $(BIN)/python -m pytest -m "not e2e" $(XDIST) $(PYTEST_ARGS)

test-e2e: install-test $(COMPILED)
	bash .ci/ensure-chromium
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS) || [ $$? -eq 5 ]

bench: install-test $(COMPILED)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

%.mo: %.po | $(VENV)/.installed
	$(BIN)/pybabel compile --statistics -i $< -o $@

# Add a language: make translations; .venv/bin/pybabel init -i crm/translations/messages.pot -d crm/translations -l de
translations: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k N_ -k Np_:2,3 --no-location --sort-output --width 100 -o crm/translations/messages.pot crm
	$(BIN)/pybabel update --ignore-obsolete --no-fuzzy-matching --width 100 -i crm/translations/messages.pot -d crm/translations
	$(BIN)/pybabel compile --statistics -d crm/translations

lint: install-test
	$(BIN)/ruff check crm tests bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache test-results
