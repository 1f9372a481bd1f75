# snapfind: `make run` starts the bot, `make test` runs the tests; both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The IKEA evaluation catalog beside the project, when there is one, is the default demo data.
SHARED_CATALOG := $(wildcard ../shared/data/ikea/catalog.csv)

.PHONY: run test lint setup clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# SNAPFIND_BOT_TOKEN (and the rest, see deploy/.env.example) come from the environment or .env.
# `snapfind export` writes the runtime model once (later starts only verify it), so the bot
# serves without TensorFlow.
run: setup
	@if [ -z "$$SNAPFIND_CATALOG" ] && ! grep -qs '^SNAPFIND_CATALOG=' .env \
	    && [ -n "$(SHARED_CATALOG)" ]; then export SNAPFIND_CATALOG="$(SHARED_CATALOG)"; fi; \
	$(BIN)/snapfind export && $(BIN)/snapfind bot

test: setup
	$(BIN)/pytest -q -rs

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
