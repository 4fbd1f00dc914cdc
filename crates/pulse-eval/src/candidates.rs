//! Candidate lists for the `candN` protocols: for each split user, the test target plus `n − 1` items
//! the user never interacted with, drawn once with a seed and written to a file that every model is
//! then scored on. The file records the split's fingerprint and is refused for any other split.
use crate::{write_atomic, EvalError};
use pulse_data::{Dataset, Rng, Split};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

const MAGIC: &str = "# pulse-candidates v1";

#[derive(Clone, Debug, PartialEq)]
pub struct CandidateSet {
    pub n: usize,
    pub seed: u64,
    pub fingerprint: String,
    /// One list per split user (same order as `Split::users`); element 0 is the test target.
    pub lists: Vec<Vec<u32>>,
}

/// One candidate list: `target`, then `n − 1` distinct items drawn uniformly from `0..n_items` outside
/// `seen`; `None` when too few items are left outside `seen`.
pub(crate) fn draw_list(rng: &mut Rng, target: u32, seen: &HashSet<u32>, n_items: usize, n: usize) -> Option<Vec<u32>> {
    if n_items < seen.len() + n - 1 {
        return None;
    }
    let mut list = vec![target];
    let mut picked = HashSet::new();
    while list.len() < n {
        let j = rng.below(n_items as u64) as u32;
        if !seen.contains(&j) && picked.insert(j) {
            list.push(j);
        }
    }
    Some(list)
}

impl CandidateSet {
    /// Draws the lists. Negatives are uniform over the catalogue, excluding every item the user
    /// interacted with (train, validation and test).
    pub fn draw(ds: &Dataset, split: &Split, n: usize, seed: u64) -> Result<Self, EvalError> {
        if n < 2 {
            return Err(EvalError::Invalid(format!("a candidate list needs at least 2 items, got {n}")));
        }
        let mut rng = Rng::derive(seed, &format!("cand{n}"));
        let mut lists = Vec::with_capacity(split.users.len());
        for su in &split.users {
            let seen: HashSet<u32> = ds.users[su.user as usize].events.iter().map(|e| e.item).collect();
            let list = draw_list(&mut rng, su.test, &seen, split.n_items, n).ok_or_else(|| {
                EvalError::Invalid(format!("user {} has interacted with too much of the catalogue for {n} candidates", ds.users[su.user as usize].id))
            })?;
            lists.push(list);
        }
        Ok(CandidateSet { n, seed, fingerprint: split.fingerprint.clone(), lists })
    }

    pub fn save(&self, ds: &Dataset, split: &Split, path: &Path) -> Result<(), EvalError> {
        let mut s = format!(
            "{MAGIC}\tn={}\tseed={}\tsplit={}\tdataset={}\nuser_id\ttarget\tnegatives\n",
            self.n, self.seed, self.fingerprint, ds.name
        );
        for (su, list) in split.users.iter().zip(&self.lists) {
            let _ = write!(s, "{}\t{}\t", ds.users[su.user as usize].id, ds.items[list[0] as usize].id);
            let negs: Vec<&str> = list[1..].iter().map(|&i| ds.items[i as usize].id.as_str()).collect();
            s.push_str(&negs.join(","));
            s.push('\n');
        }
        write_atomic(path, s.as_bytes()).map_err(|e| EvalError::io(path, e))
    }

    /// Reads a file written by [`save`](Self::save), checking it belongs to this split.
    pub fn load(ds: &Dataset, split: &Split, path: &Path) -> Result<Self, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        let mut lines = text.lines();
        let head = lines.next().ok_or_else(|| EvalError::file(path, "file is empty"))?;
        let mut fields = head.split('\t');
        if fields.next() != Some(MAGIC) {
            return Err(EvalError::line(path, 1, format!("not a pulse candidate file (expected '{MAGIC}')")));
        }
        let kv: std::collections::HashMap<&str, &str> = fields.filter_map(|f| f.split_once('=')).collect();
        let get = |k: &str| kv.get(k).copied().ok_or_else(|| EvalError::line(path, 1, format!("missing {k}=")));
        let n: usize = get("n")?.parse().map_err(|_| EvalError::line(path, 1, "bad n="))?;
        let seed: u64 = get("seed")?.parse().map_err(|_| EvalError::line(path, 1, "bad seed="))?;
        let fp = get("split")?;
        if fp != split.fingerprint {
            return Err(EvalError::line(
                path,
                1,
                format!("drawn for split {fp}, but this data's split is {} (delete the file to redraw)", split.fingerprint),
            ));
        }
        let items = ds.item_index();
        let mut lists = Vec::with_capacity(split.users.len());
        let mut body = lines.enumerate().skip(1); // skip the column header (line 2)
        for su in &split.users {
            let (i, row) = body.next().ok_or_else(|| EvalError::file(path, "fewer rows than split users"))?;
            let ln = i + 2;
            let f: Vec<&str> = row.split('\t').collect();
            if f.len() != 3 {
                return Err(EvalError::line(path, ln, format!("expected 3 fields, found {}", f.len())));
            }
            if f[0] != ds.users[su.user as usize].id {
                return Err(EvalError::line(path, ln, format!("user {} out of order", f[0])));
            }
            let mut list = Vec::with_capacity(n);
            for id in std::iter::once(f[1]).chain(f[2].split(',')) {
                list.push(*items.get(id).ok_or_else(|| EvalError::line(path, ln, format!("unknown item {id}")))?);
            }
            if list[0] != su.test || list.len() != n {
                return Err(EvalError::line(path, ln, "target or list length does not match the split"));
            }
            lists.push(list);
        }
        if body.next().is_some() {
            return Err(EvalError::file(path, "more rows than split users"));
        }
        Ok(CandidateSet { n, seed, fingerprint: fp.to_string(), lists })
    }

    /// Loads `path` if it exists (it must match `n`, `seed` and the split), otherwise draws and saves.
    pub fn load_or_draw(ds: &Dataset, split: &Split, n: usize, seed: u64, path: &Path) -> Result<Self, EvalError> {
        if path.exists() {
            let c = Self::load(ds, split, path)?;
            if c.n != n || c.seed != seed {
                return Err(EvalError::file(
                    path,
                    format!("holds n={} seed={}, but n={n} seed={seed} was asked for", c.n, c.seed),
                ));
            }
            return Ok(c);
        }
        let c = Self::draw(ds, split, n, seed)?;
        c.save(ds, split, path)?;
        Ok(c)
    }
}
