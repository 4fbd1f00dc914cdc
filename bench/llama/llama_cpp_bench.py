"""llama.cpp peer for bench/slm: the same workload as `pulse slm bench`, on llama-cpp-python's own llama.cpp
build, through its low-level API (the fastest way to use it: B sequences in one llama_batch, prompts packed
into 512-token batches, greedy decode with B tokens per step).

Prompt processing runs on B *distinct* prompts, built by the rule of crates/pulse-slm/src/bench.rs
(`distinct_prompts`): the prompt file's words (each with the whitespace before it) rotated to start at word
k = 0, 1, 2, …, a rotation kept only when it has the file's token count and a first token no kept rotation
starts with. So no two prompts share a prefix and nothing can be reused; the KV cache is cleared before every
repetition and this harness keeps no prompt cache, so every prompt token is computed (there is no cache-hit
row for llama.cpp). `prompts_sha256` fingerprints the texts as pulse does, so bench/slm/table.py can check
both engines ran the same prompts. Decode runs on from those B prompts, all the same length.

Prints JSON lines like `pulse slm bench`. Usage: python llama_cpp_bench.py MODEL PROMPT_FILE --seqs 1,8,32
"""
import argparse
import ctypes
import hashlib
import json
import re
import subprocess
import sys
import time

import numpy as np
import llama_cpp as L


WS = " \t\n\r\f"  # Rust's u8::is_ascii_whitespace


def units(text):
    """The words of `text`, each with the whitespace before it; trailing whitespace goes with the last word."""
    u = re.findall(f"[{WS}]*[^{WS}]+", text)
    if u:
        u[-1] += text[len("".join(u)):]
    return u


def distinct_prompts(text, n, tokens):
    """pulse-slm's bench::distinct_prompts: rotations of the words with the text's token count and distinct
    first tokens, k = 0, 1, 2, …"""
    u = units(text)
    target = len(tokens("".join(u)))
    out, firsts = [], set()
    for k in range(len(u)):
        if len(out) == n:
            break
        r = "".join(u[k:] + u[:k])
        t = tokens(r)
        if t and len(t) == target and t[0] not in firsts:
            firsts.add(t[0])
            out.append(r)
    if len(out) < n:
        raise SystemExit(f"--seqs {n}: the prompt has only {len(out)} rotations with distinct first tokens")
    return out


