//! The folder format of `../shared/data`: `interactions.tsv` (`user_id item_id position|timestamp
//! [rating] [review]`) plus `items.tsv` and/or `items.jsonl` (`item_id`, `title`, optional `asin`,
//! `description`, `brand`, `categories`).
use crate::dataset::{Dataset, Event, Item, LoadReport, User, UserTable};
use crate::error::{DataError, Result};
use crate::lines::{parse_id, read_lines, split_row, truncate, Header};
use std::collections::HashMap;
use std::path::Path;

pub const INTERACTIONS: &str = "interactions.tsv";

pub fn load(dir: &Path, interactions_file: Option<&str>) -> Result<Dataset> {
    let tsv = dir.join("items.tsv");
    let jsonl = dir.join("items.jsonl");
    let mut files = Vec::new();
    let mut items: Vec<Item> = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    if tsv.exists() {
        read_items_tsv(&tsv, &mut items, &mut index)?;
        files.push(tsv.display().to_string());
    }
    if jsonl.exists() {
        read_items_jsonl(&jsonl, &mut items, &mut index, !tsv.exists())?;
        files.push(jsonl.display().to_string());
    }
    if files.is_empty() {
        return Err(DataError::file(dir, "no item file: expected items.tsv or items.jsonl"));
    }
    let inter = dir.join(interactions_file.unwrap_or(INTERACTIONS));
    let users = read_interactions(&inter, &index)?;
    files.insert(0, inter.display().to_string());
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let mut ds = Dataset {
        name,
        items,
        users,
        report: LoadReport { format: "folder".into(), files, ..Default::default() },
    };
    ds.fill_missing_titles();
    ds.compact();
    Ok(ds)
}

fn read_items_tsv(path: &Path, items: &mut Vec<Item>, index: &mut HashMap<String, u32>) -> Result<()> {
    let lines = read_lines(path)?;
    let (hline, header) = &lines[0];
    let h = Header::parse(header);
    if h.find("item_id") != Some(0) || h.find("title").is_none() {
        return Err(DataError::line(
            path,
            *hline,
            format!(
                "missing header: expected a first row naming columns item_id and title, found '{}'",
                truncate(header, 60)
            ),
        ));
    }
    let col = |n: &str| h.find(n);
    let (c_title, c_asin, c_desc, c_brand, c_cat) =
        (col("title").unwrap(), col("asin"), col("description"), col("brand"), col("categories"));
    for (ln, row) in &lines[1..] {
        if row.trim().is_empty() {
            continue;
        }
        let f = split_row(path, *ln, row, h.names.len())?;
        let id = parse_id(path, *ln, "item_id", f[0])?.to_string();
        if index.contains_key(&id) {
            return Err(DataError::line(path, *ln, format!("duplicate item_id {id}")));
        }
        let opt = |c: Option<usize>| c.map(|c| f[c].trim()).filter(|s| !s.is_empty()).map(str::to_string);
        let mut it = Item::new(id.clone());
        it.title = f[c_title].trim().to_string();
        it.asin = opt(c_asin);
        it.description = opt(c_desc);
        it.brand = opt(c_brand);
        it.categories = opt(c_cat);
        index.insert(id, items.len() as u32);
        items.push(it);
    }
    Ok(())
}

/// Reads `items.jsonl`. With `primary`, it defines the catalogue; otherwise it only adds fields
/// (description, brand, categories, and a title where the TSV had none) to items already known.
fn read_items_jsonl(path: &Path, items: &mut Vec<Item>, index: &mut HashMap<String, u32>, primary: bool) -> Result<()> {
    let lines = read_lines(path)?;
    for (ln, row) in &lines {
        if row.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(row)
            .map_err(|e| DataError::line(path, *ln, format!("invalid JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| DataError::line(path, *ln, "expected a JSON object"))?;
        let id = match obj.get("item_id") {
            Some(serde_json::Value::Number(n)) if n.is_u64() => n.to_string(),
            Some(serde_json::Value::String(s)) => parse_id(path, *ln, "item_id", s)?.to_string(),
            Some(other) => return Err(DataError::line(path, *ln, format!("non-numeric item_id {other}"))),
            None => return Err(DataError::line(path, *ln, "missing field item_id")),
        };
        let text = |k: &str| -> Result<Option<String>> {
            match obj.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => {
                    Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty()))
                }
                Some(serde_json::Value::Array(a)) => Ok(Some(
                    a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" ").trim().to_string(),
                )
                .filter(|s| !s.is_empty())),
                Some(other) => Err(DataError::line(path, *ln, format!("field {k} must be a string, found {other}"))),
            }
        };
        let title = text("title")?.map(|t| crate::lines::html_unescape(&t));
        let (desc, brand, cats, asin) = (text("description")?, text("brand")?, text("categories")?, text("asin")?);
        let slot = match index.get(&id) {
            Some(&i) => {
                if primary {
                    return Err(DataError::line(path, *ln, format!("duplicate item_id {id}")));
                }
                i as usize
            }
            None if primary => {
                index.insert(id.clone(), items.len() as u32);
                items.push(Item::new(id.clone()));
                items.len() - 1
            }
            None => return Err(DataError::line(path, *ln, format!("item_id {id} is not in items.tsv"))),
        };
        let it = &mut items[slot];
        if it.title.trim().is_empty() {
            it.title = title.unwrap_or_default();
        }
        it.description = it.description.take().or(desc);
        it.brand = it.brand.take().or(brand);
        it.categories = it.categories.take().or(cats);
        it.asin = it.asin.take().or(asin);
    }
    Ok(())
}

fn read_interactions(path: &Path, index: &HashMap<String, u32>) -> Result<Vec<User>> {
    let lines = read_lines(path)?;
    let (hline, header) = &lines[0];
    let h = Header::parse(header);
    let order_col = h.find("position").or_else(|| h.find("timestamp"));
    let (Some(c_user), Some(c_item), Some(c_order)) = (h.find("user_id"), h.find("item_id"), order_col) else {
        return Err(DataError::line(
            path,
            *hline,
            format!(
                "missing header: expected a first row naming columns user_id, item_id and position or timestamp, found '{}'",
                truncate(header, 60)
            ),
        ));
    };
    let order_name = h.names[c_order].clone();
    let c_rating = h.find("rating");
    let c_review = h.find("review").or_else(|| h.find("review_text"));
    let mut table = UserTable::default();
    for (ln, row) in &lines[1..] {
        if row.trim().is_empty() {
            continue;
        }
        let f = split_row(path, *ln, row, h.names.len())?;
        let uid = parse_id(path, *ln, "user_id", f[c_user])?;
        let iid = parse_id(path, *ln, "item_id", f[c_item])?;
        let order: i64 = f[c_order].trim().parse().map_err(|_| {
            DataError::line(path, *ln, format!("non-numeric {order_name} '{}'", truncate(f[c_order], 40)))
        })?;
        let item = *index
            .get(&iid.to_string())
            .ok_or_else(|| DataError::line(path, *ln, format!("item_id {iid} is not in the item file")))?;
        let rating = match c_rating.map(|c| f[c].trim()) {
            None | Some("") => None,
            Some(r) => Some(r.parse::<f32>().ok().filter(|x| x.is_finite()).ok_or_else(|| {
                DataError::line(path, *ln, format!("non-numeric rating '{}'", truncate(r, 40)))
            })?),
        };
        let review = c_review.map(|c| f[c].trim().to_string()).filter(|s| !s.is_empty());
        table.push(&uid.to_string(), Event { item, order, rating, review });
    }
    table.finish().ok_or_else(|| DataError::file(path, "no interactions after the header"))
}
