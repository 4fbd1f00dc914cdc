#!/usr/bin/env bash
# The rationales stage's slices (`pulse rationales --slice`): what they cost and what they buy. Run it alone.
#   1. speed: the first USERS users (default 256) of the bundled Luxury Beauty data with the method's
#      settings (configs/stages/rationales-luxury-beauty.toml), once per slice size in SLICES (default "256 128 32"),
#      each into a fresh store: seconds, seconds per user, new tokens per second, ratio to one slice.
#   2. replay: REPLAY users (default 48) in one run against the same command cut in two (REPLAY/2 users,
#      then REPLAY: what a kill and a resume do), with slices of REPLAY/2 and with one slice of REPLAY:
#      how many of the stored rationales differ between the uninterrupted and the cut run.
#      REPLAY=0 skips this part.
#   bash bench/rationales/slice.sh   → results/bench-rationales-slice/table.md (OUT=DIR: DIR/table.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
users="${USERS:-256}"
slices="${SLICES:-256 128 32}"
replay="${REPLAY:-48}"
out="${OUT:-results/bench-rationales-slice}"
bash scripts/fetch_models.sh >/dev/null
cargo build --release --quiet --bin pulse
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
run() { # store users slice [summary]
  ./target/release/pulse -q rationales --config configs/stages/rationales-luxury-beauty.toml --seed 42 \
    --store "$1" --users "$2" --slice "$3" ${4:+--summary "$4"} >/dev/null
}
for s in $slices; do
  run "$tmp/speed-$s.sqlite" "$users" "$s" "$tmp/speed-$s.json"
done
half=$((replay / 2))
if [ "$replay" -gt 0 ]; then
  for s in "$half" "$replay"; do
    run "$tmp/whole-$s.sqlite" "$replay" "$s"
    run "$tmp/cut-$s.sqlite" "$half" "$s"
    run "$tmp/cut-$s.sqlite" "$replay" "$s"
  done
fi
mkdir -p "$out"
python3 - "$tmp" "$users" "$slices" "$replay" <<'PY' | tee "$out/table.md"
import json, sqlite3, sys
tmp, users, slices, replay = sys.argv[1], int(sys.argv[2]), [int(s) for s in sys.argv[3].split()], int(sys.argv[4])
rows = [(s, json.load(open(f"{tmp}/speed-{s}.json"))["summary"]) for s in slices]
base = rows[0][1]["seconds"]
print("| slice | users | seconds | s / user | new tokens | new tokens / s | time vs slice " + str(slices[0]) + " |")
print("|---|---|---|---|---|---|---|")
for s, r in rows:
    print(f"| {s} | {r['generated']} | {r['seconds']:.0f} | {r['seconds'] / r['generated']:.2f} | {r['new_tokens']} | "
          f"{r['new_tokens'] / r['seconds']:.1f} | {r['seconds'] / base:.2f}× |")
print()
def texts(p):
    c = sqlite3.connect(p)
    return dict(((u, t), (r, raw)) for u, t, r, raw in c.execute("SELECT user, target, rationale, raw FROM rationales"))
if replay > 0:
    print(f"| slice | users | rationales that differ: {replay} users in one run vs {replay // 2} then {replay} |")
    print("|---|---|---|")
    for s in (replay // 2, replay):
        a, b = texts(f"{tmp}/whole-{s}.sqlite"), texts(f"{tmp}/cut-{s}.sqlite")
        assert a.keys() == b.keys(), "the two runs stored different users"
        print(f"| {s} | {len(a)} | {sum(a[k] != b[k] for k in a)} |")
    print()
print(f"From `bash bench/rationales/slice.sh` (USERS={users}, SLICES=\"{' '.join(map(str, slices))}\", REPLAY={replay}; "
      "configs/stages/rationales-luxury-beauty.toml, seed 42, engine batch 32).")
PY
