//! The in-memory dataset every loader produces: a catalogue of items (dense indices) and per-user
//! chronological event sequences.
use serde::Serialize;
use std::collections::HashMap;

/// One catalogue item. `title` is never empty: items without one get a fallback text and are counted
/// in [`LoadReport::empty_titles`] (`title_missing` marks them).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Item {
    pub id: String,
    pub asin: Option<String>,
    pub title: String,
    pub title_missing: bool,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub categories: Option<String>,
}

impl Item {
    pub fn new(id: String) -> Self {
        Item {
            id,
            asin: None,
            title: String::new(),
            title_missing: true,
            description: None,
            brand: None,
            categories: None,
        }
    }
}

/// One interaction. `order` is the chronological key (position or unix time); ties keep file order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub item: u32,
    pub order: i64,
    pub rating: Option<f32>,
    pub review: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct User {
    pub id: String,
    /// Chronological.
    pub events: Vec<Event>,
}

/// What the loader and filters did, so nothing is dropped silently.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoadReport {
    pub format: String,
    pub files: Vec<String>,
    /// Items whose title was empty or absent and got the fallback text.
    pub empty_titles: usize,
    /// Repeated (user, item) interactions removed by `dedup`.
    pub duplicates_removed: usize,
    /// Interactions removed by the k-core filter.
    pub kcore_removed: usize,
    /// Amazon raw reviews whose item had no metadata record (dropped).
    pub reviews_without_meta: usize,
    /// Items listed in the item file but never interacted with (not part of the catalogue).
    pub items_without_interactions: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub name: String,
    pub items: Vec<Item>,
    pub users: Vec<User>,
    pub report: LoadReport,
}

impl Dataset {
    pub fn n_items(&self) -> usize {
        self.items.len()
    }
    pub fn n_interactions(&self) -> usize {
        self.users.iter().map(|u| u.events.len()).sum()
    }
    pub fn item_index(&self) -> HashMap<&str, u32> {
        self.items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i as u32)).collect()
    }

    /// Gives every item without a title the fallback text `item <asin or id>` and counts them.
    pub(crate) fn fill_missing_titles(&mut self) {
        let mut n = 0;
        for it in &mut self.items {
            let t = it.title.trim();
            if t.is_empty() {
                it.title = format!("item {}", it.asin.as_deref().unwrap_or(&it.id));
                it.title_missing = true;
                n += 1;
            } else {
                if t.len() != it.title.len() {
                    it.title = t.to_string();
                }
                it.title_missing = false;
            }
        }
        self.report.empty_titles = n;
    }

    /// Drops items nobody interacted with and users with no events, re-indexing items densely
    /// (keeping their relative order).
    pub(crate) fn compact(&mut self) {
        let mut used = vec![false; self.items.len()];
        for u in &self.users {
            for e in &u.events {
                used[e.item as usize] = true;
            }
        }
        let mut remap = vec![u32::MAX; self.items.len()];
        let mut kept = Vec::with_capacity(self.items.len());
        for (i, it) in std::mem::take(&mut self.items).into_iter().enumerate() {
            if used[i] {
                remap[i] = kept.len() as u32;
                kept.push(it);
            }
        }
        self.report.items_without_interactions += used.iter().filter(|u| !**u).count();
        self.items = kept;
        self.users.retain(|u| !u.events.is_empty());
        for u in &mut self.users {
            for e in &mut u.events {
                e.item = remap[e.item as usize];
            }
        }
        let n_missing = self.items.iter().filter(|i| i.title_missing).count();
        self.report.empty_titles = n_missing;
    }
}

/// Collects events per user in first-appearance order, then sorts each user's events
/// chronologically (stable: ties keep file order). Shared by every loader.
#[derive(Default)]
pub(crate) struct UserTable {
    users: Vec<User>,
    index: HashMap<String, usize>,
}

impl UserTable {
    pub fn push(&mut self, user_id: &str, event: Event) {
        let slot = match self.index.get(user_id) {
            Some(&s) => s,
            None => {
                self.index.insert(user_id.to_string(), self.users.len());
                self.users.push(User { id: user_id.to_string(), events: Vec::new() });
                self.users.len() - 1
            }
        };
        self.users[slot].events.push(event);
    }

    /// The users, each sorted; `None` if there were no events at all.
    pub fn finish(mut self) -> Option<Vec<User>> {
        if self.users.is_empty() {
            return None;
        }
        for u in &mut self.users {
            u.events.sort_by_key(|e| e.order);
        }
        Some(self.users)
    }
}
