//! De-duplication and iterative k-core.
use crate::dataset::Dataset;
use std::collections::HashSet;

/// Keeps the first occurrence of each (user, item) pair.
pub fn dedup(ds: &mut Dataset) {
    let mut removed = 0;
    for u in &mut ds.users {
        let mut seen = HashSet::new();
        let before = u.events.len();
        u.events.retain(|e| seen.insert(e.item));
        removed += before - u.events.len();
    }
    ds.report.duplicates_removed += removed;
    ds.compact();
}

/// Iterative k-core: repeatedly removes users with fewer than `k` interactions and items with fewer
/// than `k` interactions until both hold.
pub fn kcore(ds: &mut Dataset, k: usize) {
    if k <= 1 {
        return;
    }
    let before = ds.n_interactions();
    loop {
        let mut item_count = vec![0usize; ds.items.len()];
        for u in &ds.users {
            for e in &u.events {
                item_count[e.item as usize] += 1;
            }
        }
        let mut changed = false;
        for u in &mut ds.users {
            if u.events.len() < k {
                if !u.events.is_empty() {
                    changed = true;
                }
                u.events.clear();
                continue;
            }
            let n = u.events.len();
            u.events.retain(|e| item_count[e.item as usize] >= k);
            changed |= u.events.len() != n;
        }
        if !changed {
            break;
        }
    }
    ds.report.kcore_removed += before - ds.n_interactions();
    ds.compact();
}
