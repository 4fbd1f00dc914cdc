//! Every kind of bad input gets a one-line error naming file:line (or the file), never a panic.
use pulse_data::{load, DataError, LoadOptions};
use std::path::Path;

const ITEMS: &str = "item_id\tasin\ttitle\n1\tA1\tRed lipstick\n2\tA2\tBlue mascara\n3\tA3\tFace cream\n";
const INTER: &str = "user_id\titem_id\tposition\n1\t1\t0\n1\t2\t1\n1\t3\t2\n";

fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(d.path().join(name), body).unwrap();
    }
    d
}

fn err(files: &[(&str, &[u8])]) -> String {
    let d = dir_with(files);
    let e = load(d.path(), &LoadOptions::default()).expect_err("bad input must fail");
    let s = e.to_string();
    assert!(!s.contains('\n'), "error must be one line: {s}");
    // strip the temp dir so assertions read naturally
    s.replace(&format!("{}/", d.path().display()), "")
}

#[test]
fn good_minimal_folder_loads() {
    let d = dir_with(&[("items.tsv", ITEMS.as_bytes()), ("interactions.tsv", INTER.as_bytes())]);
    let ds = load(d.path(), &LoadOptions::default()).unwrap();
    assert_eq!((ds.users.len(), ds.items.len(), ds.n_interactions()), (1, 3, 3));
    assert_eq!(ds.items[1].title, "Blue mascara");
}

#[test]
fn wrong_column_count() {
    let inter = "user_id\titem_id\tposition\n1\t1\t0\n1\t2\n";
    assert_eq!(
        err(&[("items.tsv", ITEMS.as_bytes()), ("interactions.tsv", inter.as_bytes())]),
        "interactions.tsv:3: expected 3 tab-separated fields (as in the header), found 2"
    );
}

#[test]
fn malformed_row_in_items() {
    let items = "item_id\tasin\ttitle\n1\tA1\n";
    assert_eq!(
        err(&[("items.tsv", items.as_bytes()), ("interactions.tsv", INTER.as_bytes())]),
        "items.tsv:2: expected 3 tab-separated fields (as in the header), found 2"
    );
}

#[test]
fn non_numeric_ids() {
    let inter = "user_id\titem_id\tposition\n1\t1\t0\nbob\t2\t1\n";
    assert_eq!(
        err(&[("items.tsv", ITEMS.as_bytes()), ("interactions.tsv", inter.as_bytes())]),
        "interactions.tsv:3: non-numeric user_id 'bob'"
    );
    let inter = "user_id\titem_id\tposition\n1\tx7\t0\n";
    assert_eq!(
        err(&[("items.tsv", ITEMS.as_bytes()), ("interactions.tsv", inter.as_bytes())]),
        "interactions.tsv:2: non-numeric item_id 'x7'"
    );
    let items = "item_id\tasin\ttitle\n1\tA1\tok\nB2\tA2\tbad\n";
    assert_eq!(
        err(&[("items.tsv", items.as_bytes()), ("interactions.tsv", INTER.as_bytes())]),
        "items.tsv:3: non-numeric item_id 'B2'"
    );
    let inter = "user_id\titem_id\tposition\n1\t1\tfirst\n";
    assert_eq!(
        err(&[("items.tsv", ITEMS.as_bytes()), ("interactions.tsv", inter.as_bytes())]),
        "interactions.tsv:2: non-numeric position 'first'"
    );
}

#[test]
fn unknown_item() {
    let inter = "user_id\titem_id\tposition\n1\t1\t0\n1\t99\t1\n";
    assert_eq!(
        err(&[("items.tsv", ITEMS.as_bytes()), ("interactions.tsv", inter.as_bytes())]),
        "interactions.tsv:3: item_id 99 is not in the item file"
    );
}

#[test]
fn bad_utf8() {
    let mut inter = b"user_id\titem_id\tposition\n1\t1\t0\n".to_vec();
    inter.extend_from_slice(b"1\t2\t\xff\xfe\n");
    assert_eq!(
        err(&[("items.tsv", ITEMS.as_bytes()), ("interactions.tsv", &inter)]),
        "interactions.tsv:3: invalid UTF-8 at byte 4 of the line"
    );
    let items = b"item_id\tasin\ttitle\n1\tA1\tCr\xe8me\n";
    assert_eq!(
        err(&[("items.tsv", items), ("interactions.tsv", INTER.as_bytes())]),
        "items.tsv:2: invalid UTF-8 at byte 7 of the line"
    );
}

