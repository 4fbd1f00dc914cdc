#!/usr/bin/env python3
"""What the stored ToT chains look like, per store: the form measures of research/scripts/writer_probe.py (empty and
wordless thoughts, thoughts opening with a digit, chain words with a digit, …) over every tot-space row of
each store, for comparing whole pipelines' chains rather than a probe's first users.

    python3 research/scripts/chain_form.py --out results/chain-form-pipeline-500-nospace \
        nameless=runs/pipeline-luxury-beauty-500-nameless/rationales.sqlite \
        nospace=runs/pipeline-luxury-beauty-500-nospace/rationales.sqlite

Writes OUT/table.md (docs/research-log.md includes it) and OUT/form.json. Read-only on the stores.
"""
import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from writer_probe import measure, rows  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stores", nargs="+", metavar="LABEL=STORE")
    ap.add_argument("--method", default="tot-space")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    form = {}
    for arg in a.stores:
        label, sep, db = arg.partition("=")
        if not sep or not label or not db:
            sys.exit(f"chain_form.py: '{arg}' is not LABEL=STORE")
        if not pathlib.Path(db).is_file():
            sys.exit(f"chain_form.py: {db}: no such store")
        rs = list(rows(db, a.method).values())
        if not rs:
            sys.exit(f"chain_form.py: {db}: no {a.method} rows")
        form[label] = {"store": db, **measure(rs)}
    lines = [
        "| chains of | chains | judge score of the kept chain (mean) | empty thoughts | thoughts opening with a digit | thoughts without a word | chains with a wordless thought | words per chain | chain words with a digit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, m in form.items():
        lines.append(f"| {label} | {m['chains']} | {m['mean_chain_score']:.3f} | {m['empty_thoughts']:.1%} | {m['thoughts_opening_with_a_digit']:.1%} | "
                     f"{m['wordless_thoughts']:.1%} | {m['chains_with_a_wordless_thought']:.1%} | {m['words_per_chain']:.1f} | {m['words_with_a_digit']:.1%} |")
    out = pathlib.Path(a.out)
    stores = "; ".join(f"{k}: `{v['store']}`" for k, v in form.items())
    lines += ["", f"Every {a.method} row of each store ({stores}); "
              f"by `research/scripts/chain_form.py` (`{out.name}/form.json`)."]
    out.mkdir(parents=True, exist_ok=True)
    (out / "form.json").write_text(json.dumps(form, indent=2) + "\n")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
