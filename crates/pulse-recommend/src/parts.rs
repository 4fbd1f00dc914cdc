//! The hybrid's decomposable parts, as served: each part's score for an item is a sum over the user's
//! last `last` history items (each older one weighted `decay` times the next newer one), so
//! [`Part::contributions`] gives each history item's exact share. Their scores equal
//! pulse-baselines' `Content`, `ItemKnn`, `Lexical` and `Pop` (pulse-pipeline's bundle tests check it).
use std::collections::HashMap;

/// (position in the history, weight) of the profile items: the last `last`, newest weight 1.
pub fn profile(history: &[u32], last: usize, decay: f32) -> Vec<(usize, f32)> {
    let mut w = 1.0f32;
    let mut out = Vec::with_capacity(last.min(history.len()));
    for pos in (0..history.len()).rev().take(last) {
        out.push((pos, w));
        w *= decay;
    }
    out
}

/// Content similarity: cosine between the item's text embedding and the weighted sum of the profile
/// items' (unit) embeddings.
#[derive(Clone, Debug)]
pub struct Content {
    pub dim: usize,
    /// n × dim, unit rows.
    pub rows: Vec<f32>,
    pub last: usize,
    pub decay: f32,
}

impl Content {
    pub fn new(text: &[f32], dim: usize, last: usize, decay: f32) -> Content {
        let mut rows = text.to_vec();
        for r in rows.chunks_exact_mut(dim) {
            let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
            if n > 0.0 {
                r.iter_mut().for_each(|x| *x /= n);
            }
        }
        Content { dim, rows, last, decay }
    }
    fn row(&self, i: u32) -> &[f32] {
        &self.rows[i as usize * self.dim..(i as usize + 1) * self.dim]
    }
    fn profile_vec(&self, history: &[u32]) -> (Vec<f32>, f32) {
        let mut p = vec![0f32; self.dim];
        for (pos, w) in profile(history, self.last, self.decay) {
            for (a, &x) in p.iter_mut().zip(self.row(history[pos])) {
                *a += w * x;
            }
        }
        let n = p.iter().map(|x| x * x).sum::<f32>().sqrt();
        (p, n)
    }
    pub fn scores(&self, history: &[u32]) -> Vec<f32> {
        self.scores_and_norm(history).0
    }
    /// [`Content::scores`] and the profile's norm (what the contributions divide by).
    pub fn scores_and_norm(&self, history: &[u32]) -> (Vec<f32>, f32) {
        let (p, n) = self.profile_vec(history);
        let inv = if n > 0.0 { 1.0 / n } else { 0.0 };
        (self.rows.chunks_exact(self.dim).map(|r| crate::simd::dot(r, &p) * inv).collect(), n)
    }
    /// Each profile item's share of `item`'s score (they sum to it).
    pub fn contributions(&self, history: &[u32], item: u32) -> Vec<(usize, f32)> {
        self.contributions_given(history, item, self.profile_norm(history))
    }
    /// The profile's norm (what a score is divided by).
    pub fn profile_norm(&self, history: &[u32]) -> f32 {
        self.profile_vec(history).1
    }
    /// [`Content::contributions`] with the profile's norm already known.
    pub fn contributions_given(&self, history: &[u32], item: u32, norm: f32) -> Vec<(usize, f32)> {
        let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        let e = self.row(item);
        profile(history, self.last, self.decay).into_iter().map(|(pos, w)| (pos, w * inv * crate::simd::dot(self.row(history[pos]), e))).collect()
    }
    /// Cosine of two items' texts.
    pub fn similarity(&self, a: u32, b: u32) -> f32 {
        crate::simd::dot(self.row(a), self.row(b))
    }
}

/// Item-KNN: co-occurrence within a window of the training sequences, similarity c(i,j)/√(n(i)·n(j)).
#[derive(Clone, Debug)]
pub struct Knn {
    pub offsets: Vec<u32>,
    pub cols: Vec<u32>,
    pub counts: Vec<f32>,
    pub occ: Vec<f32>,
    pub last: usize,
    pub decay: f32,
    /// Per stored pair, its similarity c(i,j)/√(n(i)·n(j)) (computed once, as `similarity` computes it).
    sims: Vec<f32>,
}

