#!/usr/bin/env bash
# Paired comparisons for SmolLM2's 1,500-user Luxury Beauty adapters reranking a hybrid's cand5/cand20 lists:
# the untrained-parts hybrid's across domains (configs/paper/rerank-cross-*-1500*-sim.toml) and the in-domain hybrid's
# on 1,000 Luxury Beauty cand5 users (configs/paper/rerank-luxury-beauty-1500-cand5-eval1000.toml), on the fused rows'
# test users:
# - each fused row (<row>+hybrid) against the hybrid it reranks and against its SLM row alone;
# - wherever ToT with likelihood reranks the same lists, PULSE against it, fused and alone;
# - on the 1,000 Video Games cand5 users, PULSE (alone and fused) against the Gemma 3 270M-tuned PULSE adapter on
#   the same users and lists
#   (results/rerank-cross-video-games-500-gemma-tuned-eval1000-sim);
# - on the 1,000 Luxury Beauty cand5 users, each SLM row alone against the same adapter's row in
#   results/pipeline-luxury-beauty-1500-eval1000 (ToT with likelihood) or results/retrain-check-pulse-1500-again
#   (PULSE): ranked again, they must agree.
# Writes compare.txt into each of those folders with a fused row (through a temporary file: never half-written).
# Run after the configs:
#   bash research/scripts/compare-rerank-1500.sh [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${1:-target/release/pulse}
cmpc() { "$P" compare -q --resamples 2000 --common --metric hr@1 "$@"; }   # the hybrid ranks every test user
G=results/rerank-cross-video-games-500-gemma-tuned-eval1000-sim
out=
trap 'rm -f "$out"' EXIT
n=0
for D in results/rerank-luxury-beauty-1500-cand5-eval1000 results/rerank-cross-video-games-1500-eval1000-sim results/rerank-cross-video-games-1500-cand20-sim \
  results/rerank-cross-office-1500-sim results/rerank-cross-office-1500-eval1000-sim \
  results/rerank-cross-office-1500-cand20-sim; do
  fused=()
  for f in "$D"/*+hybrid-cand5.json "$D"/*+hybrid-cand20.json; do [ -f "$f" ] && fused+=("$f"); done
  [ ${#fused[@]} -gt 0 ] || continue   # not run (or not this far) yet
  out=$(mktemp)
  {
    echo "# pulse compare A B --resamples 2000 --common (paired: the fused rows' test users, the same candidate lists)"
    for f in "${fused[@]}"; do
      b=$(basename "$f" .json); m=${b%+hybrid-*}; pr=${b##*-}
      echo "# $m+hybrid vs the hybrid it reranks"; cmpc "$f" "$D/hybrid-$pr.json"
      echo "# $m+hybrid vs $m alone"; cmpc "$f" "$D/$m-$pr.json"
    done
    for pr in cand5 cand20; do
      [ -f "$D/sft-tot-likelihood+hybrid-$pr.json" ] || continue
      echo "# pulse+hybrid vs sft-tot-likelihood+hybrid"
      cmpc "$D/pulse+hybrid-$pr.json" "$D/sft-tot-likelihood+hybrid-$pr.json"
      echo "# pulse vs sft-tot-likelihood (alone)"
      cmpc "$D/pulse-$pr.json" "$D/sft-tot-likelihood-$pr.json"
    done
    if [ "$D" = results/rerank-luxury-beauty-1500-cand5-eval1000 ]; then
      echo "# pulse alone vs the same adapter in results/retrain-check-pulse-1500-again (lb-cand5-1000)"
      cmpc "$D/pulse-cand5.json" results/retrain-check-pulse-1500-again/pulse-lb-cand5-1000.json
      echo "# sft-tot-likelihood alone vs results/pipeline-luxury-beauty-1500-eval1000's row"
      cmpc "$D/sft-tot-likelihood-cand5.json" results/pipeline-luxury-beauty-1500-eval1000/sft-tot-likelihood-cand5.json
    fi
    if [ "$D" = results/rerank-cross-video-games-1500-eval1000-sim ]; then
      echo "# pulse+hybrid (SmolLM2) vs the Gemma 3 270M-tuned pulse+hybrid ($G)"
      cmpc "$D/pulse+hybrid-cand5.json" "$G/pulse+hybrid-cand5.json"
      echo "# pulse alone (SmolLM2) vs the Gemma 3 270M-tuned pulse alone ($G)"
      cmpc "$D/pulse-cand5.json" "$G/pulse-cand5.json"
    fi
  } > "$out"
  mv "$out" "$D/compare.txt"
  out=
  n=$((n + 1))
  echo "== $D/compare.txt"; cat "$D/compare.txt"
done
[ "$n" -gt 0 ] || { echo "compare-rerank-1500.sh: none of the folders above has a fused row; run their configs first" >&2; exit 1; }
