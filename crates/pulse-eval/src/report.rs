//! The JSON result of `pulse eval` and the per-user rank file written beside it (`<report>.ranks.tsv.gz`;
//! older results have it uncompressed as `<report>.ranks.tsv`, and reading takes either name).
use crate::{write_atomic, EvalError};
use flate2::{Compression, GzBuilder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Deterministic for a seed: no timings or host facts (those go to the `.meta.json` beside it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub dataset: String,
    pub model: String,
    pub protocol: String,
    pub seed: u64,
    pub n_users: usize,
    pub metrics: BTreeMap<String, f64>,
    /// Bootstrap 95% CI per metric.
    #[serde(default)]
    pub ci95: BTreeMap<String, [f64; 2]>,
    /// The fully resolved configuration (data options, protocol, model hyper-parameters).
    pub config: serde_json::Value,
}

impl EvalReport {
    pub fn write(&self, path: &Path) -> Result<(), EvalError> {
        let mut s = serde_json::to_string_pretty(self).expect("serialisable");
        s.push('\n');
        write_atomic(path, s.as_bytes()).map_err(|e| EvalError::io(path, e))
    }
    /// The rank file written beside the report at `report`: `results/x.json` → `results/x.ranks.tsv.gz`
    /// (the same as [`RankFile::path_for`]).
    pub fn ranks_path(report: &Path) -> PathBuf {
        RankFile::path_for(report)
    }
    pub fn read(path: &Path) -> Result<Self, EvalError> {
        let s = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        serde_json::from_str(&s).map_err(|e| EvalError::line(path, e.line(), format!("invalid report: {e}")))
    }
}

/// Per-user ranks (`user_id<TAB>rank`, `-` for a miss), for paired comparisons.
#[derive(Clone, Debug, PartialEq)]
pub struct RankFile {
    pub users: Vec<String>,
    pub ranks: Vec<Option<u32>>,
}

impl RankFile {
    /// The ranks of the users both files hold, in this file's order: (this file's, `other`'s).
    pub fn paired(&self, other: &RankFile) -> Vec<(Option<u32>, Option<u32>)> {
        let of_other: std::collections::HashMap<&str, Option<u32>> = other.users.iter().map(String::as_str).zip(other.ranks.iter().copied()).collect();
        self.users.iter().zip(&self.ranks).filter_map(|(u, &r)| of_other.get(u.as_str()).map(|&q| (r, q))).collect()
    }

    /// `results/x.json` → `results/x.ranks.tsv.gz`.
    pub fn path_for(report: &Path) -> PathBuf {
        report.with_extension("ranks.tsv.gz")
    }

    /// The file as text: a `user_id<TAB>rank` header, then one line per user.
    pub fn to_tsv(&self) -> String {
        let mut s = String::from("user_id\trank\n");
        for (u, r) in self.users.iter().zip(&self.ranks) {
            s.push_str(u);
            s.push('\t');
            match r {
                Some(r) => s.push_str(&r.to_string()),
                None => s.push('-'),
            }
            s.push('\n');
        }
        s
    }

    /// Writes the file atomically (temporary file + rename): gzip-compressed when the name ends in `.gz`
    /// (as [`path_for`](Self::path_for)'s does), plain text otherwise. The gzip stream is deterministic —
    /// no name or timestamp in its header — so the same ranks always give the same bytes.
    pub fn write(&self, path: &Path) -> Result<(), EvalError> {
        let text = self.to_tsv();
        let bytes = if is_gz_name(path) { gzip(text.as_bytes()) } else { text.into_bytes() };
        write_atomic(path, &bytes).map_err(|e| EvalError::io(path, e))
    }

    /// Reads a rank file by either name: given `x.ranks.tsv` it reads that file if it is there, else
    /// `x.ranks.tsv.gz`; given `x.ranks.tsv.gz`, that file, else `x.ranks.tsv`. Whether the content is
    /// gzip-compressed is told by its first bytes. A missing file is reported under the name given.
    pub fn read(path: &Path) -> Result<Self, EvalError> {
        let (path, s) = read_text(path)?;
        let path = path.as_path();
        let mut lines = s.lines().enumerate();
        match lines.next() {
            Some((_, "user_id\trank")) => {}
            _ => return Err(EvalError::line(path, 1, "missing header 'user_id<TAB>rank'")),
        }
        let (mut users, mut ranks) = (Vec::new(), Vec::new());
        for (i, l) in lines {
            let (u, r) = l.split_once('\t').ok_or_else(|| EvalError::line(path, i + 1, "expected 2 fields"))?;
            users.push(u.to_string());
            ranks.push(match r {
                "-" => None,
                r => Some(r.parse().map_err(|_| EvalError::line(path, i + 1, format!("bad rank '{r}'")))?),
            });
        }
        Ok(RankFile { users, ranks })
    }
}

/// The text of a rank file (`user_id<TAB>rank` lines), decompressed, found by either name as
/// [`RankFile::read`] finds it — for callers (tests, scripts' helpers) that want the TSV without
/// knowing how it is stored. The error's message starts with the path that could not be read.
pub fn read_ranks_text(path: &Path) -> std::io::Result<String> {
    read_text(path).map(|(_, s)| s).map_err(|e| match e {
        EvalError::Io { path, source } => std::io::Error::new(source.kind(), format!("{}: {source}", path.display())),
        e => std::io::Error::other(e.to_string()),
    })
}

fn is_gz_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// The other name of a rank file: `x.ranks.tsv` ↔ `x.ranks.tsv.gz`.
fn other_name(path: &Path) -> PathBuf {
    if is_gz_name(path) {
        path.with_extension("")
    } else {
        let mut s = path.as_os_str().to_owned();
        s.push(".gz");
        PathBuf::from(s)
    }
}

/// Reads `path`, or its [`other_name`] when `path` is not there: the file read and its text.
fn read_text(path: &Path) -> Result<(PathBuf, String), EvalError> {
    let mut missing = None;
    for p in [path.to_path_buf(), other_name(path)] {
        match std::fs::read(&p) {
            Ok(bytes) => {
                let text = decode(&bytes).map_err(|e| EvalError::io(&p, e))?;
                return Ok((p, text));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.get_or_insert(e);
            }
            Err(e) => return Err(EvalError::io(&p, e)),
        }
    }
    Err(EvalError::io(path, missing.expect("both names were tried")))
}

/// UTF-8 text of a file's bytes, gunzipped first when they start with the gzip magic number.
fn decode(bytes: &[u8]) -> std::io::Result<String> {
    let mut s = String::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(bytes).read_to_string(&mut s)?;
    } else {
        let mut r = bytes;
        r.read_to_string(&mut s)?;
    }
    Ok(s)
}

