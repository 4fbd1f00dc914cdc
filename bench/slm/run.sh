#!/usr/bin/env bash
# SLM engine throughput, side by side with llama.cpp (llama-cpp-python's own build) on the same GGUF,
# prompt and machine; run one after the other so they never share the CPU.
#   bash bench/slm/run.sh [MODEL.gguf]     → results/bench-slm/*.jsonl + table.md (the README's table)
set -euo pipefail
cd "$(dirname "$0")/../.."
model="${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}"
seqs="${SEQS:-1,8,32}"
new="${NEW_TOKENS:-64}"
threads="${THREADS:-$(nproc)}"
bash scripts/fetch_models.sh >/dev/null
bash bench/llama/setup.sh
cargo build --release --quiet --bin pulse
out=results/bench-slm
mkdir -p $out
for w in f16 native; do
  ./target/release/pulse -q slm bench --model "$model" --weights $w --prompt bench/slm/prompt.txt --seqs "$seqs" \
    --new-tokens "$new" --reps "${REPS:-2}" --threads "$threads" --batch 32 > $out/pulse-$w.jsonl
done
bench/llama/.venv/bin/python bench/llama/llama_cpp_bench.py "$model" bench/slm/prompt.txt --seqs "$seqs" \
  --new-tokens "$new" --reps "${REPS:-2}" --threads "$threads" > $out/llamacpp.jsonl
python3 bench/slm/table.py $out/llamacpp.jsonl $out/pulse-f16.jsonl $out/pulse-native.jsonl \
  | tee $out/table.md
