#!/usr/bin/env python3
"""Regenerates the README's result tables from committed results/<name>/table.md files.

Each table sits between `<!-- results:NAME -->` and `<!-- /results:NAME -->` in README.md.
With --check, exits 1 if any table differs from its results file (CI runs this).
"""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
readme = root / "README.md"
text = readme.read_text()
pattern = re.compile(r"(<!-- results:([\w.-]+) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)


def rationale_table(summary_path):
    """A `pulse rationales --summary` file as a small table."""
    import json
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
    import json
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
    import json
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


def summary_tables(cells_path):
    """The cross-experiment summary: every cell read from one committed result file, as cells.json lists them.

    A cell is `folder/row-protocol` (results/folder/row-protocol.json; HR@1 on candidate protocols, NDCG@10
    on `full`), a literal `=value` (a number reported elsewhere, not run here) or null (not run).
    """
    import json
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

        def cell(c, j):
            if c is None:
                return "–"
            if c.startswith("="):
                return f"*{c[1:]}*"
            v, hw, n = loaded[c]
            return f"{v:.3f} ±{hw:.3f}" + (f" (n={n:,})" if n < full_n[j] else "")

        out.append(f"**{t['title']}**\n\n| model | " + " | ".join(t["columns"]) + " |\n|---|" + "---|" * len(t["columns"]) + "\n")
        for label, cells in t["rows"]:
            out.append(f"| {label} | " + " | ".join(cell(c, j) for j, c in enumerate(cells)) + " |\n")
        folders = {}
        for label, cells in t["rows"]:
            for c in cells:
                if c in loaded:
                    folders.setdefault(c.split("/")[0], []).append(c.split("/")[1].rsplit("-", 1)[0])
        out.append("\nCells from " + "; ".join(
            f"`{k}` ({', '.join(dict.fromkeys(v))})" for k, v in folders.items()) + ".\n\n")
    return "".join(out).rstrip("\n") + "\n"


def repl(m):
    d = root / "results" / m.group(2)
    if (d / "cells.json").exists():
        return m.group(1) + summary_tables(d / "cells.json") + m.group(4)
    table = d / "table.md"
    if table.exists():
        return m.group(1) + table.read_text() + m.group(4)
    if (d / "report.json").exists():
        return m.group(1) + thought_table(d / "report.json") + m.group(4)
    if (d / "summary.json").exists():
        import json
        if json.loads((d / "summary.json").read_text())["summary"].get("method", "").startswith("tot"):
            return m.group(1) + tot_table(d / "summary.json") + m.group(4)
        return m.group(1) + rationale_table(d / "summary.json") + m.group(4)
    sys.exit(f"README.md: results/{m.group(2)}/table.md does not exist")


new = pattern.sub(repl, text)
if "--check" in sys.argv:
    if new != text:
        sys.exit("README.md: result tables are stale; run python3 scripts/readme_tables.py")
    print("README tables match results/")
else:
    readme.write_text(new)
    print(f"updated {len(pattern.findall(text))} table(s) in README.md")
