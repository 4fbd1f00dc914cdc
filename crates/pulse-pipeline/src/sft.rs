//! `pulse sft`: build the step-5 training texts for one variant, tokenize them exactly as the engine
//! will, and LoRA-tune the SLM (resumable), writing the adapter in both formats and a summary.
use crate::engine::load_engine;
use crate::eval::{load_data, DataSpec, Loaded};
use crate::opts::{ModelArgs, SftArgs, VariantArg};
use crate::util::{open_existing_store, progress_bar, read_toml};
use anyhow::{bail, Context, Result};
use pulse_sft::data::{self, SftPrompt, Variant, SFT_PROMPT_VERSION};
use pulse_sft::{Llama, TrainConfig, TrainOptions};
use pulse_slm::Generator;
use serde::{Deserialize, Serialize};
use sha2_shim::hash_hex;
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftFile {
    /// Longest training sequence (prompt + answer tokens); longer examples are an error.
    pub max_tokens: usize,
    /// Rationale methods every trained user must have (so every variant of a table trains on the same
    /// users); the variant's own method is always required.
    pub require: Vec<String>,
    pub prompt: SftPrompt,
    pub train: TrainConfig,
}

impl Default for SftFile {
    fn default() -> Self {
        SftFile { max_tokens: 384, require: Vec::new(), prompt: SftPrompt::default(), train: TrainConfig::default() }
    }
}

pub fn variant(v: VariantArg) -> Variant {
    match v {
        VariantArg::Plain => Variant::Plain,
        VariantArg::Reasons => Variant::Reasons,
        VariantArg::TotLikelihood => Variant::TotLikelihood,
        VariantArg::Pulse => Variant::Pulse,
        VariantArg::ShuffledReasons => Variant::ShuffledReasons,
    }
}

