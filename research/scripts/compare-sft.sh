#!/usr/bin/env bash
# Paired comparisons of a pipeline experiment's SLM rows (the same test users and candidate lists in every row):
# the SFT variants against each other and against the base SLM, for the rows the directory holds. Writes
# compare.txt into the experiment's results directory. Run after its config, e.g.
#   pulse experiment configs/paper/pipeline-video-games-500.toml
#   bash research/scripts/compare-sft.sh results/pipeline-video-games-500 [path/to/pulse]
#   PROTOCOL=cand20 bash research/scripts/compare-sft.sh results/pipeline-luxury-beauty-1500-cand20   # default cand5
# --against DIR (repeatable) adds, for each SLM row both directories hold, the pair RESULTS_DIR/row vs DIR/row, under
# a "## A B" line naming both files (e.g. the same test users ranked by other adapters: fewer training users, or
# adapters tuned on another domain):
#   bash research/scripts/compare-sft.sh results/pipeline-video-games-1500 \
#     --against results/pipeline-video-games-500 --against results/pulse-cross-video-games-1500
# (results/pipeline-luxury-beauty-1500-eval1000/compare.txt is this script's output for that experiment.)
set -euo pipefail
cd "$(dirname "$0")/../.."
usage="usage: compare-sft.sh RESULTS_DIR [--against DIR]... [path/to/pulse]"
R=${1:?$usage}
shift
against=()
P=target/release/pulse
while [ $# -gt 0 ]; do
  case "$1" in
    --against)
      [ $# -ge 2 ] || { echo "compare-sft.sh: --against needs a directory; $usage" >&2; exit 1; }
      [ -d "$2" ] || { echo "compare-sft.sh: --against: no directory $2" >&2; exit 1; }
      against+=("$2"); shift 2 ;;
    -*) echo "compare-sft.sh: unknown option $1; $usage" >&2; exit 1 ;;
    *) P=$1; shift ;;
  esac
done
proto=${PROTOCOL:-cand5}
[ -d "$R" ] || { echo "compare-sft.sh: no directory $R" >&2; exit 1; }
pairs=(
  "pulse sft-reasons" "pulse sft-plain" "sft-reasons sft-plain"
  "pulse sft-tot-likelihood" "sft-tot-likelihood sft-reasons" "sft-tot-likelihood sft-plain"
  "pulse slm" "sft-reasons slm" "sft-plain slm" "sft-tot-likelihood slm"
)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# one paired comparison, appended to the output, with the flags the header line names
compare() { "$P" compare -q --metric hr@1 --resamples 2000 "$1" "$2" >> "$out"; }
echo "# pulse compare A B --metric hr@1 --resamples 2000 (paired: the same test users and $proto lists); $R" > "$out"
n=0
for p in "${pairs[@]}"; do
  set -- $p
  a="$R/$1-$proto.json" b="$R/$2-$proto.json"
  [ -f "$a" ] && [ -f "$b" ] || continue
  compare "$a" "$b"
  n=$((n + 1))
done
for d in "${against[@]}"; do
  m=0
  for row in pulse sft-tot-likelihood sft-reasons sft-plain slm; do
    a="$R/$row-$proto.json" b="$d/$row-$proto.json"
    [ -f "$a" ] && [ -f "$b" ] || continue
    [ "$m" -gt 0 ] || echo "# against $d: the same test users and $proto lists, ranked by its adapters (slm vs slm: the same base model, a check that the lists match)" >> "$out"
    echo "## $a $b" >> "$out"
    compare "$a" "$b"
    m=$((m + 1))
  done
  [ "$m" -gt 0 ] || { echo "compare-sft.sh: --against $d holds none of $R's SLM rows (-$proto.json)" >&2; exit 1; }
  n=$((n + m))
done
[ "$n" -gt 0 ] || { echo "compare-sft.sh: $R holds no pair of SLM rows (pulse, sft-*, slm -$proto.json)" >&2; exit 1; }
mv "$out" "$R/compare.txt"
trap - EXIT
cat "$R/compare.txt"
