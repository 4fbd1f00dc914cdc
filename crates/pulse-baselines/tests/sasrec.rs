use candle_core::{Device, Tensor};
use pulse_baselines::sasrec::{train, Activation, ItemInput, ModelInputs, SasRec, SasRecConfig, TrainOptions};
use pulse_baselines::{Loss, Pop};
use pulse_data::{Rng, Split, SplitUser, Stage};
use pulse_eval::{evaluate, metrics_from_ranks, Protocol, Recommender};

fn tiny(loss: Loss) -> SasRecConfig {
    SasRecConfig {
        max_len: 6,
        hidden: 8,
        blocks: 2,
        heads: 2,
        dropout: 0.0,
        // finite differences are only valid where the function is smooth: ReLU's kinks make them
        // wrong whenever a step crosses one, so the check runs on the GELU variant (ReLU's own
        // backward is candle's and is tested away from 0 below)
        activation: Activation::Gelu,
        loss,
        batch_size: 4,
        ..Default::default()
    }
}

/// Every parameter tensor gets a non-zero gradient that matches a central finite difference along a
/// random direction (this catches candle ops that silently drop gradients).
fn check_gradients(loss: Loss) {
    check_gradients_of(tiny(loss), &ModelInputs::default(), &[]);
}

fn check_gradients_of(cfg: SasRecConfig, inputs: &ModelInputs, align: &[(usize, &[f32])]) {
    let mut rng = Rng::new(5);
    let m = SasRec::with_inputs(cfg, 9, inputs, &mut rng).unwrap();
    // sequences of different lengths, so padding and masking are exercised
    let seqs: Vec<Vec<u32>> = vec![vec![1, 2, 3, 4, 5, 6, 7, 8], vec![3, 0], vec![8, 7, 6], vec![2, 2, 5, 1]];
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let eval = |m: &SasRec| -> f64 {
        let mut r = Rng::new(77); // same negatives every time
        let mut neg = |_row: usize, r: &mut Rng| r.below(9) as u32;
        m.loss_aligned(&refs, align, &mut r, &mut neg).unwrap().to_scalar::<f32>().unwrap() as f64
    };
    let mut r = Rng::new(77);
    let mut neg = |_row: usize, r: &mut Rng| r.below(9) as u32;
    let grads = m.loss_aligned(&refs, align, &mut r, &mut neg).unwrap().backward().unwrap();
    let mut dir_rng = Rng::new(11);
    for (name, var) in m.names().iter().zip(m.vars()) {
        let g = grads.get(var).unwrap_or_else(|| panic!("{name}: no gradient at all"));
        let shape = var.as_tensor().dims().to_vec();
        let n: usize = shape.iter().product();
        let d: Vec<f32> = (0..n).map(|_| dir_rng.normal()).collect();
        let dt = Tensor::from_vec(d, shape.as_slice(), &Device::Cpu).unwrap();
        let analytic = (g * &dt).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64;
        let orig = var.as_tensor().copy().unwrap();
        let h = 1e-3;
        var.set(&(&orig + (&dt * h).unwrap()).unwrap()).unwrap();
        let lp = eval(&m);
        var.set(&(&orig - (&dt * h).unwrap()).unwrap()).unwrap();
        let lm = eval(&m);
        var.set(&orig).unwrap();
        let numeric = (lp - lm) / (2.0 * h);
        // the key bias adds the same value to every logit of a query row: softmax ignores it, so
        // its gradient is exactly zero by construction
        if !name.ends_with(".bk") {
            assert!(analytic.abs() > 1e-5, "{name}: gradient is zero ({analytic})");
        }
        assert!(
            (analytic - numeric).abs() < 1e-3 + 0.03 * numeric.abs(),
            "{name}: analytic {analytic} vs finite difference {numeric}"
        );
    }
}

