#!/usr/bin/env bash
# One row against several others, paired (`pulse compare --metric hr@1 --resamples 2000`), into one file:
# a header line, then "## A B" and the comparison for each B that exists (missing ones are skipped).
# Written to a temporary file and moved into place, so OUT is never half-written.
#   bash research/scripts/compare-one-vs.sh PULSE OUT "HEADER" A B1 [B2 ...]
# Used by compare-nameless.sh, compare-contrast.sh and compare-hneg.sh.
set -euo pipefail
[ $# -ge 5 ] || { echo "usage: compare-one-vs.sh PULSE OUT HEADER A B1 [B2 ...]" >&2; exit 2; }
P=$1 dest=$2 header=$3 a=$4
shift 4
[ -f "$a" ] || { echo "compare-one-vs.sh: no $a (run the experiment first)" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "$header" > "$out"
for b in "$@"; do
  [ -f "$b" ] || continue
  echo "## $a $b" >> "$out"
  "$P" compare -q --metric hr@1 --resamples 2000 "$a" "$b" >> "$out"
done
mv "$out" "$dest"
trap - EXIT
cat "$dest"
