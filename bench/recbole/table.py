"""Prints the side-by-side table from bench/out/{pulse,recbole}-<dataset>.json."""
import json, os, statistics, sys

out, datasets = sys.argv[1], sys.argv[2:]
print("| dataset | system | epochs run | s/epoch (median) | train s total | test NDCG@10 | test HR@10 |")
print("|---|---|---|---|---|---|---|")
ratios = []
for d in datasets:
    n = os.path.basename(os.path.normpath(d))
    p = json.load(open(f"{out}/pulse-{n}.json")); pm = json.load(open(f"{out}/pulse-{n}.meta.json"))
    r = json.load(open(f"{out}/recbole-{n}.json"))
    pe = pm["model"]["train"]["epoch_seconds"]; re_ = r["epoch_seconds"]
    rows = [("pulse", len(pe), statistics.median(pe), sum(pe) + pm["model"]["train"]["valid_seconds"], p["metrics"]["ndcg@10"], p["metrics"]["hr@10"]),
            ("RecBole 1.2.1", len(re_), statistics.median(re_), r["fit_seconds"], r["test"]["ndcg@10"], r["test"]["hit@10"])]
    for s, e, m, t, nd, hr in rows:
        print(f"| {n} | {s} | {e} | {m:.1f} | {t:.0f} | {nd:.4f} | {hr:.4f} |")
    ratios.append((n, rows[0][2] / rows[1][2], rows[0][4] / rows[1][4] - 1))
print()
for n, er, nd in ratios:
    print(f"{n}: pulse epoch time = {er:.2f}x RecBole's; NDCG@10 {100*nd:+.1f}% vs RecBole")