#[test]
fn relu_gradient_away_from_zero() {
    let x = candle_core::Var::from_tensor(&Tensor::new(&[-1.5f32, -0.2, 0.3, 2.0], &Device::Cpu).unwrap()).unwrap();
    let g = x.as_tensor().relu().unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec1::<f32>().unwrap(), [0.0, 0.0, 1.0, 1.0]);
}

#[test]
fn ce_gradients_match_finite_differences() {
    check_gradients(Loss::Ce);
}

#[test]
fn bce_gradients_match_finite_differences() {
    check_gradients(Loss::Bce);
}

#[test]
fn sampled_softmax_gradients_match_finite_differences() {
    // 4 of the 9 items drawn per batch, so masking of drawn targets is exercised too
    check_gradients_of(SasRecConfig { negatives: 4, ..tiny(Loss::Sampled) }, &ModelInputs::default(), &[]);
    let text = random_rows(9, 5, 24).concat();
    let inputs = ModelInputs { item_text: Some(Tensor::from_vec(text, (9, 5), &Device::Cpu).unwrap()), align_dim: 0 };
    check_gradients_of(SasRecConfig { negatives: 3, items: ItemInput::Both, ..tiny(Loss::Sampled) }, &inputs, &[]);
}

/// With at least as many negatives as items, the sampled softmax is exactly the full cross-entropy;
/// with fewer it is a different (smaller) number that depends on the draw.
#[test]
fn sampled_softmax_with_the_whole_catalogue_is_the_full_cross_entropy() {
    let seqs: Vec<Vec<u32>> = vec![vec![1, 2, 3, 4, 5, 6, 7, 8], vec![3, 0], vec![8, 7, 6], vec![2, 2, 5, 1]];
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let loss_of = |cfg: SasRecConfig, seed: u64| {
        let m = SasRec::new(cfg, 9, &mut Rng::new(5)).unwrap();
        let mut neg = |_row: usize, r: &mut Rng| r.below(9) as u32;
        m.loss(&refs, &mut Rng::new(seed), &mut neg).unwrap().to_scalar::<f32>().unwrap()
    };
    let ce = loss_of(tiny(Loss::Ce), 1);
    for k in [9, 50] {
        let s = loss_of(SasRecConfig { negatives: k, ..tiny(Loss::Sampled) }, 1);
        assert!((s - ce).abs() < 1e-5, "negatives {k}: {s} vs full {ce}");
    }
    let part: Vec<f32> = (1..4).map(|seed| loss_of(SasRecConfig { negatives: 3, ..tiny(Loss::Sampled) }, seed)).collect();
    assert!(part.iter().all(|&p| p < ce - 1e-3), "{part:?} vs {ce}");
    assert!(part[0] != part[1] || part[1] != part[2], "draws must differ: {part:?}");
}

fn random_rows(n: usize, d: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| (0..d).map(|_| r.normal()).collect()).collect()
}

/// The text-item variant (frozen item texts through a learned map) with the PULSE-TS alignment term:
/// every parameter, incl. the text map and the alignment head, gets the right gradient.
#[test]
fn text_items_and_alignment_gradients_match_finite_differences() {
    let text = random_rows(9, 5, 21).concat();
    let inputs = ModelInputs { item_text: Some(Tensor::from_vec(text, (9, 5), &Device::Cpu).unwrap()), align_dim: 4 };
    let targets = random_rows(3, 4, 22);
    let align: Vec<(usize, &[f32])> = vec![(0, &targets[0]), (2, &targets[1]), (3, &targets[2])];
    for (loss, items) in [(Loss::Ce, ItemInput::Text), (Loss::Bce, ItemInput::Text), (Loss::Ce, ItemInput::Both)] {
        let cfg = SasRecConfig { items, align_weight: 0.7, align_temperature: 0.5, ..tiny(loss) };
        check_gradients_of(cfg, &inputs, &align);
    }
}

