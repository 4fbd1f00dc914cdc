#!/usr/bin/env bash
# LoRA SFT speed on this machine: a few optimizer steps of `pulse sft` (SmolLM2-135M, method settings from
# configs/stages/sft-luxury-beauty.toml, PULSE variant on the bundled data) in a fresh folder, then a table of
# seconds per step / per example and tokens per second (forward + backward + AdamW). Run it alone.
#   STEPS=3 bash bench/sft/run.sh [STORE]      → results/bench-sft/table.md
set -euo pipefail
cd "$(dirname "$0")/../.."
store="${1:-runs/rationales-luxury-beauty.sqlite}"
steps="${STEPS:-3}"
bash scripts/fetch_models.sh >/dev/null
cargo build --release --quiet --bin pulse
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
./target/release/pulse -q sft --variant pulse --store "$store" --config configs/stages/sft-luxury-beauty.toml \
  --users 500 --seed 42 --out "$tmp" --max-steps "$steps" >/dev/null
mkdir -p results/bench-sft
python3 - "$tmp/summary.json" <<'PY' | tee results/bench-sft/table.md
import json, sys
s = json.load(open(sys.argv[1]))
t, c = s["train"], s["config"]["train"]
examples = t["steps"] * c["batch_size"]
print("| model | LoRA | batch (micro) | steps | tokens / example | s / step | s / example | tokens / s |")
print("|---|---|---|---|---|---|---|---|")
print(f"| {s['base_model']['name']} (f32 training copy) | r{c['lora']['rank']} on {','.join(c['lora']['targets'])} | "
      f"{c['batch_size']} ({c['micro_batch']}) | {t['steps']} | {t['tokens'] / examples:.0f} | "
      f"{t['seconds'] / t['steps']:.1f} | {t['seconds'] / examples:.2f} | {t['tokens'] / t['seconds']:.0f} |")
print()
print(f"From `bash bench/sft/run.sh` ({t['steps']} steps of {examples // t['steps']} examples, variant pulse, seed 42).")
PY
