#!/usr/bin/env bash
# Paired comparisons for the 1,500-user Video Games adapters (configs/paper/pipeline-video-games-1500-cand20.toml):
# on cand20, each tuned row against the base SLM zero-shot, the Luxury Beauty adapter of the same variant
# transferred to these lists (configs/paper/pulse-cross-video-games-1500-cand20.toml; for PULSE that is the new adapter
# on the regenerated store, lora:b6112f19), the other tuned rows of the
# folder (all on the same 200 users and lists), and popularity (--common: these 200 users of its all-users run);
# then, on cand5, each retrained adapter against the recorded one (results/pipeline-video-games-1500/, the same
# 200 users and lists; `pulse compare` counts the users whose rank of the true item differs).
# Writes results/pipeline-video-games-1500-cand20/compare.txt through a temporary file (never half-written).
#   bash research/scripts/compare-video-games-1500-cand20.sh   [path/to/pulse via P=]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${P:-target/release/pulse}
D=results/pipeline-video-games-1500-cand20
rows=()
for r in sft-plain sft-reasons pulse sft-tot-likelihood; do
  [ -f "$D/$r-cand20.json" ] && rows+=("$r")
done
[ ${#rows[@]} -gt 0 ] || { echo "compare-video-games-1500-cand20.sh: $D has no tuned row (run its config first)" >&2; exit 1; }
# cmp A B [--common]
cmp() { echo "## $*"; "$P" compare -q --metric hr@1 --resamples 2000 ${3:-} "$1" "$2"; }
lora() { grep -o 'lora:[0-9a-f]\{8\}' "$1" | head -1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
{
  echo "# pulse compare A B --metric hr@1 --resamples 2000 (the same 200 test users and lists; --common: of an all-users run)"
  for i in "${!rows[@]}"; do
    a=$D/${rows[$i]}-cand20.json
    for b in results/slm-zero-shot-video-games-cand20/slm-cand20.json results/pulse-cross-video-games-1500-cand20/${rows[$i]}-cand20.json; do
      cmp "$a" "$b"
    done
    for r in "${rows[@]:$((i + 1))}"; do cmp "$a" "$D/$r-cand20.json"; done
    cmp "$a" "$D/pop-cand20.json" --common
  done
  echo "# cand5: the retrained adapter against the recorded one"
  for r in "${rows[@]}"; do
    a=$D/$r-cand5.json b=results/pipeline-video-games-1500/$r-cand5.json
    [ -f "$a" ] || continue
    echo "# $r: $(lora "$a") retrained, $(lora "$b") recorded"
    cmp "$a" "$b"
  done
} > "$out"
mv "$out" "$D/compare.txt"
trap - EXIT
cat "$D/compare.txt"
