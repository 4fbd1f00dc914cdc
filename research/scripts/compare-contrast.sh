#!/usr/bin/env bash
# Paired comparisons of PULSE with the contrastive ToT judge (configs/ablations/pipeline-luxury-beauty-500-contrast.toml)
# with the rows it shares its 200 test users, cand5 lists and initial rationales with: PULSE with the
# title penalty alone and SFT with reasons on the same initial rationales
# (results/pipeline-luxury-beauty-500-nameless/), and the 500-user reference's PULSE (the method's ToT), plain
# SFT and base SLM (results/pipeline-luxury-beauty-500/). Writes compare.txt into the contrast results.
#   pulse experiment configs/ablations/pipeline-luxury-beauty-500-contrast.toml
#   bash research/scripts/compare-contrast.sh [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${1:-target/release/pulse}
C=results/pipeline-luxury-beauty-500-contrast
N=results/pipeline-luxury-beauty-500-nameless
R=results/pipeline-luxury-beauty-500
a="$C/pulse-cand5.json"
bash research/scripts/compare-one-vs.sh "$P" "$C/compare.txt" \
  "# pulse compare A B --metric hr@1 --resamples 2000 (PULSE, contrastive ToT judge, vs rows on the same 200 test users x cand5)" \
  "$a" "$N/pulse-cand5.json" "$N/sft-reasons-cand5.json" "$R/pulse-cand5.json" "$R/sft-plain-cand5.json" "$R/slm-cand5.json"
