#!/usr/bin/env python3
"""How a title penalty would change ToT's choices, read off stored ToT trees (no model run, no test labels).

ToT stores each user's whole tree (`raw`: every thought with its depth, parent and Thought-Space score). For
a penalty L this re-ranks, per user, (a) the first thoughts and (b) the final chains of the stored tree by
score - L * (share of the chosen title's content words the text restates), and reports the restated share
and the judge score of the winner. (a) is the choice the penalised search makes first; (b) can only pick
among chains grown from unpenalised beams, so it understates what a penalised search does.

    python3 research/scripts/tot_penalty_probe.py --store runs/pipeline-luxury-beauty-1500/rationales.sqlite \
        --items data/amazon2018-luxury-beauty/items.tsv --out results/tot-penalty-probe

Writes OUT/table.md and OUT/probe.json. Read-only on the store.
"""
import argparse
import json
import math
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from rationale_overlap import open_store, read_titles, words  # noqa: E402

PENALTIES = [0.0, 0.1, 0.2, 0.3, 0.5, 1.0]


def recall(text, tw):
    return len(tw & words(text)) / len(tw) if tw else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--items", required=True)
    ap.add_argument("--method", default="tot-space")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    titles = read_titles(a.items)
    store, con = open_store(a.store)
    rows = con.execute("select target, raw from rationales where method = ?", (a.method,)).fetchall()
    stats = {p: {"first_recall": [], "first_score": [], "final_recall": [], "final_score": []} for p in PENALTIES}
    users = 0
    for target, raw in rows:
        tw = words(titles.get(target, ""))
        nodes = json.loads(raw)["nodes"]
        ok = [i for i, n in enumerate(nodes) if n["score"] is not None and math.isfinite(n["score"])]

        def chain(i):
            out = []
            while i < len(nodes):
                out.append(nodes[i]["text"])
                i = nodes[i]["parent"]
            return " ".join(reversed(out))

        depth = max((nodes[i]["depth"] for i in ok), default=0)
        first = [(nodes[i]["score"], recall(nodes[i]["text"], tw)) for i in ok if nodes[i]["depth"] == 1]
        final = [(nodes[i]["score"], recall(chain(i), tw)) for i in ok if nodes[i]["depth"] == depth]
        if not tw or not first or depth < 2:
            continue
        users += 1
        for p, s in stats.items():
            for kind, cands in (("first", first), ("final", final)):
                sc, rc = max(cands, key=lambda c: c[0] - p * c[1])
                s[f"{kind}_recall"].append(rc)
                s[f"{kind}_score"].append(sc)
    if not users:
        sys.exit(f"{store}: no {a.method} trees with titled targets")
    out = {"store": str(store), "method": a.method, "users": users, "penalties": {}}
    lines = [
        "| penalty | first thought: title words restated | its judge score | final chain (stored tree): restated | its judge score |",
        "|---|---|---|---|---|",
    ]
    for p, s in stats.items():
        m = {k: statistics.fmean(v) for k, v in s.items()}
        out["penalties"][str(p)] = m
        lines.append(f"| {p} | {m['first_recall']:.3f} | {m['first_score']:.3f} | {m['final_recall']:.3f} | {m['final_score']:.3f} |")
    lines.append("")
    lines.append(f"{users} users' {a.method} trees of `{store}`, by `research/scripts/tot_penalty_probe.py` (means; `probe.json`).")
    o = pathlib.Path(a.out)
    o.mkdir(parents=True, exist_ok=True)
    (o / "probe.json").write_text(json.dumps(out, indent=1) + "\n")
    (o / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
