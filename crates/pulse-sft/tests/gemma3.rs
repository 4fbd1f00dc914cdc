//! The trainable f32 forward on the real Gemma 3 270M GGUF against the llama.cpp engine: the same tokens
//! in, the same log-likelihoods out (up to llama.cpp's f16 arithmetic), with and without an adapter.
//! Gemma's weights are opt-in (their own terms: `bash scripts/fetch_models.sh --gemma`), so CI does not
//! fetch them and these tests are ignored by default; run them with
//! `cargo test --release -p pulse-sft --test gemma3 -- --ignored`. They fail, not skip, when the file is missing.
use pulse_sft::{Example, Family, Llama};
use pulse_slm::{ChatMessage, Generator, Prompt};
use std::path::PathBuf;

mod common;
use common::{engine, examples};

fn gemma() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/gemma-3-270m-q4_k_m.gguf");
    assert!(p.is_file(), "{} missing: run `bash scripts/fetch_models.sh --gemma` first", p.display());
    p
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
    common::gguf_adapter_agrees(&gemma(), 0.01, 0.04);
}