/// Gzip with a fixed header (no file name, mtime 0, OS byte 255) and level: deterministic bytes.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzBuilder::new().mtime(0).operating_system(255).write(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::{read_ranks_text, EvalReport, RankFile};
    use std::path::Path;

    fn sample() -> RankFile {
        RankFile { users: vec!["u1".into(), "u2".into(), "u3".into()], ranks: vec![Some(3), None, Some(1)] }
    }
    const SAMPLE_TSV: &str = "user_id\trank\nu1\t3\nu2\t-\nu3\t1\n";

    #[test]
    fn the_rank_path_beside_a_report_is_gzipped() {
        assert_eq!(RankFile::path_for(Path::new("results/x/pop-cand5.json")), Path::new("results/x/pop-cand5.ranks.tsv.gz"));
        assert_eq!(EvalReport::ranks_path(Path::new("r.json")), Path::new("r.ranks.tsv.gz"));
    }

    #[test]
    fn gz_write_round_trips_under_either_name() {
        let d = tempfile::tempdir().unwrap();
        let gz = RankFile::path_for(&d.path().join("sub/r.json"));
        sample().write(&gz).unwrap();
        let bytes = std::fs::read(&gz).unwrap();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip magic");
        assert!(!d.path().join("sub/r.ranks.tsv").exists());
        assert_eq!(RankFile::read(&gz).unwrap(), sample());
        // the plain name finds the gz file when there is no plain one
        assert_eq!(RankFile::read(&d.path().join("sub/r.ranks.tsv")).unwrap(), sample());
        assert_eq!(read_ranks_text(&gz).unwrap(), SAMPLE_TSV);
        assert_eq!(read_ranks_text(&d.path().join("sub/r.ranks.tsv")).unwrap(), SAMPLE_TSV);
        // no temporary file is left behind
        assert_eq!(std::fs::read_dir(d.path().join("sub")).unwrap().count(), 1);
    }

    #[test]
    fn plain_tsv_is_read_under_either_name() {
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("r.ranks.tsv");
        std::fs::write(&plain, SAMPLE_TSV).unwrap();
        assert_eq!(RankFile::read(&plain).unwrap(), sample());
        assert_eq!(RankFile::read(&d.path().join("r.ranks.tsv.gz")).unwrap(), sample());
        assert_eq!(read_ranks_text(&plain).unwrap(), SAMPLE_TSV);
        // a name without .gz is written as plain text, as before
        let other = d.path().join("w.ranks.tsv");
        sample().write(&other).unwrap();
        assert_eq!(std::fs::read_to_string(&other).unwrap(), SAMPLE_TSV);
        // given the plain name, the plain file wins over a gz one
        let gz = d.path().join("r.ranks.tsv.gz");
        RankFile { users: vec!["z".into()], ranks: vec![Some(9)] }.write(&gz).unwrap();
        assert_eq!(RankFile::read(&plain).unwrap(), sample());
        assert_eq!(RankFile::read(&gz).unwrap().users, ["z"]);
    }

    #[test]
    fn a_missing_rank_file_is_named_as_given() {
        for p in ["/nonexistent/a.ranks.tsv", "/nonexistent/a.ranks.tsv.gz"] {
            let e = RankFile::read(Path::new(p)).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{p}: ")), "{e}");
            let e = read_ranks_text(Path::new(p)).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
            assert!(e.to_string().starts_with(&format!("{p}: ")), "{e}");
        }
    }

    #[test]
    fn content_errors_name_the_file_read() {
        let d = tempfile::tempdir().unwrap();
        let gz = d.path().join("r.ranks.tsv.gz");
        std::fs::write(&gz, super::gzip(b"user_id\trank\nu1\tx\n")).unwrap();
        let e = RankFile::read(&d.path().join("r.ranks.tsv")).unwrap_err().to_string();
        assert_eq!(e, format!("{}:2: bad rank 'x'", gz.display()));
    }

    #[test]
    fn gz_bytes_are_deterministic() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.ranks.tsv.gz"), d.path().join("other-name.ranks.tsv.gz"));
        sample().write(&a).unwrap();
        sample().write(&b).unwrap();
        let (x, y) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(x, y);
        assert_eq!(&x[4..8], &[0, 0, 0, 0], "mtime 0");
        assert_eq!(x[3], 0, "no name, comment or extra field");
    }

    #[test]
    fn paired_keeps_the_users_both_files_rank_in_the_first_files_order() {
        let f = |u: &[&str], r: &[Option<u32>]| RankFile { users: u.iter().map(|s| s.to_string()).collect(), ranks: r.to_vec() };
        let a = f(&["u3", "u1", "u2"], &[Some(1), None, Some(4)]);
        let b = f(&["u1", "u2", "u9"], &[Some(2), Some(5), Some(1)]);
        assert_eq!(a.paired(&b), vec![(None, Some(2)), (Some(4), Some(5))]);
        assert_eq!(b.paired(&a), vec![(Some(2), None), (Some(5), Some(4))]);
        assert!(a.paired(&f(&["x"], &[Some(1)])).is_empty());
    }
}