impl Knn {
    /// From stored co-occurrence lists (CSR by item, columns sorted) and occurrence counts.
    pub fn new(offsets: Vec<u32>, cols: Vec<u32>, counts: Vec<f32>, occ: Vec<f32>, last: usize, decay: f32) -> Knn {
        let mut sims = Vec::with_capacity(cols.len());
        for i in 0..occ.len() {
            let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
            for (&j, &c) in cols[a..b].iter().zip(&counts[a..b]) {
                sims.push((c as f64 / (occ[i] as f64 * occ[j as usize] as f64).sqrt()) as f32);
            }
        }
        Knn { offsets, cols, counts, occ, last, decay, sims }
    }
    /// Co-occurrence counts of `sequences` (each user's training items) within `window` positions.
    pub fn fit(sequences: &[&[u32]], n_items: usize, window: usize, last: usize, decay: f32) -> Knn {
        let mut occ = vec![0f64; n_items];
        let mut co: Vec<HashMap<u32, f64>> = vec![HashMap::new(); n_items];
        for s in sequences {
            for (a, &i) in s.iter().enumerate() {
                occ[i as usize] += 1.0;
                for &j in s.iter().skip(a + 1).take(window) {
                    if i != j {
                        *co[i as usize].entry(j).or_default() += 1.0;
                        *co[j as usize].entry(i).or_default() += 1.0;
                    }
                }
            }
        }
        let mut offsets = vec![0u32];
        let (mut cols, mut counts) = (vec![], vec![]);
        for m in co {
            let mut v: Vec<(u32, f64)> = m.into_iter().collect();
            v.sort_unstable_by_key(|&(j, _)| j);
            for (j, c) in v {
                cols.push(j);
                counts.push(c as f32);
            }
            offsets.push(cols.len() as u32);
        }
        Knn::new(offsets, cols, counts, occ.into_iter().map(|x| x as f32).collect(), last, decay)
    }
    /// The arrays of a bundle's `neighbours.safetensors`: these lists and the catalogue's popularity.
    pub fn bundle_arrays(&self, pop: Vec<f32>) -> Vec<(&'static str, crate::bundle::Array)> {
        use crate::bundle::Array;
        let (n, nnz) = (self.occ.len(), self.cols.len());
        vec![
            ("offsets", Array::u32(&[n + 1], self.offsets.clone())),
            ("cols", Array::u32(&[nnz], self.cols.clone())),
            ("counts", Array::f32(&[nnz], self.counts.clone())),
            ("occ", Array::f32(&[n], self.occ.clone())),
            ("pop", Array::f32(&[n], pop)),
        ]
    }
    fn row(&self, i: u32) -> (&[u32], &[f32]) {
        let (a, b) = (self.offsets[i as usize] as usize, self.offsets[i as usize + 1] as usize);
        (&self.cols[a..b], &self.counts[a..b])
    }
    /// How often `a` and `b` were bought within the window of each other.
    pub fn count(&self, a: u32, b: u32) -> f32 {
        let (c, n) = self.row(a);
        c.binary_search(&b).map_or(0.0, |p| n[p])
    }
    pub fn similarity(&self, a: u32, b: u32) -> f32 {
        let c = self.count(a, b);
        if c == 0.0 {
            0.0
        } else {
            // as pulse-baselines computes it: in f64, then rounded
            (c as f64 / (self.occ[a as usize] as f64 * self.occ[b as usize] as f64).sqrt()) as f32
        }
    }
    pub fn scores(&self, history: &[u32]) -> Vec<f32> {
        let mut row = vec![0f32; self.occ.len()];
        for (pos, w) in profile(history, self.last, self.decay) {
            let i = history[pos] as usize;
            let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
            for (&j, &s) in self.cols[a..b].iter().zip(&self.sims[a..b]) {
                row[j as usize] += w * s;
            }
        }
        row
    }
    pub fn contributions(&self, history: &[u32], item: u32) -> Vec<(usize, f32)> {
        profile(history, self.last, self.decay).into_iter().map(|(pos, w)| (pos, w * self.similarity(history[pos], item))).collect()
    }
}

/// TF-IDF cosine of titles (words and adjacent word pairs), pulse-baselines' `Lexical` rebuilt from the
/// catalogue's titles at load (deterministic, well under a second).
#[derive(Clone, Debug)]
pub struct Lexical {
    pub terms: Vec<String>,
    items: Vec<Vec<(u32, f32)>>,
    postings: Vec<Vec<(u32, f32)>>,
    pub last: usize,
    pub decay: f32,
}

pub fn terms(s: &str) -> Vec<String> {
    let lower = s.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let mut t: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    t.extend(words.windows(2).map(|p| format!("{} {}", p[0], p[1])));
    t
}

