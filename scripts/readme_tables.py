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


def repl(m):
    table = root / "results" / m.group(2) / "table.md"
    if not table.exists():
        sys.exit(f"README.md: results/{m.group(2)}/table.md does not exist")
    return m.group(1) + table.read_text() + m.group(4)


new = pattern.sub(repl, text)
if "--check" in sys.argv:
    if new != text:
        sys.exit("README.md: result tables are stale; run python3 scripts/readme_tables.py")
    print("README tables match results/")
else:
    readme.write_text(new)
    print(f"updated {len(pattern.findall(text))} table(s) in README.md")
