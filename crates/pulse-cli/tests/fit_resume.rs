//! `pulse fit` killed with SIGKILL mid-training, then run again: it resumes from its checkpoints and
//! writes the same bundle an uninterrupted fit writes, byte for byte; no bundle exists in between.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let d = dir.join("data");
    std::fs::create_dir_all(&d).unwrap();
    let mut items = String::from("item_id\ttitle\n");
    for i in 0..60 {
        items.push_str(&format!("{}\t{} {}\n", 100 + i, ["Rose Serum", "Argan Shampoo", "Clay Mask"][i % 3], i));
    }
    std::fs::write(d.join("items.tsv"), items).unwrap();
    let mut inter = String::from("user_id\titem_id\tposition\n");
    for u in 0..300 {
        for j in 0..6 {
            inter.push_str(&format!("{}\t{}\t{j}\n", u + 1, 100 + (u * 7 + j * (1 + u % 3)) % 60));
        }
    }
    std::fs::write(d.join("interactions.tsv"), inter).unwrap();
    let cfg = dir.join("fit.toml");
    std::fs::write(
        &cfg,
        format!(
            "seed = 5\n[sasrec]\nhidden = 16\nmax_len = 8\nmax_epochs = 60\npatience = 60\nbatch_size = 16\n[pulse_ts]\nencoder = \"{}\"\n[hybrid]\ntune_users = 100\n",
            root().join("models/all-MiniLM-L6-v2").display()
        ),
    )
    .unwrap();
    (d, cfg)
}

fn fit(cwd: &Path, data: &Path, cfg: &Path, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pulse"));
    c.current_dir(cwd).env("RUST_LOG", "error").args(["-q", "fit", "--data", data.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    c
}

fn epoch_of(dir: &Path) -> Option<u64> {
    // the sequence model's checkpoint state under runs/<dataset>/<model>/state.json
    let runs = dir.join("runs");
    for ds in std::fs::read_dir(runs).ok()?.flatten() {
        for m in std::fs::read_dir(ds.path()).ok()?.flatten() {
            if let Ok(s) = std::fs::read_to_string(m.path().join("state.json")) {
                return serde_json::from_str::<serde_json::Value>(&s).ok()?["epoch"].as_u64();
            }
        }
    }
    None
}

#[test]
fn killed_fit_resumes_to_the_same_bundle() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (data, cfg) = setup(a.path());
    // uninterrupted, in its own folder (its own runs/)
    let o = fit(a.path(), &data, &cfg, &a.path().join("bundle")).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let out = b.path().join("bundle");
    let mut child = fit(b.path(), &data, &cfg, &out).spawn().unwrap();
    let t = Instant::now();
    let mut killed_at = None;
    while t.elapsed() < Duration::from_secs(300) {
        if let Some(e) = epoch_of(b.path()).filter(|&e| e >= 3) {
            child.kill().unwrap(); // SIGKILL
            killed_at = Some(e);
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.wait();
    let killed_at = killed_at.expect("the fit was killed during training");
    assert!(!out.exists(), "no bundle after a kill during training");
    let o = fit(b.path(), &data, &cfg, &out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["pulse_ts.safetensors", "neighbours.safetensors", "item_text.safetensors", "catalogue.jsonl", "users.jsonl"] {
        assert!(std::fs::read(out.join(f)).unwrap() == std::fs::read(a.path().join("bundle").join(f)).unwrap(), "{f} differs after resuming from epoch {killed_at}");
    }
    let serving = |p: &Path| serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(p.join("manifest.json")).unwrap()).unwrap()["models"]["serving"].clone();
    assert_eq!(serving(&out), serving(&a.path().join("bundle")));
}
