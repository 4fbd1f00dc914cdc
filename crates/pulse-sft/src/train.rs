//! LoRA fine-tuning loop: AdamW on the adapter only, answer-token loss averaged over each step's answer
//! tokens, gradient accumulation over micro-batches, and a checkpoint (adapter, AdamW moments, step,
//! loss curve) every few steps. Example order and dropout masks are functions of (seed, epoch, step)
//! alone, so a run killed at any point and restarted continues exactly as if it had never stopped.
use crate::lora::{Lora, LoraConfig};
use crate::model::{Example, Llama};
use crate::{Result, SftError};
use candle_core::{Device, Tensor};
use pulse_baselines::adam::Adam;
use pulse_data::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub lora: LoraConfig,
    pub lr: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    /// Examples per optimizer step.
    pub batch_size: usize,
    /// Examples per forward/backward pass (gradients are accumulated up to `batch_size`).
    pub micro_batch: usize,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
}

impl Default for TrainConfig {
    /// The method's LoRA setting (rank 8, alpha 16, dropout 0.05, attention projections, lr 2e-4).
    fn default() -> Self {
        TrainConfig { lora: LoraConfig::default(), lr: 2e-4, weight_decay: 0.0, epochs: 1, batch_size: 8, micro_batch: 2, checkpoint_every: 5 }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        self.lora.validate()?;
        let bad = |m: &str| Err(SftError::Invalid(format!("sft config: {m}")));
        if !(self.lr > 0.0) || self.weight_decay < 0.0 {
            return bad("lr must be positive and weight_decay >= 0");
        }
        if self.epochs == 0 || self.batch_size == 0 || self.micro_batch == 0 || self.checkpoint_every == 0 {
            return bad("epochs, batch_size, micro_batch and checkpoint_every must be positive");
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    pub seed: u64,
    /// Checkpoints and, when finished, `adapter.safetensors` (+ `adapter.json`) go here; a matching
    /// checkpoint is resumed, a finished one reused.
    pub dir: PathBuf,
    /// Identity of the base weights and the data (recorded, and checked on resume).
    pub fingerprint: String,
    /// Stop (unfinished) after this many steps in this call — for resumption tests.
    pub stop_after_steps: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    pub steps: usize,
    pub total_steps: usize,
    pub examples: usize,
    /// Tokens through the model (prompt + answer, padding excluded) and answer tokens with a loss.
    pub tokens: u64,
    pub answer_tokens: u64,
    /// Mean answer-token loss of each step.
    pub loss: Vec<f64>,
    /// Wall seconds spent training, over all calls.
    pub seconds: f64,
    pub finished: bool,
    pub resumed_from_step: Option<usize>,
}

#[derive(Serialize, Deserialize)]
struct State {
    version: u32,
    fingerprint: String,
    seed: u64,
    config: TrainConfig,
    n_examples: usize,
    step: usize,
    tensors: String,
    summary: TrainSummary,
}

pub const ADAPTER: &str = "adapter.safetensors";
const STATE: &str = "state.json";

/// The order examples are visited in during `epoch`.
fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut o: Vec<usize> = (0..n).collect();
    Rng::derive(seed, &format!("sft-epoch-{epoch}")).shuffle(&mut o);
    o
}

/// Fine-tunes a LoRA adapter on `examples`; `progress(step, total, mean loss of the step)` after each step.
pub fn train(
    model: &Llama,
    examples: &[Example],
    cfg: &TrainConfig,
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, usize, f64),
) -> Result<(Lora, TrainSummary)> {
    cfg.validate()?;
    if examples.is_empty() {
        return Err(SftError::Invalid("no training examples".into()));
    }
    let per_epoch = examples.len().div_ceil(cfg.batch_size);
    let total = per_epoch * cfg.epochs;
    let lora = Lora::new(cfg.lora.clone(), &model.cfg, &mut Rng::derive(opts.seed, "sft-lora-init"))?;
    let mut adam = Adam::new(lora.vars(), cfg.lr, 0.9, 0.999, cfg.weight_decay)?;
    let mut s = TrainSummary {
        steps: 0,
        total_steps: total,
        examples: examples.len(),
        tokens: 0,
        answer_tokens: 0,
        loss: Vec::new(),
        seconds: 0.0,
        finished: false,
        resumed_from_step: None,
    };
    if let Some(st) = read_state(&opts.dir)? {
        let why = if st.fingerprint != opts.fingerprint || st.n_examples != examples.len() {
            Some("was trained on other data or another base model".to_string())
        } else if st.config != *cfg {
            Some("was trained with another configuration".to_string())
        } else if st.seed != opts.seed {
            Some(format!("was trained with seed {}, not {}", st.seed, opts.seed))
        } else {
            None
        };
        if let Some(w) = why {
            return Err(SftError::Adapter { path: opts.dir.join(STATE), msg: format!("checkpoint {w}; use another directory or delete it") });
        }
        let t = candle_core::safetensors::load(opts.dir.join(&st.tensors), &Device::Cpu)?;
        lora.set_tensors(&t, "w.")?;
        for (i, n) in lora.names().iter().enumerate() {
            adam.m[i] = take(&t, &format!("m.{n}"))?;
            adam.v[i] = take(&t, &format!("v.{n}"))?;
        }
        adam.step = st.step as u64;
        s = st.summary;
        if s.finished {
            // reused as trained: the summary keeps the step (if any) its training resumed from
            if !opts.dir.join(ADAPTER).is_file() {
                // killed between the last checkpoint and the adapter file
                lora.save(&opts.dir.join(ADAPTER), adapter_meta(opts, cfg, &s))?;
            }
            return Ok((lora, s));
        }
        s.resumed_from_step = Some(st.step);
        tracing::info!("resuming LoRA training from {} at step {}/{total}", opts.dir.display(), st.step);
    }
    let mut this_call = 0;
    while s.steps < total {
        let t0 = Instant::now();
        let (epoch, k) = (s.steps / per_epoch, s.steps % per_epoch);
        let order = epoch_order(examples.len(), opts.seed, epoch);
        let idx = &order[k * cfg.batch_size..((k + 1) * cfg.batch_size).min(order.len())];
        let n_answer: usize = idx.iter().map(|&i| examples[i].answer_tokens()).sum();
        let mut rng = Rng::derive(opts.seed, &format!("sft-step-{}", s.steps));
        let mut acc: Vec<Option<Tensor>> = vec![None; lora.vars().len()];
        let mut last = None;
        let mut loss_sum = 0.0;
        for micro in idx.chunks(cfg.micro_batch) {
            let batch: Vec<&Example> = micro.iter().map(|&i| &examples[i]).collect();
            let (sum, _) = model.answer_loss(&batch, Some(&lora), Some(&mut rng))?;
            let loss = (sum / n_answer as f64)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            let g = loss.backward()?;
            for (a, v) in acc.iter_mut().zip(lora.vars()) {
                if let Some(gv) = g.get(v) {
                    let gv = gv.detach();
                    *a = Some(match a.take() {
                        Some(prev) => (prev + gv)?,
                        None => gv,
                    });
                }
            }
            last = Some(g);
            s.tokens += batch.iter().map(|e| e.tokens.len() as u64).sum::<u64>();
        }
        let mut g = last.expect("a step has at least one micro-batch");
        for (a, v) in acc.into_iter().zip(lora.vars()) {
            if let Some(a) = a {
                g.insert(v.as_tensor(), a);
            }
        }
        adam.step(lora.vars(), &g)?;
        drop(g);
        if !loss_sum.is_finite() {
            return Err(SftError::Invalid(format!("loss became {loss_sum} at step {}", s.steps + 1)));
        }
        s.answer_tokens += n_answer as u64;
        s.loss.push(loss_sum);
        s.steps += 1;
        s.seconds += t0.elapsed().as_secs_f64();
        this_call += 1;
        s.finished = s.steps == total;
        progress(s.steps, total, loss_sum);
        if s.finished || s.steps % cfg.checkpoint_every == 0 || opts.stop_after_steps.is_some_and(|n| this_call >= n) {
            write_checkpoint(&opts.dir, &State {
                version: 1,
                fingerprint: opts.fingerprint.clone(),
                seed: opts.seed,
                config: cfg.clone(),
                n_examples: examples.len(),
                step: s.steps,
                tensors: format!("ckpt-{:06}.safetensors", s.steps),
                summary: s.clone(),
            }, &lora, &adam)?;
        }
        if s.finished {
            lora.save(&opts.dir.join(ADAPTER), adapter_meta(opts, cfg, &s))?;
        }
        if opts.stop_after_steps.is_some_and(|n| this_call >= n) {
            break;
        }
    }
    Ok((lora, s))
}

