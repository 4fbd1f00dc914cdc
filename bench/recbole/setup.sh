#!/usr/bin/env bash
# Creates a throwaway venv with RecBole 1.2.1 and CPU-usable torch (PyPI's Linux wheel; the CUDA
# libraries it pulls in are unused here). Only for the peer benchmark, never for tests or CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import recbole, torch" 2>/dev/null; then
  echo "recbole venv ready: $venv"; exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
# torch < 2.6: RecBole 1.2.1 reloads its own checkpoints with torch.load (weights_only default changed
# in 2.6). numpy < 2 and scipy < 1.13 keep RecBole 1.2.1's old aliases working.
"$venv/bin/pip" install -q "torch==2.5.1" "numpy<2" "scipy<1.13" "pandas<2.3" "recbole==1.2.1" \
  "ray<3" "thop" "tabulate" "texttable" "psutil" "colorlog==4.7.2" "colorama==0.4.4" "tensorboard" "plotly"
"$venv/bin/python" -c "import recbole, torch; print('recbole', recbole.__version__, 'torch', torch.__version__)"
