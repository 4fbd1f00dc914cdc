#!/usr/bin/env bash
# Is a retrained SFT adapter the recorded one? Re-ranks recorded lists (the same seeded 200 users, 1,000 for
# lb-cand5-1000, and candidate files) with the adapter now under runs/sft/ and compares it, paired and user by
# user, with the recorded row (`pulse compare` also counts the users whose rank of the true item differs).
# Used for the 1,500-user plain SFT, SFT with reasons and ToT with likelihood adapters, retrained for
# configs/paper/pulse-cross-*-1500-cand20.toml after the first ones were lost with an old runs/, and for PULSE, whose
# retrained adapter is a new one (the store it trains on was regenerated after the recorded adapter was trained),
# so it is checked on every recorded 1,500-user cell it could have filled.
# Checks (default lb-cand5), each against its recorded row:
#   lb-cand5            results/pipeline-luxury-beauty-1500                  (~3 min on 2 cores)
#   lb-cand20           results/pipeline-luxury-beauty-1500-cand20           (~10 min)
#   lb-full             results/two-stage-luxury-beauty-1500, content's top 20 reranked (~15 min); also
#                       compared with content alone there
#   video-games-cand5   results/pulse-cross-video-games-1500                 (~2.5 min)
#   video-games-cand20  results/pulse-cross-video-games-1500-cand20          (~12 min)
#   office-cand5        results/pulse-cross-office-1500                      (~3.5 min)
#   office-cand20       results/pulse-cross-office-1500-cand20               (~20 min)
#   vg-own-cand5        results/pipeline-video-games-1500, ranked by the variant's Video Games adapter
#   lb-cand5-1000       results/pipeline-luxury-beauty-1500-eval1000: cand5 on 1,000 seeded users, a superset of
#                       lb-cand5's 200 (~20 min); also compared with that folder's other SFT rows
# The adapters are the ones `pulse experiment configs/paper/pipeline-<domain>-1500.toml --train-adapter VARIANT` names
# (Luxury Beauty's for all but vg-own-cand5, Video Games' for that one); a missing one is trained first with
# that config's settings (60-110 min on 2 cores; resumable), as research/scripts/two-stage-full.sh does.
# A check whose result is there is not re-ranked; compare.txt is rewritten from every check with a result.
# COMPARE_ONLY=1 ranks nothing (CI uses it to check that each committed compare.txt is what the committed result
# files give).
#   [OUT=DIR] [REF=DIR] bash research/scripts/retrain-check.sh [plain|reasons|tot-likelihood|pulse] [check ...]
# OUT: the folder for the results and compare.txt (default results/retrain-check-<variant>-1500).
# REF: an earlier folder of this script for the same variant (a twin adapter, e.g. a retrain on another day);
# each check whose result file it holds too is also compared with it.
# PULSE's second retrain (lora:93b135dc) against its first (lora:b6112f19), every check but vg-own-cand5:
#   OUT=results/retrain-check-pulse-1500-again REF=results/retrain-check-pulse-1500 \
#     bash research/scripts/retrain-check.sh pulse lb-cand5 lb-cand20 lb-full video-games-cand5 video-games-cand20 \
#     office-cand5 office-cand20 lb-cand5-1000
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${P:-target/release/pulse}
v=${1:-plain}
shift || true
case $v in
  plain|reasons|tot-likelihood) row=sft-$v ;;
  pulse) row=pulse ;;
  *) echo "retrain-check.sh: unknown variant '$v' (plain, reasons, tot-likelihood or pulse)" >&2; exit 2 ;;
esac
all=(lb-cand5 lb-cand20 lb-full video-games-cand5 video-games-cand20 office-cand5 office-cand20 vg-own-cand5
  lb-cand5-1000)
checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(lb-cand5)
D=${OUT:-results/retrain-check-$v-1500}
REF=${REF:-}
if [ -n "$REF" ]; then
  [ -d "$REF" ] || { echo "retrain-check.sh: REF=$REF: no such folder" >&2; exit 2; }
  [ "$(realpath -m "$REF")" != "$(realpath -m "$D")" ] || { echo "retrain-check.sh: REF and OUT are the same folder ($D)" >&2; exit 2; }
