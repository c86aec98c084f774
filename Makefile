# The single entry point: `make run` serves the app, `make test` runs every gate.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
SANDBOX_PORT ?= 8010
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
RUN_DIR := .run
MANAGE := $(BIN)/python manage.py
TEST_ENV := DJANGO_SETTINGS_MODULE=config.settings_test

.PHONY: run test lint imports fmt typecheck schema schema-check check pytest clean dist

$(STAMP): requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	touch $(STAMP)

# posthog-js (pinned in package-lock.json) for the sandbox's /static/*, as PostHog's assets
# host serves it: the demo under `make run` and the browser tests need it. Without npm the
# sandbox answers 404 there and the browser tests are skipped (pytest says why).
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund && touch $@; \
	else \
		echo "npm not found: posthog-js is not installed, so the sandbox cannot serve" \
			"/static/array.js and the demo at /demo/ loads no analytics (install Node.js 20+)."; \
	fi

$(RUN_DIR)/secret_key:
	mkdir -p $(RUN_DIR)
	$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@
	chmod 600 $@

# The Ed25519 key that signs consent receipts (README "Consent receipts"), PEM PKCS#8.
$(RUN_DIR)/receipt_signing_key: $(STAMP)
	mkdir -p $(RUN_DIR)
	umask 077; $(BIN)/python -c 'from cryptography.hazmat.primitives import serialization as s; \
		from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey as K; \
		print(K.generate().private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, \
		s.NoEncryption()).decode(), end="")' > $@

# Without POSTHOG_API_KEY, the local PostHog sandbox runs beside the service and takes
# every PostHog role (ingestion, assets, persons API), so nothing leaves the machine.
# /metrics adds up every process's counters (the forwarder's and the erasure worker's too):
# prometheus-client's multiprocess mode, emptied at each start.
run: $(STAMP) $(RUN_DIR)/secret_key $(RUN_DIR)/receipt_signing_key $(NODE_STAMP)
	@set -e; \
	rm -rf $(RUN_DIR)/metrics; mkdir -p $(RUN_DIR)/metrics; \
	export DJANGO_SECRET_KEY_FILE=$(RUN_DIR)/secret_key DJANGO_DEBUG=$${DJANGO_DEBUG:-1} \
		CONSENT_DEV_TOOLS=$${CONSENT_DEV_TOOLS:-1} PROMETHEUS_MULTIPROC_DIR=$(abspath $(RUN_DIR))/metrics \
		CONSENT_RECEIPT_SIGNING_KEY_FILE=$${CONSENT_RECEIPT_SIGNING_KEY_FILE:-$(abspath $(RUN_DIR))/receipt_signing_key}; \
	$(MANAGE) migrate --noinput; \
	$(MANAGE) consent_defaults; \
	if [ -z "$$POSTHOG_API_KEY" ]; then \
		sandbox=http://127.0.0.1:$(SANDBOX_PORT); \
		$(MANAGE) posthog_sandbox --host 127.0.0.1 --port $(SANDBOX_PORT) & \
		children="$$!"; \
		export POSTHOG_API_KEY=phc_sandbox POSTHOG_PROJECT_ID=1 \
			POSTHOG_PERSONAL_API_KEY=phx_sandbox POSTHOG_HOST=$$sandbox \
			POSTHOG_ASSETS_HOST=$$sandbox POSTHOG_APP_HOST=$$sandbox; \
		echo "PostHog sandbox: $$sandbox/_sandbox/"; \
		for _ in $$(seq 50); do \
			$(BIN)/python -c "import urllib.request as u; u.urlopen('$$sandbox/_sandbox/')" \
				2>/dev/null && break; \
			sleep 0.2; \
		done; \
	fi; \
	$(MANAGE) posthog_check || echo "/readyz answers 503 until 'manage.py posthog_check' passes"; \
	$(MANAGE) erasure_worker & \
	children="$$children $$!"; \
	$(MANAGE) proxy_forwarder & \
	children="$$children $$!"; \
	trap "kill $$children 2>/dev/null" EXIT INT TERM; \
	$(MANAGE) runserver 127.0.0.1:$(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The layering contracts in pyproject.toml ([tool.importlinter]).
imports: $(STAMP)
	$(BIN)/lint-imports --no-logo --no-cache

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)
	$(BIN)/mypy consent_service config tests benchmarks

# The same schema twice: YAML for people, JSON for tools (schemathesis, code generators).
schema: $(STAMP)
	$(TEST_ENV) $(MANAGE) spectacular --file openapi/schema.yaml --validate --fail-on-warn
	$(TEST_ENV) $(MANAGE) spectacular --format openapi-json --file openapi/schema.json

schema-check: $(STAMP)
	$(TEST_ENV) $(MANAGE) spectacular --file $(VENV)/schema.fresh.yaml --validate --fail-on-warn
	$(TEST_ENV) $(MANAGE) spectacular --format openapi-json --file $(VENV)/schema.fresh.json
	diff -u openapi/schema.yaml $(VENV)/schema.fresh.yaml && \
		diff -u openapi/schema.json $(VENV)/schema.fresh.json || \
		(echo "openapi/ is stale: run 'make schema' and commit it" && exit 1)

check: $(STAMP)
	$(TEST_ENV) $(MANAGE) check --fail-level WARNING
	$(TEST_ENV) $(MANAGE) makemigrations --check --dry-run

# -rs: every skipped test says why (PostgreSQL-only tests, browser tests without Chromium).
pytest: $(STAMP)
	$(BIN)/pytest -rs $(PYTEST_ARGS)

test: lint imports typecheck check schema-check $(NODE_STAMP) pytest

# A wheel and an sdist of the product package alone, for a host Django project
# (README "Use it in your Django project"); the standalone config/ is not in them.
dist: $(STAMP)
	rm -rf dist build
	$(BIN)/python -m build --outdir dist

clean:
	rm -rf $(VENV) $(RUN_DIR)
