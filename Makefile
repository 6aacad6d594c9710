# llmproxy — every target installs what it needs first, so a fresh clone works with one command.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 3456

.PHONY: install serve test test-fast lint bench soak demo clean claude-code

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "llmproxy needs Python >= 3.11")'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/llmproxy serve --verbose --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m 'not e2e'

lint: $(STAMP)
	$(BIN)/ruff check llmproxy tests scripts

# The benchmark of record (docs/BENCHMARKS.md): make bench [BASELINE=<git ref>] [BENCH_ARGS='--streams 1000']
BASELINE ?=
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python scripts/bench.py $(if $(BASELINE),--baseline $(BASELINE)) $(BENCH_ARGS)
	$(BIN)/python scripts/bench_routing.py
	$(BIN)/python scripts/bench_stream.py
	$(BIN)/python scripts/bench_fleet.py
	$(BIN)/python scripts/bench_keys.py

# N concurrent streams through a real daemon to a slow loopback upstream: errors, RSS, fds (STREAMS=1000 for the big run)
STREAMS ?= 200
soak: $(STAMP)
	$(BIN)/python scripts/soak.py --streams $(STREAMS)

# Claude Code, for the end-to-end tests and the demo (installed under .claude-code/, not globally)
claude-code:
	@command -v claude >/dev/null 2>&1 || [ -x .claude-code/node_modules/.bin/claude ] || \
		npm install --silent --prefix .claude-code @anthropic-ai/claude-code

demo: $(STAMP) claude-code
	PATH="$(CURDIR)/.claude-code/node_modules/.bin:$$PATH" $(BIN)/llmproxy demo --attach

clean:
	rm -rf $(VENV) .pytest_cache .claude-code build *.egg-info
