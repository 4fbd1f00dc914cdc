#!/usr/bin/env bash
# Tree-of-Thought speed on this machine: the same 32 Luxury Beauty users refined twice by `pulse tot` (method
# settings from configs/stages/tot-luxury-beauty.toml, judged by the committed Thought Space), once with the
# prompt-prefix KV cache off (--prefix-cache-mb 0: every node's prompt is computed in full) and once with
# the default cache (a user's prompt is computed once; deeper nodes compute only their chain). Each run
# writes into its own copy of the store, so neither finds rows to skip. Run it alone (2 cores).
#   USERS=32 bash bench/tot/run.sh [STORE]      → results/bench-tot/table.md
set -euo pipefail
cd "$(dirname "$0")/../.."
store="${1:-runs/rationales-luxury-beauty.sqlite}"
users="${USERS:-32}"
bash scripts/fetch_models.sh >/dev/null
cargo build --release --quiet --bin pulse
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p results/bench-tot
for mb in 0 1024; do
  cp "$store" "$tmp/store-$mb.sqlite"
  ./target/release/pulse -q tot --store "$tmp/store-$mb.sqlite" --space results/thought-luxury-beauty \
    --config configs/stages/tot-luxury-beauty.toml --users "$users" --seed 7 --prefix-cache-mb "$mb" \
    --summary "results/bench-tot/cache-$mb.json" >/dev/null
done
python3 - results/bench-tot/cache-0.json results/bench-tot/cache-1024.json <<'PY' | tee results/bench-tot/table.md
import json, sys
rows = [json.load(open(p)) for p in sys.argv[1:]]
print("| prefix cache | users | thoughts | new tokens | s (SLM) | s (judge) | s total | s / user | speed-up |")
print("|---|---|---|---|---|---|---|---|---|")
base = rows[0]["summary"]["seconds"]
for name, r in zip(["off", "1024 MiB (default)"], rows):
    s = r["summary"]
    print(f"| {name} | {s['refined']} | {s['thoughts']} | {s['new_tokens']} | {s['generate_seconds']:.1f} | "
          f"{s['score_seconds']:.1f} | {s['seconds']:.1f} | {s['seconds'] / s['refined']:.2f} | {base / s['seconds']:.2f}× |")
print()
print("From `bash bench/tot/run.sh` (depth 3, 3 samples per node, beam 2, thoughts ≤ 61 tokens, seed 7).")
PY
