#!/usr/bin/env bash
# Throwaway venv with llama-cpp-python (its own llama.cpp, built from the PyPI sdist, ~8 min on 2 cores),
# the independent peer for bench/slm and for the tokenizer golden ids.
set -euo pipefail
cd "$(dirname "$0")"
if [ -x .venv/bin/python ] && .venv/bin/python -c "import llama_cpp" 2>/dev/null; then exit 0; fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
CMAKE_ARGS="-DGGML_NATIVE=ON" .venv/bin/pip install --quiet "llama-cpp-python==0.3.36" "numpy<3"
.venv/bin/python -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__)"