def fingerprint(prompts):
    """First 16 hex digits of sha256 over the prompts, each followed by a NUL byte (as pulse-slm)."""
    return hashlib.sha256(b"".join(p.encode() + b"\0" for p in prompts)).hexdigest()[:16]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("prompt")
    ap.add_argument("--seqs", default="1,8,32")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx-per-seq", type=int, default=1024)
    ap.add_argument("--extra-bufts", choices=["auto", "on", "off"], default="auto",
                    help="llama.cpp's extra weight buffer types (AMX / repacked layouts); auto: on unless a "
                         "multi-token decode with them crashes in a child process (it does on CPUs that report "
                         "AMX but fault on its tile instructions)")
    ap.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    seqs = [int(s) for s in a.seqs.split(",")]
    if a.probe:
        return probe(a)
    extra = a.extra_bufts == "on" or (a.extra_bufts == "auto" and subprocess.run(
        [sys.executable, __file__, a.model, a.prompt, "--probe", "--threads", str(a.threads)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0)

    L.llama_backend_init()
    global _log_cb
    _log_cb = L.llama_log_callback(lambda *_: None)  # kept referenced: llama.cpp calls it later
    L.llama_log_set(_log_cb, ctypes.c_void_p(0))
    mp = L.llama_model_default_params()
    mp.use_extra_bufts = extra
    model = L.llama_model_load_from_file(a.model.encode(), mp)
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    n_params = L.llama_model_n_params(model)

    def tokenize(s, add_special):
        b = s.encode()
        buf = (L.llama_token * (len(b) + 16))()
        n = L.llama_tokenize(vocab, b, len(b), buf, len(buf), add_special, True)
        assert n >= 0
        return list(buf[:n])

    text = open(a.prompt, encoding="utf-8").read()
    prompts = distinct_prompts(text, max(seqs), lambda s: tokenize(s, False))
    all_toks = [tokenize(p, True) for p in prompts]  # as fed: BOS where the model adds one
    n_prompt = len(tokenize(text, True))
    assert all(len(t) == n_prompt for t in all_toks), "rotations must keep the token count"

    for B in seqs:
        seq_toks = all_toks[:B]
        cp = L.llama_context_default_params()
        cp.n_ctx = B * a.ctx_per_seq
        cp.n_batch = 512
        cp.n_ubatch = 512
        cp.n_seq_max = B
        cp.n_threads = a.threads
        cp.n_threads_batch = a.threads
        if hasattr(cp, "kv_unified"):
            cp.kv_unified = False
        ctx = L.llama_init_from_model(model, cp)
        mem = L.llama_get_memory(ctx)
        batch = L.llama_batch_init(max(512, B), 0, 1)

        def add(tok, pos, seq, logits):
            i = batch.n_tokens
            batch.token[i] = tok
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits
            batch.n_tokens = i + 1

        def prefill():
            """The B distinct prompts, packed into 512-token batches, on an empty KV cache; returns each
            sequence's greedy first token and the prompt tokens computed."""
            L.llama_memory_clear(mem, True)
            work = [(t, p, s) for s in range(B) for p, t in enumerate(seq_toks[s])]
            rows = {}
            for c in range(0, len(work), 512):
                batch.n_tokens = 0
                chunk = work[c:c + 512]
                for t, p, s in chunk:
                    add(t, p, s, p == n_prompt - 1)
                assert L.llama_decode(ctx, batch) == 0
                for i, (t, p, s) in enumerate(chunk):
                    if p == n_prompt - 1:
                        rows[s] = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, i), shape=(n_vocab,)).argmax()
            return [rows[s] for s in range(B)], len(work)

        def decode(first):
            cur = list(first)
            for step in range(a.new_tokens):
                batch.n_tokens = 0
                for s in range(B):
                    add(int(cur[s]), n_prompt + step, s, True)
                assert L.llama_decode(ctx, batch) == 0
                for s in range(B):
                    cur[s] = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, s), shape=(n_vocab,)).argmax()

        t_pre, t_dec = float("inf"), float("inf")
        for _ in range(a.reps):
            t = time.perf_counter()
            first, computed = prefill()
            t_pre = min(t_pre, time.perf_counter() - t)
            assert computed == B * n_prompt
            t = time.perf_counter()
            decode(first)
            t_dec = min(t_dec, time.perf_counter() - t)
        print(json.dumps({"engine": "llama-cpp-python " + L.__version__, "seqs": B, "prompt_tokens": n_prompt,
                          "new_tokens": a.new_tokens, "prompt_tps": B * n_prompt / t_pre,
                          "prompt_tokens_computed": B * n_prompt, "cache_hit_tps": None,
                          "decode_tps": B * a.new_tokens / t_dec, "params": n_params,
                          "prompts_sha256": fingerprint(prompts[:B]), "extra_bufts": extra}), flush=True)
        L.llama_batch_free(batch)
        L.llama_free(ctx)


def probe(a):
    """A 64-token decode with the extra buffer types on; the parent reads a crash as 'not usable here'."""
    L.llama_backend_init()
    global _log_cb
    _log_cb = L.llama_log_callback(lambda *_: None)
    L.llama_log_set(_log_cb, ctypes.c_void_p(0))
    mp = L.llama_model_default_params()
    mp.use_extra_bufts = True
    model = L.llama_model_load_from_file(a.model.encode(), mp)
    cp = L.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = 256, 64, 64, 1
    cp.n_threads = cp.n_threads_batch = a.threads
    ctx = L.llama_init_from_model(model, cp)
    batch = L.llama_batch_init(64, 0, 1)
    for i in range(64):
        batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = 100 + i, i, 1, i == 63
        batch.seq_id[i][0] = 0
    batch.n_tokens = 64
    assert L.llama_decode(ctx, batch) == 0


if __name__ == "__main__":
    main()
