//! LoRA on a tiny random Llama (and a tiny random Gemma 3): gradients against finite differences, what a
//! fresh adapter and padding must not change, that a few AdamW steps drive a handful of examples' loss
//! down, and the adapter file.
use candle_core::{Device, Tensor};
use pulse_baselines::adam::Adam;
use pulse_data::Rng;
use pulse_sft::{Example, Family, Llama, LlamaConfig, Lora, LoraConfig, Proj};

fn tiny_cfg() -> LlamaConfig {
    // 4 query heads sharing 2 kv heads, so grouped-query attention is exercised
    LlamaConfig::llama(23, 16, 2, 4, 2, 24, 10_000.0, 1e-5)
}

/// Six layers, so both a sliding-window layer (rotary base 10,000) and the global sixth (the file's base)
/// are exercised; a head width (6) other than hidden / heads (4); the window (8) longer than every example.
fn tiny_gemma() -> LlamaConfig {
    LlamaConfig { family: Family::Gemma3, head_dim: Some(6), sliding_window: Some(8), rope_base: 1e6, layers: 6, ..tiny_cfg() }
}

fn examples() -> Vec<Example> {
    vec![
        Example { tokens: vec![1, 5, 9, 2, 7, 7, 3], answer_start: 4 },
        Example { tokens: vec![4, 11, 6], answer_start: 2 },
        Example { tokens: vec![8, 2, 19, 22, 13], answer_start: 1 },
    ]
}

/// An adapter on every projection with B randomised too (a fresh B is zero, which would leave A's
/// gradient at exactly zero and the check blind to it).
fn random_adapter(cfg: &LlamaConfig, dropout: f32) -> Lora {
    let lc = LoraConfig { rank: 3, alpha: 6.0, dropout, targets: Proj::ALL.to_vec() };
    let lora = Lora::new(lc, cfg, &mut Rng::new(2)).unwrap();
    let mut r = Rng::new(3);
    let mut t = lora.tensors().unwrap();
    for n in lora.names().iter().filter(|n| n.ends_with("lora_b")) {
        let v = t.get_mut(n).unwrap();
        let vals: Vec<f32> = (0..v.elem_count()).map(|_| r.normal() * 0.3).collect();
        *v = Tensor::from_vec(vals, v.dims(), &Device::Cpu).unwrap();
    }
    lora.set_tensors(&t, "").unwrap();
    lora
}

#[test]
fn lora_gradients_match_finite_differences() {
    finite_differences(tiny_cfg());
}

#[test]
fn gemma3_lora_gradients_match_finite_differences() {
    finite_differences(tiny_gemma());
}

fn finite_differences(cfg: LlamaConfig) {
    let model = Llama::random(cfg.clone(), &mut Rng::new(1)).unwrap();
    let lora = random_adapter(&cfg, 0.0);
    let ex = examples();
    let batch: Vec<&Example> = ex.iter().collect();
    let loss = |l: &Lora| model.answer_loss(&batch, Some(l), None).unwrap().0.to_scalar::<f32>().unwrap() as f64;
    let (sum, n) = model.answer_loss(&batch, Some(&lora), None).unwrap();
    assert_eq!(n, 3 + 1 + 4);
    let grads = sum.backward().unwrap();
    let mut dir = Rng::new(11);
    for (name, var) in lora.names().iter().zip(lora.vars()) {
        let g = grads.get(var).unwrap_or_else(|| panic!("{name}: no gradient at all"));
        let shape = var.as_tensor().dims().to_vec();
        let d: Vec<f32> = (0..var.elem_count()).map(|_| dir.normal()).collect();
        let dt = Tensor::from_vec(d, shape.as_slice(), &Device::Cpu).unwrap();
        let analytic = (g * &dt).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64;
        let orig = var.as_tensor().copy().unwrap();
        let central = |h: f64| {
            var.set(&(&orig + (&dt * h).unwrap()).unwrap()).unwrap();
            let lp = loss(&lora);
            var.set(&(&orig - (&dt * h).unwrap()).unwrap()).unwrap();
            let lm = loss(&lora);
            var.set(&orig).unwrap();
            (lp - lm) / (2.0 * h)
        };
        // Richardson: the central difference's h² term cancels (the random Gemma's gated GELU is curved
        // enough that a plain central difference at h = 1e-3 is off by 5% on some directions)
        let h = 1e-3;
        let numeric = (4.0 * central(h / 2.0) - central(h)) / 3.0;
        assert!(analytic.abs() > 1e-4, "{name}: gradient is zero ({analytic})");
        assert!((analytic - numeric).abs() < 5e-3 + 0.01 * numeric.abs(), "{name}: analytic {analytic} vs finite difference {numeric}");
    }
}

