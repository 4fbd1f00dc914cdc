//! pulse-data — PULSE stage 0. Loads interaction data in three formats, filters it (de-duplication,
//! iterative k-core) and makes the chronological leave-one-out split every later stage is measured on.
//!
//! ```no_run
//! use pulse_data::{load, LoadOptions, Split};
//! let ds = load("data/amazon2018-luxury-beauty".as_ref(), &LoadOptions::default()).unwrap();
//! let split = Split::leave_one_out(&ds);
//! println!("{} users, {} items", split.users.len(), split.n_items);
//! ```
pub mod amazon;
pub mod dataset;
pub mod error;
pub mod filter;
pub mod folder;
pub mod lines;
pub mod recbole;
pub mod rng;
pub mod split;
pub mod stats;

pub use dataset::{Dataset, Event, Item, LoadReport, User};
pub use error::{DataError, Result};
pub use rng::Rng;
pub use split::{Split, SplitUser, Stage};
pub use stats::{stats, Stats};

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Detect from the directory's files.
    #[default]
    Auto,
    /// `interactions.tsv` + `items.tsv`/`items.jsonl`.
    Folder,
    /// RecBole atomic `*.inter` + `*.item`.
    Recbole,
    /// Raw Amazon 2018 `<X>.json[.gz]` + `meta_<X>.json[.gz]`.
    Amazon,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadOptions {
    pub format: Format,
    /// Folder format: an alternative interactions file name (e.g. `interactions_dedup_5core.tsv`).
    pub interactions_file: Option<String>,
    /// Remove repeated (user, item) pairs, keeping the first.
    pub dedup: bool,
    /// Iterative k-core (0 or 1 = off).
    pub kcore: usize,
}

/// Loads a dataset directory, then applies the optional de-duplication and k-core.
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(DataError::file(dir, "not a directory (expected a dataset folder)"));
    }
    let mut ds = match opts.format {
        Format::Folder => folder::load(dir, opts.interactions_file.as_deref())?,
        Format::Recbole => {
            let (i, t) = recbole::find(dir).ok_or_else(|| DataError::file(dir, "no *.inter file"))?;
            recbole::load(&i, &t)?
        }
        Format::Amazon => {
            let (r, m) = amazon::find(dir)
                .ok_or_else(|| DataError::file(dir, "expected <X>.json[.gz] and meta_<X>.json[.gz]"))?;
            amazon::load(&r, &m)?
        }
        Format::Auto => {
            if dir.join(opts.interactions_file.as_deref().unwrap_or(folder::INTERACTIONS)).exists() {
                folder::load(dir, opts.interactions_file.as_deref())?
            } else if let Some((i, t)) = recbole::find(dir) {
                recbole::load(&i, &t)?
            } else if let Some((r, m)) = amazon::find(dir) {
                amazon::load(&r, &m)?
            } else {
                return Err(DataError::file(
                    dir,
                    "no dataset found: expected interactions.tsv (+ items.tsv/items.jsonl), a RecBole *.inter/*.item pair, or Amazon <X>.json + meta_<X>.json",
                ));
            }
        }
    };
    if opts.dedup {
        filter::dedup(&mut ds);
    }
    filter::kcore(&mut ds, opts.kcore);
    if ds.users.is_empty() {
        return Err(DataError::Invalid(format!("{}: no interactions left after filtering", dir.display())));
    }
    Ok(ds)
}
