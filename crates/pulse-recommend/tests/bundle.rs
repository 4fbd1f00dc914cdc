//! The bundle format and the engine over it, on the synthetic fixture bundle (real files, real loader).
use pulse_recommend::fixture::{write_tiny, SCRIPT_TITLE};
use pulse_recommend::query::{resolve, Who};
use pulse_recommend::{Engine, EvidenceSource, Mode, Request, FORMAT_VERSION};
use std::path::Path;

fn bundle(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("b");
    write_tiny(&out, 40, 7).unwrap();
    out
}

fn req(history: Vec<u32>, mode: Mode, loo: bool) -> Request {
    Request { history, k: 10, exclude_history: true, mode, leave_one_out: loo }
}

#[test]
fn round_trip_loads_and_recommends() {
    let t = tempfile::tempdir().unwrap();
    let b = bundle(t.path());
    assert!(!t.path().join("b.partial").exists(), "the partial folder is moved into place");
    let e = Engine::load(&b).unwrap();
    assert_eq!(e.n_items(), 40);
    assert_eq!(e.bundle.manifest.format_version, FORMAT_VERSION);
    for mode in [Mode::PulseTs, Mode::Hybrid] {
        let recs = e.recommend(&req(vec![1, 2, 3], mode, false)).unwrap();
        assert_eq!(recs.len(), 10);
        let scores = e.scores(&[1, 2, 3], mode);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.rank, i + 1);
            assert!(![1, 2, 3].contains(&r.item), "history excluded");
            assert_eq!(r.score, scores[r.item as usize]);
            assert_eq!(Engine::rank_of(&scores, r.item, &[1, 2, 3]), i + 1);
            assert!(!r.reason.is_empty() && r.reason.ends_with('.'));
        }
        assert!(recs.windows(2).all(|w| w[0].score >= w[1].score));
    }
}

#[test]
fn parts_evidence_is_exact() {
    // the content, item-KNN and lexical shares of the cited items are the parts' scores for the item,
    // standardised and weighted as the hybrid adds them: summed over *all* history items they equal
    // the hybrid's non-sequence, non-popularity score minus those parts' standardised means
    let t = tempfile::tempdir().unwrap();
    let e = Engine::load(&bundle(t.path())).unwrap();
    let h = vec![4u32, 5, 6, 7];
    let item = e.recommend(&req(h.clone(), Mode::Hybrid, false)).unwrap()[0].item;
    let total: f32 = e.content.contributions(&h, item).iter().map(|c| c.1).sum();
    let direct = e.content.scores(&h)[item as usize];
    assert!((total - direct).abs() < 1e-5, "content shares {total} vs score {direct}");
    let total: f32 = e.knn.contributions(&h, item).iter().map(|c| c.1).sum();
    assert!((total - e.knn.scores(&h)[item as usize]).abs() < 1e-5);
    let total: f32 = e.lexical.contributions(&h, item).iter().map(|c| c.1).sum();
    assert!((total - e.lexical.scores(&h)[item as usize]).abs() < 1e-5);
}

#[test]
fn leave_one_out_cites_by_removal() {
    let t = tempfile::tempdir().unwrap();
    let e = Engine::load(&bundle(t.path())).unwrap();
    let h = vec![10u32, 11, 12, 13, 14];
    let recs = e.recommend(&req(h.clone(), Mode::PulseTs, true)).unwrap();
    for r in &recs {
        assert_eq!(r.evidence.source, EvidenceSource::LeaveOneOut);
        let full = e.seq.score(&e.seq.state(&h).unwrap(), r.item);
        for c in &r.evidence.cited {
            let without: Vec<u32> = h.iter().copied().filter(|&x| x != c.item).collect();
            let drop = full - e.seq.score(&e.seq.state(&without).unwrap(), r.item);
            assert!((drop - c.contribution).abs() < 1e-4, "{drop} vs {}", c.contribution);
            assert!(c.contribution > 0.0);
        }
    }
}