mod sha2_shim {
    /// A short, stable hex digest (FNV-1a 64) of some bytes.
    pub fn hash_hex(chunks: &[&[u8]]) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for c in chunks {
            for &b in *c {
                h ^= b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

/// What one SFT run needs besides the data.
pub struct SftJob<'a> {
    pub variant: Variant,
    pub cfg: &'a SftFile,
    pub store: &'a std::path::Path,
    pub model: &'a ModelArgs,
    pub users: usize,
    pub seed: u64,
    pub out: &'a std::path::Path,
    pub max_steps: Option<usize>,
}

impl SftFile {
    pub fn validate(&self) -> Result<()> {
        self.train.validate()?;
        if self.prompt.candidates < 2 || self.prompt.history == 0 {
            bail!("[prompt]: candidates must be >= 2 and history >= 1");
        }
        Ok(())
    }
}

/// `pulse sft`: the config checked, then [`run_sft`] on the data; returns the report line.
pub fn sft(a: &SftArgs, quiet: bool) -> Result<String> {
    let cfg: SftFile = a.config.as_deref().map(read_toml).transpose()?.unwrap_or_default();
    cfg.validate()?;
    if a.users == 0 {
        // a config check: everything above passed, nothing is trained or written
        return Ok(format!("sft {}: config ok, 0 users asked", variant(a.variant).name()));
    }
    let l = load_data(&DataSpec::from(&a.data))?;
    let job = SftJob { variant: variant(a.variant), cfg: &cfg, store: &a.store, model: &a.model, users: a.users, seed: a.seed, out: &a.out, max_steps: a.max_steps };
    run_sft(&l, &job, quiet)
}

/// Builds the texts, tokenizes them, trains (resuming what `out` holds) and writes the adapter (both
/// formats, once finished), `examples.jsonl` and `summary.json`; returns a one-line report.
pub fn run_sft(l: &Loaded, j: &SftJob<'_>, quiet: bool) -> Result<String> {
    let (cfg, v) = (j.cfg, j.variant);
    let a = j;
    let mut methods: Vec<String> = cfg.require.clone();
    if let Some(m) = v.method() {
        if !methods.iter().any(|x| x == m) {
            methods.push(m.to_string());
        }
    }
    // Rationales per required method (each map: split user → rationale text of that method).
    let mut maps: BTreeMap<String, BTreeMap<usize, String>> = BTreeMap::new();
    if !methods.is_empty() {
        let store = open_existing_store(&a.store).with_context(|| format!("variant {} reads {:?}", v.name(), methods))?;
        for m in &methods {
            let (map, _) = pulse_rationale::store::rationales_by_user(&store, std::slice::from_ref(m), &l.ds, &l.split)?;
            tracing::info!("{m}: rationales for {} users of {}", map.len(), l.ds.name);
            maps.insert(m.clone(), map);
        }
    }
    let required: Vec<&BTreeMap<usize, String>> = maps.values().collect();
    let users = data::select_users(&l.split, &required, a.users, a.seed);
    if users.is_empty() {
        bail!("no training user of {} has all of {:?} in {}", l.ds.name, methods, a.store.display());
    }
    let own = v.method().map(|m| &maps[m]);
    // the control passes the variant's own rationales on to other users
    let shuffled = match (v, own) {
        (Variant::ShuffledReasons, Some(m)) => Some(data::derange(m, &users, a.seed)?),
        _ => None,
    };
    let own = shuffled.as_ref().or(own);
    let items = data::build(&l.ds, &l.split, &users, own, &cfg.prompt, a.seed)?;
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let mut jsonl = String::new();
    for it in &items {
        jsonl.push_str(&serde_json::to_string(it)?);
        jsonl.push('\n');
    }
    pulse_eval::write_atomic(&a.out.join("examples.jsonl"), jsonl.as_bytes())?;

    let engine = load_engine(a.model)?;
    let examples = data::tokenize(&items, &engine, cfg.max_tokens)?;
    let base = engine.model().clone();
    drop(engine);
    let tokens: Vec<u8> = examples.iter().flat_map(|e| e.tokens.iter().flat_map(|t| t.to_le_bytes()).chain((e.answer_start as u32).to_le_bytes())).collect();
    let fingerprint = hash_hex(&[base.sha256.as_bytes(), SFT_PROMPT_VERSION.as_bytes(), v.name().as_bytes(), &tokens]);
    let n_tokens: usize = examples.iter().map(|e| e.tokens.len()).sum();
    let longest = examples.iter().map(|e| e.tokens.len()).max().unwrap_or(0);
    tracing::info!(
        "sft {}: {} users, {} tokens (mean {:.0}, longest {longest}), base {} ({}…)",
        v.name(),
        examples.len(),
        n_tokens,
        n_tokens as f64 / examples.len() as f64,
        base.name,
        &base.sha256[..12]
    );

    let t = Instant::now();
    let model = Llama::load_gguf(&a.model.model)?;
    tracing::info!("{} dequantised to f32 for training in {:.1}s", base.name, t.elapsed().as_secs_f64());
    if let Some(w) = model.cfg.sliding_window.filter(|&w| longest > w) {
        bail!("the longest training text has {longest} tokens, more than {}'s sliding window of {w} (clip titles / rationales in the SFT config's [prompt])", base.name);
    }
    let pb = progress_bar(quiet, "sft [{bar:30}] {pos}/{len} steps, loss {msg} eta {eta}");
    let opts = TrainOptions { seed: a.seed, dir: a.out.to_path_buf(), fingerprint: fingerprint.clone(), stop_after_steps: a.max_steps };
    let (lora, s) = pulse_sft::train(&model, &examples, &cfg.train, &opts, &mut |step, total, loss| {
        pb.set_length(total as u64);
        pb.set_position(step as u64);
        pb.set_message(format!("{loss:.4}"));
    })?;
    pb.finish_and_clear();
    let per_example = s.seconds / (s.steps * cfg.train.batch_size).min(s.examples * cfg.train.epochs).max(1) as f64;
    let head: f64 = s.loss.iter().take(5).sum::<f64>() / s.loss.len().clamp(1, 5) as f64;
    let tail: f64 = s.loss.iter().rev().take(5).sum::<f64>() / s.loss.len().clamp(1, 5) as f64;
    if s.finished {
        lora.save_gguf(&a.out.join("adapter.gguf"), &base.arch)?;
    }
    let summary = serde_json::json!({
        "variant": v.name(),
        "prompt_version": SFT_PROMPT_VERSION,
        "dataset": l.ds.name,
        "data": l.spec,
        "base_model": base,
        "seed": a.seed,
        "users": users.len(),
        "tokens": n_tokens,
        "longest": longest,
        "required_methods": methods,
        "config": cfg,
        "fingerprint": fingerprint,
        "train": s,
        "seconds_per_example": per_example,
        "trainable_parameters": lora.parameters(),
    });
    pulse_eval::write_atomic(&a.out.join("summary.json"), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    Ok(format!(
        "sft {} on {}: {} users, step {}/{}{}, loss {head:.4} → {tail:.4} (mean of first/last 5 steps), {:.1}s ({per_example:.2}s per example) → {}",
        v.name(),
        l.ds.name,
        users.len(),
        s.steps,
        s.total_steps,
        if s.finished { " (finished)" } else { "" },
        s.seconds,
        a.out.display()
    ))
}
