# Two commands for a newcomer: `make run` and `make test` (see README.md).
# DATABASE_URL, when set, points everything at that PostGIS instead of the private clusters.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PORT ?= 5000
FLASK := $(VENV)/bin/flask --app wsgi
PYBABEL := $(VENV)/bin/pybabel
TRANSLATIONS := app/translations
MO_FILES := $(patsubst %.po,%.mo,$(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po))

.PHONY: run fleet fleet-test test test-s3 test-pgbouncer mutation lint format bench db db-stop db-status venv venv-dev clean-db clients translations

# --- Python environment ---------------------------------------------------------------------
$(VENV)/.runtime-installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version))"; exit 1; }
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV) \
		|| { echo "python3 -m venv failed: install the venv module (apt-get install python3-venv)"; exit 1; }
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.runtime-installed
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.runtime-installed $(MO_FILES)
venv-dev: $(VENV)/.dev-installed $(MO_FILES)

# --- Translations (app/core/i18n.py) -------------------------------------------------------
# The .po catalogs are in git; their compiled .mo are made here, whenever a .po is newer.

$(TRANSLATIONS)/%/LC_MESSAGES/messages.mo: $(TRANSLATIONS)/%/LC_MESSAGES/messages.po \
		| $(VENV)/.runtime-installed
	$(PYBABEL) compile --statistics -l $* -i $< -o $@

# Extract the marked strings into messages.pot, merge them into every catalog (new ones come
# with an empty msgstr, for a translator), and compile.
translations: $(VENV)/.runtime-installed
	$(PYBABEL) extract -F babel.cfg -k _l -k N_ --no-location --sort-output \
		-o $(TRANSLATIONS)/messages.pot app notifications
	$(PYBABEL) update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-fuzzy-matching \
		--ignore-obsolete
	$(PYBABEL) compile --statistics -d $(TRANSLATIONS)

# --- Database -------------------------------------------------------------------------------
# The private dev cluster (var/pg/dev), unless DATABASE_URL names another PostGIS.
db: venv
ifeq ($(strip $(DATABASE_URL)),)
	@scripts/db.sh ensure dev
endif
	@$(FLASK) db upgrade
	@$(FLASK) demo load
	@[ "$${QF_DEMO_SIMULATE:-1}" = 0 ] || $(FLASK) demo simulate --if-absent

db-stop:
	@scripts/pgbouncer.sh stop test
	@scripts/db.sh stop
	@scripts/redis.sh stop test

db-status:
	@scripts/db.sh status

# --- The two commands -----------------------------------------------------------------------
# Everything under supervisord: the private PostGIS and redis (unless DATABASE_URL /
# RATELIMIT_STORAGE_URI name others), migrations and demo data, gunicorn and the job worker.
run: venv
	@PORT=$(PORT) scripts/serve.sh

# The deployment shape of issue #18 on loopback (scripts/fleet.sh): PostgreSQL primary and
# streaming replica, PgBouncer, redis, an S3 server (moto), two app nodes behind haproxy and two
# job workers, everything under var/fleet/. Prints the URL; Ctrl-C stops everything.
fleet: venv
	@scripts/fleet.sh run

# Faults under load on a fleet of its own (tests/fleet/test_fleet_faults.py, a few minutes): one
# app node, one worker and the replica killed and brought back; nothing acknowledged is lost.
fleet-test: venv-dev
	FLEET=1 $(VENV)/bin/pytest -q -s -p no:cacheprovider tests/fleet

# The suite runs against a throw-away database on the private test cluster (var/pg/test), or on
# the server of TEST_DATABASE_URL / DATABASE_URL; it never touches the dev data.
# A private redis (var/redis/test) serves the tests of limits shared across processes, unless
# TEST_RATELIMIT_STORAGE_URI names another. The console's browser tests drive Debian's Chromium,
# installed here when missing (scripts/browser.sh).
test: venv-dev
	@scripts/browser.sh ensure
	@scripts/pgbouncer.sh install
ifeq ($(strip $(TEST_RATELIMIT_STORAGE_URI)),)
	@scripts/redis.sh ensure test
endif
ifeq ($(strip $(TEST_DATABASE_URL)),)
	@scripts/db.sh ensure test
	TEST_DATABASE_URL="$$(scripts/db.sh url test)" TEST_APP_DATABASE_URL="$$(scripts/db.sh url test app)" \
	TEST_RATELIMIT_STORAGE_URI="$${TEST_RATELIMIT_STORAGE_URI:-$$(scripts/redis.sh url test)}" \
		$(VENV)/bin/pytest $(PYTEST_ARGS)
