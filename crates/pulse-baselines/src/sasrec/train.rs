//! Training with early stopping on validation NDCG@10 (full catalogue, history not masked), a
//! checkpoint after every epoch (weights, Adam state, RNG state, best weights, counters), and
//! resumption from it: a run killed at any point and restarted produces the same model as one that was
//! never interrupted.
use super::{Loss, SasRec, SasRecConfig};
use crate::adam::Adam;
use crate::{BaselineError, Result};
use candle_core::Tensor;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pulse_data::{Rng, Split, Stage};
use pulse_eval::{evaluate, metrics_from_ranks, Protocol};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    pub seed: u64,
    /// Where checkpoints go; a matching checkpoint there is resumed (or, if finished, reused).
    pub checkpoint_dir: Option<PathBuf>,
    /// Hide the progress bar and per-epoch log lines.
    pub quiet: bool,
    /// Stop (without marking the run finished) after this many epochs in this call — for tests of
    /// resumption.
    pub stop_after_epochs: Option<usize>,
    /// Item texts / alignment dimension the config needs (see [`super::ModelInputs`]).
    pub inputs: super::ModelInputs,
    /// PULSE-TS: rationale embedding per split-user index (only users that have one).
    pub align: HashMap<usize, Vec<f32>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    pub epochs: usize,
    pub best_epoch: usize,
    pub best_valid_ndcg10: f64,
    pub finished: bool,
    /// Wall seconds of each epoch's training pass (validation excluded).
    pub epoch_seconds: Vec<f64>,
    pub valid_seconds: f64,
    pub steps: u64,
    pub resumed_from_epoch: Option<usize>,
}

#[derive(Serialize, Deserialize)]
struct State {
    version: u32,
    fingerprint: String,
    seed: u64,
    n_items: usize,
    config: SasRecConfig,
    epoch: usize,
    step: u64,
    rng: [u64; 4],
    best_epoch: usize,
    best_ndcg: f64,
    bad_evals: usize,
    finished: bool,
    tensors: String,
    epoch_seconds: Vec<f64>,
    valid_seconds: f64,
}

const STATE: &str = "state.json";

