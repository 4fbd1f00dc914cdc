//! `pulse fit`, `pulse recommend`, `pulse explain-check` and `pulse serve` as a user runs them: a small
//! dataset fitted into a real bundle (real encoder, real training), then asked for recommendations.
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn pulse(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pulse"));
    c.current_dir(cwd).env("RUST_LOG", "error");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// 40 items in 4 families, 120 users who buy within a family: enough structure for every part.
fn small_dataset(dir: &Path) -> PathBuf {
    let d = dir.join("data");
    std::fs::create_dir_all(&d).unwrap();
    let fam = ["Argan Oil Shampoo", "Matte Lipstick", "Vitamin C Serum", "Clay Face Mask"];
    let mut items = String::from("item_id\ttitle\n");
    for i in 0..40 {
        items.push_str(&format!("{}\t{} No. {}\n", 100 + i, fam[i % 4], i / 4));
    }
    std::fs::write(d.join("items.tsv"), items).unwrap();
    let mut inter = String::from("user_id\titem_id\tposition\n");
    for u in 0..120 {
        let f = u % 4;
        for (pos, j) in (0..5 + u % 4).enumerate() {
            inter.push_str(&format!("{}\t{}\t{pos}\n", u + 1, 100 + f + 4 * ((u + j * 3) % 10)));
        }
    }
    std::fs::write(d.join("interactions.tsv"), inter).unwrap();
    d
}

fn fit(dir: &Path) -> PathBuf {
    let data = small_dataset(dir);
    let cfg = dir.join("fit.toml");
    let enc = root().join("models/all-MiniLM-L6-v2");
    std::fs::write(
        &cfg,
        format!(
            "name = \"small\"\nseed = 3\n[sasrec]\nhidden = 16\nmax_len = 10\nmax_epochs = 3\npatience = 5\nbatch_size = 32\n\
             [pulse_ts]\nencoder = \"{}\"\n[hybrid]\ntune_users = 100\n",
            enc.display()
        ),
    )
    .unwrap();
    let out = dir.join("bundle");
    let o = pulse(dir).args(["fit", "--data", data.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = text(&o.stdout);
    assert!(s.contains("bundle ") && s.contains("40 items, 120 users"), "{s}");
    assert!(s.contains("served scores checked against the trained models"), "{s}");
    assert!(!dir.join("bundle.partial").exists());
    out
}

#[test]
fn fit_then_recommend_explain_and_serve() {
    let d = tempfile::tempdir().unwrap();
    let b = fit(d.path());
    let bs = b.to_str().unwrap();
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(b.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["format_version"], 1);
    assert_eq!(m["seed"], 3);
    assert!(m["files"]["pulse_ts.safetensors"]["sha256"].as_str().unwrap().len() == 64);

    // text: the history, then k items with a score and a reason each
    let o = pulse(d.path()).args(["recommend", "--bundle", bs, "--user", "6", "-k", "3"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = text(&o.stdout);
    assert!(s.starts_with("history: "), "{s}");
    assert!(s.contains("top 3 by pulse-ts (evidence: parts):"), "{s}");
    assert_eq!(s.lines().filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()) && l.contains("score")).count(), 3, "{s}");

    // JSON, by titles (case and punctuation ignored), the hybrid with leave-one-out evidence
    let o = pulse(d.path())
        .args(["recommend", "--bundle", bs, "--titles", "argan oil shampoo no 1;MATTE LIPSTICK, NO. 2", "-k", "5", "--model", "hybrid", "--leave-one-out", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["history"], serde_json::json!(["104", "109"]));
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|i| i["evidence"]["source"] == "leave-one-out" && !i["reason"].as_str().unwrap().is_empty()));

    // unknown ids and titles: one line naming them, exit 1, nothing on stdout
    for (args, want) in [
        (vec!["--history", "101,NOPE,102,ALSO"], "unknown item ids NOPE, ALSO"),
        (vec!["--titles", "Argan Oil Shampo No. 1"], "no item titled \"Argan Oil Shampo No. 1\" (did you mean \"Argan Oil Shampoo No. 1\""),
        (vec!["--user", "nobody"], "unknown user \"nobody\""),
    ] {
        let o = pulse(d.path()).args(["recommend", "--bundle", bs]).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        let e = text(&o.stderr);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.contains(want), "{e}");
        assert!(o.stdout.is_empty());
    }
    let o = pulse(d.path()).args(["recommend", "--bundle", "/no/such/bundle", "--user", "1"]).output().unwrap();
    assert!(text(&o.stderr).contains("no such bundle"), "{}", text(&o.stderr));

    // the counterfactual check runs on the bundle and writes its JSON
    let out = d.path().join("pn.json");
    let o = pulse(d.path()).args(["explain-check", "--bundle", bs, "--users", "50", "-k", "3", "--out", out.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 4);
    assert!(v["rows"].as_array().unwrap().iter().all(|r| r["users"].as_u64().unwrap() > 0));

    // serve: refuses a public address without a token
    let o = pulse(d.path()).args(["serve", "--bundle", bs, "--addr", "0.0.0.0:0"]).env_remove("PULSE_TOKEN").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("refusing to serve beyond loopback without a token"), "{}", text(&o.stderr));

    // serve on loopback, answer, then stop on SIGTERM with exit 0
    let mut child = pulse(d.path()).args(["serve", "--bundle", bs, "--addr", "127.0.0.1:0"]).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or_else(|| panic!("no address in {line:?}")).to_string();
    let body = r#"{"history": ["104", "109"], "k": 2}"#;
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(s, "POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"reason\""), "{reply}");
    // SAFETY: kill(2) on our own child's pid
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status:?} {rest}");
    assert!(rest.contains("pulse serve: stopped"), "{rest}");
}
