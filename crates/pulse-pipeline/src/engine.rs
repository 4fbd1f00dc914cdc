//! Loading the embedded SLM engine from its options (the default weights are fetched when missing).
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use pulse_slm::{EngineOptions, Generator, LlamaEngine, SamplingParams, Weights};

use crate::opts::{ModelArgs, SamplingArgs, WeightsArg};

/// Load the model; the default weights are fetched first when missing.
pub fn load_engine(m: &ModelArgs) -> Result<LlamaEngine> {
    ensure_default_weights(&m.model)?;
    let weights = match m.weights {
        WeightsArg::F16 => Weights::F16,
        WeightsArg::Native => Weights::Native,
    };
    let opts = EngineOptions {
        weights,
        threads: m.threads,
        max_seqs: m.batch,
        n_batch: 512,
        ctx_per_seq: m.ctx,
        prefix_cache_bytes: m.prefix_cache_mb << 20,
    };
    let t = Instant::now();
    let e = LlamaEngine::load(&m.model, opts)?;
    let rt = if e.model().runtime.is_empty() { "as stored".to_string() } else { e.model().runtime.clone() };
    tracing::info!("{} ({}, sha256 {}…, weights {rt}) loaded in {:.1}s", e.model().name, e.model().arch, &e.model().sha256[..12], t.elapsed().as_secs_f64());
    Ok(e)
}

/// Runs scripts/fetch_models.sh when the default model is asked for and missing.
fn ensure_default_weights(model: &Path) -> Result<()> {
    if model.exists() || model != Path::new(pulse_slm::DEFAULT_MODEL) {
        return Ok(());
    }
    let script = Path::new("scripts/fetch_models.sh");
    if !script.exists() {
        bail!("{}: missing; fetch it with scripts/fetch_models.sh from the pulse checkout", model.display());
    }
    tracing::info!("{} missing: running {}", model.display(), script.display());
    let st = std::process::Command::new("bash").arg(script).status().context("running scripts/fetch_models.sh")?;
    if !st.success() {
        bail!("scripts/fetch_models.sh failed ({st}); the default model is still missing");
    }
    Ok(())
}

pub fn sampling(s: &SamplingArgs) -> SamplingParams {
    SamplingParams { temperature: s.temperature, top_k: s.top_k, top_p: s.top_p, max_tokens: s.max_tokens, stop: s.stop.clone(), ignore_eos: false, no_repeat_ngram: s.no_repeat_ngram, repeat_penalty: s.repeat_penalty }
}
