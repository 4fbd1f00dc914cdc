//! Late fusion of recommenders: each part's scores are standardised over the catalogue (per user: minus
//! the row's mean, over its standard deviation) and summed with weights. The weights are chosen on the
//! validation stage ([`tune`]): a grid over the simplex, scored by HR@1 among `n` candidates drawn for the
//! validation target (never the test lists), so tuning never sees a test item.
use crate::candidates::draw_list;
use crate::metrics::rank_of;
use crate::{BoxError, EvalError, Recommender};
use pulse_data::{Rng, Split, Stage};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

pub struct Hybrid {
    name: String,
    parts: Vec<(Box<dyn Recommender>, f32)>,
}

impl Hybrid {
    /// `parts`: the models and their weights (at least one; weights finite).
    pub fn new(name: &str, parts: Vec<(Box<dyn Recommender>, f32)>) -> Result<Self, EvalError> {
        if parts.is_empty() {
            return Err(EvalError::Invalid(format!("{name}: a mix needs at least one part")));
        }
        if let Some((m, w)) = parts.iter().find(|(_, w)| !w.is_finite()) {
            return Err(EvalError::Invalid(format!("{name}: part {}: weight {w} is not finite", m.name())));
        }
        Ok(Hybrid { name: name.to_string(), parts })
    }
}

/// `row` standardised in place (a constant row becomes zeros).
pub fn standardise(row: &mut [f32]) {
    let n = row.len().max(1) as f64;
    let mean = row.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = row.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let sd = var.sqrt();
    let inv = if sd > 1e-12 { 1.0 / sd } else { 0.0 };
    for x in row.iter_mut() {
        *x = ((*x as f64 - mean) * inv) as f32;
    }
}

impl Recommender for Hybrid {
    fn name(&self) -> &str {
        &self.name
    }

    fn score_all(&self, histories: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        let mut out: Option<Vec<Vec<f32>>> = None;
        for (m, w) in &self.parts {
            let mut rows = m.score_all(histories)?;
            for r in rows.iter_mut() {
                standardise(r);
            }
            match out.as_mut() {
                None => {
                    for r in rows.iter_mut() {
                        r.iter_mut().for_each(|x| *x *= w);
                    }
                    out = Some(rows);
                }
                Some(acc) => {
                    for (a, r) in acc.iter_mut().zip(&rows) {
                        if a.len() != r.len() {
                            return Err(format!("hybrid part {} returned {} scores, the first part {}", m.name(), r.len(), a.len()).into());
                        }
                        a.iter_mut().zip(r).for_each(|(a, &x)| *a += w * x);
                    }
                }
            }
        }
        Ok(out.expect("at least one part"))
    }

    fn batch_size(&self) -> usize {
        self.parts.iter().map(|p| p.0.batch_size()).min().unwrap_or(256).clamp(1, 256)
    }
}

/// What [`tune`] found: the weights, their validation HR@1 and every grid point's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TuneReport {
    pub parts: Vec<String>,
    pub weights: Vec<f32>,
    pub valid_hr1: f64,
    /// HR@1 of each part alone on the same lists.
    pub part_hr1: Vec<f64>,
    pub n_candidates: usize,
    pub users: usize,
    pub grid_step: f32,
    pub grid_points: usize,
}

/// Validation candidate lists: for each user at `users`, the validation target then `n − 1` items the
/// user never interacted with (any stage), uniform, seeded.
pub fn valid_candidates(split: &Split, users: &[usize], n: usize, seed: u64) -> Result<Vec<Vec<u32>>, EvalError> {
    if n < 2 {
        return Err(EvalError::Invalid(format!("a candidate list needs at least 2 items, got {n}")));
    }
    let mut rng = Rng::derive(seed, &format!("hybrid-valid-cand{n}"));
    users
        .iter()
        .map(|&u| {
            let su = &split.users[u];
            let seen: HashSet<u32> = su.train.iter().copied().chain([su.valid, su.test]).collect();
            draw_list(&mut rng, su.valid, &seen, split.n_items, n)
                .ok_or_else(|| EvalError::Invalid(format!("split user {u} has interacted with too much of the catalogue for {n} candidates")))
        })
        .collect()
}

