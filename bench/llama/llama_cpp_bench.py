"""llama.cpp peer for bench/slm: the same workload as `pulse slm bench`, on llama-cpp-python's own llama.cpp
build, through its low-level API (the fastest way to use it: B sequences in one llama_batch, prompts packed
into 512-token batches, greedy decode with B tokens per step).

Prints JSON lines like `pulse slm bench`. Usage: python llama_cpp_bench.py MODEL PROMPT_FILE --seqs 1,8,32
"""
import argparse
import ctypes
import json
import time

import numpy as np
import llama_cpp as L


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("prompt")
    ap.add_argument("--seqs", default="1,8,32")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx-per-seq", type=int, default=1024)
    a = ap.parse_args()
    seqs = [int(s) for s in a.seqs.split(",")]

    L.llama_backend_init()
    global _log_cb
    _log_cb = L.llama_log_callback(lambda *_: None)  # kept referenced: llama.cpp calls it later
    L.llama_log_set(_log_cb, ctypes.c_void_p(0))
    mp = L.llama_model_default_params()
    model = L.llama_model_load_from_file(a.model.encode(), mp)
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    text = open(a.prompt, encoding="utf-8").read().encode()
    buf = (L.llama_token * (len(text) + 16))()
    n = L.llama_tokenize(vocab, text, len(text), buf, len(buf), True, True)
    toks = list(buf[:n])

    for B in seqs:
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
            """All B prompts, packed into 512-token batches; returns each sequence's last-logits row."""
            L.llama_memory_clear(mem, True)
            work = [(t, p, s) for s in range(B) for p, t in enumerate(toks)]
            rows = {}
            for c in range(0, len(work), 512):
                batch.n_tokens = 0
                chunk = work[c:c + 512]
                for t, p, s in chunk:
                    add(t, p, s, p == len(toks) - 1)
                assert L.llama_decode(ctx, batch) == 0
                for i, (t, p, s) in enumerate(chunk):
                    if p == len(toks) - 1:
                        rows[s] = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, i), shape=(n_vocab,)).argmax()
            return [rows[s] for s in range(B)]

        def decode(first):
            cur = list(first)
            for step in range(a.new_tokens):
                batch.n_tokens = 0
                for s in range(B):
                    add(int(cur[s]), len(toks) + step, s, True)
                assert L.llama_decode(ctx, batch) == 0
                for s in range(B):
                    cur[s] = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, s), shape=(n_vocab,)).argmax()

        t_pre, t_dec = float("inf"), float("inf")
        for _ in range(a.reps):
            t = time.perf_counter()
            first = prefill()
            t_pre = min(t_pre, time.perf_counter() - t)
            t = time.perf_counter()
            decode(first)
            t_dec = min(t_dec, time.perf_counter() - t)
        print(json.dumps({"engine": "llama-cpp-python " + L.__version__, "seqs": B, "prompt_tokens": len(toks),
                          "new_tokens": a.new_tokens, "prompt_tps": B * len(toks) / t_pre,
                          "decode_tps": B * a.new_tokens / t_dec}), flush=True)
        L.llama_batch_free(batch)
        L.llama_free(ctx)


if __name__ == "__main__":
    main()
