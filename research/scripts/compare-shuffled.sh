#!/usr/bin/env bash
# Paired comparisons of the shuffled-rationale control (SFT on SFT with reasons' rationales, each given to
# another training user; configs/ablations/pipeline-luxury-beauty-500-gemma-shuffled.toml) with the rows of
# results/pipeline-luxury-beauty-500-gemma-eval600 it shares its 600 test users and cand5 lists with: SFT with
# reasons (the same rationales, each with its own user), plain SFT (no rationale) and PULSE (Gemma's ToT chains).
# Writes results/pipeline-luxury-beauty-500-gemma-shuffled/compare.txt.
#   pulse experiment configs/ablations/pipeline-luxury-beauty-500-gemma-shuffled.toml
#   bash research/scripts/compare-shuffled.sh [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${1:-target/release/pulse}
S=results/pipeline-luxury-beauty-500-gemma-shuffled
E=results/pipeline-luxury-beauty-500-gemma-eval600
bash research/scripts/compare-one-vs.sh "$P" "$S/compare.txt" \
  "# pulse compare A B --metric hr@1 --resamples 2000 (shuffled rationales vs the eval600 rows, same 600 test users x cand5)" \
  "$S/sft-shuffled-reasons-cand5.json" "$E/sft-reasons-cand5.json" "$E/sft-plain-cand5.json" "$E/pulse-cand5.json"
