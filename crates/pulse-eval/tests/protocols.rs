use pulse_data::{load, LoadOptions, Split, Stage};
use pulse_eval::{evaluate, metric_names, metrics_from_ranks, BoxError, CandidateSet, Protocol, Recommender};
use std::collections::HashSet;
use std::path::Path;

fn bundled() -> (pulse_data::Dataset, Split) {
    let ds = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/amazon2018-luxury-beauty"), &LoadOptions::default())
        .unwrap();
    let s = Split::leave_one_out(&ds);
    (ds, s)
}

/// Knows the answers: scores each user's test target 1, everything else 0.
struct Oracle<'a>(&'a Split);
impl Recommender for Oracle<'_> {
    fn name(&self) -> &str {
        "oracle"
    }
    fn score_all(&self, h: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        Ok(h.iter()
            .map(|h| {
                let u = self.0.users.iter().find(|u| u.test_history() == *h).unwrap();
                let mut row = vec![0.0; self.0.n_items];
                row[u.test as usize] = 1.0;
                row
            })
            .collect())
    }
}

struct Constant(usize);
impl Recommender for Constant {
    fn name(&self) -> &str {
        "constant"
    }
    fn score_all(&self, h: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        Ok(vec![vec![0.5; self.0]; h.len()])
    }
}

#[test]
fn candidate_lists_are_valid_deterministic_and_round_trip() {
    let (ds, split) = bundled();
    let c = CandidateSet::draw(&ds, &split, 20, 42).unwrap();
    assert_eq!(c.lists.len(), split.users.len());
    for (su, list) in split.users.iter().zip(&c.lists) {
        assert_eq!(list.len(), 20);
        assert_eq!(list[0], su.test);
        let seen: HashSet<u32> = ds.users[su.user as usize].events.iter().map(|e| e.item).collect();
        let uniq: HashSet<u32> = list.iter().copied().collect();
        assert_eq!(uniq.len(), 20);
        assert!(list[1..].iter().all(|i| !seen.contains(i)), "a negative was interacted with");
    }
    assert_eq!(c, CandidateSet::draw(&ds, &split, 20, 42).unwrap());
    assert_ne!(c.lists, CandidateSet::draw(&ds, &split, 20, 43).unwrap().lists);

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cand20.tsv");
    let a = CandidateSet::load_or_draw(&ds, &split, 20, 42, &p).unwrap();
    let b = CandidateSet::load_or_draw(&ds, &split, 20, 42, &p).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
    // wrong seed for an existing file is refused, not silently redrawn
    let e = CandidateSet::load_or_draw(&ds, &split, 20, 7, &p).unwrap_err().to_string();
    assert!(e.ends_with("holds n=20 seed=42, but n=20 seed=7 was asked for"), "{e}");
    // another split (dedup + 5-core) is refused with file:line
    let ds2 = load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/amazon2018-luxury-beauty"),
        &LoadOptions { dedup: true, kcore: 5, ..Default::default() },
    )
    .unwrap();
    let s2 = Split::leave_one_out(&ds2);
    let e = CandidateSet::load(&ds2, &s2, &p).unwrap_err().to_string();
    assert!(e.contains("cand20.tsv:1: drawn for split"), "{e}");
}

#[test]
fn oracle_and_constant_models_bound_the_metrics() {
    let (ds, split) = bundled();
    // the oracle identifies users by history, so keep users whose test history is unique
    let mut count = std::collections::HashMap::new();
    for u in &split.users {
        *count.entry(u.test_history()).or_insert(0) += 1;
    }
    let users: Vec<usize> = (0..split.users.len()).filter(|&u| count[&split.users[u].test_history()] == 1).take(300).collect();
    assert_eq!(users.len(), 300);
    let c = CandidateSet::draw(&ds, &split, 5, 1).unwrap();
    let ranks = evaluate(&Oracle(&split), &split, Stage::Test, Protocol::Cand { n: 5 }, Some(&c), Some(&users), &mut |_, _| {})
        .unwrap();
    assert!(ranks.iter().all(|r| *r == Some(1)));
    // constant scores: ties count against the target → last place
    let ranks =
        evaluate(&Constant(split.n_items), &split, Stage::Test, Protocol::Cand { n: 5 }, Some(&c), Some(&users), &mut |_, _| {})
            .unwrap();
    assert!(ranks.iter().all(|r| *r == Some(5)));

    // full, masked: repeat-purchase targets become misses even for the oracle
    let p = Protocol::Full { mask_history: true };
    let ranks = evaluate(&Oracle(&split), &split, Stage::Test, p, None, Some(&users), &mut |_, _| {}).unwrap();
    let repeats = users.iter().filter(|&&u| split.users[u].test_history().contains(&split.users[u].test)).count();
    assert!(repeats > 0);
    assert_eq!(ranks.iter().filter(|r| r.is_none()).count(), repeats);
    let m = metrics_from_ranks(&ranks, &metric_names(&p));
    assert!((m["hr@1"] - (300 - repeats) as f64 / 300.0).abs() < 1e-12);
    // unmasked: the oracle hits everything
    let p = Protocol::Full { mask_history: false };
    let ranks = evaluate(&Oracle(&split), &split, Stage::Test, p, None, Some(&users), &mut |_, _| {}).unwrap();
    assert!(ranks.iter().all(|r| *r == Some(1)));
}

#[test]
fn mismatched_candidate_set_is_an_error() {
    let (ds, split) = bundled();
    let c = CandidateSet::draw(&ds, &split, 5, 1).unwrap();
    let e = evaluate(&Constant(split.n_items), &split, Stage::Test, Protocol::Cand { n: 20 }, Some(&c), None, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("candidate set (n=5"), "{e}");
}