#[test]
fn fresh_adapter_and_padding_change_nothing() {
    fresh_and_padding(tiny_cfg());
}

#[test]
fn gemma3_fresh_adapter_and_padding_change_nothing_and_long_rows_are_refused() {
    let cfg = tiny_gemma();
    fresh_and_padding(cfg.clone());
    let model = Llama::random(cfg, &mut Rng::new(1)).unwrap();
    let long = Example { tokens: (0..9).collect(), answer_start: 4 };
    let e = model.answer_loss(&[&long], None, None).err().unwrap().to_string();
    assert!(e.contains("9 tokens exceed the model's sliding window of 8"), "{e}");
}

fn fresh_and_padding(cfg: LlamaConfig) {
    let model = Llama::random(cfg.clone(), &mut Rng::new(1)).unwrap();
    let lora = Lora::new(LoraConfig::default(), &cfg, &mut Rng::new(2)).unwrap();
    let ex = examples();
    let all: Vec<&Example> = ex.iter().collect();
    let base = model.answer_logprobs(&all, None).unwrap();
    let fresh = model.answer_logprobs(&all, Some(&lora)).unwrap();
    assert_eq!(base, fresh, "B starts at zero: the adapter must be a no-op");
    // each example alone (no padding) gives the same numbers as in the padded batch
    for (i, e) in ex.iter().enumerate() {
        let alone = model.answer_logprobs(&[e], None).unwrap();
        for (a, b) in alone[0].iter().zip(&base[i]) {
            assert!((a - b).abs() < 1e-5, "example {i}: {a} alone vs {b} batched");
        }
        assert_eq!(alone[0].len(), e.answer_tokens());
        assert!(alone[0].iter().all(|&p| p < 0.0 && p.is_finite()));
    }
    // a trained adapter does change them
    let moved = model.answer_logprobs(&all, Some(&random_adapter(&cfg, 0.0))).unwrap();
    assert_ne!(moved, base);
}

#[test]
fn a_few_adamw_steps_fit_a_handful_of_examples() {
    adamw_fits(tiny_cfg());
}

#[test]
fn gemma3_a_few_adamw_steps_fit_a_handful_of_examples() {
    adamw_fits(tiny_gemma());
}

fn adamw_fits(cfg: LlamaConfig) {
    let model = Llama::random(cfg.clone(), &mut Rng::new(1)).unwrap();
    let lora = Lora::new(LoraConfig { targets: Proj::ALL.to_vec(), ..LoraConfig::default() }, &cfg, &mut Rng::new(2)).unwrap();
    let ex = examples();
    let batch: Vec<&Example> = ex.iter().collect();
    let mean = |l: &Lora| {
        let (s, n) = model.answer_loss(&batch, Some(l), None).unwrap();
        s.to_scalar::<f32>().unwrap() / n as f32
    };
    let before = mean(&lora);
    let mut adam = Adam::new(lora.vars(), 1e-2, 0.9, 0.999, 0.0).unwrap();
    let mut rng = Rng::new(9);
    for _ in 0..60 {
        let (s, n) = model.answer_loss(&batch, Some(&lora), Some(&mut rng)).unwrap();
        let g = (s / n as f64).unwrap().backward().unwrap();
        adam.step(lora.vars(), &g).unwrap();
    }
    let after = mean(&lora);
    assert!(after < 0.25 * before, "loss {before} -> {after}");
}

#[test]
fn adapter_round_trips_and_refuses_the_wrong_model() {
    let cfg = tiny_cfg();
    let model = Llama::random(cfg.clone(), &mut Rng::new(1)).unwrap();
    let lora = random_adapter(&cfg, 0.05);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adapter.safetensors");
    lora.save(&path, serde_json::json!({ "base": "tiny" })).unwrap();
    let (back, meta) = Lora::load(&path, &cfg).unwrap();
    assert_eq!(meta["base"], "tiny");
    assert_eq!(back.cfg, lora.cfg);
    let ex = examples();
    let all: Vec<&Example> = ex.iter().collect();
    assert_eq!(model.answer_logprobs(&all, Some(&back)).unwrap(), model.answer_logprobs(&all, Some(&lora)).unwrap());
    let other = LlamaConfig { hidden: 8, ..cfg };
    let e = Lora::load(&path, &other).err().unwrap().to_string();
    assert!(e.contains("adapter.safetensors") && e.contains("shape"), "{e}");
    let bad = Example { tokens: vec![1, 2], answer_start: 2 };
    let e = model.answer_loss(&[&bad], None, None).err().unwrap().to_string();
    assert!(e.contains("answer starts at 2 of 2"), "{e}");
    let oov = Example { tokens: vec![1, 99], answer_start: 1 };
    assert!(model.answer_loss(&[&oov], None, None).err().unwrap().to_string().contains("vocabulary"));
}