fn adapter_meta(opts: &TrainOptions, cfg: &TrainConfig, s: &TrainSummary) -> serde_json::Value {
    serde_json::json!({ "fingerprint": opts.fingerprint, "seed": opts.seed, "train": cfg, "summary": s })
}

fn take(t: &HashMap<String, Tensor>, k: &str) -> Result<Tensor> {
    t.get(k).cloned().ok_or_else(|| SftError::Invalid(format!("checkpoint lacks tensor {k}")))
}

fn read_state(dir: &Path) -> Result<Option<State>> {
    let p = dir.join(STATE);
    if !p.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).map_err(|e| SftError::Io { path: p.clone(), source: e })?;
    serde_json::from_str(&text).map(Some).map_err(|e| SftError::Adapter { path: p, msg: format!("unreadable checkpoint state: {e}") })
}

/// Tensors first (temp + rename), then the state naming them (temp + rename), then older tensor files
/// are removed: a kill at any point leaves a loadable checkpoint.
fn write_checkpoint(dir: &Path, st: &State, lora: &Lora, adam: &Adam) -> Result<()> {
    let io = |p: &Path, e| SftError::Io { path: p.to_path_buf(), source: e };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut t = HashMap::new();
    for (i, (n, v)) in lora.names().iter().zip(lora.vars()).enumerate() {
        t.insert(format!("w.{n}"), v.as_tensor().clone());
        t.insert(format!("m.{n}"), adam.m[i].clone());
        t.insert(format!("v.{n}"), adam.v[i].clone());
    }
    let path = dir.join(&st.tensors);
    let tmp = dir.join(format!("{}.tmp", st.tensors));
    candle_core::safetensors::save(&t, &tmp)?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    let state = dir.join(STATE);
    let tmp = dir.join("state.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(st).expect("serialisable")).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &state).map_err(|e| io(&state, e))?;
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, e))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("ckpt-") && name != st.tensors {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}
