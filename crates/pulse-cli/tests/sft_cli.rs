//! `pulse sft` and `pulse eval --model slm` as a user runs them, on the real SmolLM2 weights with a tiny
//! budget: a run stopped after one step resumes and finishes, writes both adapter formats, and the tuned
//! model ranks candidates through llama.cpp. Rationales come from the real rationale stage with a scripted
//! generator.
use std::path::{Path, PathBuf};
use std::process::Command;

use pulse_data::{LoadOptions, Split};
use pulse_rationale::{run, RationaleConfig, RunOptions, Store};
use pulse_slm::scripted::Scripted;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn pulse_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pulse")).current_dir(dir).env("RUST_LOG", "error").args(args).output().unwrap()
}

#[test]
fn sft_resumes_and_the_tuned_model_ranks() {
    let d = tempfile::tempdir().unwrap();
    let data = root().join("data/amazon2018-luxury-beauty");
    let model = root().join(pulse_slm::DEFAULT_MODEL);
    assert!(model.is_file(), "{} missing: run `bash scripts/fetch_models.sh` first", model.display());
    let store_path = d.path().join("r.sqlite");
    {
        let ds = pulse_data::load(&data, &LoadOptions::default()).unwrap();
        let split = Split::leave_one_out(&ds);
        let store = Store::open(&store_path).unwrap();
        let mut g = Scripted::new(|_, _| "She wants a gentle cream.\"}".to_string());
        run(&mut g, &ds, &split, &RationaleConfig::default(), &RunOptions::new(1, Some(12)), &store, &mut |_| {}).unwrap();
    }
    let cfg = d.path().join("sft.toml");
    std::fs::write(
        &cfg,
        "max_tokens = 200\n[prompt]\nhistory = 2\ncandidates = 4\ntitle_words = 4\nrationale_words = 8\n\
         [train]\nbatch_size = 1\nmicro_batch = 1\ncheckpoint_every = 1\nlr = 1e-3\n[train.lora]\nrank = 4\n",
    )
    .unwrap();
    let out = d.path().join("sft");
    let (st, cf, o, da, mo) =
        (store_path.to_str().unwrap(), cfg.to_str().unwrap(), out.to_str().unwrap(), data.to_str().unwrap(), model.to_str().unwrap());
    let base = ["-q", "sft", "--data", da, "--model", mo, "--variant", "reasons", "--store", st, "--config", cf, "--users", "3", "--out", o];
    let mut first = base.to_vec();
    first.extend(["--max-steps", "1"]);
    let r = pulse_in(d.path(), &first);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stdout).contains("step 1/3,"), "{}", String::from_utf8_lossy(&r.stdout));
    assert!(!out.join("adapter.gguf").exists() && out.join("state.json").is_file());
    let r = pulse_in(d.path(), &base);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stdout).contains("step 3/3 (finished)"), "{}", String::from_utf8_lossy(&r.stdout));
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["train"]["resumed_from_step"], 1);
    assert_eq!(s["train"]["loss"].as_array().unwrap().len(), 3);
    assert_eq!(s["users"], 3);
    assert_eq!(s["config"]["train"]["lora"]["alpha"], 16.0, "defaults filled in");
    let ex = std::fs::read_to_string(out.join("examples.jsonl")).unwrap();
    assert_eq!(ex.lines().count(), 3);
    assert!(ex.contains("Let me think: She wants a gentle cream. The recommendation is "), "{ex}");
    assert!(out.join("adapter.safetensors").is_file() && out.join("adapter.json").is_file());
    let gguf = out.join("adapter.gguf");
    assert_eq!(&std::fs::read(&gguf).unwrap()[..4], b"GGUF");

    // `pulse eval` of the tuned model on 4 users' cand5 lists, with the extra flags; returns the report
    let slm_eval = |extra: &[&str], report: &str| -> serde_json::Value {
        let rep = d.path().join(report);
        let rep_s = rep.to_str().unwrap();
        let ad = gguf.to_str().unwrap();
        let mut args = vec!["-q", "eval", "--data", da, "--model", "slm", "--slm", mo, "--adapter", ad, "--protocol", "cand5", "--users", "4"];
        args.extend_from_slice(extra);
        args.extend(["--out", rep_s]);
        let r = pulse_in(d.path(), &args);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        serde_json::from_slice(&std::fs::read(&rep).unwrap()).unwrap()
    };

    // the tuned model ranks candidates (llama.cpp + adapter); the score cache lands under runs/
    let v = slm_eval(&["--generate", "--explain", "2"], "slm-cand5.json");
    assert_eq!(v["n_users"], 4);
    let hr = v["metrics"]["hr@1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&hr));
    assert!(v["config"]["model"]["slm"]["runtime"].as_str().unwrap().contains("lora:"), "{}", v["config"]["model"]);
    let g: serde_json::Value = serde_json::from_slice(&std::fs::read(d.path().join("slm-cand5.generate.json")).unwrap()).unwrap();
    assert_eq!(g["n_users"], 4);
    let texts = std::fs::read_to_string(d.path().join("slm-cand5.generate.jsonl")).unwrap();
    assert_eq!(texts.lines().count(), 4);
    let hits = texts.lines().filter(|l| l.contains("\"hit\":true")).count() as f64;
    assert_eq!(g["hit_rate"].as_f64().unwrap(), hits / 4.0);
    let why = std::fs::read_to_string(d.path().join("slm-cand5.explain.jsonl")).unwrap();
    assert_eq!(why.lines().count(), 2);
    for l in why.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(!v["recommended"].as_str().unwrap().is_empty() && v["why"].is_string(), "{l}");
    }
    assert!(why.lines().any(|l| !serde_json::from_str::<serde_json::Value>(l).unwrap()["why"].as_str().unwrap().is_empty()), "a rationale is written: {why}");
    let cache = std::fs::read_dir(d.path().join("runs")).unwrap().flatten().next().unwrap().path().join("slm-scores.jsonl");
    assert_eq!(std::fs::read_to_string(&cache).unwrap().lines().count(), 4);

    // PMI scoring: one more pass per row (no history), cached beside the conditional scores, which are
    // reused; a candidate's score is the difference, so the hits follow from the cached log-likelihoods
    let v = slm_eval(&["--score", "pmi"], "slm-pmi.json");
    assert_eq!(v["config"]["model"]["rank"]["score"], "pmi");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&cache).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 8, "4 conditional + 4 no-history rows");
    let split = |l: &serde_json::Value| {
        let k = l["key"].as_str().unwrap().to_string();
        let mut f = k.rsplitn(3, '|');
        let (c, h) = (f.next().unwrap().to_string(), f.next().unwrap().to_string());
        (h, c, l["scores"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect::<Vec<f64>>())
    };
    let rows: Vec<_> = lines.iter().map(split).collect();
    let mut hits = 0;
    for (h, c, cond) in rows.iter().filter(|r| r.0 != "[]") {
        let prior = &rows.iter().find(|r| r.0 == "[]" && &r.1 == c).unwrap_or_else(|| panic!("no prior for {h} {c}")).2;
        let pmi: Vec<f64> = cond.iter().zip(prior).map(|(a, b)| a - b).collect();
        // candidate lists hold the true item first
        hits += pmi[1..].iter().all(|&x| pmi[0] > x) as usize;
    }
    assert_eq!(v["metrics"]["hr@1"].as_f64().unwrap(), hits as f64 / 4.0, "{rows:?}");

    // thinking: the model writes its rationale per row (kept in the cache), the candidates are scored
    // after it; with PMI the prior is the same no-history row as above (cached, not scored again)
    let v = slm_eval(&["--score", "pmi", "--think"], "slm-think.json");
    assert_eq!(v["config"]["model"]["rank"]["think"], true);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&cache).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 12, "4 thinking rows added");
    let think: Vec<_> = lines.iter().filter(|l| l["key"].as_str().unwrap().starts_with("think-v1|")).collect();
    assert_eq!(think.len(), 4);
    assert!(think.iter().all(|l| l["thought"].is_string()), "{think:?}");
    assert!(think.iter().any(|l| !l["thought"].as_str().unwrap().is_empty()), "the tuned model writes a rationale: {think:?}");
    let mut hits = 0;
    for t in &think {
        let (h, c, cond) = split(t);
        let direct = &rows.iter().find(|r| r.0 == h && r.1 == c).unwrap().2;
        let after = cond.clone();
        assert_ne!(&after, direct, "scored after the rationale, not the plain prompt");
        let prior = &rows.iter().find(|r| r.0 == "[]" && r.1 == c).unwrap().2;
        let pmi: Vec<f64> = after.iter().zip(prior).map(|(a, b)| a - b).collect();
        hits += pmi[1..].iter().all(|&x| pmi[0] > x) as usize;
    }
    assert_eq!(v["metrics"]["hr@1"].as_f64().unwrap(), hits as f64 / 4.0);
    assert!(v["config"]["model"]["rank"].get("no_repeat_ngram").is_none(), "off: left out of the config");

    // thinking without repeating a 3-gram of its own tokens: new rows under their own keys (the paper's
    // sampling keeps its old ones), each with its rationale
    let v = slm_eval(&["--score", "pmi", "--think", "--no-repeat-ngram", "3"], "slm-think-nr3.json");
    assert_eq!(v["config"]["model"]["rank"]["no_repeat_ngram"], 3);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&cache).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 16, "4 more thinking rows");
    let nr3: Vec<_> = lines.iter().filter(|l| l["key"].as_str().unwrap().starts_with("think-v1|nr3|")).collect();
    assert_eq!(nr3.len(), 4);
    assert!(nr3.iter().all(|l| l["thought"].is_string()), "{nr3:?}");

    // the catalogue in two stages: ItemKNN's top 20 outside the history, reranked by the tuned SLM. Of these
    // 4 users ItemKNN ranks one true item 12th and the others outside its top 20 (checked below): those
    // keep ItemKNN's rank, and the first gets the rank its SLM scores give it among the 20.
    let (ik, two) = (d.path().join("ik.json"), d.path().join("two.json"));
    let r = pulse_in(d.path(), &["-q", "eval", "--data", da, "--model", "itemknn", "--protocol", "full", "--users", "4", "--out", ik.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let ad = gguf.to_str().unwrap();
    let args = ["-q", "eval", "--data", da, "--model", "slm", "--slm", mo, "--adapter", ad, "--protocol", "full", "--users", "4", "--shortlist", "itemknn", "--out", two.to_str().unwrap()];
    let r = pulse_in(d.path(), &args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&two).unwrap()).unwrap();
    assert_eq!((v["protocol"].as_str(), v["n_users"].as_u64()), (Some("full"), Some(4)));
    assert_eq!(v["config"]["model"]["shortlist"]["model"], "itemknn");
    assert_eq!(v["config"]["model"]["shortlist"]["k"], 20);
    let ranks = |p: &Path| -> Vec<(String, u32)> {
        let t = pulse_eval::read_ranks_text(&p.with_extension("ranks.tsv")).unwrap();
        t.lines().skip(1).map(|l| { let (u, r) = l.split_once('\t').unwrap(); (u.to_string(), r.parse().unwrap()) }).collect()
    };
    let (ri, rt) = (ranks(&ik), ranks(&two));
    assert_eq!(ri.iter().filter(|(_, r)| *r <= 20).map(|(_, r)| *r).collect::<Vec<_>>(), vec![12], "{ri:?}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&cache).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 20, "one row of 20 scores per user");
    let ds = pulse_data::load(&data, &LoadOptions::default()).unwrap();
    let sp = Split::leave_one_out(&ds);
    let parse = |c: &str| -> Vec<u32> { c.trim_matches(|c| c == '[' || c == ']').split(", ").map(|x| x.parse().unwrap()).collect() };
    for ((u, r_ik), (u2, r)) in ri.iter().zip(&rt) {
        assert_eq!(u, u2);
        if *r_ik > 20 {
            assert_eq!(r, r_ik, "user {u}: outside the shortlist, ItemKNN's rank stays");
            continue;
        }
        // the SLM's (sum) scores of this user's shortlist, from the cache; the true item among them
        let su = sp.users.iter().find(|s| ds.users[s.user as usize].id == *u).unwrap();
        let (list, scores) = lines[16..].iter().map(split).map(|(_, c, x)| (parse(&c), x)).find(|(l, _)| l.contains(&su.test)).unwrap();
        assert_eq!((list.len(), scores.len()), (20, 20));
        let t = scores[list.iter().position(|&i| i == su.test).unwrap()];
        let expect = 1 + scores.iter().enumerate().filter(|&(j, &x)| list[j] != su.test && x >= t).count() as u32;
        assert_eq!(*r, expect, "user {u}: the SLM's rank among the shortlist");
    }
    for (args, needle) in [
        (vec!["sft", "--data", da, "--model", mo, "--variant", "pulse", "--store", st, "--users", "3", "--out", "x"], "has all of [\"tot-space\"]"),
        (vec!["sft", "--data", da, "--model", mo, "--variant", "shuffled-reasons", "--store", st, "--users", "1", "--out", "x"], "at least 2 users"),
        (vec!["eval", "--data", da, "--model", "slm", "--slm", mo, "--protocol", "full", "--out", "y.json"], "candidate lists only"),
        (vec!["eval", "--data", da, "--model", "slm", "--slm", mo, "--protocol", "full", "--shortlist", "slm", "--out", "y.json"], "cannot be slm"),
        (vec!["eval", "--data", da, "--model", "slm", "--slm", mo, "--protocol", "cand5", "--shortlist", "itemknn", "--out", "y.json"], "needs --protocol full"),
        (vec!["eval", "--data", da, "--model", "pop", "--protocol", "full", "--shortlist", "itemknn", "--out", "y.json"], "needs --model slm"),
        (vec!["eval", "--data", da, "--model", "slm", "--slm", mo, "--protocol", "cand5", "--users", "1", "--think", "--no-repeat-ngram", "1", "--out", "z.json"], "no_repeat_ngram"),
        (vec!["eval", "--data", da, "--model", "slm", "--slm", mo, "--protocol", "cand5", "--users", "1", "--think", "--repeat-penalty", "0.5", "--out", "z.json"], "repeat_penalty: 0.5"),
    ] {
        let r = pulse_in(d.path(), &args);
        let e = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{e}");
        assert!(e.contains(needle) && e.trim().lines().count() == 1, "{e}");
    }
    assert!(!d.path().join("x/adapter.gguf").exists());
    assert!(!d.path().join("z.json").exists() && !d.path().join("y.json").exists());
}

/// `pulse experiment` with SLM rows: the base model and an SFT variant (trained under runs/sft/, then
/// reused), candidate protocols only, scored on a user sample that the table marks with its n.
#[test]
fn experiment_with_slm_rows() {
    let d = tempfile::tempdir().unwrap();
    let data = root().join("data/amazon2018-luxury-beauty");
    let model = root().join(pulse_slm::DEFAULT_MODEL);
    let store_path = d.path().join("r.sqlite");
    {
        let ds = pulse_data::load(&data, &LoadOptions::default()).unwrap();
        let split = Split::leave_one_out(&ds);
        let store = Store::open(&store_path).unwrap();
        let mut g = Scripted::new(|_, _| "It suits dry skin.\"}".to_string());
        run(&mut g, &ds, &split, &RationaleConfig::default(), &RunOptions::new(1, Some(6)), &store, &mut |_| {}).unwrap();
    }
    std::fs::write(
        d.path().join("sft.toml"),
        "max_tokens = 200\n[prompt]\nhistory = 2\ncandidates = 4\ntitle_words = 4\nrationale_words = 6\n[train]\nbatch_size = 2\nmicro_batch = 2\n",
    )
    .unwrap();
    let cfg = format!(
        "name = \"slm-rows\"\nmodels = [\"pop\", \"slm\", \"sft-reasons\"]\nprotocols = [\"full\", \"cand5\"]\nbootstrap = 200\n\
         [data]\npath = \"{}\"\n[slm]\nmodel = \"{}\"\nstore = \"{}\"\nsft = \"sft.toml\"\ntrain_users = 2\neval_users = 5\n",
        data.display(),
        model.display(),
        store_path.display()
    );
    std::fs::write(d.path().join("exp.toml"), cfg).unwrap();
    let r = pulse_in(d.path(), &["-q", "experiment", "exp.toml"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let res = d.path().join("runs/slm-rows");
    let table = std::fs::read_to_string(res.join("table.md")).unwrap();
    assert!(!res.join("slm-full.json").exists() && res.join("sft-reasons-cand5.json").is_file());
    let row = |m: &str| table.lines().find(|l| l.starts_with(&format!("| {m} |"))).unwrap().to_string();
    assert!(row("slm").contains("| – |") && row("slm").contains("(n=5)"), "{table}");
    assert!(row("sft-reasons").contains("(n=5)"), "{table}");
    assert!(table.contains("| sft-reasons − pop |"), "{table}");
    // wall time: the adapter's training seconds on the SFT row, none for the base model
    let wall = table.split("Wall time").nth(1).expect("a wall-time table");
    let wrow = |m: &str| wall.lines().find(|l| l.starts_with(&format!("| {m} |"))).unwrap().split('|').map(|c| c.trim().to_string()).collect::<Vec<_>>();
    assert!(wrow("sft-reasons")[2].parse::<f64>().is_ok() && wrow("slm")[2] == "–", "{wall}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(res.join("sft-reasons-cand5.json")).unwrap()).unwrap();
    let sft_dir = v["config"]["model"]["sft_dir"].as_str().unwrap().to_string();
    assert!(sft_dir.starts_with("runs/sft/amazon2018-luxury-beauty-reasons-"), "{sft_dir}");
    assert!(d.path().join(&sft_dir).join("adapter.gguf").is_file());
    // a second run finds everything done
    let r = Command::new(env!("CARGO_BIN_EXE_pulse")).current_dir(d.path()).env("RUST_LOG", "info").args(["experiment", "exp.toml"]).output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let log = String::from_utf8_lossy(&r.stderr);
    assert!(log.contains("sft-reasons cand5: already done"), "{log}");
    // a fresh checkout (runs/ is gone): the row is kept, its adapter is not retrained to find that out
    let row_file = res.join("sft-reasons-cand5.json");
    let before = std::fs::read(&row_file).unwrap();
    let adapter = std::fs::read(d.path().join(&sft_dir).join("adapter.gguf")).unwrap();
    // --train-adapter names the very adapter the rows ranked with, reused as it is
    let listing = |p: &Path| std::fs::read_dir(p).unwrap().map(|e| e.unwrap().path()).collect::<std::collections::BTreeSet<_>>();
    let results_before = listing(&res);
    let r = pulse_in(d.path(), &["-q", "experiment", "exp.toml", "--train-adapter", "reasons"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(String::from_utf8_lossy(&r.stdout), format!("{sft_dir}/adapter.gguf\n"));
    assert!(std::fs::read(d.path().join(&sft_dir).join("adapter.gguf")).unwrap() == adapter);
    std::fs::remove_dir_all(d.path().join("runs/sft")).unwrap();
    let r = Command::new(env!("CARGO_BIN_EXE_pulse")).current_dir(d.path()).env("RUST_LOG", "info").args(["experiment", "exp.toml"]).output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let log = String::from_utf8_lossy(&r.stderr);
    assert!(log.contains("sft-reasons cand5: already done") && log.contains("is not retrained for it"), "{log}");
    assert!(!d.path().join(&sft_dir).exists() && std::fs::read(&row_file).unwrap() == before);
    // on that fresh checkout --train-adapter trains it again, into the same folder, byte for byte, and
    // writes nothing under runs/<name>/
    let r = pulse_in(d.path(), &["-q", "experiment", "exp.toml", "--train-adapter", "reasons"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(String::from_utf8_lossy(&r.stdout), format!("{sft_dir}/adapter.gguf\n"));
    assert!(std::fs::read(d.path().join(&sft_dir).join("adapter.gguf")).unwrap() == adapter, "retrained adapter differs");
    assert!(listing(&res) == results_before && std::fs::read(&row_file).unwrap() == before);
    // other settings (more training users): trained and ranked again
    std::fs::write(d.path().join("exp.toml"), std::fs::read_to_string(d.path().join("exp.toml")).unwrap().replace("train_users = 2", "train_users = 3")).unwrap();
    let r = pulse_in(d.path(), &["-q", "experiment", "exp.toml"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&row_file).unwrap()).unwrap();
    let new_dir = v["config"]["model"]["sft_dir"].as_str().unwrap().to_string();
    assert!(new_dir != sft_dir && d.path().join(&new_dir).join("adapter.gguf").is_file(), "{new_dir}");
    // an SLM row without [slm] is refused up front
    std::fs::write(d.path().join("bad.toml"), format!("name = \"x\"\nmodels = [\"pulse\"]\n[data]\npath = \"{}\"\n", data.display())).unwrap();
    let r = pulse_in(d.path(), &["-q", "experiment", "bad.toml"]);
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.code() == Some(1) && e.contains("needs an [slm] table") && e.trim().lines().count() == 1, "{e}");
    // --train-adapter without [slm] is refused too, with nothing written
    std::fs::write(d.path().join("bad.toml"), format!("name = \"x\"\nmodels = [\"pop\"]\n[data]\npath = \"{}\"\n", data.display())).unwrap();
    let r = pulse_in(d.path(), &["-q", "experiment", "bad.toml", "--train-adapter", "plain"]);
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.code() == Some(1) && e.contains("bad.toml: --train-adapter needs an [slm] section") && e.trim().lines().count() == 1, "{e}");
    assert!(!d.path().join("runs/x").exists() && r.stdout.is_empty());
    // [slm] protocols must be among the experiment's
    let cfg = std::fs::read_to_string(d.path().join("exp.toml")).unwrap().replace("eval_users = 5\n", "eval_users = 5\nprotocols = [\"cand20\"]\n");
    std::fs::write(d.path().join("bad.toml"), cfg.replace("slm-rows", "slm-bad")).unwrap();
    let r = pulse_in(d.path(), &["-q", "experiment", "bad.toml"]);
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.code() == Some(1) && e.contains("[slm] protocols: cand20") && e.trim().lines().count() == 1, "{e}");
    assert!(!d.path().join("runs/slm-bad").exists());
    // so must a ranker setting that cannot work, before any stage runs
    let cfg = std::fs::read_to_string(d.path().join("exp.toml")).unwrap() + "[slm.rank]\nthink = true\nno_repeat_ngram = 1\n";
    std::fs::write(d.path().join("bad.toml"), cfg.replace("slm-rows", "slm-bad")).unwrap();
    let r = pulse_in(d.path(), &["-q", "experiment", "bad.toml"]);
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.code() == Some(1) && e.contains("[slm.rank]") && e.contains("no_repeat_ngram: 1") && e.trim().lines().count() == 1, "{e}");
    assert!(!d.path().join("runs/slm-bad").exists());
}

/// `pulse experiment` with a fused row (`slm+hybrid`): the SLM and the tuned hybrid rank the SLM sample's
/// candidate lists together, the SLM's weight tuned on validation lists of users the hybrid was not tuned
/// on; a second run finds it done; a fused row without the hybrid row, or with a [rerank] that cannot
/// work, is refused up front.
#[test]
fn experiment_with_a_fused_row() {
    let d = tempfile::tempdir().unwrap();
    let data = root().join("data/amazon2018-luxury-beauty");
    let model = root().join(pulse_slm::DEFAULT_MODEL);
    std::fs::write(d.path().join("sft.toml"), "max_tokens = 200\n[prompt]\nhistory = 2\ncandidates = 4\ntitle_words = 4\n").unwrap();
    let cfg = format!(
        "name = \"fused\"\nmodels = [\"hybrid\", \"slm+hybrid\", \"slm\"]\nprotocols = [\"full\", \"cand5\"]\nbootstrap = 200\n\
         [data]\npath = \"{}\"\n[hybrid]\nparts = [\"pop\", \"itemknn\"]\ntune_candidates = 5\ntune_users = 30\ngrid_step = 0.5\n\
         [rerank]\ntune_users = 4\ngrid_step = 0.25\n\
         [slm]\nmodel = \"{}\"\nstore = \"none.sqlite\"\nsft = \"sft.toml\"\neval_users = 5\n",
        data.display(),
        model.display(),
    );
    std::fs::write(d.path().join("exp.toml"), &cfg).unwrap();
    let r = pulse_in(d.path(), &["-q", "experiment", "exp.toml"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let res = d.path().join("runs/fused");
    assert!(res.join("slm+hybrid-cand5.json").is_file() && !res.join("slm+hybrid-full.json").exists());
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(res.join("slm+hybrid-cand5.meta.json")).unwrap()).unwrap();
    let tune = &meta["model"]["tune"];
    assert_eq!(tune["parts"], serde_json::json!(["hybrid", "slm"]));
    assert_eq!((tune["users"].as_u64(), tune["n_candidates"].as_u64(), tune["grid_points"].as_u64()), (Some(4), Some(5), Some(5)));
    let w: Vec<f64> = tune["weights"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert!(w.len() == 2 && (w[0] + w[1] - 1.0).abs() < 1e-6 && w.iter().all(|&x| x >= 0.0), "{w:?}");
    // the fused row ranks the SLM's 5 users; at a corner of the grid it ranks exactly as that part does
    let ranks = |m: &str| -> Vec<(String, String)> {
        let t = pulse_eval::read_ranks_text(&res.join(format!("{m}-cand5.ranks.tsv"))).unwrap();
        t.lines().skip(1).map(|l| l.split_once('\t').map(|(a, b)| (a.to_string(), b.to_string())).unwrap()).collect()
    };
    let fused = ranks("slm+hybrid");
    let slm = ranks("slm");
    assert_eq!(fused.len(), 5);
    assert_eq!(fused.iter().map(|p| &p.0).collect::<Vec<_>>(), slm.iter().map(|p| &p.0).collect::<Vec<_>>());
    if w[0] == 0.0 {
        assert_eq!(fused, slm);
    }
    if w[1] == 0.0 {
        let hybrid: std::collections::HashMap<String, String> = ranks("hybrid").into_iter().collect();
        assert!(fused.iter().all(|(u, r)| &hybrid[u] == r));
    }
    let table = std::fs::read_to_string(res.join("table.md")).unwrap();
    assert!(table.contains("| slm+hybrid − hybrid |") && table.lines().any(|l| l.starts_with("| slm+hybrid |") && l.contains("(n=5)")), "{table}");
    // a second run finds it done
    let r = Command::new(env!("CARGO_BIN_EXE_pulse")).current_dir(d.path()).env("RUST_LOG", "info").args(["experiment", "exp.toml"]).output().unwrap();
    let log = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success() && log.contains("slm+hybrid cand5: already done"), "{log}");
    // cross-domain with [hybrid.tune_data]: the SLM's weight is tuned on the same third domain as the hybrid's,
    // on its users after the hybrid's own, and the record says so
    let office = root().join("../shared/data/amazon2014-office-products");
    let cross = cfg
        .replace("\"fused\"", "\"fused-third\"")
        .replace("protocols = [\"full\", \"cand5\"]", "protocols = [\"cand5\"]")
        .replace("parts = [\"pop\", \"itemknn\"]", "parts = [\"pop\", \"lexical\"]")
        .replace("[rerank]", &format!("[hybrid.tune_data]\npath = \"{}\"\n[train_data]\npath = \"{}\"\n[rerank]", office.display(), data.display()));
    std::fs::write(d.path().join("third.toml"), &cross).unwrap();
    let r = pulse_in(d.path(), &["-q", "experiment", "third.toml"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(d.path().join("runs/fused-third/slm+hybrid-cand5.meta.json")).unwrap()).unwrap();
    assert_eq!(meta["model"]["tune_data"], "amazon2014-office-products");
    assert_eq!(meta["model"]["hybrid"]["tune_data"], "amazon2014-office-products");
    assert_eq!(meta["model"]["tune"]["users"].as_u64(), Some(4));
    // refused up front, one line, nothing written
    for (bad, needle) in [
        (cfg.replace("[\"hybrid\", \"slm+hybrid\", \"slm\"]", "[\"slm+hybrid\"]"), "needs an [slm] table and the hybrid row"),
        (cfg.replace("tune_users = 4", "tune_users = 0"), "[rerank] needs tune_users ≥ 1"),
        (cfg.replace("[\"hybrid\", \"slm+hybrid\", \"slm\"]", "[\"hybrid\", \"nope+hybrid\"]"), "nope+hybrid"),
    ] {
        std::fs::write(d.path().join("bad.toml"), bad.replace("\"fused\"", "\"fused-bad\"")).unwrap();
        let r = pulse_in(d.path(), &["-q", "experiment", "bad.toml"]);
        let e = String::from_utf8_lossy(&r.stderr);
        assert!(r.status.code() == Some(1) && e.contains(needle) && e.trim().lines().count() == 1, "{e}");
        assert!(!d.path().join("runs/fused-bad").exists());
    }
}
