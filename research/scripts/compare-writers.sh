#!/usr/bin/env bash
# Paired comparisons for the question "does a rationale that restates less of the chosen title transfer better?":
# pulse-ts-text (and the hybrid it is part of) aligned with SmolLM2's or Gemma's ToT-space chains vs the same
# 500 users' initial rationales, on each transfer target. Writes compare.txt into the -500-smollm2 and -500-gemma
# folders. Run after:
#   for d in video-games office; do for k in initial smollm2 gemma; do
#     pulse experiment research/configs/hybrid-cross-$d-centered-500-$k.toml; done; done
#   bash research/scripts/compare-writers.sh [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${1:-target/release/pulse}
cmp() { "$P" compare -q --resamples 2000 "$@"; }
# every pulse-ts-text and hybrid file of folder $1 against its twin in folder $2
against() {
  for m in pulse-ts-text hybrid; do
    for p in cand5 cand20 full; do echo "# $m, vs $2/$m-$p.json"; cmp --metric hr@1 --metric ndcg@10 "$1/$m-$p.json" "$2/$m-$p.json"; done
  done
}
out=
trap 'rm -f "$out"' EXIT

for d in video-games office; do
  B=results/hybrid-cross-$d-centered-500-initial
  for k in smollm2 gemma; do
    R=results/hybrid-cross-$d-centered-500-$k
    [ -f "$R/hybrid-cand5.json" ] && [ -f "$B/hybrid-cand5.json" ] || continue
    out=$(mktemp)
    {
      echo "# pulse compare A B --resamples 2000 (paired: every test user, the same candidate lists)"
      echo "# pulse-ts-text aligned with $k's ToT-space chains vs the same 500 users' initial rationales ($B)"
      against "$R" "$B"
      if [ "$k" = gemma ] && [ -f "results/hybrid-cross-$d-centered-500-smollm2/hybrid-cand5.json" ]; then
        S=results/hybrid-cross-$d-centered-500-smollm2
        echo "# Gemma's chains vs SmolLM2's ($S)"
        against "$R" "$S"
      fi
    } > "$out"
    mv "$out" "$R/compare.txt"   # never half-written
    out=
  done
done
