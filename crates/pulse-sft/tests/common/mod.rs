//! What the real-weights tests (SmolLM2, Gemma 3) share: the candle forward against the llama.cpp engine.
#![allow(dead_code)]
use pulse_sft::{Example, Llama, Lora, LoraConfig};
use pulse_slm::{ChatMessage, EngineOptions, Generator, LlamaEngine, Prompt};
use std::path::Path;

pub fn engine(path: &Path) -> LlamaEngine {
    let opts = EngineOptions { weights: pulse_slm::Weights::F16, threads: 2, max_seqs: 4, n_batch: 512, ctx_per_seq: 512, ..Default::default() };
    LlamaEngine::load(path, opts).unwrap()
}

/// Each answer appended to the prompt's tokens, exactly as the engine scores it.
pub fn examples(engine: &LlamaEngine, prompt: &Prompt, answers: &[&str]) -> Vec<Example> {
    let ptoks = engine.prompt_tokens(prompt).unwrap();
    answers
        .iter()
        .map(|a| {
            let mut tokens = ptoks.clone();
            tokens.extend(engine.continuation_tokens(a));
            Example { tokens, answer_start: ptoks.len() }
        })
        .collect()
}

/// An adapter written as GGUF (under the model's own architecture name) and attached to the llama.cpp
/// engine gives the log-likelihoods the candle forward gives with the same adapter (within `per_token` nats
/// per answer token + `slack`): a trained model ranks at llama.cpp speed.
pub fn gguf_adapter_agrees(path: &Path, per_token: f64, slack: f64) {
    let model = Llama::load_gguf(path).unwrap();
    // an adapter on all four attention projections with non-zero B, big enough to move the numbers
    let lora = Lora::new(LoraConfig { dropout: 0.0, ..LoraConfig::default() }, &model.cfg, &mut pulse_data::Rng::new(5)).unwrap();
    let mut t = lora.tensors().unwrap();
    let mut r = pulse_data::Rng::new(6);
    for n in lora.names().iter().filter(|n| n.ends_with("lora_b")) {
        let v = t.get_mut(n).unwrap();
        let vals: Vec<f32> = (0..v.elem_count()).map(|_| r.normal() * 0.1).collect();
        *v = candle_core::Tensor::from_vec(vals, v.dims(), &candle_core::Device::Cpu).unwrap();
    }
    lora.set_tensors(&t, "").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("adapter.gguf");
    lora.save_gguf(&gguf, model.cfg.family.arch()).unwrap();

    let mut engine = engine(path);
    let base_key = engine.model().key();
    engine.attach_adapter(&gguf).unwrap();
    assert!(engine.model().key().starts_with(&base_key) && engine.model().key().contains("lora:"), "{}", engine.model().key());
    let prompt = Prompt::Chat(vec![ChatMessage::user("interacted items: Rose Lip Balm\ncandidate items: Vitamin C Serum; Car Battery")]);
    let answers = ["Vitamin C Serum", "Car Battery"];
    let tuned = engine.score(&prompt, &answers.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let examples = examples(&engine, &prompt, &answers);
    let batch: Vec<&Example> = examples.iter().collect();
    let with = model.answer_logprobs(&batch, Some(&lora)).unwrap();
    let without = model.answer_logprobs(&batch, None).unwrap();
    for i in 0..2 {
        let (w, wo): (f64, f64) = (with[i].iter().map(|&x| x as f64).sum(), without[i].iter().map(|&x| x as f64).sum());
        eprintln!("{:?}: base {wo:.4}, candle+lora {w:.4}, llama.cpp+lora {:.4}", answers[i], tuned[i].sum);
        assert!((w - wo).abs() > 0.05, "the adapter must matter: {w} vs {wo}");
        assert!((w - tuned[i].sum).abs() < per_token * tuned[i].tokens as f64 + slack, "{}: candle {w} vs llama.cpp {}", answers[i], tuned[i].sum);
    }
}
