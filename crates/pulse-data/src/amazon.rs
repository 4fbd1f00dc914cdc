//! Raw Amazon Review Data (2018) JSON lines: a review file (`reviewerID, asin, unixReviewTime,
//! overall, reviewText`) and its `meta_*.json` (`asin, title, description, brand, category`), each
//! optionally gzipped. Reviews of items without a metadata record are dropped and counted (the real
//! 2018 dumps have some).
use crate::dataset::{Dataset, Event, Item, LoadReport, UserTable};
use crate::error::{DataError, Result};
use crate::lines::{html_unescape, read_lines};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Finds `<X>.json[.gz]` and `meta_<X>.json[.gz]` in `dir`.
pub fn find(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut reviews = None;
    let mut meta = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let n = p.file_name()?.to_string_lossy().into_owned();
        if n.ends_with(".json") || n.ends_with(".json.gz") {
            if n.starts_with("meta_") {
                meta = Some(p);
            } else {
                reviews = Some(p);
            }
        }
    }
    Some((reviews?, meta?))
}

fn obj<'a>(path: &Path, ln: usize, row: &'a str) -> Result<serde_json::Map<String, Value>> {
    let v: Value = serde_json::from_str(row).map_err(|e| {
        DataError::line(path, ln, format!("invalid JSON: {e} (the 2014 dumps' Python-literal lines are not JSON)"))
    })?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(DataError::line(path, ln, "expected a JSON object")),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    let s = match v? {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" "),
        _ => return None,
    };
    let s = html_unescape(s.trim());
    (!s.is_empty()).then_some(s)
}

fn req_str(m: &serde_json::Map<String, Value>, path: &Path, ln: usize, k: &str) -> Result<String> {
    match m.get(k) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(_) => Err(DataError::line(path, ln, format!("field {k} must be a non-empty string"))),
        None => Err(DataError::line(path, ln, format!("missing field {k}"))),
    }
}

pub fn load(reviews: &Path, meta: &Path) -> Result<Dataset> {
    let mut items = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    for (ln, row) in read_lines(meta)? {
        if row.trim().is_empty() {
            continue;
        }
        let m = obj(meta, ln, &row)?;
        let asin = req_str(&m, meta, ln, "asin")?;
        if index.contains_key(&asin) {
            continue; // the 2018 meta dumps contain exact duplicate records
        }
        let mut it = Item::new(asin.clone());
        it.asin = Some(asin.clone());
        it.title = text(m.get("title")).unwrap_or_default();
        it.description = text(m.get("description"));
        it.brand = text(m.get("brand"));
        it.categories = text(m.get("category")).or_else(|| text(m.get("categories")));
        index.insert(asin, items.len() as u32);
        items.push(it);
    }
    let mut table = UserTable::default();
    let mut without_meta = 0;
    for (ln, row) in read_lines(reviews)? {
        if row.trim().is_empty() {
            continue;
        }
        let m = obj(reviews, ln, &row)?;
        let uid = req_str(&m, reviews, ln, "reviewerID")?;
        let asin = req_str(&m, reviews, ln, "asin")?;
        let order = match m.get("unixReviewTime") {
            Some(Value::Number(n)) if n.is_i64() => n.as_i64().unwrap(),
            Some(other) => {
                return Err(DataError::line(reviews, ln, format!("non-numeric unixReviewTime {other}")))
            }
            None => return Err(DataError::line(reviews, ln, "missing field unixReviewTime")),
        };
        let rating = match m.get("overall") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64().map(|x| x as f32),
            Some(other) => return Err(DataError::line(reviews, ln, format!("non-numeric overall {other}"))),
        };
        let Some(&item) = index.get(&asin) else {
            without_meta += 1;
            continue;
        };
        let review = text(m.get("reviewText"));
        table.push(&uid, Event { item, order, rating, review });
    }
    let users = table.finish().ok_or_else(|| DataError::file(reviews, "no reviews with a matching metadata record"))?;
    let name = reviews
        .file_name()
        .map(|s| s.to_string_lossy().trim_end_matches(".gz").trim_end_matches(".json").to_string())
        .unwrap_or_default();
    let mut ds = Dataset {
        name,
        items,
        users,
        report: LoadReport {
            format: "amazon".into(),
            files: vec![reviews.display().to_string(), meta.display().to_string()],
            reviews_without_meta: without_meta,
            ..Default::default()
        },
    };
    ds.fill_missing_titles();
    ds.compact();
    Ok(ds)
}
