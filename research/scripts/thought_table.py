#!/usr/bin/env python3
"""A table of `pulse thought train` reports: rationale <-> behaviour retrieval (1 of 100) and, for spaces
trained with same-history negatives, "which item" retrieval (the true behaviour among the same history with
other items chosen), untrained and trained.

    python3 research/scripts/thought_table.py --out results/thought-history-negatives \
        NAME=runs/thought-history-negatives/NAME/report.json ...

Writes OUT/table.md (docs/research-log.md includes it); a report without the field it needs exits naming the file.
"""
import argparse
import json
import pathlib
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("reports", nargs="+", help="NAME=path/to/report.json")
    a = ap.parse_args()
    t = ("| space | pairs (train / held out) | history negatives | R@1 1 of 100: untrained → trained | "
         "which item R@1: untrained → trained | which item MRR: untrained → trained |\n|---|---|---|---|---|---|\n")
    for spec in a.reports:
        name, _, path = spec.partition("=")
        if not path:
            sys.exit(f"{spec}: expected NAME=path/to/report.json")
        try:
            r = json.loads(pathlib.Path(path).read_text())
            k = r["config"].get("history_negatives", 0)
            row = f"| {name} | {r['pairs_train']} / {r['pairs_heldout']} | {k} | {r['untrained']['r_at_1']:.3f} → {r['trained']['r_at_1']:.3f} | "
            if "item_trained" in r:
                iu, it = r["item_untrained"], r["item_trained"]
                row += f"{iu['r_at_1']:.3f} → {it['r_at_1']:.3f} (1 of {it['pool']}) | {iu['mrr']:.3f} → {it['mrr']:.3f} |"
            else:
                row += "– | – |"
        except (OSError, ValueError, KeyError) as e:
            sys.exit(f"{path}: {e!r}")
        t += row + "\n"
    t += "\nFrom `pulse thought train` reports by `research/scripts/thought_table.py` (held-out users, seed 42).\n"
    o = pathlib.Path(a.out)
    o.mkdir(parents=True, exist_ok=True)
    (o / "table.md").write_text(t)
    print(t, end="")


if __name__ == "__main__":
    main()
