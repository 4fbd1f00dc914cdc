//! The bundle: one folder a `pulse fit` writes and `pulse recommend` / `pulse serve` read.
//!
//! ```text
//! manifest.json            format version, dataset fingerprint, models and their settings, seed, code
//!                          version, and the sha256 and size of every other file
//! catalogue.jsonl          one item per line, in index order: {"id", "title", "asin"?}
//! users.jsonl              one user per line: {"id", "items": [item index, …]} (chronological)
//! item_text.safetensors    "text": the item-text embeddings (n × dim), "xy": a 2-D map of them (n × 2)
//! pulse_ts.safetensors     the sequence model: "items" (n × d), "pos_emb", per-block weights, "lnf.*"
//! neighbours.safetensors   item-KNN co-occurrence in CSR form: "offsets", "cols", "counts", "occ"
//! ```
//! Loading checks the format version and every file's sha256, and refuses a bundle that fails either,
//! naming the file. A bundle is written into `<out>.partial/` and renamed into place when complete, so a
//! killed `pulse fit` never leaves a half-written bundle where a server would load it.
use crate::{RecError, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bumped whenever a file's layout or meaning changes; a bundle of another version is refused.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileInfo {
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DatasetInfo {
    pub name: String,
    /// The leave-one-out split's fingerprint (what every result file of this dataset records).
    pub split_fingerprint: String,
    pub n_items: usize,
    pub n_users: usize,
    pub n_interactions: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    pub name: String,
    /// UTC, when the bundle was completed.
    pub created_at: String,
    /// pulse's version (and the git commit, where the fit ran inside a checkout).
    pub code_version: String,
    pub seed: u64,
    pub dataset: DatasetInfo,
    /// The models and how they were made: configs, training summaries, the hybrid's parts, weights and
    /// tuning report (see `engine::Settings`, read from `models.serving`).
    pub models: serde_json::Value,
    /// Every other file of the bundle.
    pub files: BTreeMap<String, FileInfo>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A numeric array read from or written to a safetensors file.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    F32 { shape: Vec<usize>, data: Vec<f32> },
    U32 { shape: Vec<usize>, data: Vec<u32> },
}

impl Array {
    pub fn f32(shape: &[usize], data: Vec<f32>) -> Array {
        Array::F32 { shape: shape.to_vec(), data }
    }
    pub fn u32(shape: &[usize], data: Vec<u32>) -> Array {
        Array::U32 { shape: shape.to_vec(), data }
    }
    pub fn shape(&self) -> &[usize] {
        match self {
            Array::F32 { shape, .. } | Array::U32 { shape, .. } => shape,
        }
    }
}

/// Writes a bundle into `<out>.partial/`; [`finish`](Self::finish) adds the manifest and renames it to `out`.
pub struct BundleWriter {
    out: PathBuf,
    tmp: PathBuf,
    files: BTreeMap<String, FileInfo>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecError + '_ {
    move |source| RecError::Io { path: path.to_path_buf(), source }
}

impl BundleWriter {
    pub fn create(out: &Path) -> Result<Self> {
        let mut tmp = out.as_os_str().to_owned();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        Ok(BundleWriter { out: out.to_path_buf(), tmp, files: BTreeMap::new() })
    }

    pub fn put(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let p = self.tmp.join(name);
        std::fs::write(&p, bytes).map_err(io(&p))?;
        self.files.insert(name.to_string(), FileInfo { sha256: sha256_hex(bytes), bytes: bytes.len() as u64 });
        Ok(())
    }

    pub fn put_json_lines<T: Serialize>(&mut self, name: &str, rows: &[T]) -> Result<()> {
        let mut s = String::new();
        for r in rows {
            s.push_str(&serde_json::to_string(r).map_err(|e| RecError::Invalid(e.to_string()))?);
            s.push('\n');
        }
        self.put(name, s.as_bytes())
    }

    pub fn put_arrays<S: AsRef<str>>(&mut self, name: &str, arrays: &[(S, Array)]) -> Result<()> {
        let bytes = arrays_to_bytes(arrays).map_err(|m| RecError::Bundle { path: self.tmp.join(name), msg: m })?;
        self.put(name, &bytes)
    }

    /// Writes manifest.json (with the files written so far) into the partial folder and returns it: a
    /// complete bundle there (`partial_dir`) that a caller can load and check before [`Sealed::commit`].
    pub fn seal(mut self, mut manifest: Manifest) -> Result<Sealed> {
        manifest.format_version = FORMAT_VERSION;
        manifest.files = std::mem::take(&mut self.files);
        let p = self.tmp.join("manifest.json");
        let text = serde_json::to_string_pretty(&manifest).map_err(|e| RecError::Invalid(e.to_string()))?;
        std::fs::write(&p, text + "\n").map_err(io(&p))?;
        Ok(Sealed { out: self.out, tmp: self.tmp, manifest })
    }

    /// [`BundleWriter::seal`] then [`Sealed::commit`].
    pub fn finish(self, manifest: Manifest) -> Result<Manifest> {
        self.seal(manifest)?.commit()
    }
}

/// A complete bundle in its partial folder, not yet in place.
pub struct Sealed {
    out: PathBuf,
    tmp: PathBuf,
    pub manifest: Manifest,
}

impl Sealed {
    pub fn partial_dir(&self) -> &Path {
        &self.tmp
    }

    /// Moves the bundle into place; an older bundle at the path is replaced only once the new one is
    /// there (renamed aside first, removed last).
    pub fn commit(self) -> Result<Manifest> {
        let mut old = self.out.as_os_str().to_owned();
        old.push(".old");
        let old = PathBuf::from(old);
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        let had = self.out.exists();
        if had {
            std::fs::rename(&self.out, &old).map_err(io(&self.out))?;
        }
        std::fs::rename(&self.tmp, &self.out).map_err(io(&self.out))?;
        if had {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        Ok(self.manifest)
    }

    /// Removes the partial folder (a bundle that failed its check).
    pub fn discard(self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

fn arrays_to_bytes<S: AsRef<str>>(arrays: &[(S, Array)]) -> std::result::Result<Vec<u8>, String> {
    use safetensors::tensor::{Dtype, TensorView};
    let raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = arrays
        .iter()
        .map(|(n, a)| match a {
            Array::F32 { shape, data } => (n.as_ref().to_string(), Dtype::F32, shape.clone(), data.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Array::U32 { shape, data } => (n.as_ref().to_string(), Dtype::U32, shape.clone(), data.iter().flat_map(|x| x.to_le_bytes()).collect()),
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = raw
        .iter()
        .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)).map_err(|e| format!("{n}: {e}")))
        .collect::<std::result::Result<_, _>>()?;
    safetensors::serialize(views, None).map_err(|e| e.to_string())
}

/// An opened, verified bundle.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Bundle {
    /// Reads the manifest, refuses another format version, and checks every listed file's size and sha256.
    pub fn open(dir: &Path) -> Result<Bundle> {
        let mp = dir.join("manifest.json");
        let text = std::fs::read_to_string(&mp).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() {
                RecError::Bundle { path: dir.to_path_buf(), msg: "no such bundle (make one with `pulse fit`)".into() }
            } else {
                RecError::Io { path: mp.clone(), source: e }
            }
        })?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| RecError::Bundle { path: mp.clone(), msg: format!("line {}: {e}", e.line()) })?;
        let version = v["format_version"].as_u64();
        if version != Some(FORMAT_VERSION as u64) {
            return Err(RecError::Bundle {
                path: mp,
                msg: format!("bundle format version {}, this pulse reads version {FORMAT_VERSION} (fit the bundle again with this pulse)", version.map_or("missing".to_string(), |x| x.to_string())),
            });
        }
        let manifest: Manifest = serde_json::from_value(v).map_err(|e| RecError::Bundle { path: mp.clone(), msg: e.to_string() })?;
        for (name, info) in &manifest.files {
            let p = dir.join(name);
            let bytes = std::fs::read(&p).map_err(io(&p))?;
            if bytes.len() as u64 != info.bytes || sha256_hex(&bytes) != info.sha256 {
                return Err(RecError::Bundle {
                    path: p,
                    msg: format!("corrupted: {} bytes with sha256 {}, the manifest says {} bytes with {}", bytes.len(), &sha256_hex(&bytes)[..16], info.bytes, info.sha256.get(..16).unwrap_or(&info.sha256)),
                });
            }
        }
        Ok(Bundle { dir: dir.to_path_buf(), manifest })
    }

    fn listed(&self, name: &str) -> Result<PathBuf> {
        if !self.manifest.files.contains_key(name) {
            return Err(RecError::Bundle { path: self.dir.join("manifest.json"), msg: format!("lists no file {name}") });
        }
        Ok(self.dir.join(name))
    }

    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let p = self.listed(name)?;
        std::fs::read(&p).map_err(io(&p))
    }

    pub fn read_json_lines<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Vec<T>> {
        let p = self.listed(name)?;
        let text = String::from_utf8(self.read(name)?).map_err(|e| RecError::Bundle { path: p.clone(), msg: e.to_string() })?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| RecError::Bundle { path: p.clone(), msg: format!("line {}: {e}", i + 1) }))
            .collect()
    }

    /// All arrays of a safetensors file of the bundle.
    pub fn read_arrays(&self, name: &str) -> Result<BTreeMap<String, Array>> {
        let p = self.listed(name)?;
        let bytes = self.read(name)?;
        read_arrays_from(&bytes).map_err(|msg| RecError::Bundle { path: p, msg })
    }
}