else
	TEST_RATELIMIT_STORAGE_URI="$${TEST_RATELIMIT_STORAGE_URI:-$$(scripts/redis.sh url test)}" \
		$(VENV)/bin/pytest $(PYTEST_ARGS)
endif
ifeq ($(strip $(PYTEST_ARGS)),)
	@$(MAKE) --no-print-directory test-s3
endif

# The suites that store files, again with the files in S3 (moto's server on 127.0.0.1, started by
# the tests: tests/fakes/s3.py). `make test` runs it after a full run.
S3_TEST_PATHS ?= tests/media tests/exports tests/privacy/test_data_archive.py \
	tests/privacy/test_retention.py tests/console/test_photos_and_proxies.py
test-s3:
	QF_TEST_STORAGE=s3 $(MAKE) --no-print-directory test PYTEST_ARGS="-q -p no:cacheprovider $(S3_TEST_PATHS)"

# A slice of the suite with the application behind PgBouncer in transaction mode (issue #18;
# scripts/pgbouncer.sh installs Debian's pgbouncer when missing). PYTEST_ARGS picks other tests.
POOLED_TESTS ?= tests/tips tests/tasks tests/duty tests/exports tests/core/test_pooler.py
test-pgbouncer: venv-dev
ifeq ($(strip $(TEST_RATELIMIT_STORAGE_URI)),)
	@scripts/redis.sh ensure test
endif
	@scripts/db.sh ensure test
	@scripts/pgbouncer.sh ensure test
	TEST_DATABASE_URL="$$(scripts/db.sh url test)" TEST_APP_DATABASE_URL="$$(scripts/db.sh url test app)" \
	TEST_POOLED_DATABASE_URL="$$(scripts/pgbouncer.sh url test app)" \
	TEST_RATELIMIT_STORAGE_URI="$${TEST_RATELIMIT_STORAGE_URI:-$$(scripts/redis.sh url test)}" \
		$(VENV)/bin/pytest $(or $(PYTEST_ARGS),-q -p no:cacheprovider $(POOLED_TESTS))

# Mutation testing (issue #22), not part of `make test`: scripts/mutation.py, one module at a time
# against the private test cluster. MODULES="jurisdiction tips" picks some; all take hours on 2 cores.
# ONLY="public_heatmap,_conditions" keeps the mutants inside those functions of the modules picked;
# RERUN=survivors runs a session's survivors again (after adding tests).
mutation: venv-dev
ifeq ($(strip $(TEST_RATELIMIT_STORAGE_URI)),)
	@scripts/redis.sh ensure test
endif
	@scripts/db.sh ensure test
	TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$$(scripts/db.sh url test)}" \
	TEST_APP_DATABASE_URL="$${TEST_APP_DATABASE_URL:-$$(scripts/db.sh url test app)}" \
	TEST_RATELIMIT_STORAGE_URI="$${TEST_RATELIMIT_STORAGE_URI:-$$(scripts/redis.sh url test)}" \
	ONLY="$(ONLY)" RERUN="$(RERUN)" \
		$(VENV)/bin/python scripts/mutation.py $(MODULES)

# The import layers are contracts in pyproject.toml ([tool.importlinter]).
lint: venv-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache --no-logo

format: venv-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv-dev db
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

# --- Clients (node only here: `make run` and `make test` never need it) ----------------------
# TypeScript types for app teams from the OpenAPI document, and a type-check of the example app.
clients: venv
	@command -v node >/dev/null && command -v npm >/dev/null || { \
		echo "make clients needs node and npm: installing them from Debian (apt-get install -y nodejs npm)"; \
		apt-get update -qq && apt-get install -y -qq nodejs npm \
		|| { echo "could not install node and npm: install them, then run make clients again"; exit 1; }; }
	cd clients && npm ci --no-audit --no-fund --loglevel=error
	DATABASE_URL="$${DATABASE_URL:-postgresql+psycopg://unused@localhost/unused}" \
	RATELIMIT_STORAGE_URI=memory:// $(VENV)/bin/python scripts/openapi.py clients/openapi.json
	cd clients && node generate.mjs openapi.json qunfang.d.ts && npx --no-install tsc --noEmit -p .
	@echo "clients/qunfang.d.ts is up to date; clients/example/app.ts type-checks against it"