impl Lexical {
    pub fn new(titles: &[&str], last: usize, decay: f32) -> Lexical {
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut names: Vec<String> = vec![];
        let mut counts: Vec<Vec<(u32, u32)>> = Vec::with_capacity(titles.len());
        let mut df: Vec<u32> = vec![];
        for t in titles {
            let mut c: HashMap<u32, u32> = HashMap::new();
            for w in terms(t) {
                let n = vocab.len() as u32;
                let id = *vocab.entry(w.clone()).or_insert(n);
                if id == n {
                    df.push(0);
                    names.push(w);
                }
                *c.entry(id).or_default() += 1;
            }
            let mut c: Vec<(u32, u32)> = c.into_iter().collect();
            c.sort_unstable();
            for &(id, _) in &c {
                df[id as usize] += 1;
            }
            counts.push(c);
        }
        let n = titles.len() as f32;
        let idf: Vec<f32> = df.iter().map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0).collect();
        let mut postings = vec![vec![]; df.len()];
        let mut items = Vec::with_capacity(counts.len());
        for (i, c) in counts.into_iter().enumerate() {
            let mut v: Vec<(u32, f32)> = c.into_iter().map(|(id, k)| (id, (1.0 + (k as f32).ln()) * idf[id as usize])).collect();
            let norm = v.iter().map(|&(_, x)| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|(_, x)| *x /= norm);
            }
            for &(id, x) in &v {
                postings[id as usize].push((i as u32, x));
            }
            items.push(v);
        }
        Lexical { terms: names, items, postings, last, decay }
    }
    /// The weighted profile as (term, weight) sorted by term (a fixed order, so sums are deterministic),
    /// and its norm.
    fn profile_map(&self, history: &[u32]) -> (Vec<(u32, f32)>, f32) {
        let mut p: HashMap<u32, f32> = HashMap::new();
        for (pos, w) in profile(history, self.last, self.decay) {
            if let Some(v) = self.items.get(history[pos] as usize) {
                for &(id, x) in v {
                    *p.entry(id).or_default() += w * x;
                }
            }
        }
        let mut p: Vec<(u32, f32)> = p.into_iter().collect();
        p.sort_unstable_by_key(|t| t.0);
        let norm = p.iter().map(|t| t.1 * t.1).sum::<f32>().sqrt();
        (p, norm)
    }
    pub fn scores(&self, history: &[u32]) -> Vec<f32> {
        self.scores_and_norm(history).0
    }
    /// [`Lexical::scores`] and the profile's norm (what the contributions divide by).
    pub fn scores_and_norm(&self, history: &[u32]) -> (Vec<f32>, f32) {
        let (p, norm) = self.profile_map(history);
        let mut s = vec![0f32; self.items.len()];
        if norm > 0.0 {
            for &(id, x) in &p {
                let x = x / norm;
                for &(j, y) in &self.postings[id as usize] {
                    s[j as usize] += x * y;
                }
            }
        }
        (s, norm)
    }
    fn dot(&self, a: u32, b: u32) -> f32 {
        let (va, vb) = (&self.items[a as usize], &self.items[b as usize]);
        let (mut i, mut j, mut s) = (0, 0, 0.0);
        while i < va.len() && j < vb.len() {
            match va[i].0.cmp(&vb[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    s += va[i].1 * vb[j].1;
                    i += 1;
                    j += 1;
                }
            }
        }
        s
    }
    pub fn contributions(&self, history: &[u32], item: u32) -> Vec<(usize, f32)> {
        self.contributions_given(history, item, self.profile_map(history).1)
    }
    /// The profile's norm (what a score is divided by).
    pub fn profile_norm(&self, history: &[u32]) -> f32 {
        self.profile_map(history).1
    }
    /// [`Lexical::contributions`] with the profile's norm already known.
    pub fn contributions_given(&self, history: &[u32], item: u32, norm: f32) -> Vec<(usize, f32)> {
        let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        profile(history, self.last, self.decay).into_iter().map(|(pos, w)| (pos, w * inv * self.dot(history[pos], item))).collect()
    }
    /// The terms two titles share, the most distinctive first (single words only where a pair
    /// containing them is shared too), at most `max`.
    pub fn shared_terms(&self, a: u32, b: u32, max: usize) -> Vec<String> {
        let vb: HashMap<u32, f32> = self.items[b as usize].iter().copied().collect();
        let mut shared: Vec<(f32, &str)> =
            self.items[a as usize].iter().filter_map(|&(id, x)| vb.get(&id).map(|&y| (x * y, self.terms[id as usize].as_str()))).collect();
        shared.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(y.1)));
        let pairs: Vec<&str> = shared.iter().map(|s| s.1).filter(|t| t.contains(' ')).collect();
        let mut out: Vec<String> = vec![];
        for (_, t) in &shared {
            if out.len() == max {
                break;
            }
            let covered = !t.contains(' ') && pairs.iter().any(|p| p.split(' ').any(|w| w == *t) && out.iter().any(|o| o == p));
            if !covered && t.chars().any(|c| c.is_alphabetic()) {
                out.push(t.to_string());
            }
        }
        out
    }
}

/// Training-set popularity: how many training interactions each item has.
#[derive(Clone, Debug)]
pub struct Pop {
    pub counts: Vec<f32>,
}

impl Pop {
    pub fn scores(&self) -> Vec<f32> {
        self.counts.clone()
    }
}
