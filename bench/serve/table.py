"""The serving table from bench/serve/run.sh's results.jsonl (one row per server × model × connections),
with pulse's req/s as a multiple of the peer's at the same bundle and connection count."""
import json, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
dates = sorted({r["measured_at"][:10] for r in rows})
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
print()
print(f"Measured {' to '.join(dict.fromkeys([dates[0], dates[-1]]))} by `bash bench/serve/run.sh` on 2 cores (the load client on the same "
      f"cores); RSS is the server's (all uvicorn processes for the peer) after the cell. Raw rows: `results/bench-serve/results.jsonl`.")
