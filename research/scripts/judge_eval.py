#!/usr/bin/env python3
"""One Thought Space measured on several sets of rationales (`pulse thought eval`), as a table: how well each
set's rationales find their own behaviour among 100 others, and their own chosen item among k same-history
negatives ("which item"), in the frozen encoder and in the space. With --heldout only the choices the space
held out in training count, so rationales of different stores are compared on the same users.

    python3 research/scripts/judge_eval.py --space runs/thought-history-negatives/500-contrast-initial --heldout \\
        --out results/judge-eval-history-negatives \\
        "initial=runs/pipeline-luxury-beauty-500-nameless/rationales.sqlite:initial" ...

Writes OUT/<name>.json (the reports; the name lower-cased, runs of other characters as "-") and OUT/table.md (docs/research-log.md includes it); a failing eval exits with
its message.
"""
import argparse
import json
import pathlib
import re
import subprocess
import sys


def slug(name):
    """A file name for a row name: lower-case letters and digits, runs of anything else as one '-'."""
    return re.sub("[^a-z0-9]+", "-", name.lower()).strip("-") or "rationales"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pulse", default="target/release/pulse")
    ap.add_argument("--data", default="data/amazon2018-luxury-beauty")
    ap.add_argument("--space", required=True)
    ap.add_argument("--negatives", type=int, default=8)
    ap.add_argument("--heldout", action="store_true")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True)
    ap.add_argument("sets", nargs="+", help="NAME=STORE:METHOD")
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    sets, taken = [], {}
    for spec in a.sets:
        name, _, rest = spec.partition("=")
        store, _, method = rest.rpartition(":")
        if not (name and store and method):
            sys.exit(f"{spec}: expected NAME=STORE:METHOD")
        if slug(name) in taken:
            sys.exit(f"{name}: its report file {slug(name)}.json would overwrite the one of {taken[slug(name)]}; rename one")
        taken[slug(name)] = name
        sets.append((name, store, method))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, store, method in sets:
        dest = out / f"{slug(name)}.json"
        cmd = [a.pulse, "-q", "thought", "eval", "--data", a.data, "--store", store, "--method", method,
               "--space", a.space, "--negatives", str(a.negatives), "--seed", str(a.seed), "--out", str(dest)]
        if a.heldout:
            cmd.append("--heldout")
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"{name}: {p.stderr.strip()}")
        rows.append((name, store, method, json.loads(dest.read_text())))
    t = ("| rationales | store : method | pairs | R@1 1 of 100: frozen → space | which item R@1: frozen → space | "
         "which item MRR: frozen → space |\n|---|---|---|---|---|---|\n")
    for name, store, method, r in rows:
        f, s = r["frozen"], r["space"]
        t += f"| {name} | `{pathlib.Path(store).parent.name}` : {method} | {r['pairs']} | {f['r_at_1']:.3f} → {s['r_at_1']:.3f} | "
        if "item_space" in r:
            fi, si = r["item_frozen"], r["item_space"]
            t += f"{fi['r_at_1']:.3f} → {si['r_at_1']:.3f} (1 of {si['pool']}) | {fi['mrr']:.3f} → {si['mrr']:.3f} |\n"
        else:
            t += "– | – |\n"
    t += (f"\nOne space, `{a.space}`, measured by `pulse thought eval` (`research/scripts/judge_eval.py`; "
          f"{'the choices it held out in training only; ' if a.heldout else ''}{a.negatives} same-history negatives, seed {a.seed}).\n")
    (out / "table.md").write_text(t)
    print(t, end="")


if __name__ == "__main__":
    main()
