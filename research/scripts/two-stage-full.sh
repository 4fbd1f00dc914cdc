#!/usr/bin/env bash
# Full-catalogue NDCG@10 for the SLM rows, in two stages: untrained content similarity (item-text embeddings,
# `--model content`) ranks the whole catalogue, and the SLM, zero-shot or with a 1,500-user adapter, reranks
# its top 20 items outside the user's history (`pulse eval --model slm --protocol full --shortlist content`).
# A true item outside the top 20 keeps content's rank, so HR@20 is content's by construction and the SLM moves
# only NDCG@10 / HR@10 / MRR. The same seeded 200 test users as the SLM rows' cand20 cells. Each row is
# compared, paired, with content alone on these users and with the other rows.
#   bash research/scripts/two-stage-full.sh luxury-beauty|video-games [row ...]   (rows: slm plain reasons tot-likelihood pulse)
#     in-domain: each tuned row with its own domain's adapter -> results/two-stage-<domain>-1500/
#   ADAPTERS=luxury-beauty bash research/scripts/two-stage-full.sh video-games|office [row ...]
#     cross-domain: the tuned rows rank with the Luxury Beauty adapters -> results/two-stage-cross-<domain>-1500/;
#     where the in-domain folder has the same row (Video Games), compare.txt also pairs the two adapters.
# Writes <row>-full.json (+ .ranks.tsv.gz, .meta.json), compare.txt, table.md. A row whose result is there is not
# ranked again. Ranking takes ~9 min per SLM row on Luxury Beauty, ~12-45 min on Video Games and ~22-90 min on
# Office (longer titles than Luxury Beauty's) on 2 cores (PMI: two passes per list); machines here differ ~3x.
# Each tuned row's adapter is the one the adapters' domain's 1,500-user pipeline config ranks with: `pulse
# experiment CONFIG --train-adapter VARIANT` names it, and first trains it with that config's settings when it
# is missing (runs/ is not in git: a fresh checkout has none; ~60-160 min per Luxury Beauty adapter on 2 cores,
# measured: ToT with likelihood 3,508 s (~19 s per step for 188 steps) on one machine, PULSE 8,209 s and SFT with
# reasons ~51 s per step on a slower one; resumable), on the rationale store
# rebuilt from the config's committed [snapshot]. The data folder is read from a config too
# (its [data] path): the pipeline config's, or for Office configs/paper/pulse-cross-office-1500.toml's.
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${P:-target/release/pulse}
dom=${1:-}
case $dom in
  luxury-beauty|video-games) data_cfg=configs/paper/pipeline-$dom-1500.toml ;;
  office) data_cfg=configs/paper/pulse-cross-office-1500.toml ;;
  *) echo "two-stage-full.sh: first argument: luxury-beauty, video-games or office" >&2; exit 2 ;;
esac
adapters=${ADAPTERS:-$dom}
case $adapters in
  "$dom") D=results/two-stage-$dom-1500 ;;
  luxury-beauty) D=results/two-stage-cross-$dom-1500 ;;
  *) echo "two-stage-full.sh: ADAPTERS: luxury-beauty, or the target domain '$dom' itself; Office has no adapters of its own" >&2; exit 2 ;;
esac
cfg=configs/paper/pipeline-$adapters-1500.toml
data=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["data"]["path"])' "$data_cfg")
shift
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(pulse reasons plain tot-likelihood slm)
name() { case $1 in slm) echo slm ;; pulse) echo pulse ;; plain|reasons|tot-likelihood) echo "sft-$1" ;; *) return 1 ;; esac; }
for r in "${rows[@]}"; do
  name "$r" > /dev/null || { echo "two-stage-full.sh: unknown row '$r' (slm, plain, reasons, tot-likelihood or pulse)" >&2; exit 2; }
done
mkdir -p "$D"
[ -f "$D/content-full.json" ] || "$P" eval -q --data "$data" --model content --protocol full --users 200 --out "$D/content-full.json"
for r in "${rows[@]}"; do
  out=$D/$(name "$r")-full.json
  [ -f "$out" ] && continue
  ad=()
  if [ "$r" != slm ]; then
    adapter=$("$P" experiment -q "$cfg" --train-adapter "$r")
    ad=(--adapter "$adapter")
  fi
  "$P" eval -q --data "$data" --model slm "${ad[@]}" --score pmi --protocol full --users 200 \
    --shortlist content --shortlist-k 20 --out "$out"
done
done_rows=()
for r in slm sft-plain sft-reasons sft-tot-likelihood pulse; do [ -f "$D/$r-full.json" ] && done_rows+=("$r"); done
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# a "## TITLE" line, then the paired comparison of two reports
cmp=(--metric ndcg@10 --metric hr@10 --resamples 2000)
pair() { echo "## $1"; "$P" compare -q "${cmp[@]}" "$2" "$3"; }
{
  echo "# pulse compare A B ${cmp[*]} (the same 200 test users)"
  for i in "${!done_rows[@]}"; do
    for b in content "${done_rows[@]:$((i + 1))}"; do
      pair "${done_rows[$i]} vs $b" "$D/${done_rows[$i]}-full.json" "$D/$b-full.json"
    done
  done
  own=results/two-stage-$dom-1500
  if [ "$D" != "$own" ]; then
    for r in "${done_rows[@]}"; do
      [ "$r" != slm ] && [ -f "$own/$r-full.json" ] || continue
      pair "$r, Luxury Beauty adapter vs $r, $dom adapter ($own)" "$D/$r-full.json" "$own/$r-full.json"
    done
    if [ -f "$own/slm-full.json" ] && [ ! -f "$D/slm-full.json" ]; then
      for r in "${done_rows[@]}"; do
        pair "$r vs slm, zero-shot ($own)" "$D/$r-full.json" "$own/slm-full.json"
      done
    fi
  fi
} > "$tmp"
mv "$tmp" "$D/compare.txt"
python3 - "$D" "$adapters" content "${done_rows[@]}" <<'EOF'
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
adapters = sys.argv[2]
del sys.argv[2]
out = ["| model | full NDCG@10 | HR@10 | HR@20 | MRR | ranking s |", "|---|---|---|---|---|---|"]
for r in sys.argv[2:]:
    rep = json.loads((d / f"{r}-full.json").read_text())
    meta = json.loads((d / f"{r}-full.meta.json").read_text())
    m, ci = rep["metrics"], rep["ci95"]
    label = "content (retriever alone)" if r == "content" else f"{r} reranking content's top 20"
    out.append(f"| {label} | {m['ndcg@10']:.4f} [{ci['ndcg@10'][0]:.3f}, {ci['ndcg@10'][1]:.3f}] | {m['hr@10']:.3f} | "
               f"{m['hr@20']:.3f} | {m['mrr']:.4f} | {meta['eval_seconds']:.0f} |")
rep = json.loads((d / f"{sys.argv[2]}-full.json").read_text())
out.append("")
out.append(f"{rep['dataset']}, {rep['n_users']} seeded test users (seed {rep['seed']}), history masked; from "
           f"`research/scripts/two-stage-full.sh` (`results/{d.name}/`, each report holds its resolved config).")
if d.name.startswith("two-stage-cross-"):
    out[-1] += (f" The tuned rows rank with the {adapters.replace('-', ' ').title()} adapters of "
                f"`configs/paper/pipeline-{adapters}-1500.toml`: trained on another domain.")
tmp = d / "table.md.tmp"
tmp.write_text("\n".join(out) + "\n")
tmp.replace(d / "table.md")
EOF
cat "$D/table.md" "$D/compare.txt"
