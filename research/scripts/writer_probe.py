#!/usr/bin/env python3
"""Would a bigger GGUF write better ToT chains? Run the same search with another writer and compare.

The ToT stage's chains are written by the SLM (SmolLM2-135M-Instruct) and judged by a Thought Space. The
only bigger GGUF reachable from the package registries here is Gemma 3 270M (a base model, no chat template:
`pulse` renders chat prompts as plain `role: text` turns for it). This runs `pulse tot` with that writer for
the first N users of the split, with the same space, ToT config and seed as a reference store that the default
writer already refined, and compares the two writers on the same (user, target) choices:

    python3 research/scripts/writer_probe.py --model models/gemma-3-270m-q4_k_m.gguf --users 40 \
        --space runs/pipeline-luxury-beauty-500-nameless/thought --config configs/stages/tot-luxury-beauty-nameless.toml \
        --reference runs/pipeline-luxury-beauty-500-nameless/rationales.sqlite --out results/tot-writer-probe-gemma

`--probe-config` gives the probe its own ToT config, which may differ from the reference's only in the prompt's
form (worked examples for a base model, `demonstrations`; `space_after_number`).
(`bash scripts/fetch_models.sh --gemma` fetches the Gemma file.) The probe's store goes to
runs/writer-probe/<model stem>.sqlite, or <model stem>-<probe config stem>.sqlite with `--probe-config`
(a rerun reuses it: ToT skips stored users; every choice that store holds
is compared, so remove it before asking for fewer users). Writes OUT/summary.json (the `pulse tot` summary with
its resolved config and seed, from the run that searched the users), OUT/probe.json and OUT/table.md, only once
the comparison holds. The reference store is read only; its rows are matched on the ToT parameters (space hash
and search settings), so a reference refined with another space or config is refused.
"""
import argparse
import json
import pathlib
import re
import statistics
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from rationale_overlap import open_store  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
PULSE = ROOT / "target/release/pulse"
# ToT settings that change only the prompt's form, which a probe config may set differently from the reference's
PROMPT_FORM = ("demonstrations", "space_after_number")


def rows(db, method="tot-space"):
    _, con = open_store(db)
    out = {}
    for user, target, params, rationale, score, raw, model in con.execute(
        "SELECT user, target, params, rationale, score, raw, model_name FROM rationales WHERE method = ?",
        (method,),
    ):
        out[(user, target)] = dict(params=params, rationale=rationale, score=score, tree=json.loads(raw), model=model)
    return out


def search_settings(params):
    """A row's ToT parameters without the prompt's form (worked examples, the space after the step number):
    what the reference and the probe must share."""
    p = json.loads(params)
    for k in PROMPT_FORM:
        p["tot"].pop(k, None)
    return p


def wordless(thought):
    """A thought with no letters at all ("1 2 3", "3.1. 3.2.", "") says nothing about the choice."""
    return not re.search(r"[A-Za-z]{2,}", thought)


def measure(rs):
    """Per writer: the judge's score of the kept chain, and what the generated thoughts look like."""
    nodes = [n for r in rs for n in r["tree"]["nodes"]]
    texts = [n["text"].strip() for n in nodes]
    chains = [r["tree"]["chain"] for r in rs]
    return {
        "chains": len(rs),
        # every thought of the kept chain empty: the store keeps the row without a rationale
        "no_rationale": sum(1 for r in rs if not (r["rationale"] or "").strip()) / len(rs),
        "mean_chain_score": statistics.mean(r["score"] for r in rs if r["score"] is not None),
        "thoughts": len(texts),
        "empty_thoughts": sum(1 for t in texts if not t) / len(texts),
        "wordless_thoughts": sum(1 for t in texts if wordless(t)) / len(texts),
        "chains_with_a_wordless_thought": sum(1 for c in chains if any(wordless(t) for t in c)) / len(chains),
        "thoughts_opening_with_a_digit": sum(1 for t in texts if t[:1].isdigit()) / len(texts),
        "thoughts_at_token_limit": sum(1 for n in nodes if n.get("truncated")) / len(nodes),
        "words_per_chain": statistics.mean(len((r["rationale"] or "").split()) for r in rs),
        # "7.45", "3.3x", "1990s": sizes, counts and step numbers instead of reasons
        "words_with_a_digit": digit_share([r["rationale"] or "" for r in rs]),
    }


