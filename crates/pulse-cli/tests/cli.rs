//! The `pulse` binary as a user runs it.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pulse() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pulse"));
    c.current_dir(root()).env("RUST_LOG", "error");
    c
}
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}
fn run(args: &[&str]) -> Output {
    pulse().args(args).output().unwrap()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn data_stats_on_bundled_luxury_beauty() {
    let o = run(&["data", "stats"]);
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!(String::from_utf8(o.stdout).unwrap());
}

#[test]
fn data_stats_json_for_a_5core() {
    let o = run(&["data", "stats", "--dedup", "--kcore", "5", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["users"].as_u64(), v["items"].as_u64(), v["interactions"].as_u64()), (Some(1907), Some(910), Some(19205)));
    assert_eq!(v["repeated_pairs"].as_u64(), Some(0));
}

#[test]
fn bad_input_is_one_line_with_file_and_line_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("items.tsv"), "item_id\ttitle\n1\ta\n2\tb\n").unwrap();
    std::fs::write(d.path().join("interactions.tsv"), "user_id\titem_id\tposition\n1\t1\t0\n1\t3\t1\n").unwrap();
    let out = d.path().join("r.json");
    let o = run(&["eval", "--data", d.path().to_str().unwrap(), "--model", "pop", "--protocol", "full", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.starts_with("error: ") && e.trim_end().ends_with("interactions.tsv:3: item_id 3 is not in the item file"), "{e}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2, "nothing else written");
    // a usage error is also non-zero
    let o = run(&["eval", "--model", "nope", "--protocol", "full", "--out", "x.json"]);
    assert_eq!(o.status.code(), Some(2));
    // an unknown key in a config file names the file
    let cfg = d.path().join("bad.toml");
    std::fs::write(&cfg, "[sasrec]\nhiden = 3\n").unwrap();
    let o = run(&["eval", "--model", "sasrec", "--protocol", "full", "--out", out.to_str().unwrap(), "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad.toml") && stderr(&o).contains("hiden"), "{}", stderr(&o));
}

#[test]
fn pop_eval_same_seed_gives_identical_json() {
    let d = tempfile::tempdir().unwrap();
    let cands = d.path().join("c.tsv");
    let mut outs = Vec::new();
    for k in 0..2 {
        let out = d.path().join(format!("pop{k}.json"));
        let o = run(&[
            "-q", "eval", "--model", "pop", "--protocol", "cand20", "--seed", "7",
            "--candidates", cands.to_str().unwrap(), "--out", out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        outs.push(std::fs::read_to_string(&out).unwrap());
    }
    assert_eq!(outs[0], outs[1]);
    let v: serde_json::Value = serde_json::from_str(&outs[0]).unwrap();
    assert_eq!(v["dataset"], "amazon2018-luxury-beauty");
    assert_eq!(v["model"], "pop");
    assert_eq!(v["protocol"], "cand20");
    assert_eq!(v["seed"], 7);
    assert_eq!(v["n_users"], 9912);
    for k in ["hr@1", "hr@5", "hr@10", "ndcg@5", "ndcg@10", "mrr"] {
        let m = v["metrics"][k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&m), "{k} {m}");
    }
    // popularity beats random guessing (1/20) on cand20 but is far from perfect
    let hr1 = v["metrics"]["hr@1"].as_f64().unwrap();
    assert!(hr1 > 0.15 && hr1 < 0.5, "{hr1}");
    let ranks = pulse_eval::read_ranks_text(&d.path().join("pop0.ranks.tsv")).unwrap();
    assert_eq!(ranks.lines().count(), 9913);
}

fn tiny_cfg(dir: &Path, epochs: usize) -> PathBuf {
    let p = dir.join("tiny.toml");
    std::fs::write(&p, format!("[sasrec]\nhidden = 16\nmax_epochs = {epochs}\npatience = 50\nbatch_size = 64\n")).unwrap();
    p
}

fn sasrec_args<'a>(cfg: &'a str, ckpt: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "-q", "eval", "--dedup", "--kcore", "5", "--model", "sasrec", "--protocol", "full", "--seed", "3",
        "--config", cfg, "--checkpoint-dir", ckpt, "--out", out, "--bootstrap", "100",
    ]
}

