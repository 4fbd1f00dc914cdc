//! LoRA adapters (Hu et al. 2021): for each targeted projection `W` (input × output) of each block, a
//! trainable low-rank update `scale · A · B` with `A` (input × rank), `B` (rank × output), `scale =
//! alpha / rank`. `A` starts uniform in ±1/√input, `B` at zero, so a fresh adapter leaves the model as it
//! was. Saved as safetensors (`blk.N.<gguf name>.lora_a|lora_b`) with a JSON sidecar holding the config.
use crate::config::{LlamaConfig, Proj};
use crate::{Result, SftError};
use candle_core::{Device, Tensor, Var};
use pulse_data::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f64,
    /// Dropout on the adapter's input during training.
    pub dropout: f32,
    /// Which projections get an adapter (in every block).
    pub targets: Vec<Proj>,
}

impl Default for LoraConfig {
    /// The method's setting: rank 8, alpha 16, dropout 0.05 on the attention projections.
    fn default() -> Self {
        LoraConfig { rank: 8, alpha: 16.0, dropout: 0.05, targets: vec![Proj::Q, Proj::K, Proj::V, Proj::O] }
    }
}

impl LoraConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(SftError::Invalid(format!("lora config: {m}")));
        if self.rank == 0 {
            return bad("rank must be positive");
        }
        if !(self.alpha > 0.0) {
            return bad("alpha must be positive");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout must be in [0, 1)");
        }
        if self.targets.is_empty() {
            return bad("targets must name at least one projection");
        }
        Ok(())
    }
}

pub struct Lora {
    pub cfg: LoraConfig,
    names: Vec<String>,
    vars: Vec<Var>,
    /// (layer, projection) → indices of (A, B) in `vars`.
    index: HashMap<(usize, Proj), (usize, usize)>,
}

fn name(layer: usize, p: Proj, part: &str) -> String {
    format!("blk.{layer}.{}.lora_{part}", p.gguf())
}

impl Lora {
    pub fn new(cfg: LoraConfig, model: &LlamaConfig, rng: &mut Rng) -> Result<Self> {
        cfg.validate()?;
        let dev = Device::Cpu;
        let mut targets = cfg.targets.clone();
        targets.sort();
        targets.dedup();
        let (mut names, mut vars, mut index) = (Vec::new(), Vec::new(), HashMap::new());
        for layer in 0..model.layers {
            for &p in &targets {
                let (i, o) = model.dims(p);
                let bound = 1.0 / (i as f32).sqrt();
                let a: Vec<f32> = (0..i * cfg.rank).map(|_| (rng.next_f32() * 2.0 - 1.0) * bound).collect();
                index.insert((layer, p), (vars.len(), vars.len() + 1));
                names.push(name(layer, p, "a"));
                vars.push(Var::from_tensor(&Tensor::from_vec(a, (i, cfg.rank), &dev)?)?);
                names.push(name(layer, p, "b"));
                vars.push(Var::zeros((cfg.rank, o), candle_core::DType::F32, &dev)?);
            }
        }
        Ok(Lora { cfg, names, vars, index })
    }

    pub fn scale(&self) -> f64 {
        self.cfg.alpha / self.cfg.rank as f64
    }

    /// The adapter's (A, B) on a projection, if it has one.
    pub fn pair(&self, layer: usize, p: Proj) -> Option<(&Tensor, &Tensor)> {
        self.index.get(&(layer, p)).map(|&(a, b)| (self.vars[a].as_tensor(), self.vars[b].as_tensor()))
    }

    pub fn vars(&self) -> &[Var] {
        &self.vars
    }
    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// Trainable parameters.
    pub fn parameters(&self) -> usize {
        self.vars.iter().map(|v| v.elem_count()).sum()
    }

