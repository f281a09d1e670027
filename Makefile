# Switchyard. `make run` and `make test` each work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test lint bench install dev-install node-install migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
dev-install: $(VENV)/.dev-installed

# The real JavaScript client libraries tests/clients/ drives (package.json, pinned by
# package-lock.json). Without npm their tests skip, and `make test` still runs the rest.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "npm is not installed: the JavaScript client tests in tests/clients/ will be skipped"; \
	fi

node-install: node_modules/.installed

# Both leave a local .env (DEBUG on, a generated SECRET_KEY) if there is none, so manage.py
# works in a plain shell afterwards.
migrate: install
	BIN=$(BIN) bash scripts/ensure_env.sh
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput

# Migrates, then runs the web server and one django-q2 worker together; Ctrl-C stops both.
run: install
	PORT=$(PORT) BIN=$(BIN) bash scripts/run.sh

test: dev-install node-install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	DJANGO_SETTINGS_MODULE=config.settings_test $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: dev-install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: dev-install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/contacts.py

clean:
	rm -rf $(VENV) var/*.sqlite3*
