# One entry point per task; each installs what it needs on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

# The suite's own services: MariaDB (pytest-django creates test_<name>) and a Redis database,
# both named after this checkout, so that two checkouts' suites on one machine (a developer's
# and CI's) never share a test database.
CHECKOUT_ID := $(shell printf %s "$(CURDIR)" | cksum | cut -d' ' -f1)
TEST_ENV := DATABASE_URL=$${TEST_DATABASE_URL:-mysql://root@127.0.0.1:3306/myproject_$(CHECKOUT_ID)} \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/$(shell echo $$(( $(CHECKOUT_ID) % 8 + 8 )))} \
	DJANGO_SECRET_KEY=test-only DJANGO_HTTPS=off DJANGO_DEBUG=off

.PHONY: install run test lint format stack stack-stop bench

$(VENV)/.installed: pyproject.toml constraints.txt
	scripts/system-deps.sh
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install  ## REST + WebSocket in one daphne process on 127.0.0.1:8000, SQLite
	DJANGO_DEBUG=on $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=on $(PY) manage.py import_catalog --if-empty catalog/fixtures/sample_catalog.csv
	DJANGO_DEBUG=on $(BIN)/daphne -b 127.0.0.1 -p 8000 myproject.asgi:application

test: install  ## the whole suite against MariaDB and Redis
	scripts/services.sh
	scripts/browser-deps.sh
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)

# HA=1: with a replicated MariaDB (:3316 -> :3317) and a Sentinel-watched Redis (:6381 -> :6382,
# Sentinels :26381-26383) of their own on loopback (scripts/ha.sh).
HA ?=

stack: install  ## nginx :8088 -> uWSGI :8000 + daphne :8080, :8081 in the background (var/log, var/run)
	HA=$(HA) scripts/stack.sh start

stack-stop: install  ## stop what `make stack` started; nothing is left running
	HA=$(HA) scripts/stack.sh stop

# Benchmarks (not part of `make test`): wrk on top of `install`. BENCH_BASELINE: the commit the
# sockets and cost benches compare daphne with.
BENCH_BASELINE ?= 82d88fe

$(VENV)/.bench-installed: $(VENV)/.installed bench/system-deps.sh
	bench/system-deps.sh
	touch $@

bench: install $(VENV)/.bench-installed  ## side-by-side benchmarks -> bench/results/ (BENCH_ARGS=--quick, --only NAME)
	$(PY) -m bench.run --baseline $(BENCH_BASELINE) $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
