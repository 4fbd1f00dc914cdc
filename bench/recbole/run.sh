#!/usr/bin/env bash
# Peer benchmark (not a test): pulse's SASRec vs RecBole 1.2.1's SASRec, same data, same split
# (chronological leave-one-out), same architecture and loss (CE), full ranking without history masking
# (RecBole's behaviour for SASRec), both on the same 2 cores, one after the other.
#
#   bash bench/recbole/run.sh [DATASET_DIR ...]     (default: bundled Luxury Beauty and ../shared Video Games)
#   RECBOLE_EPOCHS=N limits RecBole's epochs (and pulse's) for a time-boxed epoch-speed comparison.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; root="$(cd "$here/../.." && pwd)"; cd "$root"
out="$root/bench/out"; mkdir -p "$out"
bash "$here/setup.sh"
cargo build --release -q --bin pulse
datasets=("$@"); [ ${#datasets[@]} -gt 0 ] || datasets=(data/amazon2018-luxury-beauty ../shared/data/amazon2018-video-games)
epochs="${RECBOLE_EPOCHS:-200}"
for d in "${datasets[@]}"; do
  n="$(basename "$d")"
  echo "== $n: pulse sasrec (max $epochs epochs)" >&2
  rm -rf "$out/ckpt-$n"
  ./target/release/pulse eval --data "$d" --model sasrec --protocol full --no-mask-history --bootstrap 0 \
    --max-epochs "$epochs" --checkpoint-dir "$out/ckpt-$n" --out "$out/pulse-$n.json"
  echo "== $n: recbole sasrec (max $epochs epochs)" >&2
  "$here/.venv/bin/python" "$here/recbole_sasrec.py" "$d" "$out/recbole-$n.json" --epochs "$epochs"
done
python3 "$here/table.py" "$out" "${datasets[@]}" | tee "$out/table.md"
