//! An in-memory `Generator` that answers from a function — for testing the stages above the engine
//! without model weights (the real engine has its own tests).

use crate::error::Result;
use crate::generator::{Finish, GenEvent, GenRequest, Generation, Generator, LogLik, ModelId, Prompt};

type Answer = Box<dyn FnMut(&GenRequest, usize) -> String + Send>;

pub struct Scripted {
    id: ModelId,
    answer: Answer,
    /// Requests seen, in order (for assertions).
    pub seen: Vec<GenRequest>,
    /// How many requests each `generate` call carried, and how often `reset` was called, in one log:
    /// `None` for a reset, `Some(n)` for a call (for assertions on how a stage groups its work).
    pub calls: Vec<Option<usize>>,
    /// What `bench::BenchTarget` reports as the prompt-prefix cache size (there is no cache; 0 by default).
    pub prefix_cache_bytes: usize,
}

impl Scripted {
    /// `answer(request, sample_index)` is the text of each sample.
    pub fn new(answer: impl FnMut(&GenRequest, usize) -> String + Send + 'static) -> Self {
        Scripted {
            id: ModelId { name: "scripted".into(), sha256: "scripted".into(), arch: "none".into(), runtime: String::new() },
            answer: Box::new(answer),
            seen: Vec::new(),
            calls: Vec::new(),
            prefix_cache_bytes: 0,
        }
    }
}

fn words(p: &Prompt) -> usize {
    match p {
        Prompt::Raw(s) => s.split_whitespace().count(),
        Prompt::Chat(m) => m.iter().map(|m| m.content.split_whitespace().count()).sum(),
    }
}

impl Generator for Scripted {
    fn model(&self) -> &ModelId {
        &self.id
    }
    fn count_tokens(&self, prompt: &Prompt) -> Result<usize> {
        Ok(words(prompt))
    }
    fn generate(&mut self, requests: &[GenRequest], sink: &mut dyn FnMut(GenEvent<'_>)) -> Result<()> {
        for r in requests {
            r.params.validate()?;
        }
        self.calls.push(Some(requests.len()));
        for (i, r) in requests.iter().enumerate() {
            self.seen.push(r.clone());
            let gens: Vec<Generation> = (0..r.n)
                .map(|j| {
                    let text = (self.answer)(r, j);
                    let n = text.split_whitespace().count();
                    Generation { text, prompt_tokens: words(&r.prompt), new_tokens: n, finish: Finish::Eos }
                })
                .collect();
            sink(GenEvent::Tokens { prompt: words(&r.prompt), generated: gens.iter().map(|g| g.new_tokens).sum() });
            sink(GenEvent::Done { index: i, generations: &gens });
        }
        Ok(())
    }
    fn reset(&mut self) {
        self.calls.push(None);
    }
    fn score(&mut self, _prompt: &Prompt, continuations: &[String]) -> Result<Vec<LogLik>> {
        // Like the real engine: an empty continuation has no likelihood.
        if let Some(i) = continuations.iter().position(|c| c.trim().is_empty()) {
            return Err(crate::SlmError::Param("continuation", format!("#{i} is empty")));
        }
        Ok(continuations
            .iter()
            .map(|c| {
                let n = c.split_whitespace().count().max(1);
                LogLik { sum: -(n as f64), mean: -1.0, tokens: n }
            })
            .collect())
    }
}
