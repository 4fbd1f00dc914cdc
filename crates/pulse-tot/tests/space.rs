//! ToT judged by the Thought Space on real data and the real encoder: among sampled thoughts, the chain
//! that talks about the chosen item's kind of product wins over generic or off-topic chains.

use std::collections::HashMap;
use std::path::PathBuf;

use pulse_data::{LoadOptions, Split};
use pulse_rationale::Store;
use pulse_slm::{scripted::Scripted, Prompt};
use pulse_thought::{SentenceEncoder, ThoughtSpace, DEFAULT_ENCODER};
use pulse_tot::{run, ChainScorer, RunOptions, ScoreJob, Scoring, SpaceScorer, TotConfig};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_space_prefers_thoughts_about_the_chosen_item() {
    let ds = pulse_data::load(&root().join("data/amazon2018-luxury-beauty"), &LoadOptions::default()).unwrap();
    let split = Split::leave_one_out(&ds);
    let enc = SentenceEncoder::load(&root().join(DEFAULT_ENCODER), 128).unwrap();
    let space = ThoughtSpace::identity(enc.dim(), candle_core::DType::F32).unwrap();
    let mut scorer = SpaceScorer::new(&enc, &space, "identity".into());
    // Sample 0: off-topic; sample 1: the chosen item's title words; sample 2: generic.
    let mut g = Scripted::new(|r, j| {
        let Prompt::Chat(m) = &r.prompt else { unreachable!() };
        let chosen = m[1].content.split("The item they chose next: ").nth(1).unwrap_or("").lines().next().unwrap_or("").to_string();
        match j {
            0 => "Trains run late in winter because of ice on the tracks.".into(),
            1 => format!("They wanted {chosen}."),
            _ => "The shopper likes nice things.".into(),
        }
    });
    let store = Store::in_memory().unwrap();
    let cfg = TotConfig { similar_users: 0, ..TotConfig::default() };
    let s = run(&mut g, &mut scorer, &ds, &split, &HashMap::new(), &cfg, Scoring::Space, &RunOptions { seed: 1, users: Some(6) }, &store, &mut |_| {})
        .unwrap();
    assert_eq!(s.refined, 6);
    assert!(s.scorer.starts_with("space:"), "{}", s.scorer);
    for r in store.records(Some("tot-space")).unwrap() {
        let text = r.rationale.unwrap();
        assert!(text.contains("They wanted ") && !text.contains("Trains"), "{text}");
        let sc = r.score.unwrap();
        assert!(sc > 0.3 && sc <= 1.0, "cosine {sc}");
    }
}

/// The search judges all users' chains of a depth in one batched call; that must give each chain the score
/// it gets when judged alone (one user at a time), and an empty thought never wins.
#[test]
fn batched_judging_equals_one_by_one() {
    let enc = SentenceEncoder::load(&root().join(DEFAULT_ENCODER), 128).unwrap();
    let space = ThoughtSpace::identity(enc.dim(), candle_core::DType::F32).unwrap();
    let mut g = Scripted::new(|_, _| String::new());
    let first = Prompt::Raw("unused by this judge".into());
    let chains_a = vec![
        vec!["They like rose scents.".to_string()],
        vec!["A gift for a friend who loves perfume, in a small bottle.".to_string(), "Cheap.".to_string()],
        vec![String::new()],
    ];
    let chains_b = vec![vec!["Shampoo for dry hair with argan oil.".to_string()]];
    let jobs = [
        ScoreJob { behaviour: "[CONTEXT] History: Rose soap [CHOSEN_ITEM] Rose perfume", negatives: &[], first_prompt: &first, chains: &chains_a },
        ScoreJob { behaviour: "[CONTEXT] History: Conditioner [CHOSEN_ITEM] Argan oil shampoo", negatives: &[], first_prompt: &first, chains: &chains_b },
    ];
    let mut scorer = SpaceScorer::new(&enc, &space, "identity".into());
    let together = scorer.score_all(&mut g, &jobs).unwrap();
    let mut fresh = SpaceScorer::new(&enc, &space, "identity".into());
    let alone: Vec<Vec<f64>> = jobs.iter().map(|j| fresh.score(&mut g, j).unwrap()).collect();
    assert_eq!(together.len(), 2);
    assert_eq!((together[0].len(), together[1].len()), (3, 1));
    for (t, a) in together.iter().flatten().zip(alone.iter().flatten()) {
        assert!((t - a).abs() < 1e-5 || (t.is_infinite() && a.is_infinite()), "{t} vs {a}");
    }
    assert_eq!(together[0][2], f64::NEG_INFINITY);
    assert!(together[1][0] > 0.3, "{together:?}");
}

/// The contrastive judge: the plain cosine pays a chain for restating the history (B reads it too); with
/// negatives (the same history, another item chosen) that part cancels, and the chain about the chosen
/// item's kind of product wins. Each score is the cosine minus the mean cosine to the negatives.
#[test]
fn contrast_cancels_what_a_chain_shares_with_the_history() {
    let enc = SentenceEncoder::load(&root().join(DEFAULT_ENCODER), 128).unwrap();
    let space = ThoughtSpace::identity(enc.dim(), candle_core::DType::F32).unwrap();
    let mut g = Scripted::new(|_, _| String::new());
    let first = Prompt::Raw("unused by this judge".into());
    let history = "[CONTEXT] History: Rose Petal Soap Bar; Lavender Bath Salts; Rose Body Lotion";
    let behaviour = format!("{history} [CHOSEN_ITEM] Argan Oil Shampoo for Dry Hair");
    let negatives: Vec<String> =
        ["Stainless Steel Nail Clipper", "Black Eyeliner Pencil", "Men's Cologne Spray 3.4 oz"].iter().map(|t| format!("{history} [CHOSEN_ITEM] {t}")).collect();
    let chains = vec![
        vec!["Rose petal soap bar, lavender bath salts and rose body lotion.".to_string()],
        vec!["They needed something to wash and soften their dry, frizzy hair.".to_string()],
    ];
    let plain = ScoreJob { behaviour: &behaviour, negatives: &[], first_prompt: &first, chains: &chains };
    let contrastive = ScoreJob { behaviour: &behaviour, negatives: &negatives, first_prompt: &first, chains: &chains };
    let mut scorer = SpaceScorer::new(&enc, &space, "identity".into());
    let p = scorer.score(&mut g, &plain).unwrap();
    let c = scorer.score(&mut g, &contrastive).unwrap();
    assert!(p[0] > p[1], "the plain cosine prefers restating the history: {p:?}");
    assert!(c[1] > c[0], "the contrast prefers the chosen item's reason: {c:?}");
    assert!(c[0].abs() < 0.1, "restating the history says nothing about the choice: {c:?}");
    // by hand: cosine minus the mean cosine to the negatives
    let texts: Vec<&str> = [chains[1][0].as_str(), behaviour.as_str()].into_iter().chain(negatives.iter().map(String::as_str)).collect();
    let e = enc.encode(&texts, 8).unwrap();
    let cos = |a: &[f32], b: &[f32]| pulse_thought::cosine(a, b) as f64;
    let want = cos(&e[0], &e[1]) - (2..5).map(|k| cos(&e[0], &e[k])).sum::<f64>() / 3.0;
    assert!((c[1] - want).abs() < 1e-5, "{} vs {want}", c[1]);
}