/// All weight vectors of `k` non-negative multiples of `step` summing to 1.
pub fn simplex_grid(k: usize, step: f32) -> Vec<Vec<f32>> {
    let m = (1.0 / step).round().max(1.0) as usize;
    let mut out = vec![];
    let mut cur = vec![0usize; k];
    fn rec(i: usize, left: usize, m: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<f32>>) {
        if i + 1 == cur.len() {
            cur[i] = left;
            out.push(cur.iter().map(|&c| c as f32 / m as f32).collect());
            return;
        }
        for c in 0..=left {
            cur[i] = c;
            rec(i + 1, left - c, m, cur, out);
        }
    }
    if k > 0 {
        rec(0, m, m, &mut cur, &mut out);
    }
    out
}

/// Picks the weights of `parts` on the validation stage: each part scores the users' validation
/// histories, rows standardised over the catalogue; HR@1 among `n` validation candidates for every point
/// of the simplex grid; the best point wins (ties: the first in grid order). Deterministic.
pub fn tune(parts: &[&dyn Recommender], split: &Split, users: &[usize], n: usize, step: f32, seed: u64) -> Result<TuneReport, EvalError> {
    tune_over(parts, split, users, n, step, seed, false, &mut |_, _| {})
}

/// What [`tune`] and [`tune_lists`] share: the validation lists, each part's rows standardised over the
/// catalogue then gathered (`over_list` false) or scored and standardised over the list (true), then
/// [`search`].
#[allow(clippy::too_many_arguments)]
fn tune_over(
    parts: &[&dyn Recommender],
    split: &Split,
    users: &[usize],
    n: usize,
    step: f32,
    seed: u64,
    over_list: bool,
    progress: &mut dyn FnMut(&str, usize),
) -> Result<TuneReport, EvalError> {
    if parts.is_empty() {
        return Err(EvalError::Invalid("a mix needs at least one part".into()));
    }
    if !(step > 0.0 && step <= 1.0) {
        return Err(EvalError::Invalid(format!("grid step must be in (0, 1], got {step}")));
    }
    let lists = valid_candidates(split, users, n, seed)?;
    // by_user[u][p][c]: part p's standardised score of candidate c of user u
    let mut by_user: Vec<Vec<Vec<f32>>> = vec![Vec::with_capacity(parts.len()); users.len()];
    for m in parts {
        let bs = m.batch_size().max(1);
        let mut done = 0;
        for ((chunk, lchunk), rows_of) in users.chunks(bs).zip(lists.chunks(bs)).zip(by_user.chunks_mut(bs)) {
            let queries: Vec<(Vec<u32>, u32)> = chunk.iter().map(|&u| split.users[u].query(Stage::Valid)).collect();
            let hist: Vec<&[u32]> = queries.iter().map(|(h, _)| h.as_slice()).collect();
            let model_err = |e| EvalError::Model { model: m.name().to_string(), source: e };
            let rows = if over_list {
                let cands: Vec<&[u32]> = lchunk.iter().map(Vec::as_slice).collect();
                m.score_candidates(&hist, &cands).map_err(model_err)?
            } else {
                m.score_all(&hist).map_err(model_err)?
            };
            for ((mut r, l), per_part) in rows.into_iter().zip(lchunk).zip(rows_of) {
                let want = if over_list { l.len() } else { split.n_items };
                if r.len() != want {
                    return Err(EvalError::Invalid(format!("model {} returned {} scores for {want} {}", m.name(), r.len(), if over_list { "candidates" } else { "items" })));
                }
                standardise(&mut r);
                per_part.push(if over_list { r } else { l.iter().map(|&i| r[i as usize]).collect() });
            }
            done += chunk.len();
            progress(m.name(), done);
        }
    }
    let mut report = search(&by_user, parts.len(), n, step);
    report.parts = parts.iter().map(|m| m.name().to_string()).collect();
    Ok(report)
}

/// The simplex grid search both tuners share: `by_user[u][p]` is part p's standardised scores of user u's
/// list (`k` parts, `n` candidates), the true item first. The best point by HR@1 wins (ties: the first in
/// grid order); each part alone is scored too. The report's `parts` are left for the caller.
fn search(by_user: &[Vec<Vec<f32>>], k: usize, n: usize, step: f32) -> TuneReport {
    let hr1 = |w: &[f32]| -> f64 {
        let mut hits = 0usize;
        let mut row = vec![0f32; n];
        for per_part in by_user {
            row.iter_mut().for_each(|x| *x = 0.0);
            for (scores, &wp) in per_part.iter().zip(w) {
                if wp != 0.0 {
                    row.iter_mut().zip(scores.iter()).for_each(|(a, &x)| *a += wp * x);
                }
            }
            if rank_of(&row, 0, |_| false) == Some(1) {
                hits += 1;
            }
        }
        hits as f64 / by_user.len().max(1) as f64
    };
    let grid = simplex_grid(k, step);
    let mut best: Option<(f64, Vec<f32>)> = None;
    for w in &grid {
        let v = hr1(w);
        if best.as_ref().is_none_or(|(b, _)| v > *b) {
            best = Some((v, w.clone()));
        }
    }
    let (valid_hr1, weights) = best.expect("non-empty grid");
    let part_hr1 = (0..k)
        .map(|p| {
            let mut w = vec![0f32; k];
            w[p] = 1.0;
            hr1(&w)
        })
        .collect();
    TuneReport { parts: vec![], weights, valid_hr1, part_hr1, n_candidates: n, users: by_user.len(), grid_step: step, grid_points: grid.len() }
}