/// What a checkpoint's training code was. Bump it with any change to SASRec's model or training that changes
/// what a run learns: a checkpoint of another version is then refused (naming both versions) instead of
/// silently reused, the default checkpoint folder gets a new name, and similar-user lists computed from
/// an older checkpoint no longer match their key and are computed again.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Trains SASRec on `split`'s training prefixes. Returns the model with the best validation weights.
pub fn train(split: &Split, cfg: &SasRecConfig, opts: &TrainOptions) -> Result<(SasRec, TrainSummary)> {
    cfg.validate()?;
    let mut rng = Rng::derive(opts.seed, "sasrec");
    let model = SasRec::with_inputs(cfg.clone(), split.n_items, &opts.inputs, &mut rng)?;
    let mut adam = Adam::new(model.vars(), cfg.lr, 0.9, cfg.beta2, cfg.weight_decay)?;
    let mut best: HashMap<String, Tensor> = model.tensors();
    let (mut epoch, mut best_epoch, mut best_ndcg, mut bad) = (0usize, 0usize, f64::NEG_INFINITY, 0usize);
    let (mut epoch_seconds, mut valid_seconds) = (Vec::new(), 0.0);
    let mut resumed = None;

    if let Some(dir) = &opts.checkpoint_dir {
        if let Some(st) = read_state(dir)? {
            check_compatible(&st, dir, split, cfg, opts.seed)?;
            let t = candle_core::safetensors::load(dir.join(&st.tensors), &Device::Cpu)?;
            model.set_tensors(&t, "w.")?;
            for (i, n) in model.names().iter().enumerate() {
                adam.m[i] = take(&t, &format!("m.{n}"))?;
                adam.v[i] = take(&t, &format!("v.{n}"))?;
                best.insert(n.clone(), take(&t, &format!("best.{n}"))?);
            }
            adam.step = st.step;
            rng = Rng::from_state(st.rng);
            (epoch, best_epoch, best_ndcg, bad) = (st.epoch, st.best_epoch, st.best_ndcg, st.bad_evals);
            (epoch_seconds, valid_seconds) = (st.epoch_seconds, st.valid_seconds);
            resumed = Some(epoch);
            if st.finished {
                model.set_tensors(&best, "")?;
                let s = summary(epoch, best_epoch, best_ndcg, true, epoch_seconds, valid_seconds, adam.step, resumed);
                return Ok((model, s));
            }
            if !opts.quiet {
                tracing::info!("resuming sasrec from {} at epoch {epoch}", dir.display());
            }
        }
    }

    // Users that provide at least one training target, and their item sets for negative sampling.
    let trainable: Vec<usize> = (0..split.users.len()).filter(|&u| split.users[u].train.len() >= 2).collect();
    if trainable.is_empty() {
        return Err(BaselineError::Invalid("no user has 2+ training items".into()));
    }
    let seen: Vec<HashSet<u32>> = if cfg.loss == Loss::Bce {
        split.users.iter().map(|u| u.train.iter().copied().collect()).collect()
    } else {
        Vec::new()
    };
    // A fixed validation sample (drawn from the seed, independent of training progress).
    let valid_sample: Option<Vec<usize>> = (cfg.valid_users > 0 && cfg.valid_users < split.users.len()).then(|| {
        let mut idx: Vec<usize> = (0..split.users.len()).collect();
        Rng::derive(opts.seed, "sasrec-valid").shuffle(&mut idx);
        idx.truncate(cfg.valid_users);
        idx.sort_unstable();
        idx
    });

    let steps_per_epoch = trainable.len().div_ceil(cfg.batch_size);
    let pb = if opts.quiet { ProgressBar::hidden() } else { ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()) };
    pb.set_style(
        ProgressStyle::with_template("sasrec epoch {prefix} [{bar:30}] {pos}/{len} loss {msg} {per_sec} eta {eta}")
            .unwrap()
            .progress_chars("=> "),
    );
    let mut epochs_this_call = 0;
    let mut finished = false;
    while epoch < cfg.max_epochs {
        let t0 = Instant::now();
        // Length-bucketed batches: shuffle, stable-sort by length, cut into batches, shuffle the
        // batches. Batches then pad to similar lengths (most sequences are short), so little compute
        // goes to padding, while batch order and membership stay random.
        let mut order = trainable.clone();
        rng.shuffle(&mut order);
        order.sort_by_key(|&u| split.users[u].train.len().min(cfg.max_len + 1));
        let mut batches: Vec<&[usize]> = order.chunks(cfg.batch_size).collect();
        rng.shuffle(&mut batches);
        pb.set_length(steps_per_epoch as u64);
        pb.set_position(0);
        pb.set_prefix(format!("{}", epoch + 1));
        let mut loss_sum = 0.0;
        for chunk in batches {
            let seqs: Vec<&[u32]> = chunk.iter().map(|&u| split.users[u].train.as_slice()).collect();
            let n_items = split.n_items as u64;
            let mut neg = |row: usize, r: &mut Rng| loop {
                let j = r.below(n_items) as u32;
                if !seen[chunk[row]].contains(&j) {
                    break j;
                }
            };
            let align: Vec<(usize, &[f32])> =
                chunk.iter().enumerate().filter_map(|(row, u)| opts.align.get(u).map(|t| (row, t.as_slice()))).collect();
            let loss = model.loss_aligned(&seqs, &align, &mut rng, &mut neg)?;
            let grads = loss.backward()?;
            adam.step(model.vars(), &grads)?;
            let lv = loss.to_scalar::<f32>()? as f64;
            if !lv.is_finite() {
                return Err(BaselineError::Invalid(format!("sasrec loss became {lv} at epoch {}", epoch + 1)));
            }
            loss_sum += lv;
            pb.inc(1);
            pb.set_message(format!("{:.4}", loss_sum / pb.position() as f64));
        }
        epoch_seconds.push(t0.elapsed().as_secs_f64());
        epoch += 1;
        epochs_this_call += 1;
        if epoch % cfg.eval_every == 0 || epoch == cfg.max_epochs {
            let t1 = Instant::now();
            let ranks = evaluate(
                &model,
                split,
                Stage::Valid,
                Protocol::Full { mask_history: false },
                None,
                valid_sample.as_deref(),
                &mut |_, _| {},
            )
            .map_err(|e| BaselineError::Invalid(e.to_string()))?;
            let ndcg = metrics_from_ranks(&ranks, &["ndcg@10".to_string()])["ndcg@10"];
            valid_seconds += t1.elapsed().as_secs_f64();
            if ndcg > best_ndcg {
                (best_ndcg, best_epoch, bad) = (ndcg, epoch, 0);
                best = model.tensors();
            } else {
                bad += 1;
            }
            if !opts.quiet {
                pb.suspend(|| {
                    tracing::info!(
                        "sasrec epoch {epoch}: loss {:.4} valid ndcg@10 {ndcg:.4} (best {best_ndcg:.4} @ {best_epoch}) {:.1}s",
                        loss_sum / steps_per_epoch as f64,
                        epoch_seconds.last().unwrap()
                    )
                });
            }
            if bad >= cfg.patience {
                finished = true;
            }
        }
        if epoch >= cfg.max_epochs {
            finished = true;
        }
        if let Some(dir) = &opts.checkpoint_dir {
            let st = State {
                version: CHECKPOINT_VERSION,
                fingerprint: split.fingerprint.clone(),
                seed: opts.seed,
                n_items: split.n_items,
                config: cfg.clone(),
                epoch,
                step: adam.step,
                rng: rng.state(),
                best_epoch,
                best_ndcg,
                bad_evals: bad,
                finished,
                tensors: format!("ckpt-{epoch:04}.safetensors"),
                epoch_seconds: epoch_seconds.clone(),
                valid_seconds,
            };
            write_checkpoint(dir, &st, &model, &adam, &best)?;
        }
        if finished || opts.stop_after_epochs.is_some_and(|n| epochs_this_call >= n) {
            break;
        }
    }
    pb.finish_and_clear();
    model.set_tensors(&best, "")?;
    Ok((model, summary(epoch, best_epoch, best_ndcg, finished, epoch_seconds, valid_seconds, adam.step, resumed)))
}

