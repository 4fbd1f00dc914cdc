#!/usr/bin/env bash
# Full-catalogue NDCG@10 for the SLM rows, in two stages: untrained content similarity (item-text embeddings,
# `--model content`) ranks the whole catalogue, and the SLM, zero-shot or with a 1,500-user adapter, reranks
# its top 20 items outside the user's history (`pulse eval --model slm --protocol full --shortlist content`).
# A true item outside the top 20 keeps content's rank, so HR@20 is content's by construction and the SLM moves
# only NDCG@10 / HR@10 / MRR. The same seeded 200 test users as the SLM rows' cand20 cells. Each row is
# compared, paired, with content alone on these users and with the other rows.
#   bash scripts/two-stage-full.sh luxury-beauty|video-games [row ...]   (rows: slm plain reasons tot-likelihood pulse)
# Writes results/two-stage-<domain>-1500/: <row>-full.json (+ .ranks.tsv, .meta.json), compare.txt, table.md.
# A row whose result is there is not ranked again; ~7 min per SLM row on 2 cores (PMI: two passes per list).
# Each tuned row's adapter is the one the domain's 1,500-user pipeline config ranks with: `pulse experiment
# CONFIG --train-adapter VARIANT` names it, and first trains it with that config's settings when it is missing
# (runs/ is not in git: a fresh checkout has none; plain SFT ~36 min, the others ~45-55 min on 2 cores;
# resumable), on the rationale store rebuilt from the config's committed [snapshot].
set -euo pipefail
cd "$(dirname "$0")/.."
P=${P:-target/release/pulse}
dom=${1:-}
case $dom in
  luxury-beauty) data=data/amazon2018-luxury-beauty cfg=configs/pipeline-luxury-beauty-1500.toml ;;
  video-games) data=../shared/data/amazon2018-video-games cfg=configs/pipeline-video-games-1500.toml ;;
  *) echo "two-stage-full.sh: first argument: luxury-beauty or video-games" >&2; exit 2 ;;
esac
shift
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(pulse reasons plain tot-likelihood slm)
name() { case $1 in slm) echo slm ;; pulse) echo pulse ;; plain|reasons|tot-likelihood) echo "sft-$1" ;; *) return 1 ;; esac; }
for r in "${rows[@]}"; do
  name "$r" > /dev/null || { echo "two-stage-full.sh: unknown row '$r' (slm, plain, reasons, tot-likelihood or pulse)" >&2; exit 2; }
done
D=results/two-stage-$dom-1500
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
{
  echo "# pulse compare A B --metric ndcg@10 --metric hr@10 --resamples 2000 (the same 200 test users)"
  for i in "${!done_rows[@]}"; do
    for b in content "${done_rows[@]:$((i + 1))}"; do
      echo "## ${done_rows[$i]} vs $b"
      "$P" compare -q --metric ndcg@10 --metric hr@10 --resamples 2000 "$D/${done_rows[$i]}-full.json" "$D/$b-full.json"
    done
  done
} > "$tmp"
mv "$tmp" "$D/compare.txt"
python3 - "$D" content "${done_rows[@]}" <<'EOF'
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
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
           f"`scripts/two-stage-full.sh` (`results/{d.name}/`, each report holds its resolved config).")
tmp = d / "table.md.tmp"
tmp.write_text("\n".join(out) + "\n")
tmp.replace(d / "table.md")
EOF
cat "$D/table.md" "$D/compare.txt"
