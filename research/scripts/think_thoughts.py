#!/usr/bin/env python3
"""What a tuned SLM wrote when the ranker had it think first (`[slm.rank] think = true`).

Each thinking row of the score cache holds the rationale the model wrote before its candidates were scored.
For every thinking result file (`<model>-cand5.json` whose rank config has `think`) of the given results
directories, this collects the rationales of that model's thinking rows (the cache key is the model's id
with its adapter, the ranker's settings, the history and the candidates, as `pulse_sft::rank` writes it;
an adapter is one experiment's, so these are the rows it ranked) and measures them — and, where the adapter's folder is here, the rationales it was trained on (its
examples.jsonl) — : empty ones, words, and *loops* — a rationale in which one word 3-gram occurs 3 or more
times ("3.4 fl. oz. 3.4 fl. oz. 3.4 fl. oz."), the way a 135M model degenerates at a low temperature —
and the share of its words that are words rather than numbers and sizes.

    python3 research/scripts/think_thoughts.py --cache runs/amazon2018-luxury-beauty-31a181a32a4f5124/slm-scores.jsonl \
        --results results/think-luxury-beauty-500 --results results/think-luxury-beauty-500-norepeat \
        --results results/think-luxury-beauty-500-penalty --out results/think-thoughts

Writes OUT/table.md (docs/research-log.md includes it), OUT/thoughts.json and OUT/<experiment>-<model>.jsonl (the
rationales themselves, so they outlive runs/). Read-only on the cache.
"""
import argparse
import collections
import json
import pathlib
import re
import statistics
import sys


def loops(text, n=3, times=3):
    w = text.lower().split()
    grams = collections.Counter(tuple(w[i:i + n]) for i in range(len(w) - n + 1))
    return any(c >= times for c in grams.values())


def lettered(texts):
    """Mean share of a rationale's words that are words (two letters or more, no digit; empty rationales
    left out). Barred from repeating a token 3-gram, the model no longer loops but counts and lists sizes
    ("1. 1 fl. oz. 2. 3. 4. 5. ...", "1.7 oz. 17.777 fl. oz"), which the 3-gram test cannot see."""
    shares = [sum(1 for x in w if re.search("[a-z]{2}", x) and not re.search("[0-9]", x)) / len(w)
              for w in (t.lower().split() for t in texts) if w]
    return statistics.mean(shares) if shares else 0.0


def read_cache(path):
    """key -> thought, for the cache's thinking rows (a line cut by a kill is skipped, as the ranker does)."""
    if not path.is_file():
        sys.exit(f"{path}: no score cache")
    out = {}
    for line in path.read_text().splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "thought" in d:
            out[d["key"]] = d["thought"]
    return out


def rows_of(result):
    """(the result, the cache-key prefix of its model's thinking rows), or None if it is not a thinking row."""
    r = json.loads(result.read_text())
    m = r["config"]["model"]
    rank = m.get("rank") if isinstance(m, dict) else None
    if not rank or not rank.get("think"):
        return None
    how = f"nr{rank['no_repeat_ngram']}|" if rank.get("no_repeat_ngram") else ""
    how += f"rp{rank['repeat_penalty']:g}|" if rank.get("repeat_penalty", 1.0) != 1.0 else ""
    return r, f"think-v1|{how}{m['slm']['sha256']}:{m['slm']['runtime']}|{m['prompt_version']}|{rank['history']}|{rank['title_words']}|"


def training_rationales(sft_dir):
    """The rationales an adapter was trained on (its examples.jsonl under runs/), or None if not here."""
    f = pathlib.Path(sft_dir or "") / "examples.jsonl"
    if not sft_dir or not f.is_file():
        return None
    out = []
    for line in f.read_text().splitlines():
        e = json.loads(line)
        text = e["prefix"] + e.get("reason", "")
        if text.startswith("Let me think:"):
            out.append(text[len("Let me think:"):].split(". The recommendation is")[0].strip())
    return out or None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", required=True, type=pathlib.Path)
    ap.add_argument("--results", required=True, type=pathlib.Path, action="append")
    ap.add_argument("--out", required=True, type=pathlib.Path)
    a = ap.parse_args()
    cache = read_cache(a.cache)
    report, dumps = [], {}
    for d in a.results:
        files = sorted(d.glob("*-cand5.json"))
        if not files:
            sys.exit(f"{d}: no <model>-cand5.json results")
        for f in files:
            got = rows_of(f)
            if got is None:
                continue
            r, prefix = got
            thoughts = [t for k, t in cache.items() if k.startswith(prefix)]
            if len(thoughts) < r["n_users"]:
                sys.exit(f"{f}: {len(thoughts)} thinking rows in {a.cache} for its model, it ranked {r['n_users']}")
            words = [len(t.split()) for t in thoughts]
            trained = training_rationales(r["config"]["model"].get("sft_dir"))
            report.append({
                "experiment": d.name,
                "model": r["model"],
                "adapter": r["config"]["model"].get("adapter"),
                "hr@1": r["metrics"]["hr@1"],
                "rationales": len(thoughts),
                "empty": sum(1 for t in thoughts if not t.strip()) / len(thoughts),
                "loops": sum(1 for t in thoughts if loops(t)) / len(thoughts),
                "words_mean": statistics.mean(words),
                "lettered_words": lettered(thoughts),
                "trained_on": None if trained is None else {
                    "rationales": len(trained),
                    "loops": sum(1 for t in trained if loops(t)) / len(trained),
                    "words_mean": statistics.mean(len(t.split()) for t in trained),
                    "lettered_words": lettered(trained),
                },
            })
            dumps[f"{d.name}-{r['model']}"] = thoughts
    if not report:
        sys.exit("no thinking results (rank config with think = true) in " + ", ".join(map(str, a.results)))
    a.out.mkdir(parents=True, exist_ok=True)
    for name, thoughts in dumps.items():
        (a.out / f"{name}.jsonl").write_text("".join(json.dumps({"thought": t}, ensure_ascii=False) + "\n" for t in sorted(thoughts)))
    (a.out / "thoughts.json").write_text(json.dumps({"cache": str(a.cache), "rows": report}, indent=1) + "\n")
    lines = ["| experiment | model | cand5 hr@1 | rationales written | empty | loops (a 3-gram 3+ times) | words (mean) | "
             "share that are words | trained on: rationales | their loops | their words | their share that are words |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in report:
        t = x["trained_on"]
        tr = "– | – | – | –" if t is None else f"{t['rationales']} | {t['loops']:.3f} | {t['words_mean']:.1f} | {t['lettered_words']:.3f}"
        lines.append(f"| {x['experiment']} | {x['model']} | {x['hr@1']:.3f} | {x['rationales']} | {x['empty']:.3f} | "
                     f"{x['loops']:.3f} | {x['words_mean']:.1f} | {x['lettered_words']:.3f} | {tr} |")
    lines += ["", f"The rationales the tuned models wrote before ranking, from the score cache by `research/scripts/think_thoughts.py` "
              f"(`results/{a.out.name}/thoughts.json`; the texts in `results/{a.out.name}/*.jsonl`)."]
    (a.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
