"""Side-by-side table of `pulse slm bench` runs and the llama.cpp peer (JSON lines from bench/slm/run.sh).
Usage: table.py [--conditions FILE] PEER.jsonl OURS.jsonl [OURS2.jsonl ...]

Prompt tok/s is prompt processing: distinct prompts (no two share a prefix), every prompt token computed
(the runs report how many they computed, and the table refuses runs where that is not all of them), prefix
cache off. Cache-hit tok/s is something else, in its own column: the same prompt repeated with pulse's
prefix cache on, where all but one token of each prompt is restored from cached KV state, not computed.
"""
import json
import re
import sys


def load(p):
    return [json.loads(l) for l in open(p) if l.strip()]


def fmt(x):
    return "—" if x is None else f"{x:,.0f}"


def ratio(x, y):
    return "—" if x is None or not y else f"{x / y:.2f}×"


def avx512_peak_gflops(threads):
    """f32 FMA peak of `threads` cores from /proc/cpuinfo: GHz × 16 lanes × 2 FLOPs × 2 FMA units."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return None
    mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", info)
    if not mhz or not re.search(r"\bavx512f\b", info):
        return None
    return threads * float(mhz.group(1)) / 1e3 * 16 * 2 * 2


args = sys.argv[1:]
conditions = None
if args[:1] == ["--conditions"]:
    conditions, args = args[1], args[2:]
peer = {r["seqs"]: r for r in load(args[0])}
pname = next(iter(peer.values()))["engine"]
runs = []
for p in args[1:]:
    rows = load(p)
    info = next(r for r in rows if "bandwidth_gbs" in r)
    rows = [r for r in rows if "seqs" in r]
    for r in rows:
        if r["engine"] == "pulse" and not info.get("weights"):
            r["engine"] = "pulse (native)"  # the weights as stored (Q4_1 kernels)
    runs.append((info, {r["seqs"]: r for r in rows}))

# Every row: distinct prompts, all computed; the same prompts and token counts as the peer's.
for info, rows in runs:
    for b, o in rows.items():
        p = peer.get(b)
        for r in [o] + ([p] if p else []):
            if r.get("prompt_tokens_computed") != b * r["prompt_tokens"]:
                sys.exit(f"{r['engine']}, {b} seqs: computed {r.get('prompt_tokens_computed')} of "
                         f"{b * r['prompt_tokens']} prompt tokens — not a prompt-processing measurement")
        if p and (p["prompt_tokens"], p["prompts_sha256"]) != (o["prompt_tokens"], o["prompts_sha256"]):
            sys.exit(f"{b} seqs: {o['engine']} and {pname} ran different prompts "
                     f"({o['prompt_tokens']} tokens, {o['prompts_sha256']} vs {p['prompt_tokens']}, {p['prompts_sha256']})")

first = next(iter(runs[0][1].values()))
threads = runs[0][0]["threads"]
under_load = conditions and "measured under load" in open(conditions).read()
print(f"Each sequence: a {first['prompt_tokens']}-token prompt, then {first['new_tokens']} new tokens, greedy; "
      f"{threads} threads, same GGUF for all; peer: {pname} (low-level batched API)."
      + (" **Measured under load: other processes shared the CPU (see conditions.txt).**" if under_load else ""))
print()
print("| engine | seqs | prompt tokens | prompt tok/s (distinct prompts, no cache) | vs llama.cpp "
      "| cache-hit tok/s (same prompt, KV restored, not computed) | decode tok/s (all seqs) | vs llama.cpp |")
print("|---|---|---|---|---|---|---|---|")
for b in sorted(peer):
    p = peer[b]
    tokens = f"{b} × {p['prompt_tokens']}"
    print(f"| {pname} | {b} | {tokens} | {fmt(p['prompt_tps'])} | 1.00× | {fmt(p.get('cache_hit_tps'))} "
          f"| {fmt(p['decode_tps'])} | 1.00× |")
    for info, rows in runs:
        o = rows.get(b)
        if o:
            print(f"| {o['engine']} | {b} | {tokens} | {fmt(o['prompt_tps'])} | {ratio(o['prompt_tps'], p['prompt_tps'])} "
                  f"| {fmt(o.get('cache_hit_tps'))} | {fmt(o['decode_tps'])} | {ratio(o['decode_tps'], p['decode_tps'])} |")
print()
print("- Prompt tok/s: B prompts that share no prefix (the prompt file's words rotated to start at a different "
      "token each, same token count; fingerprint per row checked equal for both engines), prefilled together "
      "on an empty KV cache, pulse's prefix cache off; every prompt token counted as computed by the engine "
      "itself. Best of the repetitions.")
hits = [o for _, rows in runs for o in rows.values() if o.get("cache_hit_tps")]
if hits:
    o = hits[0]
    print(f"- Cache-hit tok/s is **not prompt processing**: the prompt file sent B times with pulse's prefix cache "
          f"on and already holding it, so each sequence restores {o['prompt_tokens'] - 1} cached tokens and computes "
          f"{o['cache_hit_tokens_computed'] // o['seqs']}; it is prompt tokens served per second. The llama.cpp peer "
          f"keeps no prompt cache (—), so it has no ratio.")
print("- Decode tok/s: tokens generated per second over all B sequences, decode-only passes timed.")
if any(r.get("extra_bufts") is False for r in peer.values()):
    print(f"- {pname} ran with `use_extra_bufts` off: its AMX / repacked weight buffers crashed a test decode on "
          f"this CPU (bench/llama/llama_cpp_bench.py probes in a child process), so it uses its plain CPU kernels.")
for info, rows in runs:
    one = rows.get(1)
    if one:
        print(f"- {one['engine']}, one sequence: {info['bandwidth_gbs']:.1f} GB/s read ÷ "
              f"{info['weight_bytes'] / 1e6:.1f} MB of weights per token = {info['decode_bound_tps']:.0f} tok/s bound; "
              f"measured {one['decode_tps']:.0f} tok/s = {100 * one['decode_tps'] / info['decode_bound_tps']:.0f}% of it.")

# Sanity: the arithmetic a token rate implies (2 FLOPs per parameter per token; attention over ≤ 400 positions
# adds a few percent at most).
params = next((r.get("params") for r in peer.values() if r.get("params")), None)
if params:
    peak = avx512_peak_gflops(threads)
    peak_s = (f"; this CPU's AVX-512 f32 FMA peak for {threads} cores is ≈ {peak:,.0f} GFLOP/s "
              f"(GHz × 16 lanes × 2 × 2 FMA units)") if peak else ""
    print()
    print(f"Sanity check, FLOPs implied = 2 × {params / 1e6:.1f} M params × tok/s{peak_s}:")
    for name, rows in [(pname, peer)] + [(next(iter(r.values()))["engine"], r) for _, r in runs]:
        best_p = max(r["prompt_tps"] for r in rows.values())
        best_d = max(r["decode_tps"] for r in rows.values())
        line = (f"- {name}: prompt {best_p:,.0f} tok/s → {2 * params * best_p / 1e9:,.0f} GFLOP/s; "
                f"decode {best_d:,.0f} tok/s → {2 * params * best_d / 1e9:,.0f} GFLOP/s")
        ch = [r["cache_hit_tps"] for r in rows.values() if r.get("cache_hit_tps")]
        if ch:
            line += (f"; cache hits {max(ch):,.0f} tok/s would be {2 * params * max(ch) / 1e9:,.0f} GFLOP/s if "
                     f"computed — they are not, which is why they are a column of their own")
        print(line + ".")