#[test]
fn empty_files() {
    assert_eq!(err(&[("items.tsv", ITEMS.as_bytes()), ("interactions.tsv", b"")]), "interactions.tsv: file is empty");
    assert_eq!(err(&[("items.tsv", b"\n\n"), ("interactions.tsv", INTER.as_bytes())]), "items.tsv: file is empty");
    assert_eq!(
        err(&[("items.tsv", ITEMS.as_bytes()), ("interactions.tsv", b"user_id\titem_id\tposition\n")]),
        "interactions.tsv: no interactions after the header"
    );
}

#[test]
fn missing_header() {
    let inter = "1\t1\t0\n1\t2\t1\n";
    assert_eq!(
        err(&[("items.tsv", ITEMS.as_bytes()), ("interactions.tsv", inter.as_bytes())]),
        "interactions.tsv:1: missing header: expected a first row naming columns user_id, item_id and position or timestamp, found '1\t1\t0'"
    );
    let items = "1\tA1\tRed lipstick\n";
    assert!(err(&[("items.tsv", items.as_bytes()), ("interactions.tsv", INTER.as_bytes())])
        .starts_with("items.tsv:1: missing header"));
}

#[test]
fn bad_jsonl_and_duplicates() {
    let jsonl = "{\"item_id\": 1, \"title\": \"a\"}\n{\"item_id\": 2, \"title\": \n";
    let e = err(&[("items.jsonl", jsonl.as_bytes()), ("interactions.tsv", INTER.as_bytes())]);
    assert!(e.starts_with("items.jsonl:2: invalid JSON"), "{e}");
    let items = "item_id\tasin\ttitle\n1\tA1\ta\n1\tA1\tb\n";
    assert_eq!(
        err(&[("items.tsv", items.as_bytes()), ("interactions.tsv", INTER.as_bytes())]),
        "items.tsv:3: duplicate item_id 1"
    );
}

#[test]
fn bad_rating() {
    let inter = "user_id\titem_id\ttimestamp\trating\n1\t1\t100\t5\n1\t2\t50\tgood\n";
    assert_eq!(
        err(&[("items.tsv", ITEMS.as_bytes()), ("interactions.tsv", inter.as_bytes())]),
        "interactions.tsv:3: non-numeric rating 'good'"
    );
}

#[test]
fn missing_files_and_dirs() {
    let e = err(&[("items.tsv", ITEMS.as_bytes())]);
    assert!(e.contains("no dataset found"), "{e}");
    let e = err(&[("interactions.tsv", INTER.as_bytes())]);
    assert!(e.ends_with("no item file: expected items.tsv or items.jsonl"), "{e}");
    let e = load(Path::new("/nonexistent/pulse"), &LoadOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "/nonexistent/pulse: not a directory (expected a dataset folder)");
    assert!(matches!(e, DataError::File { .. }));
}

#[test]
fn recbole_bad_input() {
    let item = "item_id:token\ttitle:token_seq\na\tApple\nb\tBanana\n";
    let inter = "user_id:token\titem_id:token\ttimestamp:float\nu1\ta\t1\nu1\tz\t2\n";
    assert_eq!(
        err(&[("x.item", item.as_bytes()), ("x.inter", inter.as_bytes())]),
        "x.inter:3: item_id z is not in x.item"
    );
    let inter = "user_id\titem_id\nu1\ta\n";
    assert!(err(&[("x.item", item.as_bytes()), ("x.inter", inter.as_bytes())]).starts_with("x.inter:1: missing header"));
    let inter = "user_id:token\titem_id:token\ttimestamp:float\nu1\ta\tnoon\n";
    assert_eq!(
        err(&[("x.item", item.as_bytes()), ("x.inter", inter.as_bytes())]),
        "x.inter:2: non-numeric timestamp 'noon'"
    );
}

#[test]
fn amazon_bad_input() {
    let meta = "{\"asin\": \"A1\", \"title\": \"Game &amp; Watch\"}\n";
    let rev = "{\"reviewerID\": \"R1\", \"asin\": \"A1\", \"unixReviewTime\": 5, \"overall\": 5.0}\n{\"reviewerID\": \"R1\", \"asin\": \"A1\", \"unixReviewTime\": \"x\"}\n";
    assert_eq!(
        err(&[("meta_Games.json", meta.as_bytes()), ("Games.json", rev.as_bytes())]),
        "Games.json:2: non-numeric unixReviewTime \"x\""
    );
    let rev = "{\"asin\": \"A1\", \"unixReviewTime\": 5}\n";
    assert_eq!(
        err(&[("meta_Games.json", meta.as_bytes()), ("Games.json", rev.as_bytes())]),
        "Games.json:1: missing field reviewerID"
    );
}
