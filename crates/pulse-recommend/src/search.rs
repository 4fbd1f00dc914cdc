//! The catalogue: ids, titles, title matching (case- and punctuation-insensitive, with suggestions for
//! near misses) and title search.
use crate::engine::CatalogueItem;
use crate::{RecError, Result};
use std::collections::{HashMap, HashSet};

/// Lower-case alphanumeric words joined by single spaces (HTML entities such as `&amp;` count as punctuation).
pub fn normalise(s: &str) -> String {
    let s = s.replace("&amp;", "&").replace("&quot;", "\"").replace("&#39;", "'");
    s.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

pub struct Catalogue {
    pub items: Vec<CatalogueItem>,
    by_id: HashMap<String, u32>,
    norm: Vec<String>,
    by_norm: HashMap<String, u32>,
}

impl Catalogue {
    pub fn new(items: Vec<CatalogueItem>) -> Catalogue {
        let by_id = items.iter().enumerate().map(|(i, it)| (it.id.clone(), i as u32)).collect();
        let norm: Vec<String> = items.iter().map(|it| normalise(&it.title)).collect();
        let mut by_norm = HashMap::new();
        for (i, t) in norm.iter().enumerate() {
            by_norm.entry(t.clone()).or_insert(i as u32);
        }
        Catalogue { items, by_id, norm, by_norm }
    }

    pub fn by_id(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// The item whose title is `title` up to case and punctuation (the first such item when several
    /// are), or else the one item whose title starts with it ("Drying Lotion" for "Drying Lotion, 1 fl.
    /// oz."); otherwise the near misses.
    pub fn match_title(&self, title: &str) -> std::result::Result<u32, Vec<u32>> {
        let n = normalise(title);
        if let Some(&i) = self.by_norm.get(&n) {
            return Ok(i);
        }
        if !n.is_empty() {
            let p = format!("{n} ");
            let mut starts = self.norm.iter().enumerate().filter(|(_, t)| t.starts_with(&p));
            if let (Some((i, _)), None) = (starts.next(), starts.next()) {
                return Ok(i as u32);
            }
        }
        Err(self.suggest(&n, 3))
    }

    /// Items for `;`-separated titles; unknown ones named, with near misses suggested.
    pub fn match_titles(&self, titles: &str) -> Result<Vec<u32>> {
        let mut out = vec![];
        let mut errs = vec![];
        for t in titles.split(';').map(str::trim).filter(|t| !t.is_empty()) {
            match self.match_title(t) {
                Ok(i) => out.push(i),
                Err(s) if s.is_empty() => errs.push(format!("no item titled {t:?}")),
                Err(s) => errs.push(format!(
                    "no item titled {t:?} (did you mean {}?)",
                    s.iter().map(|&i| format!("{:?}", self.items[i as usize].title)).collect::<Vec<_>>().join(" or ")
                )),
            }
        }
        if errs.is_empty() {
            Ok(out)
        } else {
            Err(RecError::Unknown(errs.join("; ")))
        }
    }

    /// Up to `k` items whose titles share the most words with `norm` (Jaccard), best first.
    fn suggest(&self, norm: &str, k: usize) -> Vec<u32> {
        let q: HashSet<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
        if q.is_empty() {
            return vec![];
        }
        let mut best: Vec<(f32, u32)> = self
            .norm
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let w: HashSet<&str> = t.split(' ').collect();
                let inter = q.intersection(&w).count();
                (inter > 0).then(|| (inter as f32 / (q.len() + w.len() - inter) as f32, i as u32))
            })
            .collect();
        best.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        best.into_iter().take(k).map(|(_, i)| i).collect()
    }

    /// Title search: items whose normalised title contains every word of `q`, titles starting with the
    /// query first, then shorter titles; at most `limit`.
    pub fn search(&self, q: &str, limit: usize) -> Vec<u32> {
        let nq = normalise(q);
        let words: Vec<&str> = nq.split(' ').filter(|w| !w.is_empty()).collect();
        if words.is_empty() {
            return vec![];
        }
        let mut hits: Vec<(bool, usize, u32)> = self
            .norm
            .iter()
            .enumerate()
            .filter(|(_, t)| words.iter().all(|w| t.contains(w)))
            .map(|(i, t)| (!t.starts_with(&nq), t.len(), i as u32))
            .collect();
        hits.sort_unstable();
        hits.into_iter().take(limit).map(|h| h.2).collect()
    }
}