/// A model shared by several fusions (e.g. one tuned hybrid under every SLM variant it is fused with).
#[derive(Clone)]
pub struct Shared(pub std::rc::Rc<dyn Recommender>);

impl Recommender for Shared {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn score_all(&self, histories: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        self.0.score_all(histories)
    }
    fn score_candidates(&self, histories: &[&[u32]], candidates: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        self.0.score_candidates(histories, candidates)
    }
    fn batch_size(&self) -> usize {
        self.0.batch_size()
    }
}

/// Late fusion over a candidate list: each part scores the list's candidates only (so an SLM can be a
/// part), each row standardised over the list, then summed with weights. It ranks candidate lists, never
/// a whole catalogue. Weights: [`tune_lists`].
/// (The same parts and weights as a [`Hybrid`]; only where the rows are standardised differs.)
pub struct ListFusion(Hybrid);

impl ListFusion {
    /// `parts`: the models and their weights (at least one; weights finite).
    pub fn new(name: &str, parts: Vec<(Box<dyn Recommender>, f32)>) -> Result<Self, EvalError> {
        Hybrid::new(name, parts).map(ListFusion)
    }
}

impl Recommender for ListFusion {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn score_all(&self, _: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        Err(format!("{} ranks candidate lists only, not a whole catalogue", self.0.name).into())
    }

    fn score_candidates(&self, histories: &[&[u32]], candidates: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
        let mut acc: Vec<Vec<f32>> = candidates.iter().map(|c| vec![0f32; c.len()]).collect();
        for (m, w) in &self.0.parts {
            if *w == 0.0 {
                continue;
            }
            let rows = m.score_candidates(histories, candidates)?;
            if rows.len() != acc.len() {
                return Err(format!("fusion part {} returned {} rows for {} lists", m.name(), rows.len(), acc.len()).into());
            }
            for (a, mut r) in acc.iter_mut().zip(rows) {
                if r.len() != a.len() {
                    return Err(format!("fusion part {} returned {} scores for {} candidates", m.name(), r.len(), a.len()).into());
                }
                standardise(&mut r);
                a.iter_mut().zip(&r).for_each(|(a, &x)| *a += w * x);
            }
        }
        Ok(acc)
    }

    fn batch_size(&self) -> usize {
        self.0.parts.iter().map(|p| p.0.batch_size()).min().unwrap_or(256).clamp(1, 256)
    }
}

