#!/usr/bin/env bash
# Paired comparisons of PULSE whose ToT judge is the Thought Space trained with same-history negatives —
# with the plain cosine (configs/ablations/pipeline-luxury-beauty-500-hneg.toml) and with the contrastive score
# (configs/ablations/pipeline-luxury-beauty-500-hneg-contrast.toml) — with the rows they share their 200 test users,
# cand5 lists and initial rationales with: PULSE judged by the plain space (title penalty alone), PULSE with
# the contrastive judge on the plain space, SFT with reasons on the same initial rationales, and the 500-user
# reference's PULSE, plain SFT and base SLM. Writes compare.txt into each run's results (a run not yet
# finished is skipped).
#   pulse experiment configs/ablations/pipeline-luxury-beauty-500-hneg.toml   (and -hneg-contrast)
#   bash research/scripts/compare-hneg.sh [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${1:-target/release/pulse}
H=results/pipeline-luxury-beauty-500-hneg
N=results/pipeline-luxury-beauty-500-nameless
C=results/pipeline-luxury-beauty-500-contrast
R=results/pipeline-luxury-beauty-500
rest=("$N/sft-reasons-cand5.json" "$R/pulse-cand5.json" "$R/sft-plain-cand5.json" "$R/slm-cand5.json")
bash research/scripts/compare-one-vs.sh "$P" "$H/compare.txt" \
  "# pulse compare A B --metric hr@1 --resamples 2000 (PULSE, ToT judged by the space with history negatives, vs rows on the same 200 test users x cand5)" \
  "$H/pulse-cand5.json" "$N/pulse-cand5.json" "$C/pulse-cand5.json" "${rest[@]}"
HC=$H-contrast
if [ -f "$HC/pulse-cand5.json" ]; then
  bash research/scripts/compare-one-vs.sh "$P" "$HC/compare.txt" \
    "# pulse compare A B --metric hr@1 --resamples 2000 (PULSE, ToT judged by the contrastive score in the space with history negatives, vs rows on the same 200 test users x cand5)" \
    "$HC/pulse-cand5.json" "$H/pulse-cand5.json" "$N/pulse-cand5.json" "$C/pulse-cand5.json" "${rest[@]}"
fi