def digit_share(texts):
    words = [w for t in texts for w in t.split()]
    return sum(1 for w in words if re.search(r"[0-9]", w)) / max(len(words), 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="the other writer's GGUF file")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data", default="data/amazon2018-luxury-beauty")
    ap.add_argument("--space", required=True)
    ap.add_argument("--config", required=True, help="the ToT config the reference store was refined with")
    ap.add_argument("--probe-config", help="the probe's own ToT config: the reference's in another prompt form "
                    "(worked examples, `demonstrations`, make it a completion prompt for a base model; "
                    "`space_after_number`); nothing else may differ")
    ap.add_argument("--reference", required=True, help="a store the default writer refined with the same space and config")
    ap.add_argument("--examples", type=int, default=6, help="chains of each writer written to probe.json")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    stem = pathlib.Path(a.model).stem + ("" if a.probe_config is None else "-" + pathlib.Path(a.probe_config).stem)
    store = ROOT / "runs/writer-probe" / (stem + ".sqlite")
    store.parent.mkdir(parents=True, exist_ok=True)
    last = store.with_suffix(".summary.json")
    probe_config = a.probe_config or a.config
    cmd = [str(PULSE), "tot", "-q", "--model", a.model, "--data", a.data, "--store", str(store), "--space", a.space,
           "--config", probe_config, "--users", str(a.users), "--seed", str(a.seed), "--summary", str(last)]
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"writer_probe: `{' '.join(cmd)}` failed (exit {r.returncode})")
    probe = rows(store)
    ref = rows(a.reference)
    params = {p["params"] for p in probe.values()}
    if len(params) != 1:
        sys.exit(f"{store}: {len(params)} different ToT parameter sets in the probe store; remove it and rerun")
    (param,) = params
    want = search_settings(param)
    missing = [k for k in probe if k not in ref or search_settings(ref[k]["params"]) != want]
    if missing:
        sys.exit(f"{a.reference}: no tot-space row with the probe's ToT parameters for {len(missing)} of {len(probe)} choices "
                 f"(first: user {missing[0][0]}); was it refined with --space {a.space} --config {a.config}?")
    out.mkdir(parents=True, exist_ok=True)
    keys = sorted(probe, key=lambda k: (not k[0].isdigit(), int(k[0]) if k[0].isdigit() else 0, k[0], k[1]))
    writers = {}
    for name, rs in (("probe", probe), ("reference", ref)):
        sel = [rs[k] for k in keys]
        writers[name] = {"model": sel[0]["model"], **measure(sel),
                         "examples": [{"user": k[0], "chain": rs[k]["tree"]["chain"]} for k in keys[: a.examples]]}
    report = {"choices": len(keys), "tot_params": json.loads(param), "space": a.space, "config": a.config,
              "probe_config": probe_config,
              "reference_store": a.reference, "seed": a.seed, "writers": writers}
    # the run that searched the users keeps its summary (time, tokens); a rerun over the stored users does not
    # overwrite it with an empty one
    summary = json.loads(last.read_text())
    if summary["summary"]["refined"] > 0 or not (out / "summary.json").is_file():
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "probe.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"| writer | chains | no rationale | judge score of the kept chain (mean over the scored ones) | empty thoughts | thoughts opening with a digit | thoughts without a word | chains with a wordless thought | thoughts at the {report['tot_params']['tot']['sampling']['max_tokens']}-token limit | words per chain | chain words with a digit |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("reference", "probe"):
        w = writers[name]
        label = w["model"] + (f", prompt of {pathlib.Path(probe_config).name}" if name == "probe" and a.probe_config else "")
        lines.append(f"| {label} | {w['chains']} | {w['no_rationale']:.0%} | {w['mean_chain_score']:.3f} | {w['empty_thoughts']:.1%} | {w['thoughts_opening_with_a_digit']:.1%} | {w['wordless_thoughts']:.1%} | "
                     f"{w['chains_with_a_wordless_thought']:.1%} | {w['thoughts_at_token_limit']:.1%} | {w['words_per_chain']:.1f} | {w['words_with_a_digit']:.1%} |")
    lines += ["", f"The first {len(keys)} users of the split, each writer's search with the same space ({a.space}), ToT config "
              f"({a.config}" + (f"; the probe's prompt: {probe_config}, the same search in another prompt form" if a.probe_config else "")
              + f") and seed {a.seed}; by `research/scripts/writer_probe.py` (`{out.name}/probe.json`, with example chains)."]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
