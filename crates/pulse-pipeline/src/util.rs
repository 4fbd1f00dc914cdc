//! Small helpers every stage uses: reading config files, one-line errors, short hashes, progress bars.
use anyhow::{bail, Context, Result};
use std::path::Path;

/// A JSON file, errors naming the file.
pub fn read_json(path: &Path) -> Result<serde_json::Value> {
    let b = std::fs::read(path).with_context(|| path.display().to_string())?;
    serde_json::from_slice(&b).with_context(|| path.display().to_string())
}

/// A TOML file as `T` (unknown keys are errors); the error is one line naming the file.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let s = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    toml::from_str(&s).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), one_line(&e.to_string())))
}

/// The rationale store at `path`, which must exist already (opening a missing path would create an empty
/// store, and a typo would then read as "no rationales"): the one check every reader of a store makes.
pub fn open_existing_store(path: &Path) -> Result<pulse_rationale::Store> {
    if !path.is_file() {
        bail!("{}: no such rationale store", path.display());
    }
    Ok(pulse_rationale::Store::open(path)?)
}

pub fn one_line(s: &str) -> String {
    s.split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The binary's one-line error: the error and its causes joined by ": ", like anyhow's `{:#}`, but a cause
/// whose text the message already ends with is not repeated (our library errors print their source, e.g.
/// "path: No such file or directory (os error 2)", and also expose it as `source()`).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut s = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !s.ends_with(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
    }
    one_line(&s)
}

pub fn short_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", h as u32)
}

/// A progress bar on stderr (hidden when quiet).
pub fn progress(quiet: bool, len: u64, what: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// A progress bar (hidden when quiet) with its own template, for a generation stage.
pub fn progress_bar(quiet: bool, template: &str) -> indicatif::ProgressBar {
    let pb = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(0) };
    pb.set_style(indicatif::ProgressStyle::with_template(template).expect("static template").progress_chars("=> "));
    pb
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ` (recorded beside every measured time).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    utc_from_unix(secs)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, Howard Hinnant's civil-from-days).
pub fn utc_from_unix(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates_are_civil_dates() {
        assert_eq!(super::utc_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc_from_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc_from_unix(1_796_643_123), "2026-12-07T11:32:03Z");
        assert_eq!(super::utc_from_unix(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn error_line_keeps_every_cause_once() {
        // a library error that prints its io source and also exposes it: the io text appears once
        let e = pulse_eval::RankFile::read(std::path::Path::new("/nonexistent/a.ranks.tsv")).unwrap_err();
        let line = super::error_line(&anyhow::Error::from(e).context("comparing a and b"));
        assert!(line.starts_with("comparing a and b: /nonexistent/a.ranks.tsv: "), "{line}");
        assert_eq!(line.matches("(os error 2)").count(), 1, "{line}");
        // causes the message does not already end with are kept, in order, on one line
        let e = anyhow::anyhow!("bad value\non two lines").context("field x").context("config.toml");
        assert_eq!(super::error_line(&e), "config.toml: field x: bad value on two lines");
    }

}
