#!/usr/bin/env bash
# Gemma 3 270M tuned and ranking against SmolLM2-135M tuned on the same store, users and SFT settings, paired on
# the same test users and cand5 lists: each variant against its SmolLM2 twin, then the Gemma rows' own ordering
# (PULSE vs SFT with reasons vs plain SFT, by compare-ordering.sh).
#   bash research/scripts/compare-tuned-model.sh [in|cross|cross1000|cross20|in20|office|office20] [path/to/pulse]
# in (default): results/pipeline-luxury-beauty-500-gemma-tuned (configs/ablations/pipeline-luxury-beauty-500-gemma-tuned.toml)
#   against results/pipeline-luxury-beauty-500-gemma-eval600 (600 users); the zero-shot rows against each other
#   (SmolLM2's from results/pipeline-luxury-beauty-1500-eval1000, whose 1,000 users begin with these 600).
# cross: results/pulse-cross-video-games-500-gemma-tuned (configs/ablations/pulse-cross-video-games-500-gemma-tuned.toml)
#   against results/pulse-cross-video-games-500-gemma-eval1000 (the 400 users both have).
# cross1000: results/rerank-cross-video-games-500-gemma-tuned-eval1000 (configs/ablations/rerank-cross-video-games-500-gemma-tuned-eval1000.toml:
#   the same adapters on all 1,000 of those users) against the same SmolLM2 folder.
# cross20: results/pulse-cross-video-games-500-gemma-tuned-cand20 (configs/ablations/pulse-cross-video-games-500-gemma-tuned-cand20.toml)
#   against results/pulse-cross-video-games-500-gemma-cand20, on cand20 lists (200 users).
# in20: results/pipeline-luxury-beauty-500-gemma-tuned-cand20 (configs/ablations/pipeline-luxury-beauty-500-gemma-tuned-cand20.toml),
#   Luxury Beauty cand20 (200 users); no SmolLM2 row on the Gemma store there, so the Gemma rows' ordering only.
# office, office20: results/pulse-cross-office-500-gemma-tuned (configs/ablations/pulse-cross-office-500-gemma-tuned.toml), Office
#   cand5 and cand20 (200 users); no SmolLM2 row on the Gemma store there, so the Gemma rows' ordering only.
# Pairs are on the users both files rank (`pulse compare --common`). Writes <Gemma folder>/compare-smollm2.txt (when
# there is a pair) and <Gemma folder>/compare.txt (through temporary files; office20: compare-cand20.txt, beside
# office's cand5 files in the same folder).
set -euo pipefail
cd "$(dirname "$0")/../.."
M=${1:-in}
P=${2:-target/release/pulse}
PR=cand5
X=
case "$M" in
  in) G=results/pipeline-luxury-beauty-500-gemma-tuned S=results/pipeline-luxury-beauty-500-gemma-eval600
      Z=results/pipeline-luxury-beauty-1500-eval1000 ;;
  cross) G=results/pulse-cross-video-games-500-gemma-tuned S=results/pulse-cross-video-games-500-gemma-eval1000
      Z=results/pulse-cross-video-games-1500 ;;
  cross1000) G=results/rerank-cross-video-games-500-gemma-tuned-eval1000 S=results/pulse-cross-video-games-500-gemma-eval1000
      Z=results/pulse-cross-video-games-1500 ;;
  cross20) G=results/pulse-cross-video-games-500-gemma-tuned-cand20 S=results/pulse-cross-video-games-500-gemma-cand20
      Z= PR=cand20 ;;
  in20) G=results/pipeline-luxury-beauty-500-gemma-tuned-cand20 S= Z= PR=cand20 ;;
  office) G=results/pulse-cross-office-500-gemma-tuned S= Z= ;;
  office20) G=results/pulse-cross-office-500-gemma-tuned S= Z= PR=cand20 X=-cand20 ;;
  *) echo "usage: compare-tuned-model.sh [in|cross|cross1000|cross20|in20|office|office20] [path/to/pulse]" >&2; exit 2 ;;
esac
[ -d "$G" ] || { echo "compare-tuned-model.sh: no $G (run the experiment first)" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
n=0
echo "# pulse compare A B --common --metric hr@1 --resamples 2000 (A: Gemma 3 270M, B: SmolLM2-135M, each tuned on the same store, or both zero-shot; --common: the test users both rank x $PR)" > "$out"
# S (the SmolLM2 twins) and Z (SmolLM2 zero-shot) are empty where there is no SmolLM2 row to pair with
pairs=()
[ -z "$S" ] || pairs+=("pulse-$PR.json $S/pulse-$PR.json" "sft-reasons-$PR.json $S/sft-reasons-$PR.json" "sft-plain-$PR.json $S/sft-plain-$PR.json")
[ -z "$Z" ] || pairs+=("slm-$PR.json $Z/slm-$PR.json")
for pair in "${pairs[@]}"; do
  read -r a b <<<"$pair"
  [ -f "$G/$a" ] && [ -f "$b" ] || continue
  n=$((n + 1))
  echo "## $G/$a $b" >> "$out"
  "$P" compare -q --common --metric hr@1 --resamples 2000 "$G/$a" "$b" >> "$out"
done
if [ "$n" -gt 0 ]; then
  mv "$out" "$G/compare-smollm2$X.txt"
  cat "$G/compare-smollm2$X.txt"
fi
rm -f "$out"
trap - EXIT
PROTOCOL=$PR OUT=compare$X.txt bash research/scripts/compare-ordering.sh "$G" "$P"
