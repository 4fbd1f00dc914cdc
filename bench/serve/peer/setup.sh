#!/usr/bin/env bash
# Serving peer venv: bench/recbole/.venv (RecBole 1.2.1 + torch 2.5.1) plus FastAPI and uvicorn.
# Idempotent; only for the serving benchmark, never for tests or CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
recbole="$(cd "$here/../../recbole" && pwd)"
nice -n 19 bash "$recbole/setup.sh"
venv="$recbole/.venv"
if "$venv/bin/python" -c "import fastapi, uvicorn, uvloop, httptools, sys; sys.exit(fastapi.__version__ != '0.165.0' or uvicorn.__version__ != '0.55.0')" 2>/dev/null; then
  echo "serving peer venv ready: $venv"; exit 0
fi
# uvicorn[standard] = uvloop + httptools, what FastAPI's docs tell you to install for production.
nice -n 19 "$venv/bin/pip" install -q "fastapi==0.165.0" "uvicorn[standard]==0.55.0"
"$venv/bin/python" -c "import fastapi, uvicorn; print('fastapi', fastapi.__version__, 'uvicorn', uvicorn.__version__)"