fi
LB=data/amazon2018-luxury-beauty
VG=../shared/data/amazon2018-video-games
OF=../shared/data/amazon2014-office-products
# check -> data folder, protocol, test users, recorded folder, result file (lb-cand5 keeps its first name), the
# adapters' domain, domain (the rest of the line, so it may hold spaces)
spec() {
  case $1 in
    lb-cand5) echo "$LB cand5 200 results/pipeline-luxury-beauty-1500 $D/$v-cand5.json luxury-beauty Luxury Beauty" ;;
    lb-cand20) echo "$LB cand20 200 results/pipeline-luxury-beauty-1500-cand20 $D/$v-lb-cand20.json luxury-beauty Luxury Beauty" ;;
    lb-full) echo "$LB full 200 results/two-stage-luxury-beauty-1500 $D/$v-lb-full.json luxury-beauty Luxury Beauty" ;;
    video-games-cand5) echo "$VG cand5 200 results/pulse-cross-video-games-1500 $D/$v-video-games-cand5.json luxury-beauty Video Games" ;;
    video-games-cand20) echo "$VG cand20 200 results/pulse-cross-video-games-1500-cand20 $D/$v-video-games-cand20.json luxury-beauty Video Games" ;;
    office-cand5) echo "$OF cand5 200 results/pulse-cross-office-1500 $D/$v-office-cand5.json luxury-beauty Office Products" ;;
    office-cand20) echo "$OF cand20 200 results/pulse-cross-office-1500-cand20 $D/$v-office-cand20.json luxury-beauty Office Products" ;;
    vg-own-cand5) echo "$VG cand5 200 results/pipeline-video-games-1500 $D/$v-vg-own-cand5.json video-games Video Games (its Video Games adapter)" ;;
    lb-cand5-1000) echo "$LB cand5 1000 results/pipeline-luxury-beauty-1500-eval1000 $D/$v-lb-cand5-1000.json luxury-beauty Luxury Beauty" ;;
    *) return 1 ;;
  esac
}
for c in "${checks[@]}"; do
  spec "$c" > /dev/null || { echo "retrain-check.sh: unknown check '$c' (one of: ${all[*]})" >&2; exit 2; }
done
mkdir -p "$D"
for c in "${checks[@]}"; do
  read -r data proto n _ res adom _ <<< "$(spec "$c")"
  if [ ! -f "$res" ] && [ -z "${COMPARE_ONLY:-}" ]; then
    ad=$("$P" experiment -q "configs/paper/pipeline-$adom-1500.toml" --train-adapter "$v")
    # the full catalogue in two stages, as research/scripts/two-stage-full.sh ranks the recorded row
    two=()
    [ "$proto" != full ] || two=(--shortlist content --shortlist-k 20)
    "$P" eval -q --data "$data" --model slm --adapter "$ad" --score pmi --protocol "$proto" --users "$n" \
      "${two[@]}" --out "$res"
  fi
done
lora() { grep -o 'lora:[0-9a-f]\{8\}' "$1" | head -1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for c in "${all[@]}"; do
  read -r _ proto n rec res _ domain <<< "$(spec "$c")"
  [ -f "$res" ] || continue
  if [ "$proto" = full ]; then
    cmp=(--metric ndcg@10 --metric hr@10 --resamples 2000)
    what="full NDCG@10 (content's top 20 reranked), the same $n users"
  else
    cmp=(--metric hr@1 --resamples 2000)
    what="$proto, the same $n users and lists"
  fi
  B=$rec/$row-$proto.json
  echo "# pulse compare A B ${cmp[*]}: the retrained $row adapter ($(lora "$res")) against the recorded one ($(lora "$B")), $domain $what"
  "$P" compare -q "${cmp[@]}" "$res" "$B"
  R=$REF/$(basename "$res")
  if [ -n "$REF" ] && [ -f "$R" ]; then
    echo "# the same against $REF's adapter ($(lora "$R"), $R)"
    "$P" compare -q "${cmp[@]}" "$res" "$R"
  fi
  if [ "$proto" = full ]; then
    echo "# the same against content alone ($rec/content-full.json)"
    "$P" compare -q "${cmp[@]}" "$res" "$rec/content-full.json"
  fi
  if [ "$c" = lb-cand5-1000 ]; then
    for o in sft-plain sft-reasons sft-tot-likelihood pulse; do
      [ "$o" != "$row" ] || continue
      echo "# the same against the recorded $o row ($(lora "$rec/$o-$proto.json"), $rec/$o-$proto.json)"
      "$P" compare -q "${cmp[@]}" "$res" "$rec/$o-$proto.json"
    done
  fi
done > "$out"
mv "$out" "$D/compare.txt"
trap - EXIT
cat "$D/compare.txt"
