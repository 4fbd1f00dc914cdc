//! The `Generator` seam: what every stage that talks to a language model calls. The embedded llama.cpp
//! engine implements it now; an OpenAI-compatible HTTP backend (vLLM, llama.cpp server) can implement the
//! same trait later without touching callers — every type here is plain data that maps onto that API
//! (chat messages, n, seed, temperature/top-k/top-p/max_tokens/stop, prompt log-probs).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::sampling::SamplingParams;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn system(c: impl Into<String>) -> Self {
        ChatMessage { role: "system".into(), content: c.into() }
    }
    pub fn user(c: impl Into<String>) -> Self {
        ChatMessage { role: "user".into(), content: c.into() }
    }
    pub fn assistant(c: impl Into<String>) -> Self {
        ChatMessage { role: "assistant".into(), content: c.into() }
    }
}

/// A prompt: chat messages (the backend applies its chat template and opens the assistant turn; a final
/// `assistant` message is a prefix the model continues), or raw text passed as is (base models, scoring).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prompt {
    Chat(Vec<ChatMessage>),
    Raw(String),
}

/// One prompt to complete `n` times. Sample `j` draws from an RNG derived from `(seed, j)` only, so the
/// same request gives the same texts whatever else is in the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenRequest {
    pub prompt: Prompt,
    pub n: usize,
    pub seed: u64,
    pub params: SamplingParams,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finish {
    /// The model ended its turn (end-of-generation token).
    Eos,
    /// A stop string was produced (it is cut from the text).
    Stop,
    /// `max_tokens` was reached.
    Length,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: usize,
    pub new_tokens: usize,
    pub finish: Finish,
}

/// Log-likelihood of a continuation given a prompt: the sum and mean of its tokens' log-probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogLik {
    pub sum: f64,
    pub mean: f64,
    pub tokens: usize,
}

/// What a backend reports while it works.
#[derive(Debug)]
pub enum GenEvent<'a> {
    /// Tokens processed since the last event: prompt (prefill) and newly generated.
    Tokens { prompt: usize, generated: usize },
    /// Request `index` (into the slice given to `generate`) finished with all its samples.
    Done { index: usize, generations: &'a [Generation] },
}

/// Identity of the weights behind a backend, recorded with everything it produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelId {
    /// Human name (file name or served model name).
    pub name: String,
    /// sha256 of the weights file (or the served model's name where the file is not visible).
    pub sha256: String,
    pub arch: String,
    /// How the weights are executed when that changes the numbers: "" = as stored, "f16" = dequantized
    /// to f16 at load (see `Weights`).
    pub runtime: String,
}

impl ModelId {
    /// What results are keyed by: the weights' sha256, plus the runtime format when it is not the stored one.
    pub fn key(&self) -> String {
        if self.runtime.is_empty() {
            self.sha256.clone()
        } else {
            format!("{}:{}", self.sha256, self.runtime)
        }
    }
}

pub trait Generator {
    fn model(&self) -> &ModelId;

    /// Token count of a prompt as this backend will feed it (chat template applied).
    fn count_tokens(&self, prompt: &Prompt) -> Result<usize>;

    /// Complete every request. Each request's samples are reported through `sink` as soon as they are all
    /// finished (in whatever order requests finish), so a caller can persist them before the call returns.
    fn generate(&mut self, requests: &[GenRequest], sink: &mut dyn FnMut(GenEvent<'_>)) -> Result<()>;

    /// Log-likelihood of each continuation after `prompt` (continuations are tokenized on their own and
    /// appended, so every candidate is scored on the same prompt tokens).
    fn score(&mut self, prompt: &Prompt, continuations: &[String]) -> Result<Vec<LogLik>>;

    /// Forget what earlier calls left behind that can change later results' rounding (the embedded engine's
    /// prompt-prefix cache: a restored prefix and a computed one differ in the last bits, and at T = 1 that
    /// changes samples). A caller that commits work in units and resumes from the last one calls this at
    /// each unit's start, so every unit depends only on its own requests and seeds, and a run interrupted
    /// and resumed between units writes what an uninterrupted one writes. No-op for stateless backends.
    fn reset(&mut self) {}

    /// Convenience: all generations, in request order.
    fn generate_all(&mut self, requests: &[GenRequest]) -> Result<Vec<Vec<Generation>>> {
        let mut out: Vec<Vec<Generation>> = vec![Vec::new(); requests.len()];
        self.generate(requests, &mut |ev| {
            if let GenEvent::Done { index, generations } = ev {
                out[index] = generations.to_vec();
            }
        })?;
        Ok(out)
    }
}
