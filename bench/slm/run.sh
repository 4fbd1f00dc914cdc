#!/usr/bin/env bash
# SLM engine throughput, side by side with llama.cpp (llama-cpp-python's own build) on the same GGUF,
# prompt and machine; run one after the other so they never share the CPU.
#   bash bench/slm/run.sh [MODEL.gguf]     → bench/out/slm-*.jsonl and a table on stdout
set -euo pipefail
cd "$(dirname "$0")/../.."
model="${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}"
seqs="${SEQS:-1,8,32}"
new="${NEW_TOKENS:-64}"
threads="${THREADS:-$(nproc)}"
bash scripts/fetch_models.sh >/dev/null
bash bench/llama/setup.sh
cargo build --release --quiet --bin pulse
mkdir -p bench/out
for w in f16 native; do
  ./target/release/pulse -q slm bench --model "$model" --weights $w --prompt bench/slm/prompt.txt --seqs "$seqs" \
    --new-tokens "$new" --reps "${REPS:-2}" --threads "$threads" --batch 32 > bench/out/slm-pulse-$w.jsonl
done
bench/llama/.venv/bin/python bench/llama/llama_cpp_bench.py "$model" bench/slm/prompt.txt --seqs "$seqs" \
  --new-tokens "$new" --reps "${REPS:-2}" --threads "$threads" > bench/out/slm-llamacpp.jsonl
python3 bench/slm/table.py bench/out/slm-llamacpp.jsonl bench/out/slm-pulse-f16.jsonl bench/out/slm-pulse-native.jsonl \
  | tee bench/out/slm-table.md
