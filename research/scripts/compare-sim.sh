#!/usr/bin/env bash
# Paired comparisons for "which parts transfer" (docs/research-log.md), on every test user of each target unless said:
# - the cross-domain hybrid of the untrained parts (content, lexical, the target's popularity;
#   configs/baselines/hybrid-cross-*-centered-sim.toml) against the hybrid that also has the Luxury Beauty-trained
#   pulse-ts-text (configs/baselines/hybrid-cross-*-centered.toml);
# - the four-part hybrid with its weights tuned on the other target's validation
#   (configs/baselines/hybrid-cross-*-centered-tune{office,vg}.toml; on MovieLens-100K: -tuneml) against both;
# - the fused rows over each hybrid on the 1,000 Video Games users (their ordering: SUFFIX=+hybrid bash
#   research/scripts/compare-ordering.sh on the -eval1000-sim folder), and PULSE's on 5,000 (-eval5000-sim, and
#   -eval5000-tuneoffice, where every weight is tuned on Office).
# Writes compare.txt into each of those folders. Run after their configs:
#   bash research/scripts/compare-sim.sh [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${1:-target/release/pulse}
cmp() { "$P" compare -q --resamples 2000 "$@"; }
cmpc() { cmp --common "$@"; }   # a 1,000-user row against an all-user one: pair on the 1,000
out=
trap 'rm -f "$out"' EXIT
write() { # folder, then the lines' producer
  local dir=$1; shift
  out=$(mktemp)
  { echo "# pulse compare A B --resamples 2000 (paired: the same test users and candidate lists)"; "$@"; } > "$out"
  mv "$out" "$dir/compare.txt"   # never half-written
  out=
}
# the hybrid rows of folders $1 and $2 on every protocol
hybrid_protocols() {
  for p in cand5 cand20 full; do echo "# hybrid $p"; cmp --metric hr@1 --metric ndcg@10 "$1/hybrid-$p.json" "$2/hybrid-$p.json"; done
}
hybrids() {
  local d=$1 R=results/hybrid-cross-$1-centered-sim B=results/hybrid-cross-$1-centered
  echo "# hybrid without pulse-ts-text ($R) vs with it ($B)"
  hybrid_protocols "$R" "$B"
}
fused() {
  local R=results/rerank-cross-video-games-500-gemma-tuned-eval1000-sim B=results/rerank-cross-video-games-500-gemma-tuned-eval1000
  for m in pulse sft-reasons sft-plain; do
    echo "# $m+hybrid vs the hybrid it reranks ($R)"; cmpc --metric hr@1 "$R/$m+hybrid-cand5.json" "$R/hybrid-cand5.json"
    echo "# $m+hybrid over the hybrid without pulse-ts-text vs over the hybrid with it ($B)"; cmpc --metric hr@1 "$R/$m+hybrid-cand5.json" "$B/$m+hybrid-cand5.json"
  done
  echo "# the two runs' hybrid rows (every test user; the eval1000 run rebuilt pulse-ts-text, so its hybrid is 0.6999, not the committed 0.6994)"; cmpc --metric hr@1 "$R/hybrid-cand5.json" "$B/hybrid-cand5.json"
}
tuned_away() { # the four-part hybrid with its weights tuned on a third domain ($2: office, vg, ml) vs the two above
  local d=$1 R=results/hybrid-cross-$1-centered-tune$2
  for B in "results/hybrid-cross-$d-centered" "results/hybrid-cross-$d-centered-sim"; do
    echo "# the four-part hybrid, weights tuned on the validation lists of $2 ($R) vs $B"
    hybrid_protocols "$R" "$B"
  done
}
fused5000() {
  local R=results/rerank-cross-video-games-500-gemma-tuned-eval5000-sim
  echo "# pulse+hybrid vs the hybrid it reranks, on the 5,000 users ($R)"; cmpc --metric hr@1 "$R/pulse+hybrid-cand5.json" "$R/hybrid-cand5.json"
  echo "# pulse alone vs the hybrid"; cmpc --metric hr@1 "$R/pulse-cand5.json" "$R/hybrid-cand5.json"
}
fused5000_office() {
  local R=results/rerank-cross-video-games-500-gemma-tuned-eval5000-tuneoffice S=results/rerank-cross-video-games-500-gemma-tuned-eval5000-sim
  echo "# every weight tuned on Office: pulse+hybrid vs the hybrid it reranks, on the 5,000 users ($R)"; cmpc --metric hr@1 "$R/pulse+hybrid-cand5.json" "$R/hybrid-cand5.json"
  echo "# its hybrid (tuned on 4,500 Office users) vs the -tuneoffice hybrid (4,905 users; every test user)"; cmp --metric hr@1 "$R/hybrid-cand5.json" results/hybrid-cross-video-games-centered-tuneoffice/hybrid-cand5.json
  echo "# its hybrid vs the three-part -sim hybrid (every test user)"; cmp --metric hr@1 "$R/hybrid-cand5.json" results/hybrid-cross-video-games-centered-sim/hybrid-cand5.json
  echo "# its pulse+hybrid vs the -sim run's (5,000 users)"; cmp --metric hr@1 "$R/pulse+hybrid-cand5.json" "$S/pulse+hybrid-cand5.json"
}
for d in video-games office; do write "results/hybrid-cross-$d-centered-sim" hybrids "$d"; done
[ -f results/rerank-cross-video-games-500-gemma-tuned-eval5000-tuneoffice/pulse+hybrid-cand5.json ] && write results/rerank-cross-video-games-500-gemma-tuned-eval5000-tuneoffice fused5000_office
[ -f results/hybrid-cross-video-games-centered-tuneoffice/hybrid-cand5.json ] && write results/hybrid-cross-video-games-centered-tuneoffice tuned_away video-games office
[ -f results/hybrid-cross-office-centered-tunevg/hybrid-cand5.json ] && write results/hybrid-cross-office-centered-tunevg tuned_away office vg
[ -f results/hybrid-cross-video-games-centered-tuneml/hybrid-cand5.json ] && write results/hybrid-cross-video-games-centered-tuneml tuned_away video-games ml
[ -f results/rerank-cross-video-games-500-gemma-tuned-eval1000-sim/pulse+hybrid-cand5.json ] && write results/rerank-cross-video-games-500-gemma-tuned-eval1000-sim fused
[ -f results/rerank-cross-video-games-500-gemma-tuned-eval5000-sim/pulse+hybrid-cand5.json ] && write results/rerank-cross-video-games-500-gemma-tuned-eval5000-sim fused5000
exit 0
