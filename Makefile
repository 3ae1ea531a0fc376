# The two fresh-machine commands:  `make demo`  (main job end to end)  and  `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
VLLM_VENV  ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: demo test test-fast install vllm-venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, alone, so pip takes the local CPU wheel and never a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# vLLM in its own environment (its fastapi pin conflicts with Prefect's); see scripts/vllm-venv.sh
$(VLLM_STAMP): scripts/vllm-venv.sh
	PY=$(PY) scripts/vllm-venv.sh $(VLLM_VENV)

vllm-venv: $(VLLM_STAMP)

demo: $(STAMP)
	AUTORATER_HOME=$${AUTORATER_HOME:-.autorater/demo} $(BIN)/python -m registry.demo

test: $(STAMP) $(VLLM_STAMP)
	scripts/ensure-chromium.sh
	scripts/with-postgres.sh $(BIN)/python -m pytest -n 2 --dist loadgroup -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not e2e" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(VLLM_VENV) .autorater .pytest_cache