#[test]
fn corrupted_file_is_refused_by_name() {
    let t = tempfile::tempdir().unwrap();
    let b = bundle(t.path());
    let f = b.join("pulse_ts.safetensors");
    let mut bytes = std::fs::read(&f).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&f, bytes).unwrap();
    let err = Engine::load(&b).err().expect("refused").to_string();
    assert!(err.contains("pulse_ts.safetensors") && err.contains("corrupted"), "{err}");
}

#[test]
fn other_format_version_and_missing_bundle_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let b = bundle(t.path());
    let m = b.join("manifest.json");
    let text = std::fs::read_to_string(&m).unwrap().replace(&format!("\"format_version\": {FORMAT_VERSION}"), "\"format_version\": 99");
    std::fs::write(&m, text).unwrap();
    let err = Engine::load(&b).err().expect("refused").to_string();
    assert!(err.contains("manifest.json") && err.contains("version 99"), "{err}");
    let err = Engine::load(&t.path().join("nope")).err().expect("refused").to_string();
    assert!(err.contains("no such bundle"), "{err}");
}

#[test]
fn titles_match_up_to_case_and_punctuation_with_suggestions() {
    let t = tempfile::tempdir().unwrap();
    let e = Engine::load(&bundle(t.path())).unwrap();
    let title = e.catalogue.items[5].title.clone();
    let shouted = format!("  {}!! ", title.to_uppercase());
    assert_eq!(resolve(&e, &Who::Titles(format!("{shouted};{SCRIPT_TITLE}"))).unwrap(), vec![5, 0]);
    // a unique prefix is enough; an ambiguous one is not
    assert_eq!(e.catalogue.items[17].title, "Night Toner 17");
    assert_eq!(resolve(&e, &Who::Titles("night toner".into())).unwrap(), vec![17]);
    let err = resolve(&e, &Who::Titles("Night".into())).err().unwrap().to_string();
    assert!(err.contains("did you mean"), "Night starts four titles: {err}");
    let err = resolve(&e, &Who::Titles("Rose Serum 9999".into())).err().unwrap().to_string();
    assert!(err.contains("no item titled \"Rose Serum 9999\"") && err.contains("did you mean"), "{err}");
    let err = resolve(&e, &Who::Ids(vec!["I001".into(), "X1".into(), "X2".into()])).err().unwrap().to_string();
    assert_eq!(err, "unknown item ids X1, X2");
    assert!(resolve(&e, &Who::User("nobody".into())).is_err());
    assert_eq!(resolve(&e, &Who::User("U03".into())).unwrap(), e.user("U03").unwrap().items);
}

#[test]
fn evidence_sentences_pass_the_grounding_check() {
    use pulse_recommend::grounding::{check, Context, Failure, Thresholds, Vocab};
    let t = tempfile::tempdir().unwrap();
    let e = Engine::load(&bundle(t.path())).unwrap();
    let vocab = Vocab::new(e.catalogue.items.iter().map(|i| i.title.as_str()));
    let mut checked = 0;
    for u in 0..20 {
        let h = e.users[u].items.clone();
        for mode in [Mode::PulseTs, Mode::Hybrid] {
            for r in e.recommend(&req(h.clone(), mode, false)).unwrap() {
                if r.evidence.cited.is_empty() {
                    continue; // the popularity sentence cites nothing by design
                }
                let ctx = Context {
                    item_title: &r.title,
                    history_titles: h.iter().map(|&i| e.catalogue.items[i as usize].title.as_str()).collect(),
                    cited_titles: r.evidence.cited.iter().map(|c| c.title.as_str()).collect(),
                    attributes: r.evidence.cited.iter().flat_map(|c| c.shared_terms.clone()).collect(),
                };
                let c = check(&r.reason, &ctx, &vocab, Thresholds::default());
                assert!(!c.failures.contains(&Failure::Ungrounded), "{}: {c:?}", r.reason);
                assert!(!c.failures.iter().any(|f| matches!(f, Failure::Hallucination(_))), "{}: {c:?}", r.reason);
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked}");
}