/// The alignment term is added only when switched on and when a batch has two rationales to contrast;
/// missing inputs are refused.
#[test]
fn alignment_term_is_added_only_when_it_applies() {
    let targets = random_rows(2, 4, 23);
    let align: Vec<(usize, &[f32])> = vec![(0, &targets[0]), (1, &targets[1])];
    let seqs: Vec<Vec<u32>> = vec![vec![1, 2, 3], vec![4, 5, 6, 7]];
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let loss_of = |cfg: SasRecConfig, align: &[(usize, &[f32])]| {
        let m = SasRec::with_inputs(cfg, 9, &ModelInputs { item_text: None, align_dim: 4 }, &mut Rng::new(5)).unwrap();
        let mut neg = |_row: usize, r: &mut Rng| r.below(9) as u32;
        m.loss_aligned(&refs, align, &mut Rng::new(1), &mut neg).unwrap().to_scalar::<f32>().unwrap()
    };
    let plain = loss_of(tiny(Loss::Ce), &align);
    let on = SasRecConfig { align_weight: 1.0, ..tiny(Loss::Ce) };
    assert_eq!(loss_of(on.clone(), &align[..1]), plain, "one rationale: nothing to contrast");
    let with = loss_of(on.clone(), &align);
    // InfoNCE over 2 rows is at least ~0 and at most unbounded; here it must add a positive amount.
    assert!(with > plain + 1e-3, "{with} vs {plain}");
    let e = SasRec::with_inputs(on, 9, &ModelInputs::default(), &mut Rng::new(5)).err().unwrap().to_string();
    assert!(e.contains("dimension"), "{e}");
    let e = SasRec::with_inputs(SasRecConfig { items: ItemInput::Text, ..tiny(Loss::Ce) }, 9, &ModelInputs::default(), &mut Rng::new(5))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("text"), "{e}");
}

/// Synthetic data with a learnable rule: after item i comes item (i + 1) mod n. 200 users, random
/// starting points and lengths.
fn successor_split(n_items: usize) -> Split {
    let mut r = Rng::new(3);
    let users = (0..200)
        .map(|u| {
            let start = r.below(n_items as u64) as u32;
            let len = 4 + r.below(6) as usize;
            let seq: Vec<u32> = (0..len).map(|k| (start + k as u32) % n_items as u32).collect();
            SplitUser { user: u, train: seq[..len - 2].to_vec(), valid: seq[len - 2], test: seq[len - 1] }
        })
        .collect();
    Split { n_items, users, dropped_short: 0, fingerprint: "successor".into() }
}

#[test]
fn learns_a_successor_rule_and_beats_popularity() {
    let split = successor_split(30);
    for loss in [Loss::Ce, Loss::Bce] {
        let cfg = SasRecConfig {
            max_len: 10,
            hidden: 16,
            dropout: 0.1,
            loss,
            lr: 5e-3,
            batch_size: 32,
            max_epochs: 60,
            patience: 60,
            ..Default::default()
        };
        let (m, s) = train(&split, &cfg, &TrainOptions { seed: 1, quiet: true, ..Default::default() }).unwrap();
        let p = Protocol::Full { mask_history: false };
        let ranks = evaluate(&m, &split, Stage::Test, p, None, None, &mut |_, _| {}).unwrap();
        let hr = metrics_from_ranks(&ranks, &["hr@1".into()])["hr@1"];
        let pop = evaluate(&Pop::fit(&split), &split, Stage::Test, p, None, None, &mut |_, _| {}).unwrap();
        let pop_hr = metrics_from_ranks(&pop, &["hr@1".into()])["hr@1"];
        // one sampled negative per position (BCE) learns more slowly than the full softmax
        let bar = if loss == Loss::Ce { 0.9 } else { 0.5 };
        assert!(hr > bar, "{loss:?}: hr@1 {hr} (valid ndcg {})", s.best_valid_ndcg10);
        assert!(pop_hr < 0.2, "pop {pop_hr}");
        // user representations: one row of `hidden` floats per history
        let reps = m.user_repr(&[&[1, 2, 3], &[4]]).unwrap();
        assert_eq!((reps.len(), reps[0].len()), (2, 16));
    }
}

