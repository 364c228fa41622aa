# Kontex: the targets a newcomer guesses. `make dev` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
HOST   ?= 127.0.0.1
PORT   ?= 8787
DATA   ?= .kontex
STAGE  ?= dev
CDK    := npx --no-install cdk
NODE_STAMP := node_modules/.installed
CDK_FLAGS ?=
# The dashboard (web/): npm ci when the lock changes, vite build when a source changes.
WEB_DEPS := web/node_modules/.installed
WEB_DIST := web/dist/index.html
WEB_SRC  := $(shell find web/src -type f 2>/dev/null) web/index.html web/package.json \
            web/vite.config.ts web/tsconfig.json
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: dev test test-pooled lint format build synth deploy bench clean web generate

# Set-up says what it does: a line per step, and pip's own progress (a line per package).
$(STAMP): pyproject.toml clients/python/pyproject.toml
	@echo "make: [1/2] creating $(VENV) with $(PYTHON) and updating its pip"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "make: [2/2] installing kontex and kontex-client with the dev tools (about 3 min)"
	$(BIN)/pip install --progress-bar off -e '.[dev]' -e './clients/python[langgraph,openai-agents]'
	touch $(STAMP)
	@echo "make: $(VENV) is ready; \`source $(VENV)/bin/activate\` puts kontex on PATH"

$(WEB_DEPS): web/package.json web/package-lock.json
	@echo "make: installing the dashboard's npm packages (web/node_modules)"
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_DEPS)

$(WEB_DIST): $(WEB_DEPS) $(WEB_SRC)
	@echo "make: building the dashboard (web/dist)"
	cd web && npx --no-install vite build --logLevel warn

web: $(WEB_DIST)

# The dashboard first, then the venv: a build of the package (setup.py) carries web/dist.
dev: $(WEB_DIST) $(STAMP)
	$(BIN)/kontex dev --host $(HOST) --port $(PORT) --data-dir $(DATA)

# Two workers, each taking whole test files (module-scoped stacks are started once), the
# slowest files first (tests/conftest.py: SLOWEST_FILES, kept in that order by
# --no-loadscope-reorder). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: $(WEB_DIST) $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

# The PostgreSQL contract and end-to-end suites (and the pooled-session checks) once more,
# through PgBouncer in transaction pooling mode in front of KONTEX_TEST_DATABASE_URL: the
# production path, where RDS Proxy multiplexes transactions (needs Debian's pgbouncer).
test-pooled: $(STAMP)
	KONTEX_TEST_PGBOUNCER=1 $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m postgres \
		tests/contract tests/e2e tests/api/test_pooled.py

lint: $(STAMP) $(WEB_DEPS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/core/kontex clients/python/kontex_client
	cd web && npx --no-install tsc --noEmit -p .

# Generated files (tests/client/test_generated.py fails when one is stale): the sync client,
# the client's restore (from the server's), the client's models and web/src/api.gen.ts (from
# the server's OpenAPI document).
generate: $(STAMP) $(WEB_DEPS)
	$(BIN)/python clients/python/scripts/gen_sync.py
	$(BIN)/python clients/python/scripts/gen_restore.py
	$(BIN)/python clients/python/scripts/gen_models.py

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]' -e './clients/python[langgraph,openai-agents]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/checkpoints.py --tasks 10 --steps 100 --window 50 --backend all --mode all
	$(BIN)/python bench/storage_growth.py --turns 200 --backend all --history all
	$(BIN)/python bench/storage_growth.py --turns 50 --backend all --history all --blobs s3
	$(BIN)/python bench/ingest.py --backend all --phoenix --rounds 3
	$(BIN)/python bench/proxy.py
	$(BIN)/python bench/langgraph_saver.py --turns 20
	$(BIN)/python bench/langgraph_agent.py --invocations 50 --backend all
	$(BIN)/python bench/checkpoint_requests.py --steps 300 --backend all --http
	$(BIN)/python bench/agents_session.py --turns 20 200 --repeats 3

build: $(WEB_DIST) $(STAMP)
	$(BIN)/python layers/build.py

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

synth: build $(NODE_STAMP)
	$(CDK) synth -c stage=$(STAGE) --quiet $(CDK_FLAGS)
	$(BIN)/cfn-lint --non-zero-exit-code error cdk.out/*.template.json

deploy: build $(NODE_STAMP)
	$(CDK) deploy -c stage=$(STAGE) $(CDK_FLAGS)

clean:
	rm -rf $(VENV) .venv-traceloop .build cdk.out .pytest_cache web/dist web/node_modules
