#!/usr/bin/env bash
# Paired comparisons for the 1,500-user SmolLM2 adapters ranking cand20 lists across domains
# (configs/paper/pulse-cross-{video-games,office}-1500-cand20.toml): each tuned row there against the base SLM
# zero-shot and the Gemma-tuned rows on the same 200 users and lists, the other tuned rows of the folder, and
# (--common: these 200 users of an all-users run) popularity and the untrained-parts hybrid.
# Writes results/pulse-cross-<target>-1500-cand20/compare.txt through a temporary file (never half-written).
#   bash research/scripts/compare-cross-1500-cand20.sh [video-games|office ...] [path/to/pulse via P=]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${P:-target/release/pulse}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(video-games office)
for t in "${targets[@]}"; do
  D=results/pulse-cross-$t-1500-cand20
  case $t in
    video-games) gemma=results/pulse-cross-video-games-500-gemma-tuned-cand20 smol500=results/pulse-cross-video-games-500-gemma-cand20
                 pop=results/baselines-video-games/pop-cand20.json ;;
    office) gemma=results/pulse-cross-office-500-gemma-tuned smol500=
            pop=results/baselines-office/pop-cand20.json ;;
    *) echo "compare-cross-1500-cand20.sh: unknown target '$t' (video-games or office)" >&2; exit 2 ;;
  esac
  rows=()
  for r in pulse sft-reasons sft-tot-likelihood sft-plain; do
    [ -f "$D/$r-cand20.json" ] && rows+=("$r")
  done
  [ ${#rows[@]} -gt 0 ] || { echo "compare-cross-1500-cand20.sh: $D has no tuned row (run its config first)" >&2; exit 1; }
  out=$(mktemp)
  trap 'rm -f "$out"' EXIT
  echo "# pulse compare A B --metric hr@1 --resamples 2000 (the same 200 test users x cand20; --common: of an all-users run)" > "$out"
  for i in "${!rows[@]}"; do
    a=$D/${rows[$i]}-cand20.json
    same=(results/slm-zero-shot-$t-cand20/slm-cand20.json)
    for r in pulse sft-reasons sft-plain; do
      same+=("$gemma/$r-cand20.json")
      [ -n "$smol500" ] && same+=("$smol500/$r-cand20.json")
    done
    for r in "${rows[@]:$((i + 1))}"; do same+=("$D/$r-cand20.json"); done
    for b in "${same[@]}"; do
      [ -f "$b" ] || continue
      echo "## $a $b" >> "$out"
      "$P" compare -q --metric hr@1 --resamples 2000 "$a" "$b" >> "$out"
    done
    for b in "$pop" "results/hybrid-cross-$t-centered-sim/hybrid-cand20.json"; do
      echo "## $a $b (--common)" >> "$out"
      "$P" compare -q --common --metric hr@1 --resamples 2000 "$a" "$b" >> "$out"
    done
  done
  mv "$out" "$D/compare.txt"
  trap - EXIT
  cat "$D/compare.txt"
done
