#!/usr/bin/env bash
# Paired comparisons behind the issue's ordering PULSE >= SFT with reasons >= plain SFT, for an experiment whose
# folder has all three rows on the same test users and candidate lists (cand5 unless PROTOCOL is set): PULSE vs
# reasons, reasons vs plain, PULSE vs plain; a pair whose rows the folder lacks is left out (at least one must be
# there).
# Writes DIR/compare.txt, or DIR/$OUT (through a temporary file: never half-written). Used for
#   results/pipeline-luxury-beauty-500-gemma-eval600 (default; configs/ablations/pipeline-luxury-beauty-500-gemma-eval600.toml)
#   results/pipeline-luxury-beauty-500-gemma-tuned (configs/ablations/pipeline-luxury-beauty-500-gemma-tuned.toml, via compare-tuned-model.sh)
#   results/pulse-cross-video-games-500-gemma (research/configs/pulse-cross-video-games-500-gemma.toml)
#   results/pulse-cross-video-games-500-gemma-tuned (configs/ablations/pulse-cross-video-games-500-gemma-tuned.toml, via compare-tuned-model.sh cross)
#   results/pulse-cross-video-games-500-gemma-eval1000 (configs/ablations/pulse-cross-video-games-500-gemma-eval1000.toml)
#   PROTOCOL=cand20 ... results/pulse-cross-video-games-500-gemma-cand20 (configs/ablations/pulse-cross-video-games-500-gemma-cand20.toml)
#   PROTOCOL=cand20 ... results/pulse-cross-video-games-500-gemma-cand20-eval400 (PULSE and reasons only)
#   SUFFIX=+hybrid ... results/rerank-luxury-beauty-500-gemma-tuned and results/rerank-cross-video-games-500-gemma-tuned
#     (the fused rows pulse+hybrid, sft-reasons+hybrid, sft-plain+hybrid; writes DIR/compare+hybrid.txt)
#   SUFFIX=+hybrid ... results/rerank-cross-video-games-500-gemma-tuned-eval1000[-sim]
#   PROTOCOL=cand20 OUT=compare-cand20.txt ... results/pulse-cross-office-500-gemma-tuned (a folder with both protocols;
#     via compare-tuned-model.sh office20)
#   bash research/scripts/compare-ordering.sh [DIR] [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${1:-results/pipeline-luxury-beauty-500-gemma-eval600}
P=${2:-target/release/pulse}
PR=${PROTOCOL:-cand5}
S=${SUFFIX:-}
O=${OUT:-compare$S.txt}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# pulse compare A B --metric hr@1 --resamples 2000 (same test users x $PR)" > "$out"
pairs=0
for ab in "pulse sft-reasons" "sft-reasons sft-plain" "pulse sft-plain"; do
  set -- "${ab% *}$S" "${ab#* }$S"
  [ -f "$D/$1-$PR.json" ] && [ -f "$D/$2-$PR.json" ] || continue
  pairs=$((pairs + 1))
  echo "## $1 vs $2" >> "$out"
  "$P" compare -q --metric hr@1 --resamples 2000 "$D/$1-$PR.json" "$D/$2-$PR.json" >> "$out"
done
[ "$pairs" -gt 0 ] || { echo "compare-ordering.sh: $D has no two of pulse$S, sft-reasons$S, sft-plain$S for $PR" >&2; exit 1; }
mv "$out" "$D/$O"
trap - EXIT
cat "$D/$O"
