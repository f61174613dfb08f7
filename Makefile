# Two commands on a fresh machine: `make serve` and `make test`. Everything else is a convenience.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: serve sandbox sim test audit lint typecheck imports unit deps system-deps bench package-aws deps-aws deploy-aws node-deps client-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

deps: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/grokgate serve

sandbox: $(STAMP)
	$(VENV)/bin/grokgate serve --sandbox

sim: $(STAMP)
	$(VENV)/bin/grokgate sim

# Debian packages the tests run: redis-server (the Redis and Upstash-shim tests), chromium and
# chromium-driver (the console's browser tests, the CORS browser test). Installed when missing and we are root.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (install them as root)" >&2; exit 1; fi; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

imports: $(STAMP)
	$(VENV)/bin/lint-imports

# The chat, Responses, Messages, tools and image suites once more with every chat over the gateway
# WebSocket (GROKGATE_CHAT_TRANSPORT=ws): both upstream transports pass the same end-to-end tests.
WS_SUITES := tests/functions/test_chat_e2e.py tests/functions/test_responses_e2e.py \
	tests/functions/test_messages_e2e.py tests/functions/test_tools_e2e.py tests/functions/test_images_e2e.py \
	tests/functions/test_stored_responses_e2e.py tests/functions/test_web_search_e2e.py \
	tests/functions/test_responses_tools_e2e.py tests/functions/test_structured_e2e.py

unit: $(STAMP)
	$(VENV)/bin/pytest -q
	TEST_CHAT_TRANSPORT=ws $(VENV)/bin/pytest -q $(WS_SUITES)

# pip-audit of the installed dependencies; skips with a message when no advisory source answers.
audit: $(STAMP)
	$(PY) -m ci.audit

test: $(STAMP) system-deps node-deps client-deps lint typecheck imports unit audit

bench: $(STAMP)
	$(PY) -m bench.run

# Deployment tooling (osls, @vercel/python), pinned by package-lock.json; the deploy tests need it.
# The stamp holds the lock file's hash: npm (and the network) is needed only the first time and when
# the lock really changes, not when a checkout merely touches package.json.
NODE_STAMP := node_modules/.installed
LOCK_HASH = $$(sha256sum package-lock.json | cut -c1-64)
$(NODE_STAMP): package.json package-lock.json
	@if [ -f $@ ] && [ "$$(cat $@)" = "$(LOCK_HASH)" ]; then touch $@; else \
	  echo "node-deps: downloading the pinned deployment tools from the npm registry into node_modules/" \
	    "($$(sed -n 's/^ *"\(osls\|@vercel\/python\)": "\(.*\)",*$$/\1 \2/p' package.json | paste -sd, -));" \
	    "once: later runs (make package-aws included) need no network" >&2; \
	  npm ci --no-audit --no-fund --loglevel=error && echo "$(LOCK_HASH)" > $@; fi

node-deps: $(NODE_STAMP)

# The released npm clients the client tests drive, each pinned in its own folder (package-lock.json).
CLIENT_DIRS := tests/clients/codex tests/clients/ai_sdk tests/clients/claude_code
CLIENT_STAMPS := $(addsuffix /node_modules/.installed,$(CLIENT_DIRS))
tests/clients/%/node_modules/.installed: tests/clients/%/package.json tests/clients/%/package-lock.json
	cd tests/clients/$* && npm ci --no-audit --no-fund --loglevel=error
	touch $@

client-deps: $(CLIENT_STAMPS)

# Offline: no AWS account, credentials or network (dummy credentials keep the AWS SDK quiet).
OFFLINE_AWS := AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline AWS_REGION=$${AWS_REGION:-us-east-1} \
	SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off
package-aws: $(STAMP) $(NODE_STAMP)
	$(PY) -m infra.aws.bundle zip
	$(OFFLINE_AWS) npx --no-install --offline osls package

# The Lambda dependencies (python3.12, arm64 wheels) go into the artifact; needs the package index.
deps-aws: $(STAMP)
	$(PY) -m infra.aws.bundle deps

deploy-aws: deps-aws $(NODE_STAMP)
	$(PY) -m infra.aws.bundle zip
	npx --no-install osls deploy

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .serverless build
