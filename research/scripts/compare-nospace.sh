#!/usr/bin/env bash
# Paired comparisons of a PULSE row of the title-penalised 500-user pipeline run with another ToT prompt form
# (DIR, default results/pipeline-luxury-beauty-500-nospace: the prompt ending at "1.",
# configs/ablations/pipeline-luxury-beauty-500-nospace.toml; results/pipeline-luxury-beauty-500-gemma: Gemma writing the
# chains from worked examples) with the rows it shares its 200 test users and cand5 lists with: the title-penalised
# pipeline it differs from only in the ToT writer's prompt (its PULSE and SFT with reasons,
# results/pipeline-luxury-beauty-500-nameless/), and the 500-user reference rows (PULSE with the method's ToT, SFT
# with reasons, plain SFT, the base SLM), and, for another DIR, the PULSE row of the prompt ending at "1." (the same
# chat prompt with SmolLM2 writing). Writes DIR/compare.txt; DIR/ordering.txt holds SFT with reasons vs plain SFT
# on the same lists, the other half of the issue's PULSE >= reasons >= plain.
#   pulse experiment configs/ablations/pipeline-luxury-beauty-500-nospace.toml
#   bash research/scripts/compare-nospace.sh [DIR] [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/../.."
S=${1:-results/pipeline-luxury-beauty-500-nospace}
P=${2:-target/release/pulse}
N=results/pipeline-luxury-beauty-500-nameless
R=results/pipeline-luxury-beauty-500
NS=results/pipeline-luxury-beauty-500-nospace
others=()
[ "$S" -ef "$NS" ] || others=("$NS/pulse-cand5.json")
bash research/scripts/compare-one-vs.sh "$P" "$S/compare.txt" \
  "# pulse compare A B --metric hr@1 --resamples 2000 (PULSE of $S vs the title-penalised and 500-user rows, same 200 test users x cand5)" \
  "$S/pulse-cand5.json" "$N/pulse-cand5.json" "$N/sft-reasons-cand5.json" "$R/pulse-cand5.json" "$R/sft-reasons-cand5.json" \
  "$R/sft-plain-cand5.json" "$R/slm-cand5.json" "${others[@]}"
bash research/scripts/compare-one-vs.sh "$P" "$S/ordering.txt" \
  "# pulse compare A B --metric hr@1 --resamples 2000 (SFT with reasons on the initial rationales these pipelines share vs plain SFT, same 200 test users x cand5)" \
  "$N/sft-reasons-cand5.json" "$R/sft-plain-cand5.json"
