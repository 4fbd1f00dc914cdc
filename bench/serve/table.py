"""The serving table from bench/serve/run.sh's results.jsonl (one row per server × model × connections),
with pulse's req/s as a multiple of the peer's at the same bundle and connection count."""
import json, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peer = {(r["bundle"], r["connections"]): r["rps"] for r in rows if r["server"] != "pulse"}
print("| bundle | server | model | connections | req/s | p50 ms | p99 ms | p99.9 ms | errors | server RSS MB | × peer req/s |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    p = peer.get((r["bundle"], r["connections"]))
    ratio = f"{r['rps'] / p:.1f}×" if p and r["server"] == "pulse" else ""
    who = "pulse serve" if r["server"] == "pulse" else "FastAPI + RecBole (PyTorch)"
    what = {"pulse-ts": "PULSE-TS + reasons", "hybrid": "hybrid + reasons", "sasrec": "SASRec, no reasons"}[r["model"]]
    print(f"| {r['bundle']} | {who} | {what} | {r['connections']} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
          f"{r['p999_ms']:.2f} | {r['errors']} | {r['server_rss_mb']:.0f} | {ratio} |")
