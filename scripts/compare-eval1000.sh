#!/usr/bin/env bash
# Paired comparisons behind the README's "1,000 test users" paragraph: writes compare.txt into
# results/pipeline-luxury-beauty-1500-eval1000. Run after its config:
#   pulse experiment configs/pipeline-luxury-beauty-1500-eval1000.toml
#   bash scripts/compare-eval1000.sh [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/.."
P=${1:-target/release/pulse}
R=results/pipeline-luxury-beauty-1500-eval1000
cmp() { "$P" compare -q --metric hr@1 --resamples 2000 "$@"; }
{
  echo "# pulse compare A B --metric hr@1 --resamples 2000 (paired: the same 1,000 test users and cand5 lists)"
  echo "# the SFT variants of configs/pipeline-luxury-beauty-1500.toml (1,500 training users) against each other"
  cmp "$R/pulse-cand5.json" "$R/sft-reasons-cand5.json"
  cmp "$R/pulse-cand5.json" "$R/sft-plain-cand5.json"
  cmp "$R/sft-reasons-cand5.json" "$R/sft-plain-cand5.json"
} > "$R/compare.txt"
cat "$R/compare.txt"
