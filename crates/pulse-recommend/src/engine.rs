//! A loaded bundle answering requests: top-k items for a history, each with its score, the evidence
//! behind it and a one-sentence reason. Read-only after loading; share it between threads.
use crate::bundle::{take_f32, take_u32, Bundle};
use crate::explain::{sentence, Cited, Evidence, EvidenceSource};
use crate::parts::{Content, Knn, Lexical, Pop};
use crate::search::Catalogue;
use crate::seq::SeqModel;
use crate::{RecError, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// What the manifest's `models.serving` records: the parts' settings and the hybrid's weights.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    /// The sequence model's row name ("pulse-ts", or "pulse-ts-norat" when fitted without rationales).
    pub sequence_model: String,
    pub heads: usize,
    pub blocks: usize,
    pub gelu: bool,
    pub content: ProfileSettings,
    pub itemknn: KnnSettings,
    pub lexical: ProfileSettings,
    /// The hybrid: part names (of "pulse-ts", "content", "itemknn", "lexical", "pop") and their weights.
    pub hybrid_parts: Vec<String>,
    pub hybrid_weights: Vec<f32>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProfileSettings {
    pub last: usize,
    pub decay: f32,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct KnnSettings {
    pub window: usize,
    pub last: usize,
    pub decay: f32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CatalogueItem {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asin: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UserRow {
    pub id: String,
    pub items: Vec<u32>,
}

/// Which model ranks.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The sequence model alone (PULSE-TS: item IDs + texts).
    #[default]
    PulseTs,
    /// The validation-tuned hybrid of PULSE-TS, content, item-KNN, lexical and popularity.
    Hybrid,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "pulse-ts" => Ok(Mode::PulseTs),
            "hybrid" => Ok(Mode::Hybrid),
            _ => Err(format!("model {s:?}: expected pulse-ts or hybrid")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Request {
    pub history: Vec<u32>,
    pub k: usize,
    pub exclude_history: bool,
    pub mode: Mode,
    /// Attribute the sequence model by leaving each history item out (slower: one forward pass per
    /// history item); otherwise the evidence comes from the decomposable parts (fast path).
    pub leave_one_out: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Recommendation {
    pub rank: usize,
    pub item: u32,
    pub id: String,
    pub title: String,
    pub score: f32,
    pub reason: String,
    pub evidence: Evidence,
}

pub struct Engine {
    pub bundle: Bundle,
    pub settings: Settings,
    pub catalogue: Catalogue,
    pub users: Vec<UserRow>,
    user_index: HashMap<String, usize>,
    /// 2-D map of the item texts (n × 2), for pictures.
    pub xy: Vec<f32>,
    pub seq: SeqModel,
    pub content: Content,
    pub knn: Knn,
    pub lexical: Lexical,
    pub pop: Pop,
    /// Content score moments: the catalogue's mean unit embedding and second-moment matrix (dim × dim),
    /// so a profile's mean and variance over the catalogue cost dim² instead of n × dim.
    content_mean: Vec<f64>,
    content_m2: Vec<f64>,
    /// log(1 + popularity), the hybrid's popularity part, and its moments.
    pop_log: Vec<f32>,
    pop_log_moments: (f64, f64),
}

/// The hybrid's parts for one history: each part's sd over the catalogue, and the content and lexical
/// profiles' norms (what their per-item contributions divide by); 0 where a part has no weight.
#[derive(Clone, Copy, Debug, Default)]
pub struct PartStats {
    pub content_sd: f64,
    pub itemknn_sd: f64,
    pub lexical_sd: f64,
    pub seq_sd: f64,
    pub content_norm: f32,
    pub lexical_norm: f32,
}

/// Mean and standard deviation of a score row (population, as pulse-eval standardises).
fn moments(row: &[f32]) -> (f64, f64) {
    let n = row.len().max(1) as f64;
    let (s, q) = crate::simd::sum_sq(row);
    let mean = s / n;
    (mean, (q / n - mean * mean).max(0.0).sqrt())
}

fn inv(sd: f64) -> f64 {
    if sd > 1e-12 {
        1.0 / sd
    } else {
        0.0
    }
}

impl Engine {
    pub fn load(dir: &Path) -> Result<Engine> {
        let bundle = Bundle::open(dir)?;
        let bad = |m: String| RecError::Bundle { path: dir.join("manifest.json"), msg: m };
        let settings: Settings = serde_json::from_value(bundle.manifest.models["serving"].clone()).map_err(|e| bad(format!("models.serving: {e}")))?;
        if settings.hybrid_parts.len() != settings.hybrid_weights.len() {
            return Err(bad("models.serving: hybrid_parts and hybrid_weights differ in length".into()));
        }
        let known = ["pulse-ts", "pulse-ts-norat", "content", "itemknn", "lexical", "pop"];
        let mut seen = std::collections::HashSet::new();
        for p in &settings.hybrid_parts {
            let canon = if p == "pulse-ts-norat" { "pulse-ts" } else { p.as_str() };
            if !known.contains(&p.as_str()) || !seen.insert(canon) {
                return Err(bad(format!("models.serving: hybrid part {p:?} unknown or listed twice")));
            }
        }
        if settings.blocks == 0 || settings.heads == 0 {
            return Err(bad("models.serving: blocks and heads must be ≥ 1".into()));
        }
        let items: Vec<CatalogueItem> = bundle.read_json_lines("catalogue.jsonl")?;
        let users: Vec<UserRow> = bundle.read_json_lines("users.jsonl")?;
        let n = items.len();
        if let Some(u) = users.iter().find(|u| u.items.iter().any(|&i| i as usize >= n)) {
            return Err(RecError::Bundle { path: dir.join("users.jsonl"), msg: format!("user {}: item index beyond the {n}-item catalogue", u.id) });
        }
        let mut text = bundle.read_arrays("item_text.safetensors")?;
        let (ts, tv) = take_f32(&mut text, "item_text.safetensors", "text", 2)?;
        let (_, xy) = take_f32(&mut text, "item_text.safetensors", "xy", 2)?;
        let seq = SeqModel::from_arrays(bundle.read_arrays("pulse_ts.safetensors")?, "pulse_ts.safetensors", settings.heads, settings.blocks, settings.gelu)?;
        let mut nb = bundle.read_arrays("neighbours.safetensors")?;
        let f = "neighbours.safetensors";
        let (offsets, cols) = (take_u32(&mut nb, f, "offsets")?, take_u32(&mut nb, f, "cols")?);
        let (counts, occ) = (take_f32(&mut nb, f, "counts", 1)?.1, take_f32(&mut nb, f, "occ", 1)?.1);
        let csr_ok = offsets.len() == n + 1
            && occ.len() == n
            && counts.len() == cols.len()
            && offsets.first() == Some(&0)
            && offsets.last().map(|&o| o as usize) == Some(cols.len())
            && offsets.windows(2).all(|w| w[0] <= w[1])
            && cols.iter().all(|&j| (j as usize) < n)
            && (0..n).all(|i| {
                let row = &cols[offsets[i] as usize..offsets[i + 1] as usize];
                row.windows(2).all(|w| w[0] < w[1]) && (row.is_empty() || occ[i] > 0.0) && row.iter().all(|&j| occ[j as usize] > 0.0)
            });
        if !csr_ok {
            return Err(RecError::Bundle { path: dir.join(f), msg: format!("neighbour lists do not fit the {n}-item catalogue") });
        }
        let knn = Knn::new(offsets, cols, counts, occ, settings.itemknn.last, settings.itemknn.decay);
        let pop = Pop { counts: take_f32(&mut nb, f, "pop", 1)?.1 };
        if ts[0] != n || seq.n_items != n || knn.occ.len() != n || knn.offsets.len() != n + 1 || pop.counts.len() != n || xy.len() != 2 * n {
            return Err(bad(format!("files disagree on the catalogue size ({n} items in catalogue.jsonl)")));
        }
        if ts[1] == 0 || ts[1] > 4096 {
            return Err(RecError::Bundle { path: dir.join("item_text.safetensors"), msg: format!("text embeddings of width {} (1 to 4096 expected)", ts[1]) });
        }
        let content = Content::new(&tv, ts[1], settings.content.last, settings.content.decay);
        let titles: Vec<&str> = items.iter().map(|i| i.title.as_str()).collect();
        let lexical = Lexical::new(&titles, settings.lexical.last, settings.lexical.decay);
        let dim = content.dim;
        let mut content_mean = vec![0f64; dim];
        let mut content_m2 = vec![0f64; dim * dim];
        for r in content.rows.chunks_exact(dim) {
            for a in 0..dim {
                content_mean[a] += r[a] as f64;
                let ra = r[a] as f64;
                let row = &mut content_m2[a * dim..(a + 1) * dim];
                for (m, &rb) in row.iter_mut().zip(r) {
                    *m += ra * rb as f64;
                }
            }
        }
        let nf = n.max(1) as f64;
        content_mean.iter_mut().for_each(|x| *x /= nf);
        content_m2.iter_mut().for_each(|x| *x /= nf);
        let user_index = users.iter().enumerate().map(|(i, u)| (u.id.clone(), i)).collect();
        let pop_log: Vec<f32> = pop.counts.iter().map(|c| c.ln_1p()).collect();
        let pop_log_moments = moments(&pop_log);
        Ok(Engine {
            catalogue: Catalogue::new(items),
            bundle,
            settings,
            users,
            user_index,
            xy,
            seq,
            content,
            knn,
            lexical,
            pop,
            content_mean,
            content_m2,
            pop_log,
            pop_log_moments,
        })
    }

    pub fn n_items(&self) -> usize {
        self.catalogue.items.len()
    }

    pub fn user(&self, id: &str) -> Option<&UserRow> {
        self.user_index.get(id).map(|&i| &self.users[i])
    }

    /// Item indices for catalogue ids; the unknown ones named in the error.
    pub fn items_by_id(&self, ids: &[String]) -> Result<Vec<u32>> {
        let mut out = vec![];
        let mut unknown = vec![];
        for id in ids {
            match self.catalogue.by_id(id) {
                Some(i) => out.push(i),
                None => unknown.push(id.as_str()),
            }
        }
        if unknown.is_empty() {
            Ok(out)
        } else {
            Err(RecError::Unknown(format!("unknown item id{} {}", if unknown.len() > 1 { "s" } else { "" }, unknown.join(", "))))
        }
    }

    fn weight(&self, part: &str) -> f32 {
        self.settings.hybrid_parts.iter().position(|p| p == part).map_or(0.0, |i| self.settings.hybrid_weights[i])
    }

    /// Content's sd over the catalogue for a history, from the moment matrices (the profile summed in f64).
    fn content_sd(&self, history: &[u32]) -> f64 {
        let dim = self.content.dim;
        let mut p = vec![0f64; dim];
        for (pos, w) in crate::parts::profile(history, self.content.last, self.content.decay) {
            let r = &self.content.rows[history[pos] as usize * dim..(history[pos] as usize + 1) * dim];
            for (a, &x) in p.iter_mut().zip(r) {
                *a += (w * x) as f64;
            }
        }
        let norm = p.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm <= 0.0 {
            return 0.0;
        }
        p.iter_mut().for_each(|x| *x /= norm);
        let mean: f64 = crate::simd::dot64(&p, &self.content_mean);
        let mut q = 0.0;
        for a in 0..dim {
            q += p[a] * crate::simd::dot64(&self.content_m2[a * dim..(a + 1) * dim], &p);
        }
        (q - mean * mean).max(0.0).sqrt()
    }

    /// The parts' spreads and profile norms the evidence needs, for the parts with a weight: the hybrid
    /// computed them while scoring; for PULSE-TS, from sparse rows (item-KNN, lexical) and content's
    /// moment matrices.
    fn evidence_stats(&self, history: &[u32], mode: Mode, scored: PartStats) -> PartStats {
        if mode == Mode::Hybrid {
            return scored;
        }
        let mut st = scored;
        if self.weight("content") != 0.0 {
            (st.content_sd, st.content_norm) = (self.content_sd(history), self.content.profile_norm(history));
        }
        if self.weight("itemknn") != 0.0 {
            st.itemknn_sd = moments(&self.knn.scores(history)).1;
        }
        if self.weight("lexical") != 0.0 {
            let (row, norm) = self.lexical.scores_and_norm(history);
            (st.lexical_sd, st.lexical_norm) = (moments(&row).1, norm);
        }
        st
    }

    /// Scores of every item under `mode` (the hybrid standardises each part over the catalogue).
    pub fn scores(&self, history: &[u32], mode: Mode) -> Vec<f32> {
        self.scores_and_stats(history, mode).0
    }

    /// [`Engine::scores`], and the parts' spreads it computed on the way (for the hybrid).
    fn scores_and_stats(&self, history: &[u32], mode: Mode) -> (Vec<f32>, PartStats, Option<Vec<f32>>) {
        let n = self.n_items();
        let state = self.seq.state(history);
        let seq = match &state {
            Some(s) => self.seq.scores(s),
            None => vec![0.0; n],
        };
        let mut st = PartStats::default();
        if mode == Mode::PulseTs {
            if history.is_empty() {
                return (self.pop.counts.clone(), st, state);
            }
            return (seq, st, state);
        }
        let mut acc = vec![0f32; n];
        // adds w · (row − mean) / sd and returns the sd
        let mut add = |row: &[f32], known: Option<(f64, f64)>, w: f32| {
            let (mean, sd) = known.unwrap_or_else(|| moments(row));
            let s = inv(sd);
            let (wm, ws) = ((w as f64 * mean * s) as f32, (w as f64 * s) as f32);
            for (a, &x) in acc.iter_mut().zip(row) {
                *a += ws * x - wm;
            }
            sd
        };
        for (part, &w) in self.settings.hybrid_parts.iter().zip(&self.settings.hybrid_weights) {
            if w == 0.0 {
                continue;
            }
            match part.as_str() {
                "pulse-ts" | "pulse-ts-norat" => st.seq_sd = add(&seq, None, w),
                "content" => {
                    let (row, norm) = self.content.scores_and_norm(history);
                    (st.content_sd, st.content_norm) = (add(&row, None, w), norm);
                }
                "itemknn" => st.itemknn_sd = add(&self.knn.scores(history), None, w),
                "lexical" => {
                    let (row, norm) = self.lexical.scores_and_norm(history);
                    (st.lexical_sd, st.lexical_norm) = (add(&row, None, w), norm);
                }
                "pop" => {
                    add(&self.pop_log, Some(self.pop_log_moments), w);
                }
                _ => {}
            }
        }
        (acc, st, state)
    }

    /// The top `k` of `scores` (highest first, ties by index), without `exclude`.
    pub fn top_k(scores: &[f32], k: usize, exclude: &[u32]) -> Vec<u32> {
        if k == 0 {
            return vec![];
        }
        let mut ex: Vec<u32> = exclude.to_vec();
        ex.sort_unstable();
        let mut heap: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
        for (i, &s) in scores.iter().enumerate() {
            let i = i as u32;
            if heap.len() == k && !(s > heap[k - 1].0) {
                continue;
            }
            if ex.binary_search(&i).is_ok() || s.is_nan() {
                continue;
            }
            let pos = heap.partition_point(|&(hs, hi)| hs > s || (hs == s && hi < i));
            heap.insert(pos, (s, i));
            heap.truncate(k);
        }
        heap.into_iter().map(|(_, i)| i).collect()
    }

    /// Rank (1-based) of `item` among all items not in `exclude` under `scores` (ties: lower index first).
    pub fn rank_of(scores: &[f32], item: u32, exclude: &[u32]) -> usize {
        let s = scores[item as usize];
        1 + scores
            .iter()
            .enumerate()
            .filter(|&(i, &x)| (x > s || (x == s && (i as u32) < item)) && !exclude.contains(&(i as u32)))
            .count()
    }

    /// Per history position: (content, itemknn, lexical) standardised, weighted shares of `item`'s score.
    /// `st`: the parts' spreads over the catalogue and profile norms for this history.
    fn part_shares(&self, history: &[u32], item: u32, st: &PartStats) -> HashMap<usize, [f32; 4]> {
        let (wc, wk, wl) = (self.weight("content"), self.weight("itemknn"), self.weight("lexical"));
        let mut m: HashMap<usize, [f32; 4]> = HashMap::new();
        if wc != 0.0 {
            for (pos, c) in self.content.contributions_given(history, item, st.content_norm) {
                m.entry(pos).or_default()[0] += wc * (c as f64 * inv(st.content_sd)) as f32;
            }
        }
        if wk != 0.0 {
            for (pos, c) in self.knn.contributions(history, item) {
                m.entry(pos).or_default()[1] += wk * (c as f64 * inv(st.itemknn_sd)) as f32;
            }
        }
        if wl != 0.0 {
            for (pos, c) in self.lexical.contributions_given(history, item, st.lexical_norm) {
                m.entry(pos).or_default()[2] += wl * (c as f64 * inv(st.lexical_sd)) as f32;
            }
        }
        m
    }

    /// Top-k with reasons.
    pub fn recommend(&self, r: &Request) -> Result<Vec<Recommendation>> {
        let n = self.n_items();
        if let Some(&bad) = r.history.iter().find(|&&i| i as usize >= n) {
            return Err(RecError::Unknown(format!("item index {bad} is beyond the {n}-item catalogue")));
        }
        let h = &r.history;
        let (scores, st, state) = self.scores_and_stats(h, r.mode);
        let exclude: &[u32] = if r.exclude_history { h } else { &[] };
        let top = Self::top_k(&scores, r.k, exclude);
        let st = self.evidence_stats(h, r.mode, st);
        let seq_sd = if r.leave_one_out { Some(if r.mode == Mode::Hybrid { st.seq_sd } else { 1.0 }) } else { None };
        // leave-one-out: the state without each distinct history item
        let loo: Vec<(u32, Option<Vec<f32>>)> = if r.leave_one_out && !h.is_empty() {
            // items only older than the model's window cannot change its state: their share is exactly 0
            let mut distinct: Vec<u32> = h[h.len().saturating_sub(self.seq.max_len)..].to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            distinct.into_iter().map(|it| (it, self.seq.state(&h.iter().copied().filter(|&x| x != it).collect::<Vec<_>>()))).collect()
        } else {
            vec![]
        };
        let full_state = if r.leave_one_out { state } else { None };
        let w_seq = match r.mode {
            Mode::PulseTs => 1.0,
            Mode::Hybrid => self.weight(&self.settings.sequence_model).max(self.weight("pulse-ts")),
        };
        let mut out = Vec::with_capacity(top.len());
        for (rank, &item) in top.iter().enumerate() {
            let shares = self.part_shares(h, item, &st);
            // merge positions into items
            let mut by_item: HashMap<u32, [f32; 4]> = HashMap::new();
            for (pos, s) in shares {
                let e = by_item.entry(h[pos]).or_default();
                for j in 0..3 {
                    e[j] += s[j];
                }
            }
            if let (Some(fs), Some(sd)) = (&full_state, seq_sd) {
                let base = self.seq.score(fs, item);
                // PULSE-TS mode explains raw scores, so its shares stay in score units
                let scale = if r.mode == Mode::Hybrid { w_seq as f64 * inv(sd) } else { 1.0 };
                for (it, st) in &loo {
                    let without = st.as_ref().map_or(0.0, |s| self.seq.score(s, item));
                    by_item.entry(*it).or_default()[3] += ((base - without) as f64 * scale) as f32;
                }
            }
            let use_parts = !(r.mode == Mode::PulseTs && r.leave_one_out);
            let mut cited: Vec<Cited> = by_item
                .into_iter()
                .map(|(it, s)| {
                    let names = ["content", "itemknn", "lexical", "sequence"];
                    let by_part: std::collections::BTreeMap<String, f32> =
                        (0..4).filter(|&j| s[j] != 0.0 && (j == 3 || use_parts)).map(|j| (names[j].to_string(), s[j])).collect();
                    let total = by_part.values().sum();
                    let c = &self.catalogue.items[it as usize];
                    Cited {
                        item: it,
                        id: c.id.clone(),
                        title: c.title.clone(),
                        contribution: total,
                        by_part,
                        co_purchases: self.knn.count(it, item) as u32,
                        text_similarity: self.content.similarity(it, item),
                        shared_terms: self.lexical.shared_terms(it, item, 3),
                    }
                })
                .filter(|c| c.contribution > 0.0)
                .collect();
            cited.sort_by(|a, b| b.contribution.total_cmp(&a.contribution).then(a.item.cmp(&b.item)));
            if let Some(max) = cited.first().map(|c| c.contribution) {
                cited.retain(|c| c.contribution >= 0.25 * max);
            }
            cited.truncate(3);
            let evidence = Evidence {
                source: if r.leave_one_out { EvidenceSource::LeaveOneOut } else { EvidenceSource::Parts },
                cited,
                chosen_by: self.pop.counts[item as usize] as u32,
            };
            let c = &self.catalogue.items[item as usize];
            out.push(Recommendation { rank: rank + 1, item, id: c.id.clone(), title: c.title.clone(), score: scores[item as usize], reason: sentence(&evidence), evidence });
        }
        Ok(out)
    }
}
