#!/usr/bin/env bash
# Paired comparisons behind docs/research-log.md's "Centred item-text embeddings" section: writes compare.txt into
# each results/*-centered folder. Run after the configs it reads:
#   for c in hybrid-cross-video-games hybrid-luxury-beauty hybrid-cross-office; do
#     pulse experiment configs/baselines/$c-centered.toml; pulse experiment research/configs/$c-initial.toml; done
#   for d in video-games office; do pulse experiment research/configs/hybrid-cross-$d-centered-grid.toml; done
#   for f in configs/baselines/hybrid-cross-video-games-centered-tot.toml research/configs/hybrid-luxury-beauty-centered-tot.toml \
#            research/configs/hybrid-cross-office-centered-tot.toml; do pulse experiment $f; done   # after the 1,500-user ToT stage
#   bash research/scripts/compare-centered.sh [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${1:-target/release/pulse}
cmp() { "$P" compare -q --resamples 2000 "$@"; }

for c in hybrid-cross-video-games hybrid-luxury-beauty hybrid-cross-office; do
  R=results/$c-centered B=results/$c-initial
  {
    echo "# pulse compare A B --resamples 2000 (paired: every test user, the same candidate lists)"
    echo "# centred item-text embeddings vs the same experiment without centring (research/configs/$c-initial.toml)"
    for m in hybrid content pulse-ts-text; do
      for p in cand5 cand20 full; do echo "# $m, vs $B/$m-$p.json"; cmp --metric hr@1 --metric ndcg@10 "$R/$m-$p.json" "$B/$m-$p.json"; done
    done
    echo "# the centred hybrid vs lexical alone (the best single part where it is)"
    for p in cand5 cand20; do echo "# vs $R/lexical-$p.json"; cmp --metric hr@1 "$R/hybrid-$p.json" "$R/lexical-$p.json"; done
    if [ -d "results/$c-centered-grid" ]; then
      echo "# the same with content's and lexical's profile settings chosen on Luxury Beauty validation (research/configs/$c-centered-grid.toml)"
      for p in cand5 cand20; do echo "# grid, vs $R/hybrid-$p.json"; cmp --metric hr@1 "results/$c-centered-grid/hybrid-$p.json" "$R/hybrid-$p.json"; done
    fi
  } > "$R/compare.txt"
done

# the <c>-centered-tot configs (above): pulse-ts-text aligned with the ToT-space rationales instead of the initial ones
# (both centred); written only where that experiment has run
for c in hybrid-cross-video-games hybrid-luxury-beauty hybrid-cross-office; do
  T=results/$c-centered-tot R=results/$c-centered
  [ -f "$T/hybrid-cand5.json" ] || continue
  {
    echo "# pulse compare A B --resamples 2000 (paired: every test user, the same candidate lists)"
    echo "# pulse-ts-text aligned with ToT-space rationales vs initial ones (configs/baselines/$c-centered.toml), both centred"
    for m in hybrid pulse-ts-text; do
      for p in cand5 cand20 full; do echo "# $m, vs $R/$m-$p.json"; cmp --metric hr@1 --metric ndcg@10 "$T/$m-$p.json" "$R/$m-$p.json"; done
    done
  } > "$T/compare.txt"
done