fn weights(m: &SasRec) -> Vec<Vec<f32>> {
    m.vars().iter().map(|v| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
}

#[test]
fn resume_after_interruption_gives_the_identical_model() {
    let split = successor_split(30);
    let cfg = SasRecConfig { max_len: 10, hidden: 8, batch_size: 32, max_epochs: 6, patience: 10, ..Default::default() };
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let straight = TrainOptions { seed: 9, checkpoint_dir: Some(dir_a.path().into()), quiet: true, stop_after_epochs: None, ..Default::default() };
    let (ma, sa) = train(&split, &cfg, &straight).unwrap();
    assert!(sa.finished && sa.epochs == 6);

    // interrupted twice, resumed each time
    let mut opts = TrainOptions { seed: 9, checkpoint_dir: Some(dir_b.path().into()), quiet: true, stop_after_epochs: Some(2), ..Default::default() };
    let (_, s1) = train(&split, &cfg, &opts).unwrap();
    assert!(!s1.finished && s1.epochs == 2);
    let (_, s2) = train(&split, &cfg, &opts).unwrap();
    assert_eq!((s2.epochs, s2.resumed_from_epoch), (4, Some(2)));
    opts.stop_after_epochs = None;
    let (mb, sb) = train(&split, &cfg, &opts).unwrap();
    assert!(sb.finished);
    assert_eq!(sb.best_valid_ndcg10, sa.best_valid_ndcg10);
    assert_eq!(weights(&ma), weights(&mb));
    // a finished checkpoint is reused without training
    let (mc, sc) = train(&split, &cfg, &opts).unwrap();
    assert_eq!(sc.resumed_from_epoch, Some(6));
    assert_eq!(weights(&mc), weights(&ma));
    // exactly one tensor file is kept
    let n = std::fs::read_dir(dir_b.path()).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("ckpt-")).count();
    assert_eq!(n, 1);

    // another seed or config is refused, naming the checkpoint
    let e = train(&split, &cfg, &TrainOptions { seed: 10, ..opts.clone() }).err().unwrap().to_string();
    assert!(e.contains("state.json: checkpoint was trained with seed 9, not 10"), "{e}");
    let e = train(&split, &SasRecConfig { hidden: 16, ..cfg.clone() }, &opts).err().unwrap().to_string();
    assert!(e.contains("another configuration"), "{e}");
    // so is a checkpoint written by other training code (another version), naming both versions
    let state = dir_b.path().join("state.json");
    let mut st: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(st["version"], pulse_baselines::sasrec::CHECKPOINT_VERSION);
    st["version"] = 99.into();
    std::fs::write(&state, serde_json::to_vec(&st).unwrap()).unwrap();
    let e = train(&split, &cfg, &opts).err().unwrap().to_string();
    assert!(e.contains(&format!("state.json: checkpoint was written by SASRec checkpoint version 99, this build writes version {}", pulse_baselines::sasrec::CHECKPOINT_VERSION)), "{e}");
}

#[test]
fn saved_model_scores_identically() {
    let split = successor_split(12);
    let cfg = SasRecConfig { max_len: 10, hidden: 8, batch_size: 32, max_epochs: 2, ..Default::default() };
    let (m, _) = train(&split, &cfg, &TrainOptions { seed: 2, quiet: true, ..Default::default() }).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("model.safetensors");
    m.save(&p).unwrap();
    let m2 = SasRec::load(&p).unwrap();
    let h: Vec<&[u32]> = vec![&[1, 2, 3], &[5, 6]];
    assert_eq!(m.score_all(&h).unwrap(), m2.score_all(&h).unwrap());
    // candidate scoring agrees with full scoring
    let full = m.score_all(&h).unwrap();
    let c = m.score_candidates(&h, &[&[4, 0], &[7, 3]]).unwrap();
    assert!((c[0][0] - full[0][4]).abs() < 1e-5 && (c[1][1] - full[1][3]).abs() < 1e-5);
}

