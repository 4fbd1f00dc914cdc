//! RecBole atomic files: `<name>.inter` (`user_id:token item_id:token [rating:float]
//! [timestamp:float] [review:token_seq]`) and `<name>.item` (`item_id:token title:token_seq …`).
use crate::dataset::{Dataset, Event, Item, LoadReport, UserTable};
use crate::error::{DataError, Result};
use crate::lines::{read_lines, split_row, truncate};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Finds the single `*.inter` file in `dir` and its `*.item` sibling.
pub fn find(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut inter = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "inter") {
            inter = Some(p);
        }
    }
    let inter = inter?;
    let item = inter.with_extension("item");
    Some((inter, item))
}

/// Header of an atomic file: `name:type` per column; returns the bare names.
fn header(path: &Path, line: usize, s: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for col in s.split('\t') {
        let Some((name, ty)) = col.trim().split_once(':') else {
            return Err(DataError::line(
                path,
                line,
                format!("missing header: expected RecBole 'name:type' columns, found '{}'", truncate(s, 60)),
            ));
        };
        if !matches!(ty, "token" | "token_seq" | "float" | "float_seq") {
            return Err(DataError::line(path, line, format!("unknown RecBole field type '{ty}' in column '{name}'")));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

pub fn load(inter: &Path, item: &Path) -> Result<Dataset> {
    if !item.exists() {
        return Err(DataError::file(item, "missing: a RecBole dataset needs a .item file with titles"));
    }
    let lines = read_lines(item)?;
    let names = header(item, lines[0].0, &lines[0].1)?;
    let col = |n: &str| names.iter().position(|x| x == n);
    let Some(c_id) = col("item_id") else {
        return Err(DataError::line(item, 1, "missing header column item_id:token"));
    };
    let c_title = col("title").or_else(|| col("movie_title"));
    let (c_desc, c_brand, c_cat) = (col("description"), col("brand"), col("categories").or_else(|| col("category")));
    let mut items = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    for (ln, row) in &lines[1..] {
        if row.trim().is_empty() {
            continue;
        }
        let f = split_row(item, *ln, row, names.len())?;
        let id = f[c_id].trim();
        if id.is_empty() {
            return Err(DataError::line(item, *ln, "empty item_id"));
        }
        if index.contains_key(id) {
            return Err(DataError::line(item, *ln, format!("duplicate item_id {id}")));
        }
        let opt = |c: Option<usize>| c.map(|c| f[c].trim()).filter(|s| !s.is_empty()).map(str::to_string);
        let mut it = Item::new(id.to_string());
        it.title = opt(c_title).unwrap_or_default();
        it.description = opt(c_desc);
        it.brand = opt(c_brand);
        it.categories = opt(c_cat);
        index.insert(id.to_string(), items.len() as u32);
        items.push(it);
    }

    let lines = read_lines(inter)?;
    let names = header(inter, lines[0].0, &lines[0].1)?;
    let col = |n: &str| names.iter().position(|x| x == n);
    let (Some(c_user), Some(c_item)) = (col("user_id"), col("item_id")) else {
        return Err(DataError::line(inter, 1, "missing header columns user_id:token and item_id:token"));
    };
    let (c_ts, c_rating, c_review) = (col("timestamp"), col("rating"), col("review").or_else(|| col("review_text")));
    let mut table = UserTable::default();
    for (k, (ln, row)) in lines[1..].iter().enumerate() {
        if row.trim().is_empty() {
            continue;
        }
        let f = split_row(inter, *ln, row, names.len())?;
        let uid = f[c_user].trim();
        if uid.is_empty() {
            return Err(DataError::line(inter, *ln, "empty user_id"));
        }
        let iid = f[c_item].trim();
        let item = *index
            .get(iid)
            .ok_or_else(|| DataError::line(inter, *ln, format!("item_id {iid} is not in {}", item.display())))?;
        let num = |c: Option<usize>, what: &str| -> Result<Option<f64>> {
            match c.map(|c| f[c].trim()) {
                None | Some("") => Ok(None),
                Some(v) => v.parse::<f64>().ok().filter(|x| x.is_finite()).map(Some).ok_or_else(|| {
                    DataError::line(inter, *ln, format!("non-numeric {what} '{}'", truncate(v, 40)))
                }),
            }
        };
        let order = num(c_ts, "timestamp")?.map(|t| t as i64).unwrap_or(k as i64);
        let rating = num(c_rating, "rating")?.map(|r| r as f32);
        let review = c_review.map(|c| f[c].trim().to_string()).filter(|s| !s.is_empty());
        table.push(uid, Event { item, order, rating, review });
    }
    let users = table.finish().ok_or_else(|| DataError::file(inter, "no interactions after the header"))?;
    let name = inter.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut ds = Dataset {
        name,
        items,
        users,
        report: LoadReport {
            format: "recbole".into(),
            files: vec![inter.display().to_string(), item.display().to_string()],
            ..Default::default()
        },
    };
    ds.fill_missing_titles();
    ds.compact();
    Ok(ds)
}
