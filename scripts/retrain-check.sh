#!/usr/bin/env bash
# Is a retrained SFT adapter the recorded one? Re-ranks recorded lists (the same seeded 200 users and candidate
# files) with the adapter now under runs/sft/ and compares it, paired and user by user, with the recorded row
# (`pulse compare` also counts the users whose rank of the true item differs).
# Used for the 1,500-user plain SFT, SFT with reasons and ToT with likelihood adapters, retrained for
# configs/pulse-cross-*-1500-cand20.toml after the first ones were lost with an old runs/, and for PULSE, whose
# retrained adapter is a new one (the store it trains on was regenerated after the recorded adapter was trained),
# so it is checked on every recorded 1,500-user cell it could have filled.
# Checks (default lb-cand5), each against its recorded row:
#   lb-cand5           results/pipeline-luxury-beauty-1500           (~3 min on 2 cores)
#   lb-cand20          results/pipeline-luxury-beauty-1500-cand20    (~10 min)
#   video-games-cand5  results/pulse-cross-video-games-1500          (~2.5 min)
#   office-cand5       results/pulse-cross-office-1500               (~3.5 min)
#   vg-own-cand5       results/pipeline-video-games-1500, ranked by the variant's Video Games adapter
# The adapters are the ones `pulse experiment configs/pipeline-<domain>-1500.toml --train-adapter VARIANT` names
# (Luxury Beauty's for the first four checks, Video Games' for vg-own-cand5); a missing one is trained first with
# that config's settings (60-110 min on 2 cores; resumable), as scripts/two-stage-full.sh does.
# A check whose result is there is not re-ranked; compare.txt holds every check with a result.
#   bash scripts/retrain-check.sh [plain|reasons|tot-likelihood|pulse] [check ...]
set -euo pipefail
cd "$(dirname "$0")/.."
P=${P:-target/release/pulse}
v=${1:-plain}
shift || true
case $v in
  plain|reasons|tot-likelihood) row=sft-$v ;;
  pulse) row=pulse ;;
  *) echo "retrain-check.sh: unknown variant '$v' (plain, reasons, tot-likelihood or pulse)" >&2; exit 2 ;;
esac
all=(lb-cand5 lb-cand20 video-games-cand5 office-cand5 vg-own-cand5)
checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(lb-cand5)
D=results/retrain-check-$v-1500
# check -> data folder, protocol, recorded folder, result file (lb-cand5 keeps its first name), the adapters'
# domain, domain (the rest of the line, so it may hold spaces)
spec() {
  case $1 in
    lb-cand5) echo "data/amazon2018-luxury-beauty cand5 results/pipeline-luxury-beauty-1500 $D/$v-cand5.json luxury-beauty Luxury Beauty" ;;
    lb-cand20) echo "data/amazon2018-luxury-beauty cand20 results/pipeline-luxury-beauty-1500-cand20 $D/$v-lb-cand20.json luxury-beauty Luxury Beauty" ;;
    video-games-cand5) echo "../shared/data/amazon2018-video-games cand5 results/pulse-cross-video-games-1500 $D/$v-video-games-cand5.json luxury-beauty Video Games" ;;
    office-cand5) echo "../shared/data/amazon2014-office-products cand5 results/pulse-cross-office-1500 $D/$v-office-cand5.json luxury-beauty Office Products" ;;
    vg-own-cand5) echo "../shared/data/amazon2018-video-games cand5 results/pipeline-video-games-1500 $D/$v-vg-own-cand5.json video-games Video Games (its Video Games adapter)" ;;
    *) return 1 ;;
  esac
}
for c in "${checks[@]}"; do
  spec "$c" > /dev/null || { echo "retrain-check.sh: unknown check '$c' (one of: ${all[*]})" >&2; exit 2; }
done
mkdir -p "$D"
for c in "${checks[@]}"; do
  read -r data proto _ res adom _ <<< "$(spec "$c")"
  if [ ! -f "$res" ]; then
    ad=$("$P" experiment -q "configs/pipeline-$adom-1500.toml" --train-adapter "$v")
    "$P" eval -q --data "$data" --model slm --adapter "$ad" --score pmi --protocol "$proto" --users 200 --out "$res"
  fi
done
cmp=(--metric hr@1 --resamples 2000)
lora() { grep -o 'lora:[0-9a-f]\{8\}' "$1" | head -1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for c in "${all[@]}"; do
  read -r _ proto rec res _ domain <<< "$(spec "$c")"
  [ -f "$res" ] || continue
  B=$rec/$row-$proto.json
  echo "# pulse compare A B ${cmp[*]}: the retrained $row adapter ($(lora "$res")) against the recorded one ($(lora "$B")), $domain $proto, the same 200 users and lists"
  "$P" compare -q "${cmp[@]}" "$res" "$B"
done > "$out"
mv "$out" "$D/compare.txt"
trap - EXIT
cat "$D/compare.txt"
