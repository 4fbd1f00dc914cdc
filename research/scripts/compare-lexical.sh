#!/usr/bin/env bash
# Paired comparisons behind docs/research-log.md's "Lexical similarity" section: writes compare.txt into each
# results/*-lexical folder. Run after the configs it reads:
#   for f in research/configs/hybrid-luxury-beauty-1500.toml configs/baselines/hybrid-luxury-beauty-1500-lexical.toml \
#            research/configs/hybrid-cross-{video-games,office}-1500.toml configs/baselines/hybrid-cross-{video-games,office}-1500-lexical.toml \
#            configs/baselines/hybrid-video-games-untrained-lexical.toml configs/baselines/hybrid-video-games-lexical.toml; do pulse experiment $f; done
#   bash research/scripts/compare-lexical.sh [path/to/pulse]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${1:-target/release/pulse}
cmp() { "$P" compare -q --resamples 2000 "$@"; }

R=results/hybrid-luxury-beauty-1500-lexical B=results/hybrid-luxury-beauty-1500 O=results/hybrid-luxury-beauty
{
  echo "# pulse compare A B --resamples 2000 (paired: every test user, the same candidate lists)"
  echo "# the hybrid with the lexical part vs the same hybrid without it (research/configs/hybrid-luxury-beauty-1500.toml)"
  for p in cand20 cand5 full; do echo "# vs $B/hybrid-$p.json"; cmp "$R/hybrid-$p.json" "$B/hybrid-$p.json"; done
  echo "# vs the committed hybrid (configs/baselines/hybrid-luxury-beauty.toml; its pulse-ts-text trained on the earlier 500-user ToT store)"
  for p in cand20 cand5; do echo "# vs $O/hybrid-$p.json"; cmp --metric hr@1 "$R/hybrid-$p.json" "$O/hybrid-$p.json"; done
  echo "# lexical alone vs content alone (both nothing trained)"
  for p in cand20 cand5 full; do echo "# vs $R/content-$p.json"; cmp "$R/lexical-$p.json" "$R/content-$p.json"; done
  echo "# the reference hybrid (pulse-ts-text of the 1,500-user store) vs the committed one (500-user store)"
  echo "# vs $O/hybrid-cand20.json"; cmp "$B/hybrid-cand20.json" "$O/hybrid-cand20.json"
} > "$R/compare.txt"

for dom in video-games office; do
  R=results/hybrid-cross-$dom-1500-lexical B=results/hybrid-cross-$dom-1500 O=results/hybrid-cross-$dom
  {
    echo "# pulse compare A B --resamples 2000 (paired: every test user, the same candidate lists)"
    echo "# the transferred hybrid with the lexical part vs the same hybrid without it (research/configs/hybrid-cross-$dom-1500.toml)"
    for p in cand5 cand20 full; do echo "# vs $B/hybrid-$p.json"; cmp --metric hr@1 --metric ndcg@10 "$R/hybrid-$p.json" "$B/hybrid-$p.json"; done
    echo "# vs the committed transferred hybrid (configs/baselines/hybrid-cross-$dom.toml; pulse-ts-text of the earlier 500-user ToT store)"
    for p in cand5 cand20; do echo "# vs $O/hybrid-$p.json"; cmp --metric hr@1 "$R/hybrid-$p.json" "$O/hybrid-$p.json"; done
    echo "# vs content alone, and lexical alone vs content alone (both nothing trained)"
    for p in cand5 cand20; do
      echo "# vs $R/content-$p.json"; cmp --metric hr@1 "$R/hybrid-$p.json" "$R/content-$p.json"; cmp --metric hr@1 "$R/lexical-$p.json" "$R/content-$p.json"
    done
  } > "$R/compare.txt"
done

R=results/hybrid-video-games-untrained-lexical
{
  echo "# pulse compare A B --resamples 2000 (paired: every test user, the same candidate lists)"
  echo "# Video Games-tuned (content, lexical, pop) vs the transfer row with Luxury Beauty weights (configs/baselines/hybrid-cross-video-games-1500-lexical.toml)"
  for p in cand5 cand20; do cmp --metric hr@1 "$R/hybrid-$p.json" "results/hybrid-cross-video-games-1500-lexical/hybrid-$p.json"; done
  echo "# vs the same without lexical (configs/baselines/hybrid-video-games-untrained.toml: content, pop)"
  for p in cand5 cand20; do cmp --metric hr@1 "$R/hybrid-$p.json" "results/hybrid-video-games-untrained/hybrid-$p.json"; done
} > "$R/compare.txt"
R=results/hybrid-video-games-lexical
{
  echo "# pulse compare A B --resamples 2000 (paired: every test user, the same candidate lists)"
  echo "# the untrained in-domain hybrid vs SASRec (configs/baselines/baselines-video-games.toml)"
  for p in cand5 cand20 full; do
    echo "# vs results/baselines-video-games/sasrec-$p.json"; cmp --metric hr@1 --metric ndcg@10 "$R/hybrid-$p.json" "results/baselines-video-games/sasrec-$p.json"
  done
  echo "# vs the Video Games-tuned content + lexical + pop mix (configs/baselines/hybrid-video-games-untrained-lexical.toml)"
  for p in cand5 cand20; do cmp --metric hr@1 "$R/hybrid-$p.json" "results/hybrid-video-games-untrained-lexical/hybrid-$p.json"; done
} > "$R/compare.txt"
echo "wrote results/*-lexical/compare.txt"