fn train_cfg() -> pulse_sft::TrainConfig {
    pulse_sft::TrainConfig {
        lora: LoraConfig { targets: Proj::ALL.to_vec(), ..LoraConfig::default() },
        lr: 1e-2,
        epochs: 8,
        batch_size: 2,
        micro_batch: 1,
        checkpoint_every: 3,
        ..Default::default()
    }
}

/// Training lowers the loss; a run stopped after a few steps and restarted ends with the identical
/// adapter and loss curve; a finished run is reused; a changed config is refused; the adapter file
/// reproduces the trained scores.
#[test]
fn training_resumes_identically_and_saves_the_adapter() {
    let cfg = tiny_cfg();
    let model = Llama::random(cfg.clone(), &mut Rng::new(1)).unwrap();
    let ex = examples();
    let tc = train_cfg();
    let dir_a = tempfile::tempdir().unwrap();
    let opts = |d: &std::path::Path| pulse_sft::TrainOptions { seed: 4, dir: d.to_path_buf(), fingerprint: "tiny".into(), stop_after_steps: None };
    let mut seen = Vec::new();
    let (a, sa) = pulse_sft::train(&model, &ex, &tc, &opts(dir_a.path()), &mut |s, t, l| seen.push((s, t, l))).unwrap();
    assert_eq!((sa.steps, sa.total_steps, seen.len()), (16, 16, 16));
    assert!(sa.finished && sa.resumed_from_step.is_none());
    let first: f64 = sa.loss[..2].iter().sum();
    let last: f64 = sa.loss[14..].iter().sum();
    assert!(last < 0.5 * first, "loss curve {:?}", sa.loss);
    assert_eq!(sa.answer_tokens, 8 * 8);

    let dir_b = tempfile::tempdir().unwrap();
    let part = pulse_sft::TrainOptions { stop_after_steps: Some(5), ..opts(dir_b.path()) };
    let (_, sp) = pulse_sft::train(&model, &ex, &tc, &part, &mut |_, _, _| {}).unwrap();
    assert_eq!((sp.steps, sp.finished), (5, false));
    assert!(!dir_b.path().join(pulse_sft::train::ADAPTER).exists());
    let (b, sb) = pulse_sft::train(&model, &ex, &tc, &opts(dir_b.path()), &mut |_, _, _| {}).unwrap();
    assert_eq!(sb.resumed_from_step, Some(5));
    assert_eq!(sb.loss, sa.loss);
    let all: Vec<&Example> = ex.iter().collect();
    let (pa, pb) = (model.answer_logprobs(&all, Some(&a)).unwrap(), model.answer_logprobs(&all, Some(&b)).unwrap());
    assert_eq!(pa, pb);
    // the saved adapter scores the same
    let (c, meta) = Lora::load(&dir_b.path().join(pulse_sft::train::ADAPTER), &cfg).unwrap();
    assert_eq!(model.answer_logprobs(&all, Some(&c)).unwrap(), pa);
    assert_eq!(meta["summary"]["steps"], 16);
    // finished: reused without training
    let (_, again) = pulse_sft::train(&model, &ex, &tc, &opts(dir_b.path()), &mut |_, _, _| panic!("trained again")).unwrap();
    assert_eq!(again.loss, sa.loss);
    assert_eq!(again.resumed_from_step, Some(5), "reuse keeps where training resumed from");
    let (_, again_a) = pulse_sft::train(&model, &ex, &tc, &opts(dir_a.path()), &mut |_, _, _| panic!("trained again")).unwrap();
    assert_eq!(again_a, sa, "reusing a run trained in one go leaves its summary as it was");
    let e = pulse_sft::train(&model, &ex, &pulse_sft::TrainConfig { lr: 1e-3, ..tc.clone() }, &opts(dir_b.path()), &mut |_, _, _| {})
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("state.json") && e.contains("another configuration"), "{e}");
}
