//! `pulse rationales export` / `import`: the store as JSON lines, one per stored (user, rationale), and
//! back. The lines are in the store's stable order, so exporting an imported file gives the same file: a
//! store can be committed or shared as text and rebuilt on another machine (a fresh checkout has no
//! runs/, and the SLM hours behind a store are the most expensive thing a pipeline makes).

use std::io::{BufRead, Write};
use std::path::Path;

use crate::error::{RationaleError, Result};
use crate::store::{Record, Store};

/// Write every record (optionally of one method) as JSON lines; returns how many were written.
pub fn export_jsonl(store: &Store, method: Option<&str>, out: &mut dyn Write) -> Result<usize> {
    let recs = store.records(method)?;
    for r in &recs {
        let line = serde_json::to_string(r).expect("record serialises");
        writeln!(out, "{line}")?;
    }
    Ok(recs.len())
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Records read from the file.
    pub read: usize,
    /// Of those, the ones the store did not have yet (the others are left as they are).
    pub inserted: usize,
}

/// Read JSON lines written by [`export_jsonl`] into `store`, all in one transaction: a bad line (named
/// `path:line`) leaves the store as it was. Blank lines are skipped.
pub fn import_jsonl(store: &Store, input: &mut dyn BufRead, path: &Path) -> Result<Imported> {
    let mut recs = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| RationaleError::Line { path: path.to_path_buf(), line: i + 1, msg: e.to_string() })?;
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(&line).map_err(|e| RationaleError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            msg: format!("not a stored rationale: {e}"),
        })?;
        recs.push(r);
    }
    let inserted = store.insert_all(&recs)?;
    Ok(Imported { read: recs.len(), inserted })
}