#[test]
fn sasrec_eval_is_deterministic_and_survives_kill_9() {
    let d = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg(d.path(), 8);
    let cfg = cfg.to_str().unwrap();
    // uninterrupted reference run
    let (ck_a, out_a) = (d.path().join("ck_a"), d.path().join("a.json"));
    let o = run(&sasrec_args(cfg, ck_a.to_str().unwrap(), out_a.to_str().unwrap()));
    assert!(o.status.success(), "{}", stderr(&o));

    // same run, killed with SIGKILL as soon as its second checkpoint exists, then resumed
    let (ck_b, out_b) = (d.path().join("ck_b"), d.path().join("b.json"));
    let mut child = pulse().args(sasrec_args(cfg, ck_b.to_str().unwrap(), out_b.to_str().unwrap())).spawn().unwrap();
    let state = ck_b.join("state.json");
    let t0 = std::time::Instant::now();
    loop {
        let epoch = std::fs::read_to_string(&state)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["epoch"].as_u64());
        if epoch.is_some_and(|e| e >= 2) || t0.elapsed().as_secs() > 300 {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    assert!(!out_b.exists() || std::fs::read_to_string(&out_b).unwrap() == std::fs::read_to_string(&out_a).unwrap());
    let o = run(&sasrec_args(cfg, ck_b.to_str().unwrap(), out_b.to_str().unwrap()));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out_a).unwrap(), std::fs::read_to_string(&out_b).unwrap());
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.path().join("b.meta.json")).unwrap()).unwrap();
    assert!(meta["model"]["train"]["resumed_from_epoch"].as_u64().is_some());

    // the report is sane: SASRec beats popularity on this data
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out_a).unwrap()).unwrap();
    let out_p = d.path().join("p.json");
    let o = run(&["-q", "eval", "--dedup", "--kcore", "5", "--model", "pop", "--protocol", "full", "--out", out_p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out_p).unwrap()).unwrap();
    assert!(v["metrics"]["ndcg@10"].as_f64().unwrap() > p["metrics"]["ndcg@10"].as_f64().unwrap(), "{v} vs {p}");
    assert_eq!(v["config"]["model"]["hidden"], 16);

    // pulse compare reads both and prints a paired CI row per metric
    let o = run(&["compare", out_a.to_str().unwrap(), out_p.to_str().unwrap(), "--metric", "ndcg@10", "--resamples", "200"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8(o.stdout).unwrap();
    assert!(s.lines().any(|l| l.starts_with("ndcg@10")), "{s}");
}

#[test]
fn experiment_stages_run_once_in_order_and_report_their_wall_time() {
    let d = tempfile::tempdir().unwrap();
    let res = d.path().join("res");
    let (a, b) = (d.path().join("a.json"), d.path().join("b.json"));
    let cfg = |first: &str, name: &str| {
        format!(
            "name = \"{name}\"\nmodels = [\"pop\"]\nprotocols = [\"cand5\"]\nbootstrap = 100\n[data]\npath = \"data/amazon2018-luxury-beauty\"\n\
             [[stage]]\nname = \"first\"\nrun = [{first}]\n\
             [[stage]]\nname = \"second\"\nrun = [\"eval\", \"--model\", \"pop\", \"--protocol\", \"cand20\", \"--out\", \"{}\"]\n",
            b.display()
        )
    };
    let first = format!("\"eval\", \"--model\", \"pop\", \"--protocol\", \"cand5\", \"--out\", \"{}\"", a.display());
    let cp = d.path().join("staged.toml");
    let exp = |toml: &str| {
        std::fs::write(&cp, toml).unwrap();
        run(&["-q", "experiment", cp.to_str().unwrap(), "--results", res.to_str().unwrap()])
    };
    // an earlier run of `first` was killed after 100 s (its partial record, same command); `second` has a
    // partial record of another command, which does not count
    let sdir = res.join("staged/stages");
    std::fs::create_dir_all(&sdir).unwrap();
    let first_run: serde_json::Value = serde_json::from_str(&format!("[{first}]")).unwrap();
    std::fs::write(sdir.join("first.partial.json"), serde_json::json!({ "run": first_run, "seconds": 100.0, "attempts": 1 }).to_string()).unwrap();
    std::fs::write(sdir.join("second.partial.json"), serde_json::json!({ "run": ["eval"], "seconds": 50.0, "attempts": 3 }).to_string()).unwrap();
    let o = exp(&cfg(&first, "staged"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(a.is_file() && b.is_file());
    let marker = |s: &str| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(sdir.join(format!("{s}.json"))).unwrap()).unwrap() };
    let (m1, m2) = (marker("first"), marker("second"));
    assert!(m1["seconds"].as_f64().unwrap() > 100.0 && m1["seconds"].as_f64().unwrap() < 200.0, "{m1}");
    assert_eq!((m1["attempts"].as_u64(), m2["attempts"].as_u64()), (Some(2), Some(1)), "{m1} {m2}");
    assert!(m2["seconds"].as_f64().unwrap() > 0.0 && m2["seconds"].as_f64().unwrap() < 50.0, "{m2}");
    assert!(!sdir.join("first.partial.json").exists() && !sdir.join("second.partial.json").exists());
    let table = std::fs::read_to_string(res.join("staged/table.md")).unwrap();
    assert!(table.contains("| first | `pulse eval --model pop --protocol cand5") && table.contains("| second | `pulse eval"), "{table}");
    assert!(table.contains(" | 2 |\n| second |") && table.contains("| seconds | runs |"), "runs per stage: {table}");
    assert!(table.contains("| pop | – |"), "the wall-time table has a row per model: {table}");
    // finished stages whose outputs are there are skipped: their outputs are not written again
    let stamp = |p: &std::path::Path| std::fs::write(p, "untouched").unwrap();
    let untouched = |p: &std::path::Path| std::fs::read_to_string(p).map(|s| s == "untouched").unwrap_or(false);
    stamp(&a);
    stamp(&b);
    let o = exp(&cfg(&first, "staged"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(untouched(&a) && untouched(&b));
    // a stage marked done whose output is gone (a fresh checkout: results/ committed, runs/ not) runs
    // again; the stage before it stays done
    std::fs::remove_file(&b).unwrap();
    let o = exp(&cfg(&first, "staged"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(untouched(&a) && b.is_file() && !untouched(&b));
    assert_eq!(marker("second")["attempts"].as_u64(), Some(1), "a fresh marker");
    // once a stage runs again, the stages after it run again too (their inputs may have changed); after a
    // stage redone from nothing their times start afresh: the record of the later stage's lost outputs
    // (here 1000 s over 4 runs) is not carried into its rerun
    let old_record = |sdir: &std::path::Path| {
        let f = sdir.join("second.json");
        let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        m["seconds"] = serde_json::json!(1000.0);
        m["attempts"] = serde_json::json!(4);
        std::fs::write(&f, m.to_string()).unwrap();
    };
    old_record(&sdir);
    std::fs::remove_file(&a).unwrap();
    stamp(&b);
    let o = exp(&cfg(&first, "staged"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(a.is_file() && !untouched(&a) && !untouched(&b));
    let m2 = marker("second");
    assert!(m2["attempts"].as_u64() == Some(1) && m2["seconds"].as_f64().unwrap() < 1000.0, "{m2}");
    // a changed command runs again, and so does the unchanged stage after it
    stamp(&a);
    stamp(&b);
    let changed = format!("{first}, \"--seed\", \"3\"");
    let o = exp(&cfg(&changed, "staged"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!untouched(&a) && !untouched(&b));
    // with everything in place, nothing runs
    stamp(&a);
    stamp(&b);
    let o = exp(&cfg(&changed, "staged"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(untouched(&a) && untouched(&b));
    // the same when the redo is killed (here: it fails) before the later stage runs: that stage's old
    // record went when the redo started, so the run after the mend does not carry it either
    let out = d.path().join("out");
    let killed = format!("\"eval\", \"--model\", \"pop\", \"--protocol\", \"cand5\", \"--out\", \"{}\"", out.join("a.json").display());
    let o = exp(&cfg(&killed, "killed"));
    assert!(o.status.success(), "{}", stderr(&o));
    let kdir = res.join("killed/stages");
    old_record(&kdir);
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::write(&out, "a file where the output's folder was").unwrap();
    let o = exp(&cfg(&killed, "killed"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!kdir.join("first.json").exists() && !kdir.join("second.json").exists() && kdir.join("first.partial.json").is_file());
    std::fs::remove_file(&out).unwrap();
    let o = exp(&cfg(&killed, "killed"));
    assert!(o.status.success(), "{}", stderr(&o));
    let km = |s: &str| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(kdir.join(format!("{s}.json"))).unwrap()).unwrap() };
    let (k1, k2) = (km("first"), km("second"));
    assert_eq!((k1["attempts"].as_u64(), k2["attempts"].as_u64()), (Some(2), Some(1)), "{k1} {k2}");
    assert!(k2["seconds"].as_f64().unwrap() < 1000.0, "{k2}");
    // a typo in a stage's command, or a nested experiment, is refused before anything is written
    for bad in [first.replace("--model", "--modle"), format!("\"experiment\", \"{}\"", cp.display())] {
        let o = exp(&cfg(&bad, "refused"));
        assert_eq!(o.status.code(), Some(1));
        let e = stderr(&o);
        assert!(e.contains("stage first") && e.trim().lines().count() == 1, "{e}");
        assert!(!res.join("refused").exists());
    }
}

/// A stage with `before = "ROW"` runs right before that row, after the rows listed ahead of it: when it
/// fails, those rows are written and its own row is not; rerun, it runs and the earlier rows are kept.
#[test]
fn experiment_deferred_stage_runs_right_before_its_row() {
    let d = tempfile::tempdir().unwrap();
    let res = d.path().join("res");
    let (early, late) = (d.path().join("early.json"), d.path().join("late.json"));
    let cfg = |late_data: &str, before: &str, late_first: bool| {
        let early_st = format!("[[stage]]\nname = \"early\"\nrun = [\"eval\", \"--model\", \"pop\", \"--protocol\", \"cand5\", \"--out\", \"{}\"]\n", early.display());
        let late_st = format!(
            "[[stage]]\nname = \"late\"\nbefore = \"{before}\"\nrun = [\"eval\", \"--data\", \"{late_data}\", \"--model\", \"pop\", \"--protocol\", \"cand20\", \"--out\", \"{}\"]\n",
            late.display()
        );
        let stages = if late_first { format!("{late_st}{early_st}") } else { format!("{early_st}{late_st}") };
        format!("name = \"def\"\nmodels = [\"pop\", \"itemknn\"]\nprotocols = [\"cand5\"]\nbootstrap = 100\n[data]\npath = \"data/amazon2018-luxury-beauty\"\n{stages}")
    };
    let cp = d.path().join("def.toml");
    let exp = |toml: &str| {
        std::fs::write(&cp, toml).unwrap();
        run(&["-q", "experiment", cp.to_str().unwrap(), "--results", res.to_str().unwrap()])
    };
    let dir = res.join("def");
    // the deferred stage fails (no such dataset): the early stage and the pop row ran, itemknn did not
    let o = exp(&cfg("no/such/dataset", "itemknn", false));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("stage late"), "{}", stderr(&o));
    assert!(early.is_file() && dir.join("pop-cand5.json").is_file(), "rows before the deferred stage are written");
    assert!(!late.exists() && !dir.join("itemknn-cand5.json").exists());
    // the table so far has the pop row and says which rows are missing
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(table.contains("Not run yet (the experiment stopped before them; run it again to go on): itemknn.\n"), "{table}");
    assert!(table.contains("| pop | 0.") && table.contains("| itemknn | – |"), "{table}");
    assert!(!dir.join("stages/late.json").exists() && dir.join("stages/late.partial.json").is_file());
    // mended: it runs, then its row; the early stage and the pop row are not redone
    let mtime = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let (pop_t, early_t) = (mtime(&dir.join("pop-cand5.json")), mtime(&early));
    let o = exp(&cfg("data/amazon2018-luxury-beauty", "itemknn", false));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!((mtime(&dir.join("pop-cand5.json")), mtime(&early)), (pop_t, early_t));
    assert!(late.is_file() && mtime(&late) <= mtime(&dir.join("itemknn-cand5.json")));
    let marker: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("stages/late.json")).unwrap()).unwrap();
    assert_eq!(marker["attempts"].as_u64(), Some(1), "the command changed, so the failed run does not count: {marker}");
    let resolved = std::fs::read_to_string(dir.join("config.resolved.json")).unwrap();
    assert!(resolved.contains("\"before\": \"itemknn\""), "{resolved}");
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(table.contains("| late | `pulse eval --data data/amazon2018-luxury-beauty") && !table.contains("Not run yet"), "{table}");
    // a row not in models, or a deferred stage listed before one that is not, is refused before anything runs
    for (toml, want) in [
        (cfg("data/amazon2018-luxury-beauty", "sasrec", false), "stage late: before = \"sasrec\" is not a row in models"),
        (cfg("data/amazon2018-luxury-beauty", "itemknn", true), "stage early (not deferred) is listed after the deferred stage late"),
    ] {
        let _ = std::fs::remove_dir_all(&res);
        let o = exp(&toml);
        assert_eq!(o.status.code(), Some(1));
        let e = stderr(&o);
        assert!(e.contains(want) && e.contains("def.toml") && e.trim().lines().count() == 1, "{e}");
        assert!(!res.exists());
    }
}

/// Two stored rationales as `rationales export` writes them.
fn two_rationales() -> String {
    let rec = |user: &str, target: &str, text: &str| {
        serde_json::json!({
            "model_sha": "abc:f16", "prompt_version": "initial-v1", "dataset": "amazon2018-luxury-beauty", "user": user,
            "target": target, "seed": 42, "method": "initial", "params": "{}", "history": ["i1", "i2"],
            "rationale": text, "raw": format!("{{\"rationale\": \"{text}\"}}"), "status": "json", "attempts": 1,
            "prompt_tokens": 90, "new_tokens": 20, "finish": "stop", "score": null, "model_name": "m.gguf", "created_unix": 1
        })
        .to_string()
    };
    format!("{}\n{}\n", rec("u1", "t1", "Likes serums."), rec("u2", "t2", "Buys \\\"gift sets\\\"."))
}

/// JSON lines as values (the store writes its own field order).
fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn rationales_import_rebuilds_a_store_and_a_bad_line_leaves_none() {
    let d = tempfile::tempdir().unwrap();
    let (file, store) = (d.path().join("r.jsonl"), d.path().join("r.sqlite"));
    std::fs::write(&file, two_rationales()).unwrap();
    let o = run(&["rationales", "import", "--from", file.to_str().unwrap(), "--store", store.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 rationales read, 2 new"));
    let o = run(&["rationales", "export", "--store", store.to_str().unwrap()]);
    assert_eq!(json_lines(&String::from_utf8(o.stdout).unwrap()), json_lines(&two_rationales()), "export gives back the imported lines");
    // the second line is not a record: file:line, exit 1, and no store is left behind
    let bad = d.path().join("bad.jsonl");
    std::fs::write(&bad, two_rationales().replacen("\"status\":\"json\"", "\"status\":\"great\"", 2).replacen("\"status\":\"great\"", "\"status\":\"json\"", 1)).unwrap();
    let fresh = d.path().join("fresh.sqlite");
    let o = run(&["rationales", "import", "--from", bad.to_str().unwrap(), "--store", fresh.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains(&format!("{}:2: not a stored rationale", bad.display())) && e.trim().lines().count() == 1, "{e}");
    assert!(!fresh.exists());
}

#[test]
fn experiment_snapshot_outlives_the_store_and_redos_start_afresh() {
    let d = tempfile::tempdir().unwrap();
    let (res, seed, store, snap) = (d.path().join("res"), d.path().join("seed.jsonl"), d.path().join("runs/s.sqlite"), d.path().join("snap.jsonl"));
    let (a, b) = (d.path().join("a.json"), d.path().join("b.json"));
    std::fs::write(&seed, two_rationales()).unwrap();
    let toml = |snapshot_store: &Path| {
        format!(
            "name = \"snap\"\nmodels = [\"pop\"]\nprotocols = [\"cand5\"]\nbootstrap = 100\n[data]\npath = \"data/amazon2018-luxury-beauty\"\n\
             [snapshot]\nstore = \"{}\"\nfile = \"{}\"\n\
             [[stage]]\nname = \"make\"\nrun = [\"rationales\", \"import\", \"--from\", \"{}\", \"--store\", \"{}\"]\n\
             [[stage]]\nname = \"a\"\nrun = [\"eval\", \"--model\", \"pop\", \"--protocol\", \"cand5\", \"--out\", \"{}\"]\n\
             [[stage]]\nname = \"b\"\nrun = [\"eval\", \"--model\", \"pop\", \"--protocol\", \"cand20\", \"--out\", \"{}\"]\n",
            snapshot_store.display(),
            snap.display(),
            seed.display(),
            store.display(),
            a.display(),
            b.display()
        )
    };
    let cp = d.path().join("snap.toml");
    let exp = |t: &str| {
        std::fs::write(&cp, t).unwrap();
        run(&["-q", "experiment", cp.to_str().unwrap(), "--results", res.to_str().unwrap()])
    };
    let marker = |st: &str| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(res.join(format!("snap/stages/{st}.json"))).unwrap()).unwrap() };
    let o = exp(&toml(&store));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_lines(&std::fs::read_to_string(&snap).unwrap()), json_lines(&two_rationales()), "the store is copied after its stage");
    // a fresh checkout: no runs/ (and the stage's input is gone too, so running it again would fail)
    std::fs::remove_dir_all(d.path().join("runs")).unwrap();
    std::fs::remove_file(&seed).unwrap();
    let o = exp(&toml(&store));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["rationales", "export", "--store", store.to_str().unwrap()]);
    assert_eq!(json_lines(&String::from_utf8(o.stdout).unwrap()), json_lines(&two_rationales()), "the store is rebuilt from the copy");
    assert_eq!(marker("make")["attempts"].as_u64(), Some(1), "the stage was not run again");
    // stage a's output is gone: it is redone from nothing, and b, whose output is there, runs again after
    // it with its time started afresh (its old record described an output built on the lost one)
    std::fs::write(&b, "untouched").unwrap();
    std::fs::remove_file(&a).unwrap();
    let o = exp(&toml(&store));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(marker("a")["attempts"].as_u64(), Some(1));
    let b_now = marker("b");
    assert_eq!(b_now["attempts"].as_u64(), Some(1), "{b_now}");
    assert_ne!(std::fs::read_to_string(&b).unwrap(), "untouched", "b ran again");
    // a snapshot of a store no stage writes is refused before anything runs
    let _ = std::fs::remove_dir_all(&res);
    let o = exp(&toml(&d.path().join("other.sqlite")));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("[snapshot] store") && e.contains("is not written by any stage") && e.trim().lines().count() == 1, "{e}");
    assert!(!res.exists());
}

#[test]
fn committed_configs_are_valid_and_typos_are_refused() {
    fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                collect(&p, out);
            } else if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    collect(&root().join("configs"), &mut files);
    collect(&root().join("research/configs"), &mut files);
    assert!(files.len() > 100, "{} configs", files.len());
    for p in files {
        // --results to a temp dir; an invalid data path would fail only after parsing, so parse via a
        // dry check: the experiment must get past config validation (it fails later only for data)
        let s = std::fs::read_to_string(&p).unwrap();
        if p.file_name().unwrap().to_string_lossy().starts_with("tot-") {
            check_tot_config(&p, &s);
            continue;
        }
        if s.contains("[sampling]") {
            check_rationale_config(&p, &s);
            continue;
        }
        if p.file_name().unwrap().to_string_lossy().starts_with("thought-") {
            check_thought_config(&p, &s);
            continue;
        }
        if p.file_name().unwrap().to_string_lossy().starts_with("sft-") {
            check_sft_config(&p, &s);
            continue;
        }
        let bad = s.replace("[data]", "[data]\ndedupe = true");
        let d = tempfile::tempdir().unwrap();
        let bp = d.path().join("bad.toml");
        std::fs::write(&bp, bad).unwrap();
        let o = run(&["-q", "experiment", bp.to_str().unwrap(), "--results", d.path().to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("unknown field `dedupe`"), "{}: {}", p.display(), stderr(&o));
        assert!(!d.path().join("baselines-luxury-beauty").exists() && !d.path().join("baselines-video-games").exists());
    }
}

/// A `pulse sft` config: valid as committed (`--users 0` checks it), and a typo in it is refused before
/// anything is written.
fn check_sft_config(p: &Path, s: &str) {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("sft");
    let o = run(&["-q", "sft", "--variant", "pulse", "--users", "0", "--config", p.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("config ok"));
    let bp = d.path().join("bad.toml");
    std::fs::write(&bp, s.replace("[train]", "[train]
learning_rate = 1.0")).unwrap();
    let o = run(&["-q", "sft", "--variant", "pulse", "--users", "3", "--config", bp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown field `learning_rate`") && stderr(&o).trim().lines().count() == 1, "{}", stderr(&o));
    assert!(!out.exists());
}

/// A `pulse rationales` config: valid as committed (a run over 0 users gets past every check), and a typo in
/// it is refused before anything is written.
fn check_rationale_config(p: &Path, s: &str) {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("s.sqlite");
    let o = run(&["-q", "rationales", "--users", "0", "--config", p.to_str().unwrap(), "--store", store.to_str().unwrap()]);
    assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 users asked"));
    let bad = s.replace("[sampling]", "[sampling]\ntemperatur = 1.0");
    let bp = d.path().join("bad.toml");
    std::fs::write(&bp, bad).unwrap();
    let store2 = d.path().join("s2.sqlite");
    let o = run(&["-q", "rationales", "--users", "0", "--config", bp.to_str().unwrap(), "--store", store2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown field `temperatur`"), "{}: {}", p.display(), stderr(&o));
    assert!(!store2.exists());
}

/// A `pulse tot` config: valid as committed (0 users: every check passes, nothing to refine), a typo is
/// refused before the store is created.
fn check_tot_config(p: &Path, s: &str) {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("s.sqlite");
    // A contrastive judge needs the space: with the likelihood judge it is refused up front, in one line
    // naming the config and the field; the rest of the config is checked without that line below.
    if s.lines().any(|l| l.starts_with("contrast_negatives")) {
        let o = run(&["-q", "tot", "--users", "0", "--score", "likelihood", "--config", p.to_str().unwrap(), "--store", store.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        let e = stderr(&o);
        assert!(e.contains("contrast_negatives") && e.contains(&*p.to_string_lossy()) && e.trim().lines().count() == 1, "{e}");
        assert!(!store.exists());
        let rest: String = s.lines().filter(|l| !l.starts_with("contrast_negatives")).map(|l| format!("{l}\n")).collect();
        let rp = d.path().join(p.file_name().unwrap());
        std::fs::write(&rp, &rest).unwrap();
        return check_tot_config(&rp, &rest);
    }
    let o = run(&["-q", "tot", "--users", "0", "--score", "likelihood", "--config", p.to_str().unwrap(), "--store", store.to_str().unwrap()]);
    assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 users asked"), "{}", String::from_utf8_lossy(&o.stdout));
    let bad = format!("depht = 2\n{s}");
    let bp = d.path().join("bad.toml");
    std::fs::write(&bp, bad).unwrap();
    let store2 = d.path().join("s2.sqlite");
    let o = run(&["-q", "tot", "--users", "0", "--score", "likelihood", "--config", bp.to_str().unwrap(), "--store", store2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown field `depht`"), "{}: {}", p.display(), stderr(&o));
    assert!(!store2.exists());
    // The similar users' SASRec settings (--sasrec): a typo there is refused up front too, naming the file.
    let sp = d.path().join("sasrec.toml");
    std::fs::write(&sp, "[sasrec]\nmax_epochs = 25\nhiden = 50\n").unwrap();
    let o = run(&["-q", "tot", "--users", "0", "--score", "likelihood", "--config", p.to_str().unwrap(), "--sasrec", sp.to_str().unwrap(), "--store", store2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("hiden") && stderr(&o).contains("sasrec.toml"), "{}", stderr(&o));
    assert!(!store2.exists());
    // Space scoring without a space is refused up front.
    let o = run(&["-q", "tot", "--users", "0", "--config", p.to_str().unwrap(), "--store", store2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--space"), "{}", stderr(&o));
    assert!(!store2.exists());
}

/// A `pulse thought train` config: parses (the run then stops at the missing store), a typo is refused.
fn check_thought_config(p: &Path, s: &str) {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let args = |cfg: &str| {
        vec!["-q".to_string(), "thought".into(), "train".into(), "--store".into(), "/nonexistent/s.sqlite".into(),
             "--config".into(), cfg.to_string(), "--out".into(), out.display().to_string()]
    };
    let o = pulse().args(args(p.to_str().unwrap())).output().unwrap();
    assert!(stderr(&o).contains("no such rationale store"), "{}: {}", p.display(), stderr(&o));
    let bp = d.path().join("bad.toml");
    std::fs::write(&bp, format!("temperture = 0.1\n{s}")).unwrap();
    let o = pulse().args(args(bp.to_str().unwrap())).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown field `temperture`"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing written on bad input");
}

/// Cross-domain rows (`train_data`) are only for models that rank through item texts: an ID model is
/// refused up front, in one line, with nothing written.
#[test]
fn experiment_train_data_takes_text_models_only() {
    let d = tempfile::tempdir().unwrap();
    let data = root().join("data/amazon2018-luxury-beauty");
    let cfg = format!(
        "name = \"xfer\"\nmodels = [\"text\", \"sasrec\"]\n[data]\npath = \"{0}\"\n[train_data]\npath = \"{0}\"\n",
        data.display()
    );
    let p = d.path().join("x.toml");
    std::fs::write(&p, cfg).unwrap();
    let o = run(&["-q", "experiment", p.to_str().unwrap(), "--results", d.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("model sasrec cannot rank another domain zero-shot") && e.trim().lines().count() == 1, "{e}");
    assert!(!d.path().join("xfer").exists());
}

/// `hybrid`: weights tuned on validation (every grid point, each part alone among them), the mix ranks the
/// test lists, the row is skipped when rerun unchanged; a missing [hybrid] table or an ID part across
/// domains is refused in one line with nothing written.
#[test]
fn experiment_chooses_untrained_settings_on_validation() {
    let d = tempfile::tempdir().unwrap();
    let data = root().join("data/amazon2018-luxury-beauty");
    let res = d.path().join("res");
    let p = d.path().join("g.toml");
    let exp = |extra: &str| {
        let toml = format!("name = \"g\"\nmodels = [\"pop\", \"itemknn\"]\nprotocols = [\"cand20\"]\nbootstrap = 100\n[data]\npath = \"{}\"\n{extra}", data.display());
        std::fs::write(&p, toml).unwrap();
        run(&["-q", "experiment", p.to_str().unwrap(), "--results", res.to_str().unwrap()])
    };
    let o = exp("[itemknn]\nwindow = [1, 5]\nlast = [1, 10]\ndecay = 0.8\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let sel: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(res.join("g/untrained-selection.json")).unwrap()).unwrap();
    let grid = sel["itemknn"]["grid"].as_array().unwrap();
    assert_eq!(grid.len(), 4, "{sel}");
    assert!(sel.get("content").is_none(), "content is not in this experiment: {sel}");
    let best = grid.iter().max_by(|a, b| a["valid_hr1"].as_f64().partial_cmp(&b["valid_hr1"].as_f64()).unwrap()).unwrap();
    assert_eq!(sel["itemknn"]["chosen"], best["settings"], "{sel}");
    // one item of profile scores worse than ten on validation
    let hr = |w: u64, l: u64| grid.iter().find(|g| g["settings"]["window"] == w && g["settings"]["last"] == l).unwrap()["valid_hr1"].as_f64().unwrap();
    assert!(hr(5, 10) > hr(5, 1), "{sel}");
    let row: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(res.join("g/itemknn-cand20.json")).unwrap()).unwrap();
    assert_eq!(row["config"]["model"]["window"], best["settings"]["window"]);
    assert_eq!(row["config"]["model"]["last"], best["settings"]["last"]);
    // bad settings: one line naming the section and field, nothing written
    for (extra, msg) in [
        ("[itemknn]\nwindow = [0, 5]\n", "[itemknn] window: 0"),
        ("[content]\ndecay = [0.5, 1.5]\n", "[content] decay: 1.5"),
        ("[content]\nlast = []\n", "[content]: a setting's list is empty"),
        ("[itemknn]\nwindows = 3\n", "unknown field `windows`"),
    ] {
        let _ = std::fs::remove_dir_all(&res);
        let o = exp(extra);
        assert_eq!(o.status.code(), Some(1), "{extra}");
        let e = stderr(&o);
        assert!(e.contains(msg) && e.trim().lines().count() == 1, "{msg}: {e}");
        assert!(!res.join("g").exists());
    }
}

/// `lexical` (TF-IDF title similarity, nothing trained): its `[lexical]` grid is chosen on validation like
/// content's, it beats popularity, it ranks across domains (`train_data`) recording where it came from, and
/// a bad setting is refused in one line with nothing written.
#[test]
fn experiment_lexical_row_grid_and_transfer() {
    let d = tempfile::tempdir().unwrap();
    let data = root().join("data/amazon2018-luxury-beauty");
    let res = d.path().join("res");
    let p = d.path().join("lx.toml");
    let exp = |models: &str, extra: &str| {
        let toml = format!("name = \"lx\"\nmodels = {models}\nprotocols = [\"cand20\"]\nbootstrap = 100\n[data]\npath = \"{}\"\n{extra}", data.display());
        std::fs::write(&p, toml).unwrap();
        run(&["-q", "experiment", p.to_str().unwrap(), "--results", res.to_str().unwrap()])
    };
    let o = exp("[\"pop\", \"lexical\"]", "[lexical]\nlast = [1, 10]\ndecay = 0.8\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let sel: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(res.join("lx/untrained-selection.json")).unwrap()).unwrap();
    let grid = sel["lexical"]["grid"].as_array().unwrap();
    assert_eq!(grid.len(), 2, "{sel}");
    let best = grid.iter().max_by(|a, b| a["valid_hr1"].as_f64().partial_cmp(&b["valid_hr1"].as_f64()).unwrap()).unwrap();
    assert_eq!(sel["lexical"]["chosen"], best["settings"], "{sel}");
    let row = |m: &str| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(res.join(format!("lx/{m}-cand20.json"))).unwrap()).unwrap() };
    assert_eq!(row("lexical")["config"]["model"]["last"], best["settings"]["last"]);
    let (lx, pop) = (row("lexical")["metrics"]["hr@1"].as_f64().unwrap(), row("pop")["metrics"]["hr@1"].as_f64().unwrap());
    assert!(lx > pop + 0.15, "lexical {lx} vs pop {pop}");
    // across domains: allowed (nothing trained), the row records the training dataset
    let _ = std::fs::remove_dir_all(&res);
    let o = exp("[\"lexical\"]", &format!("[train_data]\npath = \"{}\"\n", data.display()));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(row("lexical")["config"]["model"]["train_data"], "amazon2018-luxury-beauty");
    assert!((row("lexical")["metrics"]["hr@1"].as_f64().unwrap() - lx).abs() < 0.05);
    for (extra, msg) in [("[lexical]\ndecay = [0.5, 1.5]\n", "[lexical] decay: 1.5"), ("[lexical]\nlasts = 3\n", "unknown field `lasts`")] {
        let _ = std::fs::remove_dir_all(&res);
        let o = exp("[\"lexical\"]", extra);
        assert_eq!(o.status.code(), Some(1), "{extra}");
        let e = stderr(&o);
        assert!(e.contains(msg) && e.trim().lines().count() == 1, "{msg}: {e}");
        assert!(!res.join("lx").exists());
    }
}

#[test]
fn experiment_hybrid_tunes_on_validation_and_refuses_bad_parts() {
    let d = tempfile::tempdir().unwrap();
    let data = root().join("data/amazon2018-luxury-beauty");
    let res = d.path().join("res");
    let cfg = |extra: &str| {
        format!(
            "name = \"hy\"\nmodels = [\"pop\", \"itemknn\", \"hybrid\"]\nprotocols = [\"cand20\"]\nbootstrap = 100\n[data]\npath = \"{}\"\n{extra}",
            data.display()
        )
    };
    let p = d.path().join("hy.toml");
    let exp = |toml: &str| {
        std::fs::write(&p, toml).unwrap();
        run(&["-q", "experiment", p.to_str().unwrap(), "--results", res.to_str().unwrap()])
    };
    let o = exp(&cfg("[hybrid]\nparts = [\"itemknn\", \"pop\"]\ntune_users = 1000\ngrid_step = 0.1\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = res.join("hy/hybrid-cand20.json");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.with_extension("meta.json")).unwrap()).unwrap();
    let tune = &meta["model"]["tune"];
    let w: Vec<f64> = tune["weights"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(w.len(), 2);
    assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{w:?}");
    assert_eq!(tune["grid_points"].as_u64(), Some(11));
    assert_eq!(tune["users"].as_u64(), Some(1000));
    let best = tune["valid_hr1"].as_f64().unwrap();
    for v in tune["part_hr1"].as_array().unwrap() {
        assert!(best >= v.as_f64().unwrap(), "the grid holds each part alone: {tune}");
    }
    // item-KNN and popularity both carry signal on Luxury Beauty: the mix uses both
    assert!(w.iter().all(|&x| x > 0.0), "{w:?}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let hr = |m: &str| -> f64 {
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(res.join(format!("hy/{m}-cand20.json"))).unwrap()).unwrap();
        r["metrics"]["hr@1"].as_f64().unwrap()
    };
    assert_eq!(report["config"]["model"]["weights"], tune["weights"]);
    assert!(hr("hybrid") > hr("pop") && hr("itemknn") > hr("pop"), "hybrid {} itemknn {} pop {}", hr("hybrid"), hr("itemknn"), hr("pop"));
    let table = std::fs::read_to_string(res.join("hy/table.md")).unwrap();
    assert!(table.contains("| hybrid | 0.") && table.contains("| hybrid − pop |"), "{table}");
    // unchanged: skipped (the row is not written again)
    let before = std::fs::metadata(&out).unwrap().modified().unwrap();
    let o = exp(&cfg("[hybrid]\nparts = [\"itemknn\", \"pop\"]\ntune_users = 1000\ngrid_step = 0.1\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&out).unwrap().modified().unwrap(), before);
    // refused up front
    let bad_res = d.path().join("bad");
    for (toml, msg) in [
        (cfg(""), "model hybrid needs a [hybrid] table"),
        (cfg("[hybrid]\nparts = [\"itemknn\", \"slm\"]\n"), "the SLM cannot score a whole catalogue"),
        (cfg("[hybrid]\nparts = [\"itemknn\"]\ngrid_step = 0.0\n"), "grid_step in (0, 1]"),
        (
            format!("name = \"hy\"\nmodels = [\"hybrid\"]\n[data]\npath = \"{0}\"\n[train_data]\npath = \"{0}\"\n[hybrid]\nparts = [\"content\", \"itemknn\"]\n", data.display()),
            "itemknn cannot rank another domain",
        ),
    ] {
        std::fs::write(&p, toml).unwrap();
        let o = run(&["-q", "experiment", p.to_str().unwrap(), "--results", bad_res.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        let e = stderr(&o);
        assert!(e.contains(msg) && e.trim().lines().count() == 1, "{msg}: {e}");
        assert!(!bad_res.join("hy").exists());
    }
}

/// Cross-domain, `[hybrid] tune_data` tunes the weights on a third domain, with the parts transferred to it:
/// the tuning lists are that domain's (its users, its part scores), the mix still ranks the experiment's
/// data, and the record says where the weights came from. Without train_data, refused. (A fused row over such a
/// hybrid: `experiment_with_a_fused_row`.)
#[test]
fn experiment_hybrid_tunes_on_a_third_domain() {
    let d = tempfile::tempdir().unwrap();
    let data = root().join("data/amazon2018-luxury-beauty");
    let office = root().join("../shared/data/amazon2014-office-products");
    let res = d.path().join("res");
    let p = d.path().join("hy.toml");
    // `train`: the [train_data] table (or none); `tune`: what follows [hybrid] (its tune_data table)
    let cfg = |train: &str, tune: &str| {
        format!(
            "name = \"hy\"\nmodels = [\"hybrid\"]\nprotocols = [\"cand5\"]\nbootstrap = 100\n[data]\npath = \"{}\"\n{train}[hybrid]\nparts = [\"lexical\", \"pop\"]\ntune_users = 500\ngrid_step = 0.1\ntune_candidates = 5\n{tune}",
            data.display()
        )
    };
    let exp = |toml: &str, out: &Path| {
        std::fs::write(&p, toml).unwrap();
        run(&["-q", "experiment", p.to_str().unwrap(), "--results", out.to_str().unwrap()])
    };
    let meta = || -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(res.join("hy/hybrid-cand5.meta.json")).unwrap()).unwrap() };
    let train = format!("[train_data]\npath = \"{}\"\n", data.display());
    let tune = format!("[hybrid.tune_data]\npath = \"{}\"\n", office.display());
    let o = exp(&cfg(&train, ""), &res);
    assert!(o.status.success(), "{}", stderr(&o));
    let at_home = meta();
    assert_eq!(at_home["model"]["tune_data"], "amazon2018-luxury-beauty");
    let o = exp(&cfg(&train, &tune), &res);
    assert!(o.status.success(), "{}", stderr(&o));
    let away = meta();
    assert_eq!(away["model"]["tune_data"], "amazon2014-office-products");
    let (t0, t1) = (&at_home["model"]["tune"], &away["model"]["tune"]);
    assert_eq!(t1["users"].as_u64(), Some(500));
    let w: f64 = t1["weights"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).sum();
    assert!((w - 1.0).abs() < 1e-6, "{t1}");
    // other lists, other part scores: the tuning ran on Office (a changed config redid the row)
    assert_ne!(t0["part_hr1"], t1["part_hr1"], "{t0} vs {t1}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(res.join("hy/hybrid-cand5.json")).unwrap()).unwrap();
    assert_eq!(report["config"]["model"]["weights"], t1["weights"]);
    assert_eq!(report["config"]["model"]["mix"]["hybrid"]["tune_data"]["path"], office.display().to_string());
    // refused up front, nothing written
    let bad = d.path().join("bad");
    for (toml, msg) in [(cfg("", &tune), "tune_data needs train_data")] {
        let o = exp(&toml, &bad);
        assert_eq!(o.status.code(), Some(1));
        let e = stderr(&o);
        assert!(e.contains(msg) && e.trim().lines().count() == 1, "{msg}: {e}");
        assert!(!bad.join("hy").exists());
    }
}

/// A temporary folder with a ToT config (`tot_toml`), a SASRec config of its own (one epoch, small: its
/// checkpoint is the test's alone) and the path for the similar-users file.
fn tot_setup(tot_toml: &str) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let (cfg, sas, nb) = (d.path().join("tot.toml"), d.path().join("sasrec.toml"), d.path().join("neighbours.json"));
    std::fs::write(&cfg, tot_toml).unwrap();
    std::fs::write(&sas, "[sasrec]\nmax_epochs = 1\nhidden = 16\nblocks = 1\nmax_len = 20\n").unwrap();
    (d, cfg, sas, nb)
}

/// `pulse -q tot --score likelihood` over the first `users` users, with a similar-users file and a store.
fn tot_likelihood(users: &str, cfg: &Path, sas: &Path, nb: &Path, store: &Path) -> Command {
    let mut c = pulse();
    c.args(["-q", "tot", "--score", "likelihood", "--users", users, "--config", cfg.to_str().unwrap(), "--sasrec", sas.to_str().unwrap()])
        .args(["--neighbours", nb.to_str().unwrap(), "--store", store.to_str().unwrap()]);
    c
}

#[test]
fn tot_reads_similar_users_from_its_file_instead_of_training_sasrec() {
    let (d, cfg, sas, nb) = tot_setup("depth = 1\nbranching = 1\nbeam = 1\nsimilar_users = 2\n[sampling]\nmax_tokens = 8\n");
    let tot = |store: &str, cfg: &Path| {
        let st = d.path().join(store);
        let o = tot_likelihood("2", cfg, &sas, &nb, &st).env("RUST_LOG", "info").output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };
    let e = tot("a.sqlite", &cfg);
    assert!(e.contains("SASRec user representations") && e.contains("2 users' lists →"), "{e}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&nb).unwrap()).unwrap();
    assert_eq!(v["key"]["similar_users"].as_u64(), Some(2));
    let users = v["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert!(users.iter().all(|u| u["lists"].as_array().unwrap().len() == 2), "{v}");
    // the same settings again: the lists come from the file, no SASRec is touched
    let e = tot("b.sqlite", &cfg);
    assert!(e.contains("similar users: 2 users' lists from") && !e.contains("SASRec user representations"), "{e}");
    // lists from another SASRec code version (the key says which) are computed again
    assert_eq!(v["key"]["sasrec_version"].as_u64(), Some(pulse_baselines::sasrec::CHECKPOINT_VERSION as u64), "{v}");
    let mut older = v.clone();
    older["key"]["sasrec_version"] = 0.into();
    std::fs::write(&nb, serde_json::to_string(&older).unwrap()).unwrap();
    let e = tot("b2.sqlite", &cfg);
    assert!(e.contains("is for other settings or users") && e.contains("SASRec user representations"), "{e}");
    // other settings: the file is not used, and is rewritten for them
    let cfg3 = d.path().join("tot3.toml");
    std::fs::write(&cfg3, std::fs::read_to_string(&cfg).unwrap().replace("similar_users = 2", "similar_users = 3")).unwrap();
    let e = tot("c.sqlite", &cfg3);
    assert!(e.contains("is for other settings or users") && e.contains("SASRec user representations"), "{e}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&nb).unwrap()).unwrap();
    assert_eq!(v["key"]["similar_users"].as_u64(), Some(3));
    // a file that is not one is an error naming it
    std::fs::write(&nb, "{\"key\": 1}").unwrap();
    let o = tot_likelihood("2", &cfg, &sas, &nb, &d.path().join("d.sqlite")).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains(&nb.display().to_string()) && e.trim().lines().count() == 1, "{e}");
}

#[test]
fn tot_killed_between_groups_and_resumed_writes_what_an_uninterrupted_run_writes() {
    // Sampling at T = 1 turns the last bits of the logits into different thoughts, and a prompt prefix restored
    // from the engine's cache differs in those bits from one computed afresh. Each group therefore starts from a
    // clean engine and groups are fixed slices of the user order: stopping after the first group (what a kill
    // between commits leaves) and running again must store exactly what one uninterrupted run stores.
    let (d, cfg, sas, nb) = tot_setup("depth = 2\nbranching = 3\nbeam = 2\ngroup = 2\nsimilar_users = 2\n[sampling]\nmax_tokens = 40\n");
    let tot = |store: &Path, users: &str| {
        let o = tot_likelihood(users, &cfg, &sas, &nb, store).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };
    let rows = |store: &Path| -> Vec<(String, String, String, i64)> {
        let c = rusqlite::Connection::open(store).unwrap();
        let mut q = c.prepare("SELECT user, rationale, raw, new_tokens FROM rationales WHERE method = 'tot-likelihood' ORDER BY user").unwrap();
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(|r| r.unwrap()).collect()
    };
    let (a, b) = (d.path().join("a.sqlite"), d.path().join("b.sqlite"));
    tot(&a, "4");
    tot(&b, "2");
    assert_eq!(rows(&b).len(), 2);
    tot(&b, "4");
    let (ra, rb) = (rows(&a), rows(&b));
    assert_eq!((ra.len(), rb.len()), (4, 4));
    // the whole tree (every node's text and score) is in `raw`: it must match too
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x, y, "user {}: the resumed run differs from the uninterrupted one", x.0);
    }
}

/// `pulse compare` on two committed result files of the same candidate lists that rank different numbers of
/// users (600 and the 1,000 whose first 600 they are): refused without `--common`; with it, paired on the
/// 600 users both rank, A's mean its own HR@1 and B's the mean over those users of B's own ranks, and the count
/// of users whose rank of the true item differs is the one both ranks files give.
#[test]
fn compare_common_pairs_the_users_both_files_rank() {
    let a = "results/pipeline-luxury-beauty-500-gemma-eval600/sft-reasons-cand5.json";
    let b = "results/pipeline-luxury-beauty-1500-eval1000/sft-reasons-cand5.json";
    let o = run(&["-q", "compare", a, b, "--metric", "hr@1", "--resamples", "200"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("rank different users") && e.contains("--common") && e.lines().count() == 1, "{e}");
    let o = run(&["-q", "compare", a, b, "--metric", "hr@1", "--resamples", "200", "--common"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8(o.stdout).unwrap();
    assert!(s.contains("(n=600 users both rank, of 600 and 1000, 200 paired resamples)"), "{s}");
    // B's mean over the common users, from its own ranks file (rank 1 = a hit)
    let ranks = |f: &str| -> Vec<(String, String)> {
        let t = pulse_eval::read_ranks_text(&root().join(f.replace(".json", ".ranks.tsv"))).unwrap();
        t.lines().skip(1).map(|l| { let mut c = l.split('\t'); (c.next().unwrap().to_string(), c.next().unwrap().to_string()) }).collect()
    };
    let (ra, rb) = (ranks(a), ranks(b));
    let users: std::collections::HashSet<&String> = ra.iter().map(|(u, _)| u).collect();
    let hits_b = rb.iter().filter(|(u, r)| users.contains(u) && r == "1").count() as f64 / 600.0;
    let hits_a = ra.iter().filter(|(_, r)| r == "1").count() as f64 / 600.0;
    let row: Vec<&str> = s.lines().find(|l| l.starts_with("hr@1")).unwrap().split_whitespace().collect();
    assert!((row[1].parse::<f64>().unwrap() - hits_a).abs() < 1e-4 && (row[2].parse::<f64>().unwrap() - hits_b).abs() < 1e-4, "{s}");
    assert!((row[3].parse::<f64>().unwrap() - (hits_a - hits_b)).abs() < 1e-4, "{s}");
    // the users whose rank of the true item differs, counted over the common users from both ranks files
    let of_b: std::collections::HashMap<&String, &String> = rb.iter().map(|(u, r)| (u, r)).collect();
    let differ = ra.iter().filter(|(u, r)| of_b[u] != r).count();
    assert!(differ > 0 && s.contains(&format!("users whose rank of the true item differs: {differ} of 600\n")), "{s}");
    // a file against itself: every rank agrees
    let o = run(&["-q", "compare", b, b, "--metric", "hr@1", "--resamples", "200"]);
    let s = String::from_utf8(o.stdout).unwrap();
    assert!(s.contains("users whose rank of the true item differs: 0 of 1000\n"), "{s}");
}