/// Picks the weights of a [`ListFusion`] on the validation stage: each part scores the candidates of the
/// users' validation lists ([`valid_candidates`], `n` per list), rows standardised over the list; then the
/// same grid search as [`tune`]. `progress` is told how many users each part has scored.
pub fn tune_lists(
    parts: &[&dyn Recommender],
    split: &Split,
    users: &[usize],
    n: usize,
    step: f32,
    seed: u64,
    progress: &mut dyn FnMut(&str, usize),
) -> Result<TuneReport, EvalError> {
    tune_over(parts, split, users, n, step, seed, true, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores each item by a fixed vector, whatever the history.
    struct Fixed(&'static str, Vec<f32>);
    impl Recommender for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        fn score_all(&self, h: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
            Ok(vec![self.1.clone(); h.len()])
        }
    }

    /// Scores item (last history item + 1) highest: a "next item" model.
    struct Next(usize);
    impl Recommender for Next {
        fn name(&self) -> &str {
            "next"
        }
        fn score_all(&self, h: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
            Ok(h.iter()
                .map(|h| {
                    let t = (*h.last().unwrap() as usize + 1) % self.0;
                    (0..self.0).map(|j| if j == t { 1.0 } else { 0.0 }).collect()
                })
                .collect())
        }
    }

    #[test]
    fn standardise_gives_zero_mean_unit_sd_and_zeros_for_a_constant_row() {
        let mut r = vec![1.0, 2.0, 3.0, 4.0];
        standardise(&mut r);
        let mean: f32 = r.iter().sum::<f32>() / 4.0;
        let var: f32 = r.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{r:?}");
        let mut c = vec![5.0; 3];
        standardise(&mut c);
        assert_eq!(c, vec![0.0; 3]);
    }

    #[test]
    fn simplex_grid_covers_the_simplex() {
        let g = simplex_grid(3, 0.5);
        assert_eq!(g.len(), 6); // (0,0,1) (0,.5,.5) (0,1,0) (.5,0,.5) (.5,.5,0) (1,0,0)
        assert!(g.iter().all(|w| (w.iter().sum::<f32>() - 1.0).abs() < 1e-6));
        assert_eq!(simplex_grid(3, 0.1).len(), 66);
        assert_eq!(simplex_grid(1, 0.1), vec![vec![1.0]]);
    }

    #[test]
    fn hybrid_is_the_weighted_sum_of_standardised_rows() {
        let a = Fixed("a", vec![0.0, 10.0, 20.0]);
        let b = Fixed("b", vec![3.0, 1.0, 2.0]);
        let h = Hybrid::new("h", vec![(Box::new(a), 0.25), (Box::new(b), 0.75)]).unwrap();
        let got = h.score_all(&[&[0u32][..]]).unwrap();
        let s = (2.0f32 / 3.0).sqrt(); // sd of (-1, 0, 1)
        let za = [-1.0 / s, 0.0, 1.0 / s];
        let zb = [1.0 / s, -1.0 / s, 0.0];
        for j in 0..3 {
            assert!((got[0][j] - (0.25 * za[j] + 0.75 * zb[j])).abs() < 1e-5, "{:?}", got[0]);
        }
        assert!(Hybrid::new("h", vec![]).is_err());
        assert!(Hybrid::new("h", vec![(Box::new(Fixed("x", vec![1.0])), f32::NAN)]).is_err());
    }

    fn toy_split(n_users: usize, n_items: usize) -> Split {
        // user u walks u, u+1, u+2, u+3 (mod n_items): train [u, u+1], valid u+2, test u+3
        let users = (0..n_users)
            .map(|u| {
                let at = |k: usize| ((u + k) % n_items) as u32;
                pulse_data::SplitUser { user: u as u32, train: vec![at(0), at(1)], valid: at(2), test: at(3) }
            })
            .collect();
        Split { users, n_items, fingerprint: "toy".into(), dropped_short: 0 }
    }

    #[test]
    fn tuning_puts_the_weight_on_the_part_that_predicts_validation_targets() {
        let n_items = 50;
        let split = toy_split(40, n_items);
        let users: Vec<usize> = (0..40).collect();
        // a popularity-like part that knows nothing about users, and the "next item" model that is right
        let flat = Fixed("flat", (0..n_items).map(|j| j as f32).collect());
        let next = Next(n_items);
        let r = tune(&[&flat, &next], &split, &users, 5, 0.1, 7).unwrap();
        assert_eq!(r.grid_points, 11);
        assert_eq!(r.part_hr1[1], 1.0, "{r:?}");
        assert!(r.part_hr1[0] < 1.0, "{r:?}");
        assert_eq!(r.valid_hr1, 1.0);
        assert!(r.weights[1] > r.weights[0], "{r:?}");
        // the lists hold the validation target first and never an item of the user's
        let lists = valid_candidates(&split, &users, 5, 7).unwrap();
        for (u, l) in lists.iter().enumerate() {
            let su = &split.users[u];
            assert_eq!(l[0], su.valid);
            assert!(l[1..].iter().all(|i| !su.train.contains(i) && *i != su.valid && *i != su.test));
            assert_eq!(l.iter().collect::<HashSet<_>>().len(), 5);
        }
        assert_eq!(lists, valid_candidates(&split, &users, 5, 7).unwrap(), "seeded");
        assert!(tune(&[&flat], &split, &users, 5, 0.0, 7).is_err());
        assert!(tune(&[], &split, &users, 5, 0.1, 7).is_err());
    }

    /// Scores candidate lists only (as an SLM does): the item after the history's last scores 1.
    struct ListOnly(usize);
    impl Recommender for ListOnly {
        fn name(&self) -> &str {
            "list-only"
        }
        fn score_all(&self, _: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
            Err("candidates only".into())
        }
        fn score_candidates(&self, h: &[&[u32]], c: &[&[u32]]) -> Result<Vec<Vec<f32>>, BoxError> {
            Ok(h.iter()
                .zip(c)
                .map(|(h, c)| {
                    let t = (*h.last().unwrap() as usize + 1) % self.0;
                    c.iter().map(|&i| if i as usize == t { 1.0 } else { 0.0 }).collect()
                })
                .collect())
        }
        fn batch_size(&self) -> usize {
            3
        }
    }

    #[test]
    fn list_fusion_sums_rows_standardised_over_the_list_and_refuses_a_catalogue() {
        // over the catalogue "a" is (0, 10, 20, 1000); over the list [2, 0, 1] it is (20, 0, 10)
        let a = Fixed("a", vec![0.0, 10.0, 20.0, 1000.0]);
        let b = Fixed("b", vec![3.0, 1.0, 2.0, -5.0]);
        let f = ListFusion::new("f", vec![(Box::new(a), 0.25), (Box::new(b), 0.75)]).unwrap();
        let got = f.score_candidates(&[&[0u32][..]], &[&[2u32, 0, 1][..]]).unwrap();
        let s = (2.0f32 / 3.0).sqrt();
        let za = [1.0 / s, -1.0 / s, 0.0];
        let zb = [0.0, 1.0 / s, -1.0 / s];
        for j in 0..3 {
            assert!((got[0][j] - (0.25 * za[j] + 0.75 * zb[j])).abs() < 1e-5, "{:?}", got[0]);
        }
        let err = f.score_all(&[&[0u32][..]]).unwrap_err().to_string();
        assert!(err.contains("candidate lists only"), "{err}");
        // a part weighted 0 is not asked (a list-only model with weight 0 beside a catalogue model)
        let g = ListFusion::new("g", vec![(Box::new(Fixed("a", vec![0.0, 1.0, 2.0])), 1.0), (Box::new(ListOnly(3)), 0.0)]).unwrap();
        assert_eq!(g.score_candidates(&[&[0u32][..]], &[&[2u32, 0][..]]).unwrap(), vec![vec![1.0, -1.0]]);
        assert!(ListFusion::new("f", vec![]).is_err());
        assert!(ListFusion::new("f", vec![(Box::new(Fixed("x", vec![1.0])), f32::INFINITY)]).is_err());
    }

    #[test]
    fn list_tuning_weights_the_list_only_model_that_predicts_validation_targets() {
        let n_items = 50;
        let split = toy_split(40, n_items);
        let users: Vec<usize> = (0..40).collect();
        let flat = Fixed("flat", (0..n_items).map(|j| j as f32).collect());
        let next = ListOnly(n_items);
        let mut seen: Vec<(String, usize)> = vec![];
        let r = tune_lists(&[&flat, &next], &split, &users, 5, 0.1, 7, &mut |m, d| seen.push((m.to_string(), d))).unwrap();
        assert_eq!(r.parts, vec!["flat", "list-only"]);
        assert_eq!((r.users, r.n_candidates, r.grid_points), (40, 5, 11));
        assert_eq!(r.part_hr1[1], 1.0, "{r:?}");
        assert!(r.part_hr1[0] < 1.0, "{r:?}");
        assert_eq!(r.valid_hr1, 1.0);
        assert!(r.weights[1] > r.weights[0], "{r:?}");
        // the same lists as the catalogue tuner's: the catalogue models agree on their HR@1 alone
        let h = tune(&[&flat, &Next(n_items)], &split, &users, 5, 0.1, 7).unwrap();
        assert_eq!(h.part_hr1, r.part_hr1);
        // progress: each part reports up to every user, the list-only one in batches of 3
        assert_eq!(seen.last(), Some(&("list-only".to_string(), 40)));
        assert!(seen.contains(&("flat".to_string(), 40)) && seen.contains(&("list-only".to_string(), 3)), "{seen:?}");
        // no users: a report (HR@1 0), not a panic
        let e = tune_lists(&[&flat, &next], &split, &[], 5, 0.1, 7, &mut |_, _| {}).unwrap();
        assert_eq!((e.users, e.valid_hr1, e.weights.len()), (0, 0.0, 2));
        assert!(tune_lists(&[&flat], &split, &users, 5, 1.5, 7, &mut |_, _| {}).is_err());
        assert!(tune_lists(&[], &split, &users, 5, 0.1, 7, &mut |_, _| {}).is_err());
    }
}
