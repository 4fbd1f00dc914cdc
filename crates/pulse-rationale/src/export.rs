//! `pulse rationales export`: one JSON line per stored (user, rationale).

use std::io::Write;

use crate::error::Result;
use crate::store::Store;

/// Write every record (optionally of one method) as JSON lines; returns how many were written.
pub fn export_jsonl(store: &Store, method: Option<&str>, out: &mut dyn Write) -> Result<usize> {
    let recs = store.records(method)?;
    for r in &recs {
        let line = serde_json::to_string(r).expect("record serialises");
        writeln!(out, "{line}")?;
    }
    Ok(recs.len())
}
