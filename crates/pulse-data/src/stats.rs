//! Summary statistics for `pulse data stats`.
use crate::dataset::Dataset;
use crate::split::Split;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    pub dataset: String,
    pub format: String,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    pub avg_length: f64,
    pub min_length: usize,
    pub max_length: usize,
    pub repeated_pairs: usize,
    pub title_coverage: f64,
    pub empty_titles: usize,
    pub with_description: usize,
    pub with_rating: usize,
    pub with_review: usize,
    pub split_users: usize,
    pub dropped_short_users: usize,
    /// Test targets the user had already interacted with (unhittable under history masking).
    pub repeat_test_targets: usize,
}

pub fn stats(ds: &Dataset, split: &Split) -> Stats {
    let n = ds.n_interactions();
    let lens: Vec<usize> = ds.users.iter().map(|u| u.events.len()).collect();
    let mut repeated = 0;
    for u in &ds.users {
        let mut seen = std::collections::HashSet::new();
        repeated += u.events.iter().filter(|e| !seen.insert(e.item)).count();
    }
    let events = ds.users.iter().flat_map(|u| u.events.iter());
    let repeat_targets = split.users.iter().filter(|u| u.test_history().contains(&u.test)).count();
    Stats {
        dataset: ds.name.clone(),
        format: ds.report.format.clone(),
        users: ds.users.len(),
        items: ds.items.len(),
        interactions: n,
        avg_length: if lens.is_empty() { 0.0 } else { n as f64 / lens.len() as f64 },
        min_length: lens.iter().copied().min().unwrap_or(0),
        max_length: lens.iter().copied().max().unwrap_or(0),
        repeated_pairs: repeated,
        title_coverage: if ds.items.is_empty() {
            0.0
        } else {
            1.0 - ds.report.empty_titles as f64 / ds.items.len() as f64
        },
        empty_titles: ds.report.empty_titles,
        with_description: ds.items.iter().filter(|i| i.description.is_some()).count(),
        with_rating: events.clone().filter(|e| e.rating.is_some()).count(),
        with_review: events.filter(|e| e.review.is_some()).count(),
        split_users: split.users.len(),
        dropped_short_users: split.dropped_short,
        repeat_test_targets: repeat_targets,
    }
}
