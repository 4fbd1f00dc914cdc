//! Embedding cache: text → unit vector, bound to one encoder (its weights' sha256) and saved as one binary
//! file (`PULSEEMB1` header line, a JSON line {encoder, dim}, then records of sha256(text) + dim × f32 LE).
//! Saving writes a temporary file and renames it, so a crash never leaves a torn cache.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::encoder::SentenceEncoder;
use crate::error::{Result, ThoughtError};

const MAGIC: &str = "PULSEEMB1";

pub struct EmbeddingCache {
    path: Option<PathBuf>,
    encoder: String,
    dim: usize,
    map: HashMap<[u8; 32], Vec<f32>>,
    dirty: bool,
}

fn key(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl EmbeddingCache {
    /// An empty cache that lives in memory only.
    pub fn in_memory(enc: &SentenceEncoder) -> Self {
        EmbeddingCache { path: None, encoder: enc.id().to_string(), dim: enc.dim(), map: HashMap::new(), dirty: false }
    }

    /// Open (or start) the cache file for `enc`; a file made by another encoder is refused.
    pub fn open(path: &Path, enc: &SentenceEncoder) -> Result<Self> {
        let mut c = EmbeddingCache::in_memory(enc);
        c.path = Some(path.to_path_buf());
        if !path.exists() {
            return Ok(c);
        }
        let err = |msg: String| ThoughtError::File { path: path.to_path_buf(), msg };
        let mut r = BufReader::new(std::fs::File::open(path)?);
        let mut line = String::new();
        r.read_line(&mut line)?;
        if line.trim_end() != MAGIC {
            return Err(err("not a pulse embedding cache (bad header)".into()));
        }
        line.clear();
        r.read_line(&mut line)?;
        let h: serde_json::Value = serde_json::from_str(&line).map_err(|e| err(format!("bad header: {e}")))?;
        let (e, d) = (h["encoder"].as_str().unwrap_or(""), h["dim"].as_u64().unwrap_or(0) as usize);
        if e != c.encoder || d != c.dim {
            return Err(err(format!("made by encoder {e} (dim {d}), not {} (dim {}): delete it or use another path", c.encoder, c.dim)));
        }
        let rec = 32 + 4 * d;
        let mut buf = Vec::new();
        r.read_to_end(&mut buf)?;
        if buf.len() % rec != 0 {
            return Err(err(format!("truncated: {} bytes of records is not a multiple of {rec}", buf.len())));
        }
        for chunk in buf.chunks_exact(rec) {
            let k: [u8; 32] = chunk[..32].try_into().expect("32 bytes");
            let v = chunk[32..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
            c.map.insert(k, v);
        }
        Ok(c)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Embeddings of `texts` in order; only texts not cached yet are encoded.
    pub fn get_or_encode(&mut self, enc: &SentenceEncoder, texts: &[&str], batch: usize) -> Result<Vec<Vec<f32>>> {
        let mut missing: Vec<&str> = texts.iter().copied().filter(|t| !self.map.contains_key(&key(t))).collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            for (t, v) in missing.iter().zip(enc.encode(&missing, batch)?) {
                self.map.insert(key(t), v);
            }
            self.dirty = true;
        }
        Ok(texts.iter().map(|t| self.map[&key(t)].clone()).collect())
    }

    /// Write the cache if anything was added (temporary file + rename).
    pub fn save(&mut self) -> Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        if !self.dirty {
            return Ok(());
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        {
            let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            writeln!(w, "{MAGIC}")?;
            writeln!(w, "{}", serde_json::json!({"encoder": self.encoder, "dim": self.dim}))?;
            let mut keys: Vec<&[u8; 32]> = self.map.keys().collect();
            keys.sort();
            for k in keys {
                w.write_all(k)?;
                for x in &self.map[k] {
                    w.write_all(&x.to_le_bytes())?;
                }
            }
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        self.dirty = false;
        Ok(())
    }
}
