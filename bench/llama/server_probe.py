#!/usr/bin/env python3
"""Probe llama-cpp-python's OpenAI-compatible server (llama_cpp.server) and record exact
request bodies and responses, as groundwork for a Rust client (research/openai-server-probe.md).

Run with the venv from bench/llama/setup-server.sh, from the repository root:

    bench/llama/.venv/bin/python bench/llama/server_probe.py [--out DIR] [--port 8091]

It starts the server three times on 127.0.0.1 (--logits_all true; --logits_all false, ending with
the crashing detokenize probe; --interrupt_requests false --n_threads 2), sends only loopback
traffic in a bounded number of requests (~2.5 min in all), stops each server, then
checks the scoring (echo + logprobs) numbers against an in-process llama_cpp.Llama reference.
Everything goes to DIR/probe.json (+ server logs); nothing in the repository is written.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

MODEL = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
ALIAS = "smollm2"  # --model_alias; the client sends this as "model"


def rss_kib(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0])
    return out


class Server:
    def __init__(self, py: str, port: int, logdir: str, tag: str, extra: list[str]):
        self.base = f"http://127.0.0.1:{port}"
        self.cmd = [py, "-m", "llama_cpp.server", "--model", MODEL, "--model_alias", ALIAS,
                    "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", *extra]
        self.log = open(os.path.join(logdir, f"server-{tag}.log"), "w")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = t0 + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited rc={self.proc.returncode}, see {self.log.name}")
            try:
                with urllib.request.urlopen(self.base + "/v1/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.perf_counter() > deadline:
                self.stop()
                raise RuntimeError("server did not come up in 120 s")
            time.sleep(0.1)
        self.startup_s = round(time.perf_counter() - t0, 2)
        self.rss_after_start = rss_kib(self.proc.pid)

    def stop(self):
        rss = rss_kib(self.proc.pid) if self.proc.poll() is None else {}
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        return rss


def call(base: str, method: str, path: str, body=None, raw: bytes | None = None, timeout=300):
    """Returns dict(status, elapsed_s, json|text, headers subset)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, hdrs, payload = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, payload = e.code, dict(e.headers), e.read()
    el = round(time.perf_counter() - t0, 3)
    out = {"status": status, "elapsed_s": el,
           "content_type": hdrs.get("content-type"),
           "openai_processing_ms": hdrs.get("openai-processing-ms")}
    try:
        out["json"] = json.loads(payload)
    except ValueError:
        out["text"] = payload.decode("utf-8", "replace")[:4000]
    return out


def texts(resp) -> list:
    j = resp.get("json") or {}
    return [c.get("text", (c.get("message") or {}).get("content")) for c in j.get("choices", [])]


