//! The three input formats, the filters, and the split, on hand-made fixtures and on the real data.
use pulse_data::{load, stats, Format, LoadOptions, Split};
use std::io::Write;
use std::path::{Path, PathBuf};

fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(name)
}
fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/amazon2018-luxury-beauty")
}

#[test]
fn recbole_atomic_keeps_rating_review_and_time_order() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("toy.item"),
        "item_id:token\ttitle:token_seq\tbrand:token\na\tApple pie\tAcme\nb\t\t\nc\tCherry\tAcme\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("toy.inter"),
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\treview:token_seq\n\
         u1\tc\t4\t300\tlate\nu1\ta\t5\t100\tgreat pie\nu1\tb\t3\t200\t\n",
    )
    .unwrap();
    let ds = load(d.path(), &LoadOptions::default()).unwrap();
    assert_eq!(ds.report.format, "recbole");
    let u = &ds.users[0];
    let titles: Vec<&str> = u.events.iter().map(|e| ds.items[e.item as usize].title.as_str()).collect();
    assert_eq!(titles, ["Apple pie", "item b", "Cherry"]);
    assert_eq!(u.events[0].rating, Some(5.0));
    assert_eq!(u.events[0].review.as_deref(), Some("great pie"));
    assert_eq!(u.events[1].review, None);
    assert_eq!(ds.report.empty_titles, 1);
    assert_eq!(ds.items[0].brand.as_deref(), Some("Acme"));
}

#[test]
fn amazon_raw_gz_with_meta() {
    let d = tempfile::tempdir().unwrap();
    let meta = "{\"asin\": \"A1\", \"title\": \"Game &amp; Watch\", \"description\": [\"Classic\", \"handheld\"]}\n\
                {\"asin\": \"A2\", \"title\": \"Zelda\"}\n{\"asin\": \"A2\", \"title\": \"Zelda\"}\n";
    std::fs::write(d.path().join("meta_Games.json"), meta).unwrap();
    let reviews = "{\"reviewerID\": \"R1\", \"asin\": \"A2\", \"unixReviewTime\": 20, \"overall\": 4.0, \"reviewText\": \"fun\"}\n\
                   {\"reviewerID\": \"R1\", \"asin\": \"A1\", \"unixReviewTime\": 10, \"overall\": 5.0}\n\
                   {\"reviewerID\": \"R2\", \"asin\": \"NOMETA\", \"unixReviewTime\": 10}\n";
    let f = std::fs::File::create(d.path().join("Games.json.gz")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    gz.write_all(reviews.as_bytes()).unwrap();
    gz.finish().unwrap();
    let ds = load(d.path(), &LoadOptions { format: Format::Amazon, ..Default::default() }).unwrap();
    assert_eq!(ds.name, "Games");
    assert_eq!(ds.report.reviews_without_meta, 1);
    assert_eq!(ds.users.len(), 1);
    let u = &ds.users[0];
    assert_eq!(ds.items[u.events[0].item as usize].title, "Game & Watch");
    assert_eq!(ds.items[u.events[0].item as usize].description.as_deref(), Some("Classic handheld"));
    assert_eq!(u.events[1].review.as_deref(), Some("fun"));
    assert_eq!(u.events[1].rating, Some(4.0));
}

#[test]
fn timestamps_sort_with_stable_ties_and_ratings_kept() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("items.tsv"), "item_id\ttitle\n1\ta\n2\tb\n3\tc\n4\td\n").unwrap();
    std::fs::write(
        d.path().join("interactions.tsv"),
        "user_id\titem_id\ttimestamp\trating\n7\t3\t50\t1\n7\t1\t10\t5\n7\t4\t50\t2\n7\t2\t20\t\n",
    )
    .unwrap();
    let ds = load(d.path(), &LoadOptions::default()).unwrap();
    let seq: Vec<&str> = ds.users[0].events.iter().map(|e| ds.items[e.item as usize].id.as_str()).collect();
    assert_eq!(seq, ["1", "2", "3", "4"]);
    assert_eq!(ds.users[0].events[1].rating, None);
    let s = Split::leave_one_out(&ds);
    let u = &s.users[0];
    assert_eq!((u.train.len(), ds.items[u.valid as usize].id.as_str(), ds.items[u.test as usize].id.as_str()), (2, "3", "4"));
}

