//! The trainable f32 forward on the real Gemma 3 270M GGUF against the llama.cpp engine: the same tokens
//! in, the same log-likelihoods out (up to llama.cpp's f16 arithmetic), with and without an adapter.
//! Gemma's weights are opt-in (their own terms: `bash scripts/fetch_models.sh --gemma`), so CI does not
//! fetch them and these tests are ignored by default; run them with
//! `cargo test --release -p pulse-sft --test gemma3 -- --ignored`. They fail, not skip, when the file is missing.
use pulse_sft::{Example, Family, Llama, Lora, LoraConfig};
use pulse_slm::{ChatMessage, EngineOptions, Generator, LlamaEngine, Prompt};
use std::path::PathBuf;

fn gemma() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/gemma-3-270m-q4_k_m.gguf");
    assert!(p.is_file(), "{} missing: run `bash scripts/fetch_models.sh --gemma` first", p.display());
    p
}

fn engine(path: &PathBuf) -> LlamaEngine {
    let opts = EngineOptions { weights: pulse_slm::Weights::F16, threads: 2, max_seqs: 4, n_batch: 512, ctx_per_seq: 512, ..Default::default() };
    LlamaEngine::load(path, opts).unwrap()
}

fn examples(engine: &LlamaEngine, prompt: &Prompt, answers: &[&str]) -> Vec<Example> {
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

fn sums(x: &[Vec<f32>]) -> Vec<f64> {
    x.iter().map(|o| o.iter().map(|&v| v as f64).sum()).collect()
}

#[test]
#[ignore = "needs the opt-in Gemma weights: bash scripts/fetch_models.sh --gemma"]
fn gemma3_forward_matches_llama_cpp_log_likelihoods() {
    let path = gemma();
    let mut engine = engine(&path);
    let model = Llama::load_gguf(&path).unwrap();
    let c = &model.cfg;
    assert_eq!((c.family, c.vocab, c.hidden, c.layers, c.heads, c.kv_heads, c.ffn, c.head_dim()), (Family::Gemma3, 262144, 640, 18, 4, 1, 2048, 256));
    assert_eq!(c.sliding_window, Some(512));
    let prompt = Prompt::Chat(vec![ChatMessage::user(
        "A user bought: Hydrating Face Cream; Rose Lip Balm; Vitamin E Night Oil. Candidates: Vitamin C Serum, Car Battery. Which next?",
    )]);
    let answers = ["Vitamin C Serum", "Car Battery", " The recommendation is Vitamin C Serum."];
    let reference = engine.score(&prompt, &answers.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let ex = examples(&engine, &prompt, &answers);
    let batch: Vec<&Example> = ex.iter().collect();
    let ours = sums(&model.answer_logprobs(&batch, None).unwrap());
    for ((a, r), o) in answers.iter().zip(&reference).zip(&ours) {
        eprintln!("{a:?}: {} tokens, candle {o:.4}, llama.cpp {:.4}", r.tokens, r.sum);
        assert!((o - r.sum).abs() < 0.01 * r.tokens as f64 + 0.03, "{a}: candle {o:.4} vs llama.cpp {:.4}", r.sum);
    }
    assert!(ours[0] > ours[1], "{ours:?}");
}

/// An adapter written as GGUF (architecture gemma3) and attached to llama.cpp gives what the candle
/// forward gives with the same adapter: a Gemma adapter trained here ranks at llama.cpp speed.
#[test]
#[ignore = "needs the opt-in Gemma weights: bash scripts/fetch_models.sh --gemma"]
fn gemma3_gguf_adapter_in_llama_cpp_matches_the_candle_adapter() {
    let path = gemma();
    let model = Llama::load_gguf(&path).unwrap();
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
    lora.save_gguf(&gguf, "gemma3").unwrap();
    let mut engine = engine(&path);
    engine.attach_adapter(&gguf).unwrap();
    let prompt = Prompt::Chat(vec![ChatMessage::user("interacted items: Rose Lip Balm\ncandidate items: Vitamin C Serum; Car Battery")]);
    let answers = ["Vitamin C Serum", "Car Battery"];
    let tuned = engine.score(&prompt, &answers.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let ex = examples(&engine, &prompt, &answers);
    let batch: Vec<&Example> = ex.iter().collect();
    let with = sums(&model.answer_logprobs(&batch, Some(&lora)).unwrap());
    let without = sums(&model.answer_logprobs(&batch, None).unwrap());
    for i in 0..2 {
        eprintln!("{:?}: base {:.4}, candle+lora {:.4}, llama.cpp+lora {:.4}", answers[i], without[i], with[i], tuned[i].sum);
        assert!((with[i] - without[i]).abs() > 0.05, "the adapter must matter: {} vs {}", with[i], without[i]);
        assert!((with[i] - tuned[i].sum).abs() < 0.01 * tuned[i].tokens as f64 + 0.04, "{}: candle {} vs llama.cpp {}", answers[i], with[i], tuned[i].sum);
    }
}
