#!/usr/bin/env bash
# Is a retrained SFT adapter the recorded one? Re-ranks Luxury Beauty cand5 (the same 200 seeded users and
# lists as results/pipeline-luxury-beauty-1500) with the adapter now under runs/sft/ and compares it, paired and
# user by user, with the recorded row. Used for the 1,500-user plain SFT, SFT with reasons and ToT with
# likelihood adapters, retrained for configs/pulse-cross-*-1500-cand20.toml after the first ones were lost with an
# old runs/.
# Ranking ~3–5 min on 2 cores (skipped when the result is there).
#   bash scripts/retrain-check.sh [plain|reasons|tot-likelihood]
set -euo pipefail
cd "$(dirname "$0")/.."
P=${P:-target/release/pulse}
v=${1:-plain}
row=sft-$v
D=results/retrain-check-$v-1500
A=runs/sft/amazon2018-luxury-beauty-$v-ce5941d0/adapter.gguf
B=results/pipeline-luxury-beauty-1500/$row-cand5.json
mkdir -p "$D"
if [ ! -f "$D/$v-cand5.json" ]; then
  [ -f "$A" ] || { echo "retrain-check.sh: no $A (run configs/pulse-cross-video-games-1500-cand20.toml with $row first)" >&2; exit 1; }
  "$P" eval -q --model slm --adapter "$A" --score pmi --protocol cand5 --users 200 --out "$D/$v-cand5.json"
fi
lora() { grep -o 'lora:[0-9a-f]\{8\}' "$1" | head -1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
{
  echo "# pulse compare A B --metric hr@1 --resamples 2000: the retrained $row adapter ($(lora "$D/$v-cand5.json")) against the recorded one ($(lora "$B")), Luxury Beauty cand5, the same 200 users and lists"
  "$P" compare -q --metric hr@1 --resamples 2000 "$D/$v-cand5.json" "$B"
  echo "# users whose rank of the true item differs: $(diff <(sort "$D/$v-cand5.ranks.tsv") <(sort "${B%.json}.ranks.tsv") | grep -c '^<' || true) of 200"
} > "$out"
mv "$out" "$D/compare.txt"
trap - EXIT
cat "$D/compare.txt"