#[test]
fn dedup_and_kcore_on_fixture() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("items.tsv"), "item_id\ttitle\n1\ta\n2\tb\n3\tc\n").unwrap();
    // user 1: 1 2 1 2 3; user 2: 1 2; user 3: 3
    std::fs::write(
        d.path().join("interactions.tsv"),
        "user_id\titem_id\tposition\n1\t1\t0\n1\t2\t1\n1\t1\t2\n1\t2\t3\n1\t3\t4\n2\t1\t0\n2\t2\t1\n3\t3\t0\n",
    )
    .unwrap();
    let ds = load(d.path(), &LoadOptions { dedup: true, kcore: 2, ..Default::default() }).unwrap();
    assert_eq!(ds.report.duplicates_removed, 2);
    // after dedup: u1 = 1 2 3, u2 = 1 2, u3 = 3 → item 3 has 2, all users ≥2 except u3 (1) → u3 removed →
    // item 3 count 1 → removed → u1 = 1 2.
    assert_eq!(ds.users.len(), 2);
    assert_eq!(ds.items.len(), 2);
    assert_eq!(ds.n_interactions(), 4);
}

#[test]
fn bundled_luxury_beauty_matches_provenance() {
    let ds = load(&bundled(), &LoadOptions::default()).unwrap();
    assert_eq!((ds.users.len(), ds.items.len(), ds.n_interactions()), (9_930, 6_141, 63_953));
    assert_eq!(ds.report.empty_titles, 5);
    // the TSV's unescaped title wins over the JSONL's raw one; the JSONL adds descriptions
    let it = &ds.items[0];
    assert!(it.title.starts_with("Crabtree & Evelyn"), "{}", it.title);
    assert!(it.description.as_deref().unwrap().starts_with("After a long day"));
    let split = Split::leave_one_out(&ds);
    let st = stats(&ds, &split);
    assert_eq!(st.repeated_pairs, 9_789);
    assert_eq!(split.users.len() + split.dropped_short, 9_930);
    // A-LLMRec's filter keeps users with >= 4 *positive* reviews, so a few have fewer events in total
    assert!(split.dropped_short < 200, "{}", split.dropped_short);
    // same data → same fingerprint (candidate files depend on it)
    assert_eq!(split.fingerprint, Split::leave_one_out(&load(&bundled(), &LoadOptions::default()).unwrap()).fingerprint);
}

#[test]
fn dedup_5core_reproduces_the_shared_derived_file() {
    let ours = load(&bundled(), &LoadOptions { dedup: true, kcore: 5, ..Default::default() }).unwrap();
    let theirs = load(
        &bundled(),
        &LoadOptions { interactions_file: Some("interactions_dedup_5core.tsv".into()), ..Default::default() },
    )
    .unwrap();
    assert_eq!((ours.users.len(), ours.items.len(), ours.n_interactions()), (1_907, 910, 19_205));
    let seqs = |d: &pulse_data::Dataset| -> Vec<(String, Vec<String>)> {
        d.users
            .iter()
            .map(|u| (u.id.clone(), u.events.iter().map(|e| d.items[e.item as usize].id.clone()).collect()))
            .collect()
    };
    assert_eq!(seqs(&ours), seqs(&theirs));
}

#[test]
fn video_games_and_office_load_from_shared() {
    let vg = load(&shared("amazon2018-video-games"), &LoadOptions::default()).unwrap();
    assert_eq!((vg.users.len(), vg.items.len(), vg.n_interactions()), (50_546, 16_859, 452_989));
    assert_eq!(vg.report.empty_titles, 0);
    let of = load(&shared("amazon2014-office-products"), &LoadOptions::default()).unwrap();
    assert_eq!((of.users.len(), of.items.len(), of.n_interactions()), (4_905, 2_420, 53_258));
    assert!(of.items.iter().filter(|i| i.categories.is_some()).count() > 2_000);
}

#[test]
fn movielens_timestamps_and_ratings_from_shared() {
    // Read from ../shared only: MovieLens may not be redistributed.
    let ml = load(&shared("movielens-100k"), &LoadOptions::default()).unwrap();
    assert_eq!((ml.users.len(), ml.items.len(), ml.n_interactions()), (943, 1_682, 100_000));
    let u = &ml.users[0];
    assert!(u.events.windows(2).all(|w| w[0].order <= w[1].order));
    assert!(u.events.iter().all(|e| e.rating.is_some()));
}
