//! `pulse thought train` and `pulse plot thought-space` as a user runs them, on a rationale store filled by
//! the real rationale stage with a scripted generator (no SLM in the loop).
use std::path::{Path, PathBuf};
use std::process::Command;

use pulse_data::{LoadOptions, Split};
use pulse_rationale::{run, RationaleConfig, RunOptions, Store};
use pulse_slm::{scripted::Scripted, Prompt};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn pulse(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pulse")).current_dir(root()).env("RUST_LOG", "error").args(args).output().unwrap()
}

/// Bad input: exit 1, one line on stderr naming `needle`, and nothing at `out`.
fn assert_refused(args: &[&str], needle: &str, out: &Path) {
    let o = pulse(args);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains(needle) && e.trim().lines().count() == 1, "{e}");
    assert!(!out.exists());
}

#[test]
fn train_a_space_then_plot_it() {
    let d = tempfile::tempdir().unwrap();
    let store_path = d.path().join("r.sqlite");
    {
        let ds = pulse_data::load(&root().join("data/amazon2018-luxury-beauty"), &LoadOptions::default()).unwrap();
        let split = Split::leave_one_out(&ds);
        let store = Store::open(&store_path).unwrap();
        let mut g = Scripted::new(|r, _| {
            let Prompt::Chat(m) = &r.prompt else { unreachable!() };
            let chosen = m[1].content.split("The item they chose next: ").nth(1).unwrap_or("").split(" (description").next().unwrap_or("");
            format!("The shopper wanted {}.\"}}", chosen.split_whitespace().take(5).collect::<Vec<_>>().join(" "))
        });
        run(&mut g, &ds, &split, &RationaleConfig::default(), &RunOptions::new(1, Some(120)), &store, &mut |_| {}).unwrap();
    }
    let space = d.path().join("space");
    let cfg = d.path().join("t.toml");
    std::fs::write(&cfg, "epochs = 5\n").unwrap();
    let (st, sp, cf) = (store_path.to_str().unwrap(), space.to_str().unwrap(), cfg.to_str().unwrap());
    let o = pulse(&["-q", "thought", "train", "--store", st, "--config", cf, "--holdout", "20", "--out", sp]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("100 training pairs, 20 held out"), "{out}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(space.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["config"]["epochs"], 5);
    assert_eq!(report["config"]["weight_decay"], 1.0, "defaults filled in");
    assert_eq!(std::fs::read_to_string(space.join("heldout.tsv")).unwrap().lines().count(), 20);

    // The space measured on its own held-out choices, with 4 same-history negatives.
    let ev = d.path().join("eval/initial.json");
    let o = pulse(&["-q", "thought", "eval", "--store", st, "--space", sp, "--heldout", "--negatives", "4", "--out", ev.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("initial (20 pairs, held out)") && out.contains("which item R@1 (1 of 5)"), "{out}");
    let evj: serde_json::Value = serde_json::from_slice(&std::fs::read(&ev).unwrap()).unwrap();
    assert_eq!((evj["pairs"].as_u64(), evj["item_space"]["pool"].as_u64()), (Some(20), Some(5)));
    assert_eq!(evj["space"]["r_at_1"], report["trained"]["r_at_1"], "the held-out R@1 of training, recomputed");
    // Bad input: one line, non-zero, no report written.
    let bad = d.path().join("eval/bad.json");
    std::fs::remove_file(space.join("heldout.tsv")).unwrap();
    for (args, needle) in [
        (vec!["--space", "/nonexistent"], "no space.safetensors"),
        (vec!["--space", sp, "--heldout"], "heldout.tsv"),
        (vec!["--space", sp, "--method", "tot-space"], "0 usable tot-space rationales"),
    ] {
        let mut a = vec!["-q", "thought", "eval", "--store", st, "--out", bad.to_str().unwrap()];
        a.extend(args);
        assert_refused(&a, needle, &bad);
    }

    let png = d.path().join("plots/space.png");
    let dom = format!("data/amazon2018-luxury-beauty={st}");
    let o = pulse(&["-q", "plot", "thought-space", "--space", sp, "--domain", &dom, "--users", "50", "--out", png.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 10_000, "a real picture, not an empty canvas: {} bytes", bytes.len());
    let side: serde_json::Value = serde_json::from_slice(&std::fs::read(png.with_extension("json")).unwrap()).unwrap();
    assert_eq!(side["domains"][0]["points"], 50);
    assert_eq!(side["domains"][0]["dataset"], "amazon2018-luxury-beauty");
    assert!(!d.path().join("plots/space.tmp.png").exists());

    // Bad input: one line, non-zero, nothing written.
    let bad = d.path().join("bad.png");
    for (args, needle) in [
        (vec!["--domain", "data/amazon2018-luxury-beauty"], "DATA_DIR=STORE"),
        (vec!["--domain", "data/amazon2018-luxury-beauty=/nonexistent.sqlite"], "no such rationale store"),
    ] {
        let mut a = vec!["-q", "plot", "thought-space", "--space", sp, "--out", bad.to_str().unwrap()];
        a.extend(args);
        assert_refused(&a, needle, &bad);
    }
}
