#!/usr/bin/env bash
# Paired comparisons of the title-penalised PULSE row (configs/ablations/pipeline-luxury-beauty-500-nameless.toml) with
# SFT with reasons on the same store, and the 500-user reference rows it shares its 200 test users and cand5
# lists with: PULSE with the method's ToT,
# SFT with reasons, plain SFT, the base SLM (results/pipeline-luxury-beauty-500/) and PULSE trained on masked
# rationales (results/pipeline-luxury-beauty-500-masked/). Writes compare.txt into the nameless results.
#   pulse experiment configs/ablations/pipeline-luxury-beauty-500-nameless.toml
#   bash research/scripts/compare-nameless.sh [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${1:-target/release/pulse}
N=results/pipeline-luxury-beauty-500-nameless
R=results/pipeline-luxury-beauty-500
M=results/pipeline-luxury-beauty-500-masked
a="$N/pulse-cand5.json"
bash research/scripts/compare-one-vs.sh "$P" "$N/compare.txt" \
  "# pulse compare A B --metric hr@1 --resamples 2000 (title-penalised PULSE vs the 500-user rows, same 200 test users x cand5)" \
  "$a" "$N/sft-reasons-cand5.json" "$R/pulse-cand5.json" "$R/sft-reasons-cand5.json" "$R/sft-plain-cand5.json" "$R/slm-cand5.json" "$M/pulse-cand5.json"