def parallel(base, bodies_paths, timeout=300):
    """Sends the requests at once from threads; returns per-request start/end relative to t0."""
    res = [None] * len(bodies_paths)
    t0 = time.perf_counter()

    def one(i, path, body):
        s = time.perf_counter() - t0
        r = call(base, "POST", path, body, timeout=timeout)
        r["start_s"], r["end_s"] = round(s, 3), round(time.perf_counter() - t0, 3)
        res[i] = r

    th = [threading.Thread(target=one, args=(i, p, b)) for i, (p, b) in enumerate(bodies_paths)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    return res, round(time.perf_counter() - t0, 3)


def stream(base, path, body, timeout=300):
    """Reads an SSE response; returns the raw 'data:' payloads (first/last few) and count."""
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    t0 = time.perf_counter()
    lines = []
    with urllib.request.urlopen(req, timeout=timeout) as r:
        ctype = r.headers.get("content-type")
        for raw in r:
            line = raw.decode("utf-8").rstrip("\r\n")
            if line:
                lines.append(line)
    data = [l for l in lines if l.startswith("data:")]
    others = [l for l in lines if not l.startswith("data:")]
    return {"content_type": ctype, "elapsed_s": round(time.perf_counter() - t0, 3),
            "n_data": len(data), "first": data[:3], "last": data[-3:], "non_data_lines": others[:5]}


PROMPT = "The capital of France is"
CONT = " Paris, a city on the Seine."
UPROMPT = "Café au lait costs 3 € in"   # non-ASCII: offsets chars or bytes?
UCONT = " Zürich 🙂."


def stream_vs_other(base):
    """A 64-token streaming completion; 0.3 s in, a second (non-streaming) request arrives."""
    res = {}

    def st():
        res["stream"] = stream(base, "/v1/completions",
                               {"prompt": PROMPT, "max_tokens": 64, "min_tokens": 64,
                                "temperature": 0, "stream": True})

    t = threading.Thread(target=st)
    t.start()
    time.sleep(0.3)
    res["other"] = call(base, "POST", "/v1/completions",
                        {"prompt": PROMPT, "max_tokens": 4, "temperature": 0})
    t.join()
    res["stream_finish_reasons"] = [json.loads(l[5:])["choices"][0]["finish_reason"]
                                    for l in res["stream"]["last"] if l != "data: [DONE]"]
    return res


def main_probes(base, R):
    chat_msgs = [{"role": "user", "content": "Name three colors."}]
    # --- d. what exists -------------------------------------------------------------------------
    oa = call(base, "GET", "/openapi.json")
    R["openapi_paths"] = {p: sorted(v.keys()) for p, v in oa["json"]["paths"].items()}
    R["models"] = call(base, "GET", "/v1/models")
    for p in ["/tokenize", "/detokenize", "/health", "/v1/tokenize"]:
        R.setdefault("missing_paths", {})[p] = call(base, "POST", p, {"content": "hi"})["status"]
    R["tokenize"] = call(base, "POST", "/extras/tokenize", {"input": PROMPT + CONT})
    R["tokenize_special"] = call(base, "POST", "/extras/tokenize",
                                 {"input": "<|im_start|>user\nhi<|im_end|>"})
    R["tokenize_count"] = call(base, "POST", "/extras/tokenize/count", {"input": PROMPT + CONT})
    toks = R["tokenize"]["json"]["tokens"]
    R["detokenize"] = call(base, "POST", "/extras/detokenize", {"tokens": toks})
    R["tokenize_unicode"] = call(base, "POST", "/extras/tokenize", {"input": UPROMPT + UCONT})
    # detokenize a token that is half a multi-byte char -> UnicodeDecodeError?
    ut = R["tokenize_unicode"]["json"]["tokens"]
    R["detokenize_partial"] = {str(t): call(base, "POST", "/extras/detokenize", {"tokens": [t]})
                               for t in ut}

    # --- a. chat --------------------------------------------------------------------------------
    a = {"model": ALIAS, "messages": chat_msgs, "max_tokens": 32, "temperature": 0.7,
         "top_p": 0.9, "top_k": 40, "seed": 42, "n": 3, "stop": ["\n\n"]}
    R["chat_body"] = a
    R["chat_seed42_1"] = call(base, "POST", "/v1/chat/completions", a)
    R["chat_seed42_2"] = call(base, "POST", "/v1/chat/completions", a)
    R["chat_seed43"] = call(base, "POST", "/v1/chat/completions", {**a, "seed": 43})
    noseed = {k: v for k, v in a.items() if k != "seed"}
    R["chat_noseed_1"] = call(base, "POST", "/v1/chat/completions", noseed)
    R["chat_noseed_2"] = call(base, "POST", "/v1/chat/completions", noseed)
    # is top_k honoured? top_k=1 at high temperature must be greedy (= temperature 0)
    g = {"model": ALIAS, "messages": chat_msgs, "max_tokens": 24}
    R["chat_temp0"] = call(base, "POST", "/v1/chat/completions", {**g, "temperature": 0})
    R["chat_topk1_hot_a"] = call(base, "POST", "/v1/chat/completions",
                                 {**g, "temperature": 5.0, "top_k": 1, "seed": 1})
    R["chat_topk1_hot_b"] = call(base, "POST", "/v1/chat/completions",
                                 {**g, "temperature": 5.0, "top_k": 1, "seed": 2})
    R["chat_topk0_hot"] = call(base, "POST", "/v1/chat/completions",
                               {**g, "temperature": 5.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
                                "seed": 1})
    R["chat_stop_comma"] = call(base, "POST", "/v1/chat/completions",
                                {**g, "temperature": 0, "stop": [","]})
    R["chat_logprobs_true_only"] = call(base, "POST", "/v1/chat/completions",
                                        {**g, "temperature": 0, "max_tokens": 3, "logprobs": True})
    R["chat_logprobs_top2"] = call(base, "POST", "/v1/chat/completions",
                                   {**g, "temperature": 0, "max_tokens": 3, "logprobs": True,
                                    "top_logprobs": 2})
    R["chat_unknown_field"] = call(base, "POST", "/v1/chat/completions",
                                   {**g, "max_tokens": 2, "frobnicate": 1})
    R["chat_system_role"] = call(base, "POST", "/v1/chat/completions",
                                 {**g, "temperature": 0, "max_tokens": 8, "messages": [
                                     {"role": "system", "content": "Answer in French."},
                                     *chat_msgs]})
    R["chat_stream"] = stream(base, "/v1/chat/completions",
                              {**g, "temperature": 0, "max_tokens": 4, "stream": True})

    # --- b. raw completion ----------------------------------------------------------------------
    b = {"model": ALIAS, "prompt": PROMPT, "max_tokens": 32, "temperature": 0.7, "top_p": 0.9,
         "top_k": 40, "seed": 42, "n": 3, "stop": ["\n\n"]}
    R["comp_body"] = b
    R["comp_seed42_1"] = call(base, "POST", "/v1/completions", b)
    R["comp_seed42_2"] = call(base, "POST", "/v1/completions", b)
    R["comp_best_of3"] = call(base, "POST", "/v1/completions", {**b, "best_of": 3})
    R["comp_temp0"] = call(base, "POST", "/v1/completions",
                           {"prompt": PROMPT, "max_tokens": 8, "temperature": 0})
    R["comp_stop_period"] = call(base, "POST", "/v1/completions",
                                 {"prompt": PROMPT, "max_tokens": 32, "temperature": 0,
                                  "stop": "."})
    R["comp_prompt_list1"] = call(base, "POST", "/v1/completions",
                                  {"prompt": [PROMPT], "max_tokens": 2, "temperature": 0})
    R["comp_prompt_list2"] = call(base, "POST", "/v1/completions",
                                  {"prompt": [PROMPT, "Hello"], "max_tokens": 2})
    R["comp_prompt_token_ids"] = call(base, "POST", "/v1/completions",
                                      {"prompt": toks[:5], "max_tokens": 2})
    R["comp_logprobs2_noecho"] = call(base, "POST", "/v1/completions",
                                      {"prompt": PROMPT, "max_tokens": 3, "temperature": 0,
                                       "logprobs": 2})
    R["comp_stream"] = stream(base, "/v1/completions",
                              {"prompt": PROMPT, "max_tokens": 4, "temperature": 0,
                               "stream": True})

    # --- c. scoring -----------------------------------------------------------------------------
    sc = {"model": ALIAS, "prompt": PROMPT + CONT, "echo": True, "logprobs": 1,
          "max_tokens": 1, "temperature": 0}
    R["score_body"] = sc
    R["score_mt1_lp1"] = call(base, "POST", "/v1/completions", sc)
    R["score_mt1_lp0"] = call(base, "POST", "/v1/completions", {**sc, "logprobs": 0})
    R["score_mt1_lp1_again"] = call(base, "POST", "/v1/completions", sc)  # KV-prefix reuse path
    R["score_unicode"] = call(base, "POST", "/v1/completions",
                              {**sc, "prompt": UPROMPT + UCONT})
    R["score_bos_text"] = call(base, "POST", "/v1/completions",
                               {**sc, "prompt": "<|im_start|>" + PROMPT + CONT})
    R["score_mt0_lp1"] = call(base, "POST", "/v1/completions", {**sc, "max_tokens": 0},
                              timeout=600)
    R["score_mt1_noecho"] = call(base, "POST", "/v1/completions", {**sc, "echo": False})

    # --- e. errors ------------------------------------------------------------------------------
    R["err_unknown_model"] = call(base, "POST", "/v1/chat/completions",
                                  {**g, "model": "gpt-4-does-not-exist", "max_tokens": 2})
    R["err_no_model_field"] = call(base, "POST", "/v1/completions",
                                   {"prompt": PROMPT, "max_tokens": 2})
    long_prompt = "hello " * 3000
    R["err_ctx_overflow_comp"] = call(base, "POST", "/v1/completions",
                                      {"prompt": long_prompt, "max_tokens": 4})
    R["err_ctx_overflow_chat"] = call(base, "POST", "/v1/chat/completions",
                                      {"messages": [{"role": "user", "content": long_prompt}],
                                       "max_tokens": 4})
    near = "hello " * 2030  # fits, but prompt + max_tokens > n_ctx
    R["err_ctx_near_comp"] = call(base, "POST", "/v1/completions",
                                  {"prompt": near, "max_tokens": 64, "temperature": 0,
                                   "min_tokens": 64})
    R["err_malformed_json"] = call(base, "POST", "/v1/chat/completions",
                                   raw=b'{"messages": [{"role": "user", "content": "hi"}')
    R["err_malformed_json_comp"] = call(base, "POST", "/v1/completions", raw=b'{"prompt": ')
    R["err_bad_type"] = call(base, "POST", "/v1/completions",
                             {"prompt": PROMPT, "temperature": "hot"})
    R["err_bad_role"] = call(base, "POST", "/v1/chat/completions",
                             {"messages": [{"role": "robot", "content": "hi"}], "max_tokens": 2})
    R["err_negative_max_tokens"] = call(base, "POST", "/v1/completions",
                                        {"prompt": PROMPT, "max_tokens": -1})

    # concurrency: 1 alone, then 4 at once (same body, max_tokens 32, forced length)
    cb = {"prompt": PROMPT, "max_tokens": 32, "min_tokens": 32, "temperature": 0}
    R["conc_single"] = call(base, "POST", "/v1/completions", cb)
    R["conc_4"], R["conc_4_total_s"] = parallel(base, [("/v1/completions", cb)] * 4)
    # interrupt_requests (default true): a streaming request when another request arrives
    R["interrupt_stream"] = stream_vs_other(base)

    # --- f. throughput --------------------------------------------------------------------------
    tb = {"model": ALIAS, "messages": chat_msgs, "max_tokens": 64, "min_tokens": 64,
          "temperature": 0.7, "seed": 7}
    R["throughput_body"] = tb
    R["throughput_chat64"] = [call(base, "POST", "/v1/chat/completions", tb) for _ in range(2)]


def nologits_probes(base, R):
    sc = {"prompt": PROMPT + CONT, "echo": True, "logprobs": 1, "max_tokens": 1}
    R["nologits_score"] = call(base, "POST", "/v1/completions", sc)
    R["nologits_noecho_lp"] = call(base, "POST", "/v1/completions",
                                   {"prompt": PROMPT, "logprobs": 1, "max_tokens": 2})
    R["nologits_chat_lp"] = call(base, "POST", "/v1/chat/completions",
                                 {"messages": [{"role": "user", "content": "hi"}],
                                  "max_tokens": 2, "logprobs": True, "top_logprobs": 1})
    R["nologits_plain"] = call(base, "POST", "/v1/completions",
                               {"prompt": PROMPT, "max_tokens": 8, "temperature": 0})


def crash_probes(base, R, server):
    """Last: an out-of-range token id aborts the whole server process (std::out_of_range)."""
    try:
        R["err_detok_bad_id"] = call(base, "POST", "/extras/detokenize", {"tokens": [10 ** 7]})
    except Exception as e:  # connection dropped
        R["err_detok_bad_id"] = {"exception": repr(e)}
    time.sleep(1)
    R["err_detok_bad_id"]["server_returncode"] = server.proc.poll()
    with open(server.log.name) as f:
        R["err_detok_bad_id"]["log_tail"] = [l.rstrip() for l in f.readlines()[-2:]]


def reference(R):
    """In-process ground truth: log P(tok_i | tok_<i) for the scoring prompts."""
    import numpy as np
    import llama_cpp
    m = llama_cpp.Llama(MODEL, n_ctx=2048, logits_all=True, verbose=False)
    ref = {"add_bos": m._model.add_bos_token(), "bos": m.token_bos()}
    for key, text in [("ascii", PROMPT + CONT), ("unicode", UPROMPT + UCONT),
                      ("bos_text", "<|im_start|>" + PROMPT + CONT)]:
        toks = m.tokenize(text.encode(), add_bos=False, special=True)
        m.reset()
        m.eval(toks)
        sc = np.asarray(m.scores[: len(toks)], dtype=np.float64)
        lp = sc - sc.max(1, keepdims=True)
        lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
        ref[key] = {
            "tokens": toks,
            "pieces": [m.detokenize([t]).decode("utf-8", "replace") for t in toks],
            # correct: row i-1 scores token i
            "aligned": [None] + [float(lp[i - 1, toks[i]]) for i in range(1, len(toks))],
            # what a row-i/token-i pairing would give
            "same_row": [float(lp[i, toks[i]]) for i in range(len(toks))],
            "sum_cont_aligned": None,
        }
    R["reference"] = ref


def summarise(R):
    """Adds a few derived facts so the notes can quote them."""
    S = {}
    S["chat_seed42_same"] = texts(R["chat_seed42_1"]) == texts(R["chat_seed42_2"])
    S["chat_seed42_vs_43_same"] = texts(R["chat_seed42_1"]) == texts(R["chat_seed43"])
    S["chat_noseed_same"] = texts(R["chat_noseed_1"]) == texts(R["chat_noseed_2"])
    S["chat_n3_choices"] = len(R["chat_seed42_1"]["json"]["choices"])
    S["comp_n3_choices"] = len(R["comp_seed42_1"]["json"]["choices"])
    S["comp_seed42_same"] = texts(R["comp_seed42_1"]) == texts(R["comp_seed42_2"])
    S["topk1_hot_equals_greedy"] = (texts(R["chat_topk1_hot_a"]) == texts(R["chat_temp0"])
                                    == texts(R["chat_topk1_hot_b"]))
    S["interrupt_stream_n_data"] = R["interrupt_stream"]["stream"]["n_data"]
    S["interrupt_stream_finish"] = R["interrupt_stream"]["stream_finish_reasons"]
    S["nointerrupt_stream_n_data"] = R["nointerrupt_stream"]["stream"]["n_data"]
    S["nointerrupt_stream_finish"] = R["nointerrupt_stream"]["stream_finish_reasons"]
    S["conc_4_end_s"] = [r["end_s"] for r in R["conc_4"]]
    S["throughput_chat64_s"] = [r["elapsed_s"] for r in R["throughput_chat64"]]
    S["throughput_chat64_nthreads2_s"] = [r["elapsed_s"] for r in R["throughput_chat64_nthreads2"]]
    S["startup_s"], S["rss_kib"] = R["startup_s"], [R["rss_after_start_kib"], R["rss_before_stop_kib"]]
    S["topk0_hot_differs_from_greedy"] = texts(R["chat_topk0_hot"]) != texts(R["chat_temp0"])
    for k in ["score_mt1_lp1", "score_unicode", "score_bos_text"]:
        refk = {"score_mt1_lp1": "ascii", "score_unicode": "unicode",
                "score_bos_text": "bos_text"}[k]
        lpj = R[k]["json"]["choices"][0]["logprobs"]
        srv = lpj["token_logprobs"]
        ref = R["reference"][refk]
        n = len(ref["tokens"]) - (1 if refk == "bos_text" else 0)
        off = 1 if refk == "bos_text" else 0

        def maxdiff(a, b):
            d = [abs(x - y) for x, y in zip(a, b) if x is not None and y is not None]
            return max(d) if d else None

        S[k] = {"n_server_entries": len(srv), "n_prompt_tokens": len(ref["tokens"]),
                "first_is_null": srv[0] is None,
                "maxdiff_vs_aligned": maxdiff(srv[:n], ref["aligned"][off:off + n]),
                "maxdiff_vs_same_row": maxdiff(srv[:n], ref["same_row"][off:off + n])}
    R["summary"] = S


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/pulse-server-probe")
    ap.add_argument("--port", type=int, default=8091)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    R: dict = {"load_avg_start": os.getloadavg()}
    import llama_cpp, fastapi, uvicorn  # noqa: E401
    R["versions"] = {"llama_cpp_python": llama_cpp.__version__, "fastapi": fastapi.__version__,
                     "uvicorn": uvicorn.__version__, "python": sys.version.split()[0]}

    s = Server(args.python, args.port, args.out, "logits", ["--logits_all", "true"])
    R["launch_cmd"] = " ".join(s.cmd)
    R["startup_s"], R["rss_after_start_kib"] = s.startup_s, s.rss_after_start
    try:
        main_probes(s.base, R)
    finally:
        R["rss_before_stop_kib"] = s.stop()

    s2 = Server(args.python, args.port, args.out, "nologits", ["--logits_all", "false"])
    R["nologits_launch_cmd"] = " ".join(s2.cmd)
    R["nologits_startup_s"], R["nologits_rss_kib"] = s2.startup_s, s2.rss_after_start
    try:
        nologits_probes(s2.base, R)
        crash_probes(s2.base, R, s2)
    finally:
        s2.stop()

    s3 = Server(args.python, args.port, args.out, "nointerrupt",
                ["--logits_all", "false", "--interrupt_requests", "false", "--n_threads", "2"])
    R["nointerrupt_launch_cmd"] = " ".join(s3.cmd)
    try:
        R["nointerrupt_stream"] = stream_vs_other(s3.base)
        tb = R["throughput_body"]
        R["throughput_chat64_nthreads2"] = [call(s3.base, "POST", "/v1/chat/completions", tb)
                                           for _ in range(2)]
    finally:
        s3.stop()

    reference(R)
    summarise(R)
    R["load_avg_end"] = os.getloadavg()
    with open(os.path.join(args.out, "probe.json"), "w") as f:
        json.dump(R, f, indent=1, ensure_ascii=False)
    print(json.dumps(R["summary"], indent=1))
    print("wrote", os.path.join(args.out, "probe.json"))


if __name__ == "__main__":
    main()
