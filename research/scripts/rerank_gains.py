#!/usr/bin/env python3
"""What the SLM changes when it reranks a hybrid's lists: for a `<row>+hybrid` row of an experiment folder, the
users whose top item the fusion changes (gained: the fused row ranks the true item first and the hybrid alone does
not; lost: the reverse), and, among the users the hybrid alone misses, how many the SLM row alone ranks first (with
the share a random ranking of an n-item list would get, 1/n). Read from the committed per-user ranks
(results/<folder>/<row>-<protocol>.ranks.tsv.gz, or .ranks.tsv); the hybrid's file may rank more users (it ranks every test user),
and is read on the fused row's users.

    python3 research/scripts/rerank_gains.py rerank-luxury-beauty-1500-cand20:pulse:cand20 \
        rerank-luxury-beauty-1500-cand20-eval1000:pulse:cand20

Each argument is FOLDER:SLM_ROW:PROTOCOL (protocol candN); writes results/FOLDER/rerank-gains-SLM_ROW.json and prints a
table.
"""
import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from sft_agreement import load_ranks, pair, root  # noqa: E402


def gains(fused, hybrid, slm, n_candidates):
    """Counts over the fused row's users; the SLM row must rank exactly them, the hybrid at least them. The fused
    row against the hybrid is `sft_agreement.pair` on those users (A: fused, B: hybrid)."""
    users = sorted(fused)
    if set(slm) != set(users):
        raise ValueError(f"the SLM row ranks other users than the fused row ({len(slm)} and {len(users)})")
    missing = [u for u in users if u not in hybrid]
    if missing:
        raise ValueError(f"the hybrid does not rank {len(missing)} of the fused row's users (e.g. {missing[0]})")
    p = pair(fused, {u: hybrid[u] for u in users})
    hyb_miss = [u for u in users if hybrid[u] != 1]
    return {
        "users": p["users"],
        "hr1_fused": p["hr1_a"],
        "hr1_hybrid": p["hr1_b"],
        "hr1_slm": sum(slm[u] == 1 for u in users) / len(users),
        "gained": p["a_only"],
        "lost": p["b_only"],
        "same_rank": p["same_rank"],
        "hybrid_misses": len(hyb_miss),
        "slm_right_where_hybrid_misses": sum(slm[u] == 1 for u in hyb_miss),
        "chance_where_hybrid_misses": len(hyb_miss) / n_candidates,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="+", help="FOLDER:SLM_ROW:PROTOCOL (results/FOLDER/SLM_ROW+hybrid-PROTOCOL.ranks.tsv)")
    args = ap.parse_args()
    out = [
        "| experiment | protocol | users | fused HR@1 | hybrid HR@1 | SLM alone HR@1 | gained | lost | hybrid misses | SLM right there (chance) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for spec in args.sets:
        parts = spec.split(":")
        if len(parts) != 3 or not all(parts) or not parts[2].startswith("cand") or not parts[2][4:].isdigit():
            sys.exit(f"argument {spec!r}: expected FOLDER:SLM_ROW:candN")
        folder, row, protocol = parts
        d = root / "results" / folder
        n = int(protocol[4:])
        if n < 2:
            sys.exit(f"argument {spec!r}: a candidate list has at least 2 items")
        try:
            g = gains(
                load_ranks(d / f"{row}+hybrid-{protocol}.ranks.tsv"),
                load_ranks(d / f"hybrid-{protocol}.ranks.tsv"),
                load_ranks(d / f"{row}-{protocol}.ranks.tsv"),
                n,
            )
        except ValueError as e:
            sys.exit(f"results/{folder}: {row}+hybrid: {e}")
        g = {"folder": folder, "row": row, "protocol": protocol, **g}
        tmp = d / f".rerank-gains-{row}.json.tmp"
        tmp.write_text(json.dumps(g, indent=1) + "\n")
        tmp.replace(d / f"rerank-gains-{row}.json")
        out.append(
            f"| `{folder}` | {protocol} | {g['users']:,} | {g['hr1_fused']:.3f} | {g['hr1_hybrid']:.3f} | {g['hr1_slm']:.3f} | "
            f"{g['gained']} | {g['lost']} | {g['hybrid_misses']} | {g['slm_right_where_hybrid_misses']} "
            f"({g['chance_where_hybrid_misses']:.1f}) |"
        )
    print("\n".join(out))


if __name__ == "__main__":
    main()
