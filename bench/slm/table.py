"""Side-by-side table of `pulse slm bench` runs and the llama.cpp peer (JSON lines from bench/slm/run.sh).
Usage: table.py PEER.jsonl OURS.jsonl [OURS2.jsonl ...]"""
import json
import sys


def load(p):
    return [json.loads(l) for l in open(p) if l.strip()]


peer = {r["seqs"]: r for r in load(sys.argv[1])}
pname = next(iter(peer.values()))["engine"]
runs = []
for p in sys.argv[2:]:
    rows = load(p)
    info = next(r for r in rows if "bandwidth_gbs" in r)
    runs.append((info, {r["seqs"]: r for r in rows if "seqs" in r}))
first = next(iter(runs[0][1].values()))
print(f"Prompt {first['prompt_tokens']} tokens, {first['new_tokens']} new tokens per sequence, greedy, "
      f"{runs[0][0]['threads']} threads, same GGUF for all; peer: {pname} (low-level batched API).")
print()
print("| engine | sequences | prompt tok/s | vs llama.cpp | decode tok/s (all sequences) | vs llama.cpp |")
print("|---|---|---|---|---|---|")
for b in sorted(peer):
    p = peer[b]
    print(f"| {pname} | {b} | {p['prompt_tps']:.0f} | 1.00× | {p['decode_tps']:.0f} | 1.00× |")
    for info, rows in runs:
        o = rows.get(b)
        if o:
            print(f"| {o['engine']} | {b} | {o['prompt_tps']:.0f} | {o['prompt_tps'] / p['prompt_tps']:.2f}× "
                  f"| {o['decode_tps']:.0f} | {o['decode_tps'] / p['decode_tps']:.2f}× |")
print()
for info, rows in runs:
    one = rows.get(1)
    if one:
        print(f"- {one['engine']}, one sequence: {info['bandwidth_gbs']:.1f} GB/s read ÷ "
              f"{info['weight_bytes'] / 1e6:.1f} MB of weights per token = {info['decode_bound_tps']:.0f} tok/s bound; "
              f"measured {one['decode_tps']:.0f} tok/s = {100 * one['decode_tps'] / info['decode_bound_tps']:.0f}% of it.")
