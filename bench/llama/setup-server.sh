#!/usr/bin/env bash
# Makes (or extends) bench/llama/.venv so it also has llama-cpp-python's OpenAI-compatible server
# (`llama-cpp-python[server]==0.3.36`: fastapi, uvicorn, sse-starlette, starlette-context, pydantic-settings).
# Same venv as setup.sh: if setup.sh already built llama_cpp there, only the server extra's pure-Python
# deps are added (pip sees llama-cpp-python==0.3.36 satisfied and does not rebuild it); otherwise the
# sdist is built here (~8 min on 2 cores). Idempotent: exits at once when everything is importable.
# Used by bench/llama/server_probe.py (research/openai-server-probe.md).
set -euo pipefail
cd "$(dirname "$0")"
check() {
  [ -x .venv/bin/python ] && .venv/bin/python - <<'EOF' 2>/dev/null
import llama_cpp, fastapi, uvicorn, sse_starlette, starlette_context, pydantic_settings
import llama_cpp.server.app  # noqa: F401
assert llama_cpp.__version__ == "0.3.36", llama_cpp.__version__
EOF
}
if check; then exit 0; fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
CMAKE_ARGS="-DGGML_NATIVE=ON" .venv/bin/pip install --quiet "llama-cpp-python[server]==0.3.36" "numpy<3"
check
.venv/bin/python -c "import llama_cpp, fastapi, uvicorn; print('llama-cpp-python', llama_cpp.__version__, '+ server (fastapi', fastapi.__version__ + ', uvicorn', uvicorn.__version__ + ')')"