use candle_core::Device;

#[allow(clippy::too_many_arguments)]
fn summary(
    epochs: usize,
    best_epoch: usize,
    best: f64,
    finished: bool,
    epoch_seconds: Vec<f64>,
    valid_seconds: f64,
    steps: u64,
    resumed_from_epoch: Option<usize>,
) -> TrainSummary {
    TrainSummary { epochs, best_epoch, best_valid_ndcg10: best, finished, epoch_seconds, valid_seconds, steps, resumed_from_epoch }
}

fn take(t: &HashMap<String, Tensor>, k: &str) -> Result<Tensor> {
    t.get(k).cloned().ok_or_else(|| BaselineError::Invalid(format!("checkpoint lacks tensor {k}")))
}

fn read_state(dir: &Path) -> Result<Option<State>> {
    let p = dir.join(STATE);
    if !p.exists() {
        return Ok(None);
    }
    let s = std::fs::read_to_string(&p).map_err(|e| BaselineError::Io { path: p.clone(), source: e })?;
    serde_json::from_str(&s)
        .map(Some)
        .map_err(|e| BaselineError::Checkpoint { path: p, msg: format!("unreadable checkpoint state: {e}") })
}

fn check_compatible(st: &State, dir: &Path, split: &Split, cfg: &SasRecConfig, seed: u64) -> Result<()> {
    let why = if st.version != CHECKPOINT_VERSION {
        Some(format!("was written by SASRec checkpoint version {}, this build writes version {CHECKPOINT_VERSION}", st.version))
    } else if st.fingerprint != split.fingerprint {
        Some(format!("was trained on split {}, not {}", st.fingerprint, split.fingerprint))
    } else if &st.config != cfg {
        Some("was trained with another configuration".to_string())
    } else if st.seed != seed {
        Some(format!("was trained with seed {}, not {seed}", st.seed))
    } else {
        None
    };
    match why {
        Some(w) => Err(BaselineError::Checkpoint {
            path: dir.join(STATE),
            msg: format!("checkpoint {w}; use another --checkpoint-dir or delete it"),
        }),
        None => Ok(()),
    }
}

/// Tensors first (temp + rename), then the state that names them (temp + rename), then old tensor
/// files are removed: a kill at any point leaves a consistent, loadable checkpoint.
fn write_checkpoint(dir: &Path, st: &State, model: &SasRec, adam: &Adam, best: &HashMap<String, Tensor>) -> Result<()> {
    let io = |p: &Path, e| BaselineError::Io { path: p.to_path_buf(), source: e };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut t: HashMap<String, Tensor> = HashMap::new();
    for (i, (n, v)) in model.names().iter().zip(model.vars()).enumerate() {
        t.insert(format!("w.{n}"), v.as_tensor().clone());
        t.insert(format!("m.{n}"), adam.m[i].clone());
        t.insert(format!("v.{n}"), adam.v[i].clone());
        t.insert(format!("best.{n}"), best[n].clone());
    }
    let path = dir.join(&st.tensors);
    let tmp = dir.join(format!("{}.tmp", st.tensors));
    candle_core::safetensors::save(&t, &tmp)?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    let json = serde_json::to_string_pretty(st).expect("serialisable");
    pulse_eval::write_atomic(&dir.join(STATE), json.as_bytes()).map_err(|e| io(&dir.join(STATE), e))?;
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, e))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("ckpt-") && name != st.tensors {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}
