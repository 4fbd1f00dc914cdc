#!/usr/bin/env python3
"""Where the SFT variants' hits differ: how often two SLM rows of one experiment rank a test user's true item
differently, read from their committed per-user ranks (results/<folder>/<row>-<protocol>.ranks.tsv.gz, or .ranks.tsv).

The ordering PULSE >= SFT with reasons >= plain SFT is a statement about HR@1 differences. A difference between two
rows run on the same users comes only from the users whose top-1 outcome differs: A hits and B misses (A only), or
the reverse (B only). This counts them for every pair of rows, with the share of users whose true item lands at
the same place in both lists, and the discordant users a paired difference rests on.

    python3 research/scripts/sft_agreement.py --out results/sft-agreement \
        pipeline-luxury-beauty-1500-eval1000:slm,sft-plain,sft-reasons,sft-tot-likelihood,pulse ...

Each argument is FOLDER:ROW,ROW,...[:PROTOCOL] (cand5 unless given); writes OUT/table.md (docs/research-log.md includes it) and OUT/agreement.json.
"""
import argparse
import gzip
import itertools
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent.parent


def ranks_file(path):
    """A ranks file by either name, as `pulse compare` finds it: the name given if that file is there, else the
    other form (`X.ranks.tsv` <-> `X.ranks.tsv.gz`; results/ keeps them gzipped)."""
    path = pathlib.Path(path)
    if path.is_file():
        return path
    other = path.with_name(path.name[:-3]) if path.name.endswith(".gz") else path.with_name(path.name + ".gz")
    return other if other.is_file() else path


def load_ranks(path):
    """user id -> 1-based rank of the true item, from X.ranks.tsv.gz or X.ranks.tsv (either name may be given);
    one-line error naming file:line on bad input."""
    path = ranks_file(path)
    if not path.is_file():
        sys.exit(f"{path}: does not exist (nor its .gz)")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip, whatever the name says
        data = gzip.decompress(data)
    lines = data.decode("utf-8").split("\n")
    if lines[0] != "user_id\trank":
        sys.exit(f"{path}:1: header is not 'user_id<TAB>rank'")
    ranks = {}
    for no, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) < 1:
            sys.exit(f"{path}:{no}: expected '<user>\\t<rank ≥ 1>', got {line!r}")
        if parts[0] in ranks:
            sys.exit(f"{path}:{no}: user {parts[0]} appears twice")
        ranks[parts[0]] = int(parts[1])
    return ranks


def pair(a, b):
    """Counts for two rows' ranks; both must rank the same users (else ValueError)."""
    users = sorted(a.keys() & b.keys())
    if len(users) != len(a) or len(users) != len(b):
        raise ValueError(f"the rows rank different users ({len(a)} and {len(b)}, {len(users)} in common)")
    a_only = sum(a[u] == 1 and b[u] != 1 for u in users)
    b_only = sum(b[u] == 1 and a[u] != 1 for u in users)
    return {
        "users": len(users),
        "same_rank": sum(a[u] == b[u] for u in users),
        "both_hit": sum(a[u] == 1 and b[u] == 1 for u in users),
        "a_only": a_only,
        "b_only": b_only,
        "hr1_a": sum(a[u] == 1 for u in users) / len(users),
        "hr1_b": sum(b[u] == 1 for u in users) / len(users),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("sets", nargs="+", help="FOLDER:ROW,ROW,...[:PROTOCOL] (results/FOLDER/ROW-PROTOCOL.ranks.tsv; cand5)")
    args = ap.parse_args()
    result = []
    for spec in args.sets:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            sys.exit(f"argument {spec!r}: expected FOLDER:ROW,ROW,...[:PROTOCOL]")
        folder, rows, protocol = parts[0], parts[1].split(","), (parts[2] if len(parts) == 3 else "cand5")
        ranks = {r: load_ranks(root / "results" / folder / f"{r}-{protocol}.ranks.tsv") for r in rows}
        for a, b in itertools.combinations(rows, 2):
            try:
                c = pair(ranks[a], ranks[b])
            except ValueError as e:
                sys.exit(f"results/{folder}: {a} vs {b}: {e}")
            result.append({"folder": folder, "protocol": protocol, "a": a, "b": b, **c})
    out = [
        "| experiment | protocol | A | B | users | same rank | A hits, B misses | B hits, A misses | discordant | HR@1 A − B |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result:
        n = r["users"]
        pct = lambda k: f"{100 * r[k] / n:.1f}%"
        out.append(
            f"| `{r['folder']}` | {r['protocol']} | {r['a']} | {r['b']} | {n:,} | {pct('same_rank')} | {r['a_only']} | {r['b_only']} | "
            f"{100 * (r['a_only'] + r['b_only']) / n:.1f}% | {r['hr1_a'] - r['hr1_b']:+.3f} |"
        )
    out.append("")
    out.append("From the committed `<row>-<protocol>.ranks.tsv` files by `research/scripts/sft_agreement.py` (`agreement.json` beside this table).")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in [("agreement.json", json.dumps(result, indent=1) + "\n"), ("table.md", "\n".join(out) + "\n")]:
        tmp = args.out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(args.out / name)
    print("\n".join(out))


if __name__ == "__main__":
    main()
