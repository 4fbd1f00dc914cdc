//! The Thought Space trained from a rationale store on the bundled Luxury Beauty data. The store is filled
//! by the real rationale stage with a scripted generator whose "rationales" paraphrase the chosen item's
//! category words, so that there is a learnable rationale ↔ behaviour signal without an SLM in the loop.

use std::path::PathBuf;

use pulse_data::{LoadOptions, Split};
use pulse_rationale::{run, RationaleConfig, RunOptions, Store};
use pulse_slm::{scripted::Scripted, Prompt};
use pulse_thought::{train::{evaluate_on_store, train_from_store}, EmbeddingCache, SentenceEncoder, SpaceConfig, DEFAULT_ENCODER};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn thought_space_from_a_store_reports_untrained_and_trained_retrieval() {
    let ds = pulse_data::load(&root().join("data/amazon2018-luxury-beauty"), &LoadOptions::default()).unwrap();
    let split = Split::leave_one_out(&ds);
    let store = Store::in_memory().unwrap();
    // The scripted model answers with the last words of the chosen item's title, reversed — related to the
    // behaviour text, but not a copy of it.
    let mut g = Scripted::new(|r, _| {
        let Prompt::Chat(m) = &r.prompt else { unreachable!() };
        let chosen = m[1].content.split("The item they chose next: ").nth(1).unwrap_or("").split(" (description").next().unwrap_or("");
        let words: Vec<&str> = chosen.split_whitespace().rev().take(6).collect();
        format!("The shopper wanted {} for their routine.\"}}", words.join(" "))
    });
    let s = run(&mut g, &ds, &split, &RationaleConfig::default(), &RunOptions::new(1, Some(260)), &store, &mut |_| {}).unwrap();
    assert_eq!(s.generated, 260);
    let enc = SentenceEncoder::load(&root().join(DEFAULT_ENCODER), 128).unwrap();
    let mut cache = EmbeddingCache::in_memory(&enc);
    let cfg = SpaceConfig { epochs: 15, ..SpaceConfig::default() };
    let (space, rep) = train_from_store(&store, "initial", &ds, &enc, &mut cache, &cfg, 60, 3).unwrap();
    assert_eq!((rep.pairs_heldout, rep.pairs_train), (60, 200));
    assert_eq!(rep.trained.pool, 60);
    assert!(rep.untrained.r_at_1 > 0.1, "the frozen encoder already sees the overlap: {:?}", rep.untrained);
    assert!(rep.trained.mrr >= rep.untrained.mrr - 0.02, "untrained {:?} trained {:?}", rep.untrained, rep.trained);
    assert_eq!(rep.epoch_losses.len(), 15);
    assert!(rep.epoch_losses.last() < rep.epoch_losses.first());
    // Saved and loaded back, the space projects the same; a space is refused for another encoder.
    let dir = tempfile::tempdir().unwrap();
    pulse_thought::train::save(&space, &rep, dir.path()).unwrap();
    let back = pulse_thought::train::load(dir.path(), &enc).unwrap();
    let probe = enc.encode(&["a rose lip balm"], 1).unwrap();
    let (a, b) = (space.apply(&probe, true).unwrap(), back.apply(&probe, true).unwrap());
    assert!(a[0].iter().zip(&b[0]).all(|(x, y)| (x - y).abs() < 1e-5));
    let mut report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    report["encoder"] = "someone-else".into();
    std::fs::write(dir.path().join("report.json"), report.to_string()).unwrap();
    let e = pulse_thought::train::load(dir.path(), &enc).err().unwrap().to_string();
    assert!(e.contains("someone-else"), "{e}");
    // PULSE-TS targets: one unit-length R(rationale) per explained user, keyed by split index.
    let (targets, counts) =
        pulse_thought::inputs::rationale_targets(&store, &["tot-space".into(), "initial".into()], &ds, &split, &enc, &space, &mut cache).unwrap();
    assert_eq!(counts, vec![("tot-space".to_string(), 0), ("initial".to_string(), 260)]);
    assert_eq!(targets.len(), 260);
    for (&i, t) in &targets {
        assert!(split.users[i].train.len() >= 2);
        assert_eq!(t.len(), enc.dim());
        assert!((t.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
    }
    // Same-history negatives: the report adds "which item" retrieval (the true behaviour among k = 4
    // behaviours with the same history and other items chosen); these rationales restate the chosen title,
    // so even the frozen encoder finds the item among random ones. The default leaves the config as it was.
    assert!(rep.item_untrained.is_none() && !serde_json::to_string(&rep.config).unwrap().contains("history_negatives"));
    let neg_cfg = SpaceConfig { epochs: 15, history_negatives: 4, ..SpaceConfig::default() };
    let (nspace, nrep) = train_from_store(&store, "initial", &ds, &enc, &mut cache, &neg_cfg, 60, 3).unwrap();
    let (iu, it) = (nrep.item_untrained.unwrap(), nrep.item_trained.unwrap());
    assert_eq!((iu.n, iu.pool, it.pool), (60, 5, 5));
    assert!(iu.r_at_1 > 0.6, "{iu:?}");
    assert!(it.mrr >= iu.mrr - 0.02, "untrained {iu:?} trained {it:?}");
    assert_eq!((nrep.pairs_heldout, nrep.pairs_train), (60, 200));
    assert!(serde_json::to_string(&nrep.config).unwrap().contains("\"history_negatives\":4"));
    // `evaluate_on_store` on the held-out choices (heldout.tsv) redraws the same negatives and so gives the
    // report's "which item" numbers exactly (those do not depend on pair order); on the whole store it
    // covers every usable pair; without negatives it leaves "which item" out.
    let ndir = tempfile::tempdir().unwrap();
    pulse_thought::train::save(&nspace, &nrep, ndir.path()).unwrap();
    let held = pulse_thought::train::load_held_out(ndir.path()).unwrap();
    assert_eq!(held.len(), 60);
    let ev = evaluate_on_store(&store, "initial", &ds, &enc, &mut cache, &nspace, 4, Some(&held), 3).unwrap();
    assert_eq!((ev.pairs, ev.held_out_only, ev.space.pool), (60, true, 60));
    assert_eq!((ev.item_frozen.unwrap(), ev.item_space.unwrap()), (iu, it));
    let all = evaluate_on_store(&store, "initial", &ds, &enc, &mut cache, &nspace, 0, None, 3).unwrap();
    assert_eq!((all.pairs, all.space.pool, all.item_space), (260, 100, None));
    let e = evaluate_on_store(&store, "tot-space", &ds, &enc, &mut cache, &nspace, 4, None, 3).err().unwrap().to_string();
    assert!(e.contains("0 usable tot-space rationales") && !e.contains('\n'), "{e}");
    std::fs::write(ndir.path().join("heldout.tsv"), "u1\tt1\nbroken\n").unwrap();
    let e = pulse_thought::train::load_held_out(ndir.path()).err().unwrap().to_string();
    assert!(e.contains("heldout.tsv: line 2") && !e.contains('\n'), "{e}");
    // Too few rationales for the held-out set: a one-line error naming the store.
    let e = train_from_store(&store, "initial", &ds, &enc, &mut cache, &cfg, 500, 3).err().unwrap().to_string();
    assert!(e.contains("usable initial rationales") && !e.contains('\n'), "{e}");
}
