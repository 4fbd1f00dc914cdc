#!/usr/bin/env python3
"""Regenerates the result tables of README.md and every docs/*.md from the committed results/ files.

Each table sits between `<!-- results:NAME -->` and `<!-- /results:NAME -->` and is generated from
results/NAME/: its cells.json (the cross-experiment summary), table.md, report.json (a Thought Space) or
summary.json (a rationale or ToT run). `summary-readme` is the README's short summary: a few rows and
columns of results/summary/cells.json's tables (README_SUMMARY below).
With --check, exits 1 naming every file whose tables differ from results/ (CI runs this).
"""
import json
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
pattern = re.compile(r"(<!-- results:([\w.-]+) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)


def doc_files():
    """README.md, then docs/*.md in name order."""
    return [root / "README.md"] + sorted((root / "docs").glob("*.md"))


class Stale(Exception):
    pass


def rationale_table(summary_path):
    """A `pulse rationales --summary` file as a small table."""
    d = json.loads(summary_path.read_text())
    s = d["summary"]
    st = s["status"]
    n = s["generated"]
    att = s.get("attempts", {})
    pct = lambda k: f"{st.get(k, 0)} ({100 * st.get(k, 0) / max(n, 1):.1f}%)"
    return (
        f"| dataset | users | stored as JSON | lenient | truncated | **parse failures** | resampled | "
        f"prompt + new tokens | wall time |\n|---|---|---|---|---|---|---|---|---|\n"
        f"| {s['dataset']} | {n} | {pct('json')} | {pct('lenient')} | {pct('truncated')} | **{pct('raw')}** | "
        f"{n - att.get('1', 0)} | {s['prompt_tokens']:,} + {s['new_tokens']:,} | {s['seconds']:.0f} s |\n\n"
        f"Model `{s['model']}` (`{s['model_sha256'][:12]}…`), prompt `{s['prompt_version']}`, seed {s['seed']}; "
        f"from `results/{summary_path.parent.name}/summary.json` (resolved config inside).\n"
    )


def thought_table(report_path):
    """A `pulse thought train` report.json as a small table."""
    r = json.loads(report_path.read_text())
    u, t = r["untrained"], r["trained"]
    return (
        f"| dataset | training pairs | held-out users | R@1 (1 of {t['pool']}) untrained → trained | "
        f"MRR untrained → trained | wall time |\n|---|---|---|---|---|---|\n"
        f"| {r['dataset']} | {r['pairs_train']} | {r['pairs_heldout']} | {u['r_at_1']:.3f} → **{t['r_at_1']:.3f}** | "
        f"{u['mrr']:.3f} → **{t['mrr']:.3f}** | {r['seconds']:.0f} s |\n\n"
        f"From `results/{report_path.parent.name}/report.json` (config and seed {r['seed']} inside).\n"
    )


def tot_table(summary_path):
    """A `pulse tot --summary` file as a small table."""
    d = json.loads(summary_path.read_text())
    s, c = d["summary"], d["config"]
    return (
        f"| dataset | users refined | method | depth / branching / beam | thoughts (hit the {c['sampling']['max_tokens']}-token limit) | "
        f"mean chain score | prompt + new tokens | wall time |\n|---|---|---|---|---|---|---|---|\n"
        f"| {s['dataset']} | {s['refined'] + s['already_stored']} | {s['method']} | {c['depth']} / {c['branching']} / {c['beam']} | "
        f"{s['thoughts']:,} ({s['thoughts_truncated']:,}) | {s['mean_score']:.3f} | {s['prompt_tokens']:,} + {s['new_tokens']:,} | "
        f"{s['seconds']:.0f} s |\n\n"
        f"Model `{s['model']}` (`{s['model_sha256'][:12]}…`), judge `{s['scorer']}`, seed {s['seed']}; prompt tokens count "
        f"each sample's prompt (a node's samples share one prefill); from `results/{summary_path.parent.name}/summary.json`"
        f"{' (this run; ' + str(s['already_stored']) + ' users were stored by an earlier run)' if s['already_stored'] else ''}.\n"
    )


def load_summary(cells_path):
    """cells.json's tables, each with its cells read from the committed result files.

    A cell is `folder/row-protocol` (results/folder/row-protocol.json; HR@1 on candidate protocols, NDCG@10
    on `full`), a literal `=value` (a number reported elsewhere, not run here) or null (not run). Returns, per
    table, (spec, loaded: cell -> (value, CI half-width, users), full_n: per column the largest sample).
    """
    spec = json.loads(cells_path.read_text())
    out = []
    for t in spec["tables"]:
        loaded = {}
        for _, cells in t["rows"]:
            if len(cells) != len(t["columns"]):
                sys.exit(f"{cells_path}: a row of '{t['title']}' has {len(cells)} cells for {len(t['columns'])} columns")
            for c in cells:
                if c and not c.startswith("="):
                    f = root / "results" / f"{c}.json"
                    if not f.is_file():
                        sys.exit(f"{cells_path}: results/{c}.json does not exist")
                    r = json.loads(f.read_text())
                    metric = "ndcg@10" if r["protocol"] == "full" else "hr@1"
                    lo, hi = r["ci95"][metric]
                    loaded[c] = (r["metrics"][metric], (hi - lo) / 2, r["n_users"])
        # a column's largest sample is its full test set; smaller ones are marked (n=…)
        full_n = [max((loaded[cells[j]][2] for _, cells in t["rows"] if cells[j] in loaded), default=0)
                  for j in range(len(t["columns"]))]
        out.append((t, loaded, full_n))
    return out


def cell_text(c, loaded, n_full):
    if c is None:
        return "–"
    if c.startswith("="):
        return f"*{c[1:]}*"
    v, hw, n = loaded[c]
    return f"{v:.3f} ±{hw:.3f}" + (f" (n={n:,})" if n < n_full else "")


def summary_tables(cells_path):
    """The cross-experiment summary: every cell read from one committed result file, as cells.json lists them."""
    out = []
    for t, loaded, full_n in load_summary(cells_path):
        out.append(f"**{t['title']}**\n\n| model | " + " | ".join(t["columns"]) + " |\n|---|" + "---|" * len(t["columns"]) + "\n")
        for label, cells in t["rows"]:
            out.append(f"| {label} | " + " | ".join(cell_text(c, loaded, full_n[j]) for j, c in enumerate(cells)) + " |\n")
        folders = {}
        for label, cells in t["rows"]:
            for c in cells:
                if c in loaded:
                    folders.setdefault(c.split("/")[0], []).append(c.split("/")[1].rsplit("-", 1)[0])
        out.append("\nCells from " + "; ".join(
            f"`{k}` ({', '.join(dict.fromkeys(v))})" for k, v in folders.items()) + ".\n\n")
    return "".join(out).rstrip("\n") + "\n"


# The README's short summary: columns as (heading, table index in cells.json, that table's column), rows as
# (label, {table index: that table's row label}); a cell a row does not name is "–". Cells are formatted as in
# the full summary, (n=…) judged against the source column's largest sample.
README_SUMMARY = {
    "columns": [
        ("Luxury Beauty cand5 HR@1", 0, "Luxury Beauty cand5 HR@1"),
        ("Luxury Beauty cand20 HR@1", 0, "Luxury Beauty cand20 HR@1"),
        ("Luxury Beauty full NDCG@10", 0, "Luxury Beauty full NDCG@10"),
        ("→ Video Games cand5 HR@1", 1, "Video Games cand5 HR@1"),
        ("→ Office cand5 HR@1", 1, "Office cand5 HR@1"),
    ],
    "rows": [
        ("popularity", {0: "pop"}),
        ("SASRec (item IDs)", {0: "sasrec (item IDs)"}),
        ("content similarity (nothing trained)", {1: "content similarity (nothing trained, centred)"}),
        ("PULSE-TS, texts only (`pulse-ts-text`)", {0: "PULSE-TS, texts only (`pulse-ts-text`)",
                                                    1: "PULSE-TS, texts only (`pulse-ts-text`)"}),
        ("hybrid (late fusion, weights tuned on Luxury Beauty validation)",
         {0: "hybrid (late fusion, weights tuned on validation)",
          1: "hybrid (+ target popularity; weights tuned on Luxury Beauty)"}),
        ("base SLM, zero-shot (SmolLM2-135M)", {0: "base SLM, zero-shot (SmolLM2-135M)", 1: "base SLM, zero-shot (SmolLM2-135M)"}),
        ("plain SFT (1,500 users)", {0: "plain SFT (1,500 users)", 1: "plain SFT (1,500 users)"}),
        ("SFT with reasons (1,500 users)", {0: "SFT with reasons (1,500 users)", 1: "SFT with reasons (1,500 users)"}),
        ("ToT with likelihood (1,500 users)", {0: "ToT with likelihood (1,500 users)", 1: "ToT with likelihood (1,500 users)"}),
        ("PULSE (1,500 users; adapter `93b135dc`)",
         {0: "PULSE (1,500 users; the adapters the committed snapshots retrain to: `93b135dc`, on Video Games `0a389499`)",
          1: "PULSE (1,500 users; `93b135dc`, the adapter the committed snapshot retrains to)"}),
        ("PULSE (`93b135dc`) reranking a hybrid's lists (across domains: the hybrid of the untrained parts)",
         {0: "PULSE (1,500 users; `93b135dc`) + hybrid, reranking its lists",
          1: "PULSE (1,500 users; `93b135dc`) + the untrained-parts hybrid, reranking its lists"}),
        ("A-LLMRec (reported)", {0: "A-LLMRec (reported, not run here)"}),
        ("paper: PULSE (Phi-4-mini 3.8B; reported)", {1: "paper: PULSE (Phi-4-mini 3.8B; reported)"}),
    ],
}


def readme_summary(cells_path):
    tables = load_summary(cells_path)
    spec = README_SUMMARY

    def find(ti, label, col):
        t, loaded, full_n = tables[ti]
        rows = [cells for l, cells in t["rows"] if l == label]
        if len(rows) != 1:
            sys.exit(f"{cells_path}: README_SUMMARY names row '{label}', found {len(rows)} times in '{t['title']}'")
        if col not in t["columns"]:
            sys.exit(f"{cells_path}: README_SUMMARY names column '{col}', not in '{t['title']}'")
        j = t["columns"].index(col)
        return cell_text(rows[0][j], loaded, full_n[j])

    out = ["| model | " + " | ".join(h for h, _, _ in spec["columns"]) + " |\n|---|" + "---|" * len(spec["columns"]) + "\n"]
    for label, src in spec["rows"]:
        cells = [find(ti, src[ti], col) if ti in src else "–" for _, ti, col in spec["columns"]]
        out.append(f"| {label} | " + " | ".join(cells) + " |\n")
    return "".join(out)


def explain_table(path):
    """A `pulse explain-check --out` file as a table."""
    r = json.loads(path.read_text())
    st = r["settings"]
    out = ["| model | evidence | users | cited items (mean) | **PN: cited removed** | PN: as many random removed | "
           "mean rank drop, cited | random | median drop, cited | random | random = cited (whole window) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for x in r["rows"]:
        out.append(f"| {x['mode']} | {'leave-one-out' if x['leave_one_out'] else 'parts'} | {x['users']:,} | {x['mean_cited']:.2f} | "
                   f"**{x['pn_cited']:.3f}** | {x['pn_random']:.3f} | {x['rank_drop_cited']:.0f} | {x['rank_drop_random']:.0f} | "
                   f"{x['median_drop_cited']:.0f} | {x['median_drop_random']:.0f} | {x['whole_history']} of {x['users']} (last {x['window']}) |")
    b = r["bundle"]
    return ("\n".join(out) + f"\n\nTop-1 of {st['users']:,} sampled users (seed {st['seed']}), leaves the top-{st['k']}; bundle "
            f"`{b['name']}` ({b['code_version']}), measured {r['measured_at'][:10]}; from "
            f"`results/{path.parent.name}/explain-check.json`.\n")


def block(name, doc):
    d = root / "results" / name
    if (d / "explain-check.json").exists():
        return explain_table(d / "explain-check.json")
    if name == "summary-readme":
        return readme_summary(root / "results" / "summary" / "cells.json")
    if (d / "cells.json").exists():
        return summary_tables(d / "cells.json")
    table = d / "table.md"
    if table.exists():
        return table.read_text()
    if (d / "report.json").exists():
        return thought_table(d / "report.json")
    if (d / "summary.json").exists():
        if json.loads((d / "summary.json").read_text())["summary"].get("method", "").startswith("tot"):
            return tot_table(d / "summary.json")
        return rationale_table(d / "summary.json")
    sys.exit(f"{doc.relative_to(root)}: results/{name}/table.md does not exist")


def main():
    check = "--check" in sys.argv
    stale, updated, total = [], [], 0
    for doc in doc_files():
        text = doc.read_text()
        n = len(pattern.findall(text))
        total += n
        new = pattern.sub(lambda m: m.group(1) + block(m.group(2), doc) + m.group(4), text)
        if new != text:
            rel = str(doc.relative_to(root))
            if check:
                names = [m.group(2) for m in pattern.finditer(text)
                         if m.group(1) + block(m.group(2), doc) + m.group(4) != m.group(0)]
                stale.append(f"{rel}: {', '.join(names)}")
            else:
                doc.write_text(new)
                updated.append(f"{rel} ({n})")
    if check:
        if stale:
            sys.exit("result tables are stale; run python3 scripts/readme_tables.py:\n  " + "\n  ".join(stale))
        print(f"doc tables match results/ ({total} tables in {len(doc_files())} files)")
    else:
        print(f"{total} tables in {len(doc_files())} files; updated: {', '.join(updated) or 'none'}")


if __name__ == "__main__":
    main()
