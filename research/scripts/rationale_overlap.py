#!/usr/bin/env python3
"""How much of the chosen item's title a rationale restates, per rationale method of a store.

A rationale explains why the user chose the target; the SFT texts put it right before "The recommendation
is <title>", while the ranker's test prompt has no rationale. A rationale that already names the item lets
training copy the answer from it. This measures that: for each stored rationale, the share of the target
title's content words (lower-cased alphanumeric runs of 3+ characters, minus the stop list of the SFT title
mask, read from crates/pulse-rationale/src/words.rs) that occur in the rationale. With --history it also
measures how much of a rationale is copied from the history it was written for: the share of the rationale's
content words found in the titles of its stored history (the items its prompt showed: up to 10 for the
initial rationales' prompt, 5 for ToT's) but not in the chosen title (a judge that compares a rationale with
B(history, chosen) pays for those too).

    python3 research/scripts/rationale_overlap.py --store runs/pipeline-luxury-beauty-500/rationales.sqlite \
        --items data/amazon2018-luxury-beauty/items.tsv --out results/rationale-overlap-pipeline-500

Writes OUT/table.md (docs/research-log.md includes it) and OUT/overlap.json. Read-only on the store.
"""
import argparse
import csv
import json
import pathlib
import re
import sqlite3
import statistics
import sys

# One definition of "content words" with the SFT title mask (`pulse_rationale::words::content_words`): the stop
# list is read from that source file, and words are split the same way (alphanumeric runs of 3+ characters).
RUST_WORDS = pathlib.Path(__file__).resolve().parent.parent.parent / "crates/pulse-rationale/src/words.rs"


def rust_stop_list(path=RUST_WORDS):
    m = re.search(r"const STOP: \[&str; (\d+)\] = \[(.*?)\];", path.read_text(), re.S)
    if not m:
        sys.exit(f"{path}: no `const STOP: [&str; N] = [...]` to read the stop list from")
    stop = re.findall(r'"([^"]*)"', m.group(2))
    if len(stop) != int(m.group(1)):
        sys.exit(f"{path}: STOP declares {m.group(1)} words, read {len(stop)}")
    return set(stop)


STOP = rust_stop_list()


def words(s):
    return {w.lower() for w in re.findall(r"[^\W_]+", s) if len(w) > 2} - STOP


def read_titles(path):
    """item_id -> title from a dataset's items.tsv; a malformed file exits naming file:line."""
    titles = {}
    with open(path, newline="") as f:
        r = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        head = next(r)
        if "item_id" not in head or "title" not in head:
            sys.exit(f"{path}:1: expected columns item_id and title, got {head}")
        ii, ti = head.index("item_id"), head.index("title")
        for ln, row in enumerate(r, start=2):
            if len(row) != len(head):
                sys.exit(f"{path}:{ln}: {len(row)} columns, expected {len(head)}")
            titles[row[ii]] = row[ti]
    return titles


def open_store(path):
    """A rationale store opened read-only; a missing file exits naming it."""
    store = pathlib.Path(path)
    if not store.is_file():
        sys.exit(f"{store}: no such rationale store")
    return store, sqlite3.connect(f"file:{store}?mode=ro", uri=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--items", required=True, help="items.tsv of the dataset (item_id, asin, title)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--history", action="store_true", help="add the share of each rationale's words taken from its history's titles")
    a = ap.parse_args()
    titles = read_titles(a.items)
    store, con = open_store(a.store)
    rows = con.execute("select method, target, rationale, history from rationales where rationale is not null").fetchall()
    by = {}
    for method, target, rat, history in rows:
        tw = words(titles.get(target, ""))
        if not tw:
            continue
        rw = words(rat)
        d = by.setdefault(method, {"recall": [], "words": [], "from_history": []})
        d["recall"].append(len(tw & rw) / len(tw))
        d["words"].append(len(rat.split()))
        if a.history and rw:
            hw = set().union(*(words(titles.get(h, "")) for h in json.loads(history))) - tw
            d["from_history"].append(len(rw & hw) / len(rw))
    if not by:
        sys.exit(f"{store}: no rationales whose target has a title in {a.items}")
    out = {}
    for m, d in sorted(by.items()):
        rec = d["recall"]
        out[m] = {
            "rationales": len(rec),
            "mean_title_word_recall": round(statistics.mean(rec), 4),
            "share_half_or_more": round(sum(x >= 0.5 for x in rec) / len(rec), 4),
            "share_none": round(sum(x == 0 for x in rec) / len(rec), 4),
            "mean_words": round(statistics.mean(d["words"]), 1),
        }
        if a.history:
            out[m]["mean_share_from_history"] = round(statistics.mean(d["from_history"]), 4) if d["from_history"] else 0.0
    o = pathlib.Path(a.out)
    o.mkdir(parents=True, exist_ok=True)
    (o / "overlap.json").write_text(json.dumps({"store": a.store, "items": a.items, "methods": out}, indent=2) + "\n")
    hcol = " rationale's words from the history's titles (mean) |" if a.history else ""
    t = (f"| method | rationales | title words restated (mean) | ≥ half of the title's words | none of them | words per rationale |{hcol}\n"
         "|---|---|---|---|---|---|" + ("---|" if a.history else "") + "\n")
    for m, v in out.items():
        h = f" {v['mean_share_from_history']:.3f} |" if a.history else ""
        t += (f"| {m} | {v['rationales']} | {v['mean_title_word_recall']:.3f} | {v['share_half_or_more']:.3f} | "
              f"{v['share_none']:.3f} | {v['mean_words']:.1f} |{h}\n")
    t += f"\nFrom `{a.store}` by `research/scripts/rationale_overlap.py` (`{o}/overlap.json`).\n"
    (o / "table.md").write_text(t)
    print(t, end="")


if __name__ == "__main__":
    main()
