//! Reading text files line by line with exact `file:line` errors (bad UTF-8, empty file).
use crate::error::{DataError, Result};
use std::io::Read;
use std::path::Path;

/// Reads a whole file (transparently gunzipping `*.gz`) and splits it into lines, checking UTF-8 per
/// line so the error names the line. Trailing `\r` is stripped. Fails on an empty file.
pub fn read_lines(path: &Path) -> Result<Vec<(usize, String)>> {
    let bytes = read_bytes(path)?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DataError::file(path, "file is empty"));
    }
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let s = std::str::from_utf8(raw).map_err(|e| {
            DataError::line(path, i + 1, format!("invalid UTF-8 at byte {} of the line", e.valid_up_to()))
        })?;
        out.push((i + 1, s.to_string()));
    }
    // A final newline produces one empty trailing element: drop it.
    if out.last().is_some_and(|(_, s)| s.is_empty()) {
        out.pop();
    }
    Ok(out)
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut buf = Vec::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(f).read_to_end(&mut buf)
    } else {
        std::io::BufReader::new(f).read_to_end(&mut buf)
    }
    .map_err(|e| DataError::io(path, e))?;
    Ok(buf)
}

/// A TSV header: column names and where each is.
pub struct Header {
    pub names: Vec<String>,
}

impl Header {
    pub fn parse(line: &str) -> Self {
        Header { names: line.split('\t').map(|s| s.trim().to_string()).collect() }
    }
    pub fn find(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// Splits a TSV row and checks the field count against the header.
pub fn split_row<'a>(path: &Path, line: usize, row: &'a str, expected: usize) -> Result<Vec<&'a str>> {
    let fields: Vec<&str> = row.split('\t').collect();
    if fields.len() != expected {
        return Err(DataError::line(
            path,
            line,
            format!("expected {expected} tab-separated fields (as in the header), found {}", fields.len()),
        ));
    }
    Ok(fields)
}

/// Parses a numeric id field, naming the column in the error.
pub fn parse_id(path: &Path, line: usize, col: &str, v: &str) -> Result<u64> {
    v.trim()
        .parse::<u64>()
        .map_err(|_| DataError::line(path, line, format!("non-numeric {col} '{}'", truncate(v, 40))))
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Minimal HTML entity decoding for Amazon titles (`&amp;`, `&quot;`, numeric entities, …).
pub fn html_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let end = rest[..rest.len().min(12)].find(';');
        let decoded = end.and_then(|e| {
            let ent = &rest[1..e];
            let c = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                    u32::from_str_radix(&ent[2..], 16).ok().and_then(char::from_u32)
                }
                _ if ent.starts_with('#') => ent[1..].parse::<u32>().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn unescape() {
        assert_eq!(html_unescape("Crabtree &amp; Evelyn &#39;x&#x27; &bogus; a&b"), "Crabtree & Evelyn 'x' &bogus; a&b");
    }
}
