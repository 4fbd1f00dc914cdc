//! The trainable f32 forward on the real SmolLM2-135M-Instruct GGUF (fetched by scripts/fetch_models.sh,
//! which .ci/run calls) against the llama.cpp engine: same tokens in, the same log-likelihoods out (up to
//! llama.cpp's f16 arithmetic). Fails — not skips — when the weights are missing.
use pulse_sft::{Example, Llama, Lora, LoraConfig};
use pulse_slm::{ChatMessage, EngineOptions, Generator, LlamaEngine, Prompt};
use std::path::PathBuf;

mod common;
use common::examples;

#[test]
fn dequantised_forward_matches_llama_cpp_log_likelihoods() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(pulse_slm::DEFAULT_MODEL);
    assert!(path.is_file(), "{} missing: run `bash scripts/fetch_models.sh` first", path.display());
    let mut engine = common::engine(&path);
    let model = Llama::load_gguf(&path).unwrap();
    let c = &model.cfg;
    assert_eq!((c.vocab, c.hidden, c.layers, c.heads, c.kv_heads, c.ffn), (49152, 576, 30, 9, 3, 1536));

    let prompt = Prompt::Chat(vec![ChatMessage::user(
        "A user bought: Hydrating Face Cream; Rose Lip Balm. Candidates: Vitamin C Serum, Car Battery. Which next?",
    )]);
    let answers = ["Vitamin C Serum", "Car Battery", " The recommendation is Vitamin C Serum."];
    let reference = engine.score(&prompt, &answers.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let examples = examples(&engine, &prompt, &answers);
    let batch: Vec<&Example> = examples.iter().collect();
    let ours = model.answer_logprobs(&batch, None).unwrap();
    for ((a, r), o) in answers.iter().zip(&reference).zip(&ours) {
        let sum: f64 = o.iter().map(|&x| x as f64).sum();
        eprintln!("{a:?}: {} tokens, candle {sum:.4}, llama.cpp {:.4}", r.tokens, r.sum);
        assert_eq!(o.len(), r.tokens, "{a}");
        assert!((sum - r.sum).abs() < 0.005 * r.tokens as f64 + 0.02, "{a}: candle {sum:.4} vs llama.cpp {:.4}", r.sum);
    }
    // the likelier candidate stays the likelier one
    assert!(reference[0].sum > reference[1].sum);
    let sums: Vec<f32> = ours.iter().map(|o| o.iter().sum()).collect();
    assert!(sums[0] > sums[1], "{sums:?}");
    // a fresh adapter changes nothing, and the answer-only loss equals minus the mean log-likelihood
    let lora = Lora::new(LoraConfig::default(), &model.cfg, &mut pulse_data::Rng::new(1)).unwrap();
    assert_eq!(model.answer_logprobs(&batch[..1], Some(&lora)).unwrap(), model.answer_logprobs(&batch[..1], None).unwrap());
    let (loss, n) = model.answer_loss(&batch[..1], Some(&lora), None).unwrap();
    assert_eq!(n, ours[0].len());
    assert!((loss.to_scalar::<f32>().unwrap() + sums[0]).abs() < 1e-3);
}

/// An adapter written as GGUF and attached to the llama.cpp engine gives the log-likelihoods the candle
/// forward gives with the same adapter — the trained model runs at llama.cpp speed.
#[test]
fn gguf_adapter_in_llama_cpp_matches_the_candle_adapter() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(pulse_slm::DEFAULT_MODEL);
    assert!(path.is_file(), "{} missing: run `bash scripts/fetch_models.sh` first", path.display());
    common::gguf_adapter_agrees(&path, 0.005, 0.03);
}

/// With `reason_loss` the learned part is the rationale, "The recommendation is " and the title, each
/// tokenized on its own after the "Let me think:" prompt; the text is the answer-only example's.
#[test]
fn reason_loss_examples_learn_the_rationale_and_the_title() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(pulse_slm::DEFAULT_MODEL);
    assert!(path.is_file(), "{} missing: run `bash scripts/fetch_models.sh` first", path.display());
    let opts = EngineOptions { weights: pulse_slm::Weights::F16, threads: 2, max_seqs: 1, n_batch: 512, ctx_per_seq: 512, ..Default::default() };
    let engine = LlamaEngine::load(&path, opts).unwrap();
    let item = |prefix: &str, reason: &str| pulse_sft::data::SftItem {
        user: "u".into(),
        target: "t".into(),
        user_turn: "interacted items: Rose balm\ncandidate items: Rose oil; Blue soap".into(),
        prefix: prefix.into(),
        reason: reason.into(),
        answer: "Rose oil".into(),
    };
    let learned = item("Let me think:", " She likes roses. The recommendation is ");
    let answer_only = item("Let me think: She likes roses. The recommendation is ", "");
    let ex = pulse_sft::data::tokenize(&[learned.clone(), answer_only.clone()], &engine, 512).unwrap();
    assert_eq!(&ex[0].tokens[..ex[0].answer_start], &engine.prompt_tokens(&learned.prompt()).unwrap()[..]);
    assert_eq!(engine.detokenize(&ex[0].tokens[ex[0].answer_start..]), " She likes roses. The recommendation is Rose oil");
    assert_eq!(engine.detokenize(&ex[1].tokens[ex[1].answer_start..]), "Rose oil");
    assert_eq!(ex[0].tokens[ex[0].tokens.len() - ex[1].answer_tokens()..], ex[1].tokens[ex[1].answer_start..], "the title's tokens are the same");
    assert!(ex[0].answer_tokens() > ex[1].answer_tokens() + 5);
}