#[test]
fn scores_do_not_depend_on_batch_company() {
    let split = successor_split(20);
    let cfg = SasRecConfig { max_len: 8, hidden: 8, batch_size: 32, max_epochs: 1, ..Default::default() };
    let (m, _) = train(&split, &cfg, &TrainOptions { seed: 4, quiet: true, ..Default::default() }).unwrap();
    let long: Vec<u32> = (0..12).map(|i| i % 20).collect();
    let short: &[u32] = &[3, 4];
    let alone = m.score_all(&[short]).unwrap();
    // 70 histories (more than one inference group), the short one among long ones
    let mut batch: Vec<&[u32]> = vec![long.as_slice(); 70];
    batch[37] = short;
    let together = m.score_all(&batch).unwrap();
    for (a, b) in alone[0].iter().zip(&together[37]) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    assert_eq!(together[0], together[69]);
    // truncation to max_len: a longer history scores like its last max_len items
    let longer: Vec<u32> = (0..30).map(|i| i % 20).collect();
    let cut = &longer[longer.len() - 8..];
    let (x, y) = (m.score_all(&[&longer]).unwrap(), m.score_all(&[cut]).unwrap());
    assert!(x[0].iter().zip(&y[0]).all(|(a, b)| (a - b).abs() < 1e-4));
}

/// Zero-shot transfer: a text-only model moved onto another catalogue scores an item exactly as it scored
/// the item with the same text in its own catalogue, wherever that item sits; item-ID models and texts from
/// another encoder (another width) are refused.
#[test]
fn a_text_only_model_transfers_to_another_catalogue_through_item_texts() {
    let a = random_rows(9, 5, 31);
    let inputs = ModelInputs { item_text: Some(Tensor::from_vec(a.concat(), (9, 5), &Device::Cpu).unwrap()), align_dim: 4 };
    let cfg = SasRecConfig { items: ItemInput::Text, align_weight: 0.7, ..tiny(Loss::Ce) };
    let m = SasRec::with_inputs(cfg, 9, &inputs, &mut Rng::new(5)).unwrap();
    // the new catalogue: the old items in another order (new id j holds old item perm[j]) and 3 new ones
    let perm: [usize; 9] = [4, 8, 0, 7, 2, 6, 1, 5, 3];
    let mut b: Vec<Vec<f32>> = perm.iter().map(|&o| a[o].clone()).collect();
    b.extend(random_rows(3, 5, 32));
    let t = m.transfer(&Tensor::from_vec(b.concat(), (12, 5), &Device::Cpu).unwrap()).unwrap();
    assert_eq!(t.n_items, 12);
    let new_id = |old: u32| perm.iter().position(|&o| o == old as usize).unwrap() as u32;
    let old_hist: Vec<u32> = vec![3, 1, 7, 7, 2];
    let new_hist: Vec<u32> = old_hist.iter().map(|&o| new_id(o)).collect();
    let s_old = m.scores(&[&old_hist]).unwrap().to_vec2::<f32>().unwrap().remove(0);
    let s_new = t.scores(&[&new_hist]).unwrap().to_vec2::<f32>().unwrap().remove(0);
    assert_eq!(s_new.len(), 12);
    for (old, s) in s_old.iter().enumerate() {
        let n = s_new[new_id(old as u32) as usize];
        assert!((n - s).abs() < 1e-5, "item {old}: {n} vs {s}");
    }
    let e = t.transfer(&Tensor::zeros((4, 6), candle_core::DType::F32, &Device::Cpu).unwrap()).err().unwrap().to_string();
    assert!(e.contains("text_w"), "{e}");
    let ids = SasRec::new(tiny(Loss::Ce), 9, &mut Rng::new(5)).unwrap();
    let e = ids.transfer(&Tensor::from_vec(b.concat(), (12, 5), &Device::Cpu).unwrap()).err().unwrap().to_string();
    assert!(e.contains("text-only"), "{e}");
}
