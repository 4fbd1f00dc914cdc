#!/usr/bin/env bash
# Paired comparisons for the thinking ranker (configs/ablations/think-luxury-beauty-500.toml: PULSE and SFT with reasons
# trained with the loss on the rationale, ranked after their own "Let me think:" rationale) against the same
# adapters ranked without one and plain SFT on the same 500 users (configs/ablations/think-luxury-beauty-500-direct.toml),
# and the 500-user pipeline's rows trained the method's way (results/pipeline-luxury-beauty-500/); every row
# ranks the same 200 test users' cand5 lists; and the same thinking ranker with the model barred from
# repeating a 3-gram of its own tokens (configs/ablations/think-luxury-beauty-500-norepeat.toml) or penalised for reusing a
# token (configs/ablations/think-luxury-beauty-500-penalty.toml). Writes compare.txt into the think results.
#   pulse experiment configs/ablations/think-luxury-beauty-500.toml
#   pulse experiment configs/ablations/think-luxury-beauty-500-direct.toml
#   pulse experiment configs/ablations/think-luxury-beauty-500-norepeat.toml
#   pulse experiment configs/ablations/think-luxury-beauty-500-penalty.toml
#   bash research/scripts/compare-think.sh [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${1:-target/release/pulse}
T=results/think-luxury-beauty-500
D=results/think-luxury-beauty-500-direct
R=results/pipeline-luxury-beauty-500
N=results/think-luxury-beauty-500-norepeat
Q=results/think-luxury-beauty-500-penalty
[ -f "$T/pulse-cand5.json" ] || { echo "compare-think.sh: no $T/pulse-cand5.json (run the experiment first)" >&2; exit 1; }
pairs=(
  "$T/pulse $T/sft-reasons"
  "$T/pulse $D/pulse" "$T/sft-reasons $D/sft-reasons"
  "$D/pulse $D/sft-reasons" "$D/pulse $D/sft-plain" "$D/sft-reasons $D/sft-plain"
  "$T/pulse $D/sft-plain" "$T/sft-reasons $D/sft-plain"
  "$T/pulse $R/sft-plain" "$T/sft-reasons $R/sft-plain" "$D/pulse $R/sft-plain" "$D/sft-reasons $R/sft-plain"
  "$T/pulse $R/pulse" "$T/sft-reasons $R/sft-reasons"
  "$N/pulse $T/pulse" "$N/sft-reasons $T/sft-reasons" "$N/pulse $N/sft-reasons"
  "$N/pulse $D/pulse" "$N/sft-reasons $D/sft-reasons" "$N/pulse $D/sft-plain" "$N/sft-reasons $D/sft-plain"
  "$Q/pulse $T/pulse" "$Q/sft-reasons $T/sft-reasons" "$Q/pulse $Q/sft-reasons"
  "$Q/pulse $D/pulse" "$Q/sft-reasons $D/sft-reasons" "$Q/pulse $N/pulse" "$Q/sft-reasons $N/sft-reasons"
)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# pulse compare A B --metric hr@1 --resamples 2000 (paired: the same 200 test users x cand5)" > "$out"
for p in "${pairs[@]}"; do
  set -- $p
  [ -f "$1-cand5.json" ] && [ -f "$2-cand5.json" ] || continue
  echo "## $1-cand5.json $2-cand5.json" >> "$out"
  "$P" compare -q --metric hr@1 --resamples 2000 "$1-cand5.json" "$2-cand5.json" >> "$out"
done
mv "$out" "$T/compare.txt"
trap - EXIT
cat "$T/compare.txt"