pub fn read_arrays_from(bytes: &[u8]) -> std::result::Result<BTreeMap<String, Array>, String> {
    use safetensors::tensor::Dtype;
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let b = view.data();
        let a = match view.dtype() {
            Dtype::F32 => Array::F32 { shape, data: b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect() },
            Dtype::U32 => Array::U32 { shape, data: b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect() },
            d => return Err(format!("{name}: dtype {d:?} (bundles hold f32 and u32)")),
        };
        out.insert(name, a);
    }
    Ok(out)
}

/// Takes an f32 array of the given rank out of `m`, naming the file and array when it is missing or
/// of another type or rank.
pub fn take_f32(m: &mut BTreeMap<String, Array>, file: &str, name: &str, rank: usize) -> Result<(Vec<usize>, Vec<f32>)> {
    match m.remove(name) {
        Some(Array::F32 { shape, data }) if shape.len() == rank => Ok((shape, data)),
        Some(a) => Err(RecError::Invalid(format!("{file}: {name}: shape {:?} / type not f32 of rank {rank}", a.shape()))),
        None => Err(RecError::Invalid(format!("{file}: no array {name}"))),
    }
}

pub fn take_u32(m: &mut BTreeMap<String, Array>, file: &str, name: &str) -> Result<Vec<u32>> {
    match m.remove(name) {
        Some(Array::U32 { data, .. }) => Ok(data),
        Some(_) => Err(RecError::Invalid(format!("{file}: {name}: not u32"))),
        None => Err(RecError::Invalid(format!("{file}: no array {name}"))),
    }
}
