#!/usr/bin/env bash
# Paired comparisons of a pipeline experiment's SLM rows (the same test users and candidate lists in every row):
# the SFT variants against each other and against the base SLM, for the rows the directory holds. Writes
# compare.txt into the experiment's results directory. Run after its config, e.g.
#   pulse experiment configs/pipeline-video-games-500.toml
#   bash scripts/compare-sft.sh results/pipeline-video-games-500 [path/to/pulse]
#   PROTOCOL=cand20 bash scripts/compare-sft.sh results/pipeline-luxury-beauty-1500-cand20   # default cand5
# (results/pipeline-luxury-beauty-1500-eval1000/compare.txt is this script's output for that experiment.)
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:?usage: compare-sft.sh RESULTS_DIR [path/to/pulse]}
P=${2:-target/release/pulse}
proto=${PROTOCOL:-cand5}
[ -d "$R" ] || { echo "compare-sft.sh: no directory $R" >&2; exit 1; }
pairs=(
  "pulse sft-reasons" "pulse sft-plain" "sft-reasons sft-plain"
  "pulse sft-tot-likelihood" "sft-tot-likelihood sft-reasons" "sft-tot-likelihood sft-plain"
  "pulse slm" "sft-reasons slm" "sft-plain slm" "sft-tot-likelihood slm"
)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# pulse compare A B --metric hr@1 --resamples 2000 (paired: the same test users and $proto lists); $R" > "$out"
n=0
for p in "${pairs[@]}"; do
  set -- $p
  a="$R/$1-$proto.json" b="$R/$2-$proto.json"
  [ -f "$a" ] && [ -f "$b" ] || continue
  "$P" compare -q --metric hr@1 --resamples 2000 "$a" "$b" >> "$out"
  n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "compare-sft.sh: $R holds no pair of SLM rows (pulse, sft-*, slm -$proto.json)" >&2; exit 1; }
mv "$out" "$R/compare.txt"
trap - EXIT
cat "$R/compare.txt"
