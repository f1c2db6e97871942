# supportbot: `make run` starts the embedded platform, `make test` runs lint and the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# Real services used by the `live` tests (this machine runs both; see README).
LIVE_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
LIVE_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: install run test lint format live-test unit-test browser-test screenshots clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(BIN)/python manage.py migrate --no-input
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(BIN)/python manage.py seed_demo
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit-test: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(BIN)/pytest -m "not live and not browser"

# The staff desk in Debian's Chromium (skips without /usr/bin/chromium; fails then with CI=true).
browser-test: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(BIN)/pytest -m browser

# PNGs of the inbox and the conversation pane for README, from the browser test's own run.
screenshots: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL DESK_SCREENSHOTS=docs/screenshots CI=true \
	$(BIN)/pytest -m browser

live-test: $(STAMP)
	DATABASE_URL=$(LIVE_DATABASE_URL) REDIS_URL=$(LIVE_REDIS_URL) \
	DJANGO_SECRET_KEY=live-tests-only DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost \
	$(BIN)/pytest -m live

# The embedded and live suites wait on timers, sockets and child processes far more than they use
# the CPU, so they run side by side (each one's output printed whole when it ends); then the browser.
test: lint
	$(MAKE) --no-print-directory --output-sync=target -j2 unit-test live-test
	$(MAKE) --no-print-directory browser-test

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
