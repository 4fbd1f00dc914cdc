#!/usr/bin/env bash
# Paired comparisons for Gemma 3 270M as the thinking ranker (configs/ablations/think-luxury-beauty-500-gemma-tuned.toml:
# PULSE and SFT with reasons trained with the loss on the rationale, ranked after their own "Let me think:"
# rationale), the same adapters ranked without one (configs/ablations/think-luxury-beauty-500-gemma-tuned-direct.toml), and
# the adapters trained the method's way (title loss, no thinking: results/pipeline-luxury-beauty-500-gemma-tuned,
# 600 users, so every pair is taken on the 200 users both rank: --common). Writes compare.txt into the think
# results.
#   pulse experiment configs/ablations/think-luxury-beauty-500-gemma-tuned.toml
#   pulse experiment configs/ablations/think-luxury-beauty-500-gemma-tuned-direct.toml
#   bash research/scripts/compare-think-gemma.sh [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${1:-target/release/pulse}
T=results/think-luxury-beauty-500-gemma-tuned
D=results/think-luxury-beauty-500-gemma-tuned-direct
R=results/pipeline-luxury-beauty-500-gemma-tuned
for f in "$T/pulse" "$T/sft-reasons" "$D/pulse" "$D/sft-reasons"; do
  [ -f "$f-cand5.json" ] || { echo "compare-think-gemma.sh: no $f-cand5.json (run the experiments first)" >&2; exit 1; }
done
pairs=(
  "$T/pulse $T/sft-reasons" "$D/pulse $D/sft-reasons"
  "$T/pulse $D/pulse" "$T/sft-reasons $D/sft-reasons"
  "$D/pulse $R/pulse" "$D/sft-reasons $R/sft-reasons"
  "$T/pulse $R/pulse" "$T/sft-reasons $R/sft-reasons"
  "$T/pulse $R/sft-plain" "$T/sft-reasons $R/sft-plain" "$D/pulse $R/sft-plain" "$D/sft-reasons $R/sft-plain"
)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# pulse compare --common A B --metric hr@1 --resamples 2000 (paired on the 200 test users x cand5 both rank)" > "$out"
for p in "${pairs[@]}"; do
  set -- $p
  echo "## $1-cand5.json $2-cand5.json" >> "$out"
  "$P" compare -q --common --metric hr@1 --resamples 2000 "$1-cand5.json" "$2-cand5.json" >> "$out"
done
mv "$out" "$T/compare.txt"
trap - EXIT
cat "$T/compare.txt"
