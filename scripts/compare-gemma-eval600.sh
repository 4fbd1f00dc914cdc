#!/usr/bin/env bash
# Paired comparisons behind the issue's ordering PULSE >= SFT with reasons >= plain SFT, for the Gemma-written
# 500-user pipeline on 600 test users x cand5 (configs/pipeline-luxury-beauty-500-gemma-eval600.toml).
# Writes results/pipeline-luxury-beauty-500-gemma-eval600/compare.txt.
#   pulse experiment configs/pipeline-luxury-beauty-500-gemma-eval600.toml
#   bash scripts/compare-gemma-eval600.sh [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/.."
P=${1:-target/release/pulse}
D=results/pipeline-luxury-beauty-500-gemma-eval600
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# pulse compare A B --metric hr@1 --resamples 2000 (same 600 test users x cand5)" > "$out"
for ab in "pulse sft-reasons" "sft-reasons sft-plain" "pulse sft-plain"; do
  set -- $ab
  echo "## $1 vs $2" >> "$out"
  "$P" compare -q --metric hr@1 --resamples 2000 "$D/$1-cand5.json" "$D/$2-cand5.json" >> "$out"
done
mv "$out" "$D/compare.txt"
trap - EXIT
cat "$D/compare.txt"