    /// Current weights by name (copies).
    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut m = HashMap::new();
        for (n, v) in self.names.iter().zip(&self.vars) {
            m.insert(n.clone(), v.as_tensor().detach().copy()?);
        }
        Ok(m)
    }

    /// Replaces weights from a name → tensor map (keys `prefix` + name); shapes must match.
    pub fn set_tensors(&self, t: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        for (n, v) in self.names.iter().zip(&self.vars) {
            let k = format!("{prefix}{n}");
            let src = t.get(&k).ok_or_else(|| SftError::Invalid(format!("adapter lacks tensor {k}")))?;
            if src.dims() != v.as_tensor().dims() {
                return Err(SftError::Invalid(format!("adapter tensor {k}: shape {:?}, expected {:?}", src.dims(), v.as_tensor().dims())));
            }
            v.set(src)?;
        }
        Ok(())
    }

    /// Writes `path` (safetensors) and `path.json` (config + `meta`), each through a temporary file.
    pub fn save(&self, path: &Path, meta: serde_json::Value) -> Result<()> {
        let io = |p: &Path, e| SftError::Io { path: p.to_path_buf(), source: e };
        let tmp = path.with_extension("safetensors.tmp");
        candle_core::safetensors::save(&self.tensors()?, &tmp)?;
        std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
        let side = sidecar(path);
        let json = serde_json::json!({ "lora": self.cfg, "meta": meta });
        let tmp = side.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&json).expect("serialisable")).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &side).map_err(|e| io(&side, e))
    }

    /// Reads an adapter written by [`save`](Self::save) for a model of shape `model`; returns it with
    /// the sidecar's `meta`.
    pub fn load(path: &Path, model: &LlamaConfig) -> Result<(Self, serde_json::Value)> {
        let side = sidecar(path);
        let text = std::fs::read_to_string(&side).map_err(|e| SftError::Io { path: side.clone(), source: e })?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| SftError::Adapter { path: side.clone(), msg: e.to_string() })?;
        let cfg: LoraConfig =
            serde_json::from_value(v["lora"].clone()).map_err(|e| SftError::Adapter { path: side.clone(), msg: format!("lora: {e}") })?;
        let lora = Lora::new(cfg, model, &mut Rng::new(0))?;
        let t = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| SftError::Adapter { path: path.to_path_buf(), msg: e.to_string() })?;
        lora.set_tensors(&t, "").map_err(|e| SftError::Adapter { path: path.to_path_buf(), msg: e.to_string() })?;
        Ok((lora, v["meta"].clone()))
    }
}

impl Lora {
    /// Writes the adapter in llama.cpp's GGUF LoRA format (`general.type = adapter`, `adapter.lora.alpha`,
    /// tensors `blk.N.<proj>.weight.lora_a` of ggml shape [input, rank] and `.lora_b` [rank, output], f32),
    /// so the llama.cpp engine can apply it at full speed. Written to a temporary file and renamed.
    pub fn save_gguf(&self, path: &Path, arch: &str) -> Result<()> {
        use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
        let mut keys: Vec<(usize, Proj)> = self.index.keys().copied().collect();
        keys.sort();
        let mut owned: Vec<(String, QTensor)> = Vec::new();
        for (layer, p) in keys {
            let (a, b) = self.index[&(layer, p)];
            // candle writes dims reversed: (rank, input) becomes ggml [input, rank]
            let at = self.vars[a].as_tensor().t()?.contiguous()?;
            let bt = self.vars[b].as_tensor().t()?.contiguous()?;
            let base = format!("blk.{layer}.{}.weight", p.gguf());
            owned.push((format!("{base}.lora_a"), QTensor::quantize(&at, GgmlDType::F32)?));
            owned.push((format!("{base}.lora_b"), QTensor::quantize(&bt, GgmlDType::F32)?));
        }
        let meta = [
            ("general.architecture", gguf_file::Value::String(arch.to_string())),
            ("general.type", gguf_file::Value::String("adapter".into())),
            ("adapter.type", gguf_file::Value::String("lora".into())),
            ("adapter.lora.alpha", gguf_file::Value::F32(self.cfg.alpha as f32)),
        ];
        let meta: Vec<(&str, &gguf_file::Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
        let tensors: Vec<(&str, &QTensor)> = owned.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let tmp = path.with_extension("gguf.tmp");
        let io = |p: &Path, e| SftError::Io { path: p.to_path_buf(), source: e };
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        gguf_file::write(&mut f, &meta, &tensors)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| io(path, e))
    }
}

/// `adapter.safetensors` → `adapter.json`.
pub fn sidecar(path: &Path) -> std::path::PathBuf {
    path.with_extension("json")
}
