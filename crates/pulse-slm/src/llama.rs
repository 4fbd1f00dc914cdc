//! The embedded engine: any llama.cpp-supported GGUF (llama, qwen2/3, gemma3, …) through the `llama-cpp-2`
//! bindings, with our own continuous batching: many sequences share each forward pass, prompts are
//! prefilled in chunks alongside running decodes, `n` samples of one prompt share its prefill (KV copy), and
//! scoring reuses the prompt's KV cache for every candidate.

use std::collections::VecDeque;
use std::io::Read;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaLoraAdapter, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use pulse_data::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, SlmError};
use crate::generator::{Finish, GenEvent, GenRequest, Generation, Generator, LogLik, ModelId, Prompt};
use crate::sampling::{log_prob, sample};

fn backend() -> &'static LlamaBackend {
    static B: OnceLock<LlamaBackend> = OnceLock::new();
    B.get_or_init(|| {
        let mut b = LlamaBackend::init().expect("llama.cpp backend initialises once per process");
        if std::env::var_os("PULSE_LLAMA_LOG").is_none() {
            b.void_logs();
        }
        b
    })
}

/// How the GGUF's weights are executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    /// Quantized weights (Q4_*, Q8_0, K-quants …) are dequantized once to f16 (cached next to the model)
    /// and run through llama.cpp's f16 GEMM: on this CPU ~2× the prompt throughput and ~1.3× the batched
    /// decode throughput of the Q4_1 kernels, at the cost of 2.8× the weight memory (bench/slm). The f16
    /// values are the stored 4-bit values to within f16 rounding.
    #[default]
    F16,
    /// Run the weights as stored.
    Native,
}

/// Engine settings. `weights` changes the numbers slightly and is part of `ModelId::key`; the rest change
/// speed only (and, through batch composition, floating-point rounding).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub weights: Weights,
    /// CPU threads; 0 = all available.
    pub threads: usize,
    /// Most sequences decoded together.
    pub max_seqs: usize,
    /// Tokens per forward pass (prefill chunk + running decodes).
    pub n_batch: usize,
    /// KV-cache length per sequence (prompt + new tokens).
    pub ctx_per_seq: usize,
    /// Bytes of prompt KV state kept between `generate` calls (0 = off): a new prompt that starts with the
    /// tokens of an earlier one restores that prefix instead of computing it again (see [`PrefixCache`]).
    pub prefix_cache_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            weights: Weights::F16,
            threads: 0,
            max_seqs: 32,
            n_batch: 512,
            ctx_per_seq: 1024,
            prefix_cache_bytes: 1 << 30,
        }
    }
}

pub struct LlamaEngine {
    model: LlamaModel,
    id: ModelId,
    path: PathBuf,
    template: Option<String>,
    /// Texts of control tokens (e.g. `<|im_end|>`): removed from message contents so untrusted text can
    /// never open or close a chat turn.
    control_texts: Vec<String>,
    /// Per token id: whether it ends generation, and its text bytes.
    eog: Vec<bool>,
    pieces: Vec<Vec<u8>>,
    opts: EngineOptions,
    /// A LoRA adapter (GGUF) applied in every context, if attached.
    adapter: Option<std::sync::Mutex<LlamaLoraAdapter>>,
    /// Prompt KV states of earlier `generate` calls (a Mutex because contexts borrow the engine).
    prefix_cache: std::sync::Mutex<PrefixCache>,
}

/// Prompt KV states kept across `generate` calls, so prompts that share a long beginning compute it once:
/// the chat template and system prompt of every request, and — what it is for — the Tree-of-Thought
/// prompts of one user, which differ only in the chain of thoughts at their end (one call per depth).
/// After a prompt is prefilled its sequence's state is stored; a later prompt restores the entry with the
/// longest common token prefix, drops the cells past it and prefills only the rest. The KV of a token
/// depends only on the tokens before it, so the restored cells are the ones a full prefill computes, up to
/// floating-point rounding (as with any change of batch composition; tested: the same greedy texts).
/// States are only valid for contexts with the same sequence count and the same adapter; attaching an
/// adapter empties the cache. Least recently used entries go first once `limit` bytes are held.
#[derive(Default)]
pub struct PrefixCache {
    entries: Vec<PrefixEntry>,
    bytes: usize,
    limit: usize,
    clock: u64,
    stats: PrefixStats,
}

struct PrefixEntry {
    n_seqs: usize,
    tokens: Vec<u32>,
    state: llama_cpp_2::context::session::SeqState,
    used: u64,
}

/// What the prefix cache saved so far (for benchmarks and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixStats {
    /// Prompts that restored a cached prefix.
    pub hits: u64,
    /// Prompt tokens restored instead of computed.
    pub reused_tokens: u64,
    /// Prompt tokens computed.
    pub prefilled_tokens: u64,
}

/// Shorter shared prefixes are not worth a restore.
const MIN_PREFIX: usize = 16;

impl PrefixCache {
    fn new(limit: usize) -> Self {
        PrefixCache { limit, ..Default::default() }
    }

    /// The entry sharing the longest prefix with `tokens` (at most `tokens.len() - 1`, so the last prompt
    /// token is always computed and gives the first logits), if that prefix is long enough.
    fn lookup(&mut self, n_seqs: usize, tokens: &[u32]) -> Option<(usize, &llama_cpp_2::context::session::SeqState)> {
        let cap = tokens.len().saturating_sub(1);
        let mut best: Option<(usize, usize)> = None;
        for (i, e) in self.entries.iter().enumerate().filter(|(_, e)| e.n_seqs == n_seqs) {
            let lcp = e.tokens.iter().zip(tokens).take_while(|(a, b)| a == b).count().min(cap);
            if lcp >= MIN_PREFIX && best.map_or(true, |(_, b)| lcp > b) {
                best = Some((i, lcp));
            }
        }
        let (i, lcp) = best?;
        self.clock += 1;
        self.entries[i].used = self.clock;
        Some((lcp, &self.entries[i].state))
    }

    fn insert(&mut self, n_seqs: usize, tokens: &[u32], state: llama_cpp_2::context::session::SeqState) {
        let size = state.byte_len() + tokens.len() * 4;
        if tokens.len() < MIN_PREFIX || size > self.limit {
            return;
        }
        self.clock += 1;
        if let Some(e) = self.entries.iter_mut().find(|e| e.n_seqs == n_seqs && e.tokens == tokens) {
            e.used = self.clock;
            return;
        }
        while self.bytes + size > self.limit {
            let Some(old) = self.entries.iter().enumerate().min_by_key(|(_, e)| e.used).map(|(i, _)| i) else {
                break;
            };
            let e = self.entries.swap_remove(old);
            self.bytes -= e.state.byte_len() + e.tokens.len() * 4;
        }
        self.bytes += size;
        self.entries.push(PrefixEntry { n_seqs, tokens: tokens.to_vec(), state, used: self.clock });
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

/// sha256 of a file, hex.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The f16 copy of a quantized GGUF, made once with llama.cpp's own converter and cached in
/// `<model dir>/.pulse-cache/` (or the temp dir when that is not writable); written to a temporary name and
/// renamed, so an interrupted conversion never leaves a half file behind.
fn dequantized_f16(path: &Path, sha256: &str) -> std::result::Result<PathBuf, String> {
    // Engines loaded on several threads of one process at once (parallel tests) would otherwise each
    // convert into the same `<pid>.part` file: one converts, the others find the copy.
    static CONVERTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = CONVERTING.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("{}-f16.gguf", &sha256[..16]);
    let dirs = [
        path.parent().unwrap_or(Path::new(".")).join(".pulse-cache"),
        std::env::temp_dir().join("pulse-cache"),
    ];
    for d in &dirs {
        let out = d.join(&name);
        if out.is_file() {
            return Ok(out);
        }
    }
    let mut last_err = String::new();
    for d in &dirs {
        if let Err(e) = std::fs::create_dir_all(d) {
            last_err = format!("{}: {e}", d.display());
            continue;
        }
        let out = d.join(&name);
        let tmp = d.join(format!("{name}.{}.part", std::process::id()));
        let (Some(src), Some(dst)) = (path.to_str(), tmp.to_str()) else {
            return Err("model path is not UTF-8".into());
        };
        let (src, dst) = (
            std::ffi::CString::new(src).map_err(|e| e.to_string())?,
            std::ffi::CString::new(dst).map_err(|e| e.to_string())?,
        );
        let _ = backend();
        // SAFETY: plain C call with valid NUL-terminated paths and a params struct from llama.cpp's defaults.
        let rc = unsafe {
            let mut p = llama_cpp_sys_2::llama_model_quantize_default_params();
            p.ftype = llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_F16;
            p.allow_requantize = true;
            p.nthread = std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(1);
            llama_cpp_sys_2::llama_model_quantize(src.as_ptr(), dst.as_ptr(), &p)
        };
        if rc != 0 {
            let _ = std::fs::remove_file(&tmp);
            last_err = format!("converting to f16 failed (llama.cpp code {rc})");
            continue;
        }
        std::fs::rename(&tmp, &out).map_err(|e| format!("{}: {e}", out.display()))?;
        tracing::info!("dequantized {} to f16 once: {}", path.display(), out.display());
        return Ok(out);
    }
    Err(format!("cannot make the f16 copy ({last_err}); use --weights native"))
}

impl LlamaEngine {
    pub fn load(path: &Path, opts: EngineOptions) -> Result<Self> {
        let err = |msg: String| SlmError::Model { path: path.to_path_buf(), msg };
        if !path.is_file() {
            return Err(err("no such model file (run scripts/fetch_models.sh for the default weights)".into()));
        }
        let mut magic = [0u8; 4];
        std::fs::File::open(path)?.read_exact(&mut magic).map_err(|e| err(format!("cannot read: {e}")))?;
        if &magic != b"GGUF" {
            return Err(err("not a GGUF file (bad magic)".into()));
        }
        let sha256 = file_sha256(path)?;
        let load = |p: &Path| {
            LlamaModel::load_from_file(backend(), p, &LlamaModelParams::default())
                .map_err(|e| err(format!("llama.cpp could not load it: {e}")))
        };
        let mut model = load(path)?;
        let mut runtime = String::new();
        // general.file_type: 0 = all f32, 1 = mostly f16, 32 = mostly bf16; everything else is quantized.
        let file_type: i64 = model.meta_val_str("general.file_type").ok().and_then(|s| s.parse().ok()).unwrap_or(-1);
        if opts.weights == Weights::F16 && ![0, 1, 32].contains(&file_type) {
            let f16 = dequantized_f16(path, &sha256).map_err(|m| err(m))?;
            drop(model);
            model = load(&f16)?;
            runtime = "f16".into();
        }
        let arch = model.meta_val_str("general.architecture").unwrap_or_default();
        let template = model.chat_template(None).ok().and_then(|t| t.to_string().ok());
        let vocab = model.vocab();
        let mut control_texts: Vec<String> = vocab
            .tokens()
            .filter(|&t| vocab.is_control(t) || vocab.is_eog(t))
            .map(|t| String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned())
            .filter(|s| s.chars().count() > 1)
            .collect();
        control_texts.sort_by_key(|s| std::cmp::Reverse(s.len()));
        control_texts.dedup();
        let eog: Vec<bool> = (0..vocab.n_tokens()).map(|t| vocab.is_eog(LlamaToken(t))).collect();
        let pieces: Vec<Vec<u8>> =
            (0..vocab.n_tokens()).map(|t| vocab.token_to_piece(LlamaToken(t), false, None)).collect();
        drop(vocab);
        let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let mut opts = opts;
        if opts.threads == 0 {
            opts.threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        }
        opts.max_seqs = opts.max_seqs.clamp(1, 256);
        opts.n_batch = opts.n_batch.max(64);
        let ctx_train = model.n_ctx_train() as usize;
        if ctx_train > 0 {
            opts.ctx_per_seq = opts.ctx_per_seq.min(ctx_train);
        }
        Ok(LlamaEngine {
            model,
            id: ModelId { name, sha256, arch, runtime },
            path: path.to_path_buf(),
            template,
            control_texts,
            eog,
            pieces,
            prefix_cache: std::sync::Mutex::new(PrefixCache::new(opts.prefix_cache_bytes)),
            opts,
            adapter: None,
        })
    }

    /// Applies a LoRA adapter (llama.cpp's GGUF adapter format, as `pulse sft` writes it) to everything
    /// this engine computes from now on. The adapter's sha256 becomes part of [`ModelId::key`], so results
    /// of the tuned model are never mistaken for the base model's.
    pub fn attach_adapter(&mut self, path: &Path) -> Result<()> {
        let err = |msg: String| SlmError::Model { path: path.to_path_buf(), msg };
        if !path.is_file() {
            return Err(err("no such adapter file".into()));
        }
        let sha = file_sha256(path)?;
        let a = self.model.lora_adapter_init(path).map_err(|e| err(format!("llama.cpp could not load the adapter: {e}")))?;
        self.adapter = Some(std::sync::Mutex::new(a));
        // cached prompt states were computed without the adapter
        self.reset();
        let base = if self.id.runtime.is_empty() { String::new() } else { format!("{}+", self.id.runtime) };
        self.id.runtime = format!("{base}lora:{}", &sha[..16]);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }
    /// What the prompt-prefix cache has saved since the engine was loaded.
    pub fn prefix_stats(&self) -> PrefixStats {
        self.prefix_cache.lock().unwrap_or_else(|e| e.into_inner()).stats
    }
    /// Resizes the prompt-prefix cache (0 = off: nothing is looked up, stored or restored) and empties it.
    /// Speed only, like every [`EngineOptions`] field but `weights`; `pulse slm bench` turns the cache off to
    /// time prompt processing, so no prompt token is restored instead of computed.
    pub fn set_prefix_cache_bytes(&mut self, bytes: usize) {
        self.opts.prefix_cache_bytes = bytes;
        let cache = self.prefix_cache.get_mut().unwrap_or_else(|e| e.into_inner());
        cache.limit = bytes;
        cache.clear();
    }
    /// Bytes of weights as executed (what one decode step reads).
    pub fn weight_bytes(&self) -> u64 {
        self.model.size()
    }
    /// Parameter count of the model (what the FLOPs of a token scale with: ~2 per parameter).
    pub fn n_params(&self) -> u64 {
        self.model.n_params()
    }

    /// Whether prompts start with a BOS token for this model.
    pub fn add_bos(&self) -> bool {
        self.model.vocab().should_add_bos()
    }
    pub fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }

    /// Remove control-token texts from untrusted content.
    pub fn scrub(&self, s: &str) -> String {
        let mut out = s.to_string();
        for c in &self.control_texts {
            if out.contains(c.as_str()) {
                out = out.replace(c.as_str(), "");
            }
        }
        out
    }

    /// The prompt as text, chat template applied (the assistant turn left open).
    pub fn render(&self, prompt: &Prompt) -> Result<String> {
        match prompt {
            Prompt::Raw(s) => Ok(s.clone()),
            Prompt::Chat(msgs) => {
                // A final assistant message is a prefix the model continues (vLLM's
                // `continue_final_message`): render the turns before it, open the assistant turn, append it.
                let (msgs, prefix) = match msgs.split_last() {
                    Some((last, rest)) if last.role == "assistant" => (rest, self.scrub(&last.content)),
                    _ => (&msgs[..], String::new()),
                };
                let Some(tmpl) = &self.template else {
                    // Base models have no chat template: plain turns.
                    let mut s = String::new();
                    for m in msgs {
                        s.push_str(&format!("{}: {}\n\n", m.role, self.scrub(&m.content)));
                    }
                    s.push_str("assistant: ");
                    s.push_str(&prefix);
                    return Ok(s);
                };
                let tmpl = llama_cpp_2::model::LlamaChatTemplate::new(tmpl)
                    .map_err(|e| SlmError::Backend(format!("chat template: {e}")))?;
                let chat = msgs
                    .iter()
                    .map(|m| LlamaChatMessage::new(m.role.clone(), self.scrub(&m.content).replace('\0', "")))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| SlmError::Backend(format!("chat message: {e}")))?;
                let mut text = self
                    .model
                    .apply_chat_template(&tmpl, &chat, true)
                    .map_err(|e| SlmError::Backend(format!("applying the chat template: {e}")))?;
                text.push_str(&prefix);
                Ok(text)
            }
        }
    }

    /// Token ids of a text exactly as llama.cpp tokenizes it (BOS added if the model asks for it; special
    /// tokens in the text parsed — only call this on rendered prompts, whose untrusted parts are scrubbed).
    pub fn tokenize(&self, text: &str, add_bos: bool) -> Vec<u32> {
        self.model.vocab().tokenize(text.as_bytes(), add_bos, true).into_iter().map(|t| t.0 as u32).collect()
    }

    /// Tokens of a continuation: no BOS, special-token text not parsed (it is candidate text). Scoring
    /// appends these to [`prompt_tokens`](Self::prompt_tokens); fine-tuning builds its examples the same way.
    pub fn continuation_tokens(&self, text: &str) -> Vec<u32> {
        self.model.vocab().tokenize(text.as_bytes(), false, false).into_iter().map(|t| t.0 as u32).collect()
    }

    pub fn detokenize(&self, tokens: &[u32]) -> String {
        let bytes: Vec<u8> = tokens.iter().flat_map(|&t| self.pieces[t as usize].iter().copied()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The tokens a prompt is fed as (chat template applied, BOS if the model asks for it).
    pub fn prompt_tokens(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        let toks = self.tokenize(&self.render(prompt)?, self.add_bos());
        if toks.is_empty() {
            return Err(SlmError::Param("prompt", "empty prompt".into()));
        }
        Ok(toks)
    }

    fn context(&self, n_seqs: usize) -> Result<LlamaContext<'_>> {
        let mut ctx = self.bare_context(n_seqs)?;
        if let Some(a) = &self.adapter {
            let mut a = a.lock().unwrap_or_else(|e| e.into_inner());
            ctx.lora_adapter_set(&mut a, 1.0).map_err(|e| SlmError::Backend(format!("adapter: {e}")))?;
        }
        Ok(ctx)
    }

    fn bare_context(&self, n_seqs: usize) -> Result<LlamaContext<'_>> {
        let n_seqs = n_seqs.max(1);
        let n_ctx = (n_seqs * self.opts.ctx_per_seq) as u32;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(self.opts.n_batch as u32)
            .with_n_ubatch(self.opts.n_batch as u32)
            .with_n_seq_max(n_seqs as u32)
            .with_kv_unified(false)
            .with_n_threads(self.opts.threads as i32)
            .with_n_threads_batch(self.opts.threads as i32);
        self.model.new_context(backend(), params).map_err(|e| SlmError::Backend(format!("context: {e}")))
    }
}

fn backend_err(e: impl std::fmt::Display) -> SlmError {
    SlmError::Backend(e.to_string())
}

enum SlotState {
    Free,
    /// Prefilling the prompt; `done` tokens already in the cache.
    Prefill { done: usize },
    /// Waiting for the leader slot to finish the shared prompt.
    Follower,
    /// Decoding; `last` is the token to feed next.
    Decode { last: u32 },
}

struct Slot {
    state: SlotState,
    job: usize,
    sample: usize,
    pos: usize,
    rng: Rng,
    bytes: Vec<u8>,
    new_tokens: usize,
    /// The tokens generated so far (read by the repetition settings).
    generated: Vec<u32>,
    /// Index of this slot's logits row in the current batch.
    row: Option<i32>,
}

struct Job {
    req: usize,
    /// First sample index of this job within its request (requests with n > max_seqs are split).
    first_sample: usize,
    n: usize,
    tokens: Vec<u32>,
    slots: Vec<usize>,
}

/// Where a stop string first occurs in `bytes` (searching only the tail touched by the last piece).
fn find_stop(bytes: &[u8], piece_len: usize, stops: &[String]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for s in stops {
        let s = s.as_bytes();
        let from = bytes.len().saturating_sub(piece_len + s.len() - 1);
        if let Some(p) = bytes[from..].windows(s.len()).position(|w| w == s) {
            let at = from + p;
            best = Some(best.map_or(at, |b: usize| b.min(at)));
        }
    }
    best
}

impl Generator for LlamaEngine {
    fn model(&self) -> &ModelId {
        &self.id
    }

    fn count_tokens(&self, prompt: &Prompt) -> Result<usize> {
        Ok(self.prompt_tokens(prompt)?.len())
    }

    fn generate(&mut self, requests: &[GenRequest], sink: &mut dyn FnMut(GenEvent<'_>)) -> Result<()> {
        let max_seqs = self.opts.max_seqs;
        // Split requests into jobs of at most max_seqs samples, validate everything up front.
        let mut jobs: Vec<Job> = Vec::new();
        for (ri, r) in requests.iter().enumerate() {
            r.params.validate()?;
            if r.n == 0 {
                return Err(SlmError::Param("n", "0 (must be ≥ 1)".into()));
            }
            let tokens = self.prompt_tokens(&r.prompt)?;
            if tokens.len() + r.params.max_tokens > self.opts.ctx_per_seq {
                return Err(SlmError::TooLong {
                    tokens: tokens.len(),
                    max_new: r.params.max_tokens,
                    limit: self.opts.ctx_per_seq,
                });
            }
            let mut first = 0;
            while first < r.n {
                let n = (r.n - first).min(max_seqs);
                jobs.push(Job { req: ri, first_sample: first, n, tokens: tokens.clone(), slots: Vec::new() });
                first += n;
            }
        }
        if jobs.is_empty() {
            return Ok(());
        }
        let total_samples: usize = jobs.iter().map(|j| j.n).sum();
        let n_seqs = total_samples.min(max_seqs);
        let n_batch = self.opts.n_batch;
        let (eog, pieces) = (&self.eog, &self.pieces);
        let mut ctx = self.context(n_seqs)?;
        let mut batch = LlamaBatch::new(n_batch.max(n_seqs), n_seqs as i32);
        let mut slots: Vec<Slot> = (0..n_seqs)
            .map(|_| Slot {
                state: SlotState::Free,
                job: 0,
                sample: 0,
                pos: 0,
                rng: Rng::new(0),
                bytes: Vec::new(),
                new_tokens: 0,
                generated: Vec::new(),
                row: None,
            })
            .collect();
        let mut queue: VecDeque<usize> = (0..jobs.len()).collect();
        // Per request: finished generations, and how many samples are still missing.
        let mut results: Vec<Vec<Option<Generation>>> = requests.iter().map(|r| vec![None; r.n]).collect();
        let mut missing: Vec<usize> = requests.iter().map(|r| r.n).collect();
        let mut scratch = Vec::new();
        let mut logits_buf: Vec<f32> = Vec::new();
        let use_cache = self.opts.prefix_cache_bytes > 0;
        let mut cache = self.prefix_cache.lock().unwrap_or_else(|e| e.into_inner());

        loop {
            // Admit jobs while their samples fit into free slots.
            while let Some(&ji) = queue.front() {
                let free: Vec<usize> =
                    (0..n_seqs).filter(|&s| matches!(slots[s].state, SlotState::Free)).take(jobs[ji].n).collect();
                if free.len() < jobs[ji].n {
                    break;
                }
                queue.pop_front();
                let req = &requests[jobs[ji].req];
                // The leader restores the longest cached prefix of its prompt, if any, and prefills the rest.
                let mut start = 0usize;
                if use_cache {
                    if let Some((lcp, state)) = cache.lookup(n_seqs, &jobs[ji].tokens) {
                        let leader = free[0] as i32;
                        match ctx.state_seq_set(state, leader) {
                            Ok(()) => {
                                ctx.clear_kv_cache_seq(Some(leader as u32), Some(lcp as u32), None).map_err(backend_err)?;
                                start = lcp;
                                cache.stats.hits += 1;
                                cache.stats.reused_tokens += lcp as u64;
                            }
                            // A state llama.cpp will not take back costs a full prefill, never the run.
                            Err(e) => {
                                tracing::warn!("prefix cache: restoring a cached prompt failed ({e}); computing it in full");
                                ctx.clear_kv_cache_seq(Some(leader as u32), None, None).map_err(backend_err)?;
                            }
                        }
                    }
                }
                for (k, &s) in free.iter().enumerate() {
                    let sample_idx = jobs[ji].first_sample + k;
                    let slot = &mut slots[s];
                    slot.state = if k == 0 { SlotState::Prefill { done: start } } else { SlotState::Follower };
                    slot.job = ji;
                    slot.sample = sample_idx;
                    slot.pos = start;
                    slot.rng = Rng::derive(req.seed, &format!("sample-{sample_idx}"));
                    slot.bytes.clear();
                    slot.new_tokens = 0;
                    slot.generated.clear();
                }
                jobs[ji].slots = free;
            }

            // Build one forward pass: running decodes first, then prompt chunks.
            batch.clear();
            let mut used = 0usize;
            let (mut n_prompt, mut n_gen) = (0usize, 0usize);
            for (s, slot) in slots.iter_mut().enumerate() {
                slot.row = None;
                if let SlotState::Decode { last } = slot.state {
                    batch.add(LlamaToken(last as i32), slot.pos as i32, &[s as i32], true).map_err(backend_err)?;
                    slot.pos += 1;
                    slot.row = Some(used as i32);
                    used += 1;
                    n_gen += 1;
                }
            }
            for s in 0..n_seqs {
                if used >= n_batch {
                    break;
                }
                if let SlotState::Prefill { done } = slots[s].state {
                    let toks = &jobs[slots[s].job].tokens;
                    let take = (toks.len() - done).min(n_batch - used);
                    for (i, &t) in toks[done..done + take].iter().enumerate() {
                        let p = done + i;
                        let last = p + 1 == toks.len();
                        batch.add(LlamaToken(t as i32), p as i32, &[s as i32], last).map_err(backend_err)?;
                        if last {
                            slots[s].row = Some((used + i) as i32);
                        }
                    }
                    used += take;
                    n_prompt += take;
                    slots[s].state = SlotState::Prefill { done: done + take };
                    slots[s].pos = done + take;
                }
            }
            if used == 0 {
                break;
            }
            ctx.decode(&mut batch).map_err(|e| SlmError::Backend(format!("decode: {e}")))?;
            cache.stats.prefilled_tokens += n_prompt as u64;
            sink(GenEvent::Tokens { prompt: n_prompt, generated: n_gen });

            // Sample for every slot whose logits were requested.
            for s in 0..n_seqs {
                let Some(row) = slots[s].row else { continue };
                logits_buf.clear();
                logits_buf.extend_from_slice(ctx.get_logits_ith(row));
                let ji = slots[s].job;
                // A leader that just finished its prompt hands the KV cache to its followers; all of them
                // sample their first token from the same logits.
                let group: Vec<usize> = if matches!(slots[s].state, SlotState::Prefill { .. }) {
                    if use_cache {
                        // The sequence holds exactly the prompt now: keep it for later prompts.
                        let state = ctx
                            .state_seq_get(s as i32, Default::default())
                            .map_err(|e| SlmError::Backend(format!("prefix cache: {e}")))?;
                        cache.insert(n_seqs, &jobs[ji].tokens, state);
                    }
                    let followers: Vec<usize> = jobs[ji].slots.iter().copied().filter(|&f| f != s).collect();
                    for &f in &followers {
                        ctx.copy_kv_cache_seq(s as i32, f as i32, None, None).map_err(backend_err)?;
                        slots[f].pos = slots[s].pos;
                    }
                    std::iter::once(s).chain(followers).collect()
                } else {
                    vec![s]
                };
                for g in group {
                    let req = &requests[jobs[ji].req];
                    let p = &req.params;
                    let slot = &mut slots[g];
                    let tok = sample(&logits_buf, p, &slot.generated, &mut slot.rng, &mut scratch);
                    let mut finish = None;
                    if !p.ignore_eos && eog.get(tok as usize).copied().unwrap_or(false) {
                        finish = Some(Finish::Eos);
                    } else {
                        slot.new_tokens += 1;
                        slot.generated.push(tok);
                        let piece = &pieces[tok as usize];
                        slot.bytes.extend_from_slice(piece);
                        if !p.stop.is_empty() {
                            if let Some(at) = find_stop(&slot.bytes, piece.len(), &p.stop) {
                                slot.bytes.truncate(at);
                                finish = Some(Finish::Stop);
                            }
                        }
                        if finish.is_none() && slot.new_tokens >= p.max_tokens {
                            finish = Some(Finish::Length);
                        }
                    }
                    match finish {
                        None => {
                            slot.state = SlotState::Decode { last: tok };
                        }
                        Some(f) => {
                            let gen = Generation {
                                text: String::from_utf8_lossy(&slot.bytes).into_owned(),
                                prompt_tokens: jobs[ji].tokens.len(),
                                new_tokens: slot.new_tokens,
                                finish: f,
                            };
                            slot.state = SlotState::Free;
                            ctx.clear_kv_cache_seq(Some(g as u32), None, None).map_err(backend_err)?;
                            let ri = jobs[ji].req;
                            results[ri][slot.sample] = Some(gen);
                            missing[ri] -= 1;
                            if missing[ri] == 0 {
                                let gens: Vec<Generation> =
                                    results[ri].iter_mut().map(|g| g.take().expect("every sample done")).collect();
                                sink(GenEvent::Done { index: ri, generations: &gens });
                            }
                        }
                    }
                }
            }
        }
        debug_assert!(missing.iter().all(|&m| m == 0));
        Ok(())
    }

    fn reset(&mut self) {
        self.prefix_cache.get_mut().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn score(&mut self, prompt: &Prompt, continuations: &[String]) -> Result<Vec<LogLik>> {
        let ptoks = self.prompt_tokens(prompt)?;
        let conts: Vec<Vec<u32>> = continuations.iter().map(|c| self.continuation_tokens(c)).collect();
        if let Some(i) = conts.iter().position(|c| c.is_empty()) {
            return Err(SlmError::Param("continuation", format!("#{i} is empty")));
        }
        let longest = conts.iter().map(|c| c.len()).max().unwrap_or(0);
        if ptoks.len() + longest > self.opts.ctx_per_seq {
            return Err(SlmError::TooLong { tokens: ptoks.len(), max_new: longest, limit: self.opts.ctx_per_seq });
        }
        // Seq 0 holds the prompt; seqs 1.. get a copy of it and one continuation each.
        let n_seqs = (continuations.len() + 1).min(self.opts.max_seqs.max(2));
        let n_batch = self.opts.n_batch;
        let mut ctx = self.context(n_seqs)?;
        let mut batch = LlamaBatch::new(n_batch, n_seqs as i32);
        let mut done = 0;
        let mut last_row = Vec::new();
        while done < ptoks.len() {
            batch.clear();
            let take = (ptoks.len() - done).min(n_batch);
            for (i, &t) in ptoks[done..done + take].iter().enumerate() {
                let p = done + i;
                batch.add(LlamaToken(t as i32), p as i32, &[0], p + 1 == ptoks.len()).map_err(backend_err)?;
            }
            ctx.decode(&mut batch).map_err(|e| SlmError::Backend(format!("decode: {e}")))?;
            done += take;
            if done == ptoks.len() {
                last_row = ctx.get_logits_ith((take - 1) as i32).to_vec();
            }
        }
        let np = ptoks.len();
        let mut out = vec![LogLik { sum: 0.0, mean: 0.0, tokens: 0 }; conts.len()];
        for (ci, c) in conts.iter().enumerate() {
            out[ci].sum = log_prob(&last_row, c[0]);
        }
        let group = n_seqs - 1;
        for start in (0..conts.len()).step_by(group) {
            let members: Vec<usize> = (start..(start + group).min(conts.len())).collect();
            for (k, _) in members.iter().enumerate() {
                ctx.copy_kv_cache_seq(0, (k + 1) as i32, None, None).map_err(backend_err)?;
            }
            // Feed c[0..len-1]; the logits after c[i] score c[i+1]. Pack into passes of ≤ n_batch tokens.
            let mut work: Vec<(usize, usize, usize)> = Vec::new(); // (member k, cont, token i)
            for (k, &ci) in members.iter().enumerate() {
                for i in 0..conts[ci].len() - 1 {
                    work.push((k, ci, i));
                }
            }
            for chunk in work.chunks(n_batch) {
                batch.clear();
                for &(k, ci, i) in chunk {
                    batch
                        .add(LlamaToken(conts[ci][i] as i32), (np + i) as i32, &[(k + 1) as i32], true)
                        .map_err(backend_err)?;
                }
                ctx.decode(&mut batch).map_err(|e| SlmError::Backend(format!("decode: {e}")))?;
                for (row, &(_, ci, i)) in chunk.iter().enumerate() {
                    out[ci].sum += log_prob(ctx.get_logits_ith(row as i32), conts[ci][i + 1]);
                }
            }
            for k in 0..members.len() {
                ctx.clear_kv_cache_seq(Some((k + 1) as u32), None, None).map_err(backend_err)?;
            }
        }
        for (ci, c) in conts.iter().enumerate() {
            out[ci].tokens = c.len();
            out[ci].mean = out[ci].sum / c.len() as f64;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::find_stop;

    #[test]
    fn stop_strings_found_across_pieces() {
        let stops = vec!["\n\n".to_string(), "END".to_string()];
        assert_eq!(find_stop(b"abc\n", 1, &stops), None);
        assert_eq!(find_stop(b"abc\n\n", 1, &stops), Some(3));
        assert_eq!(find_stop(b"xxEN", 2, &stops), None);
        assert_eq!(find_stop(b"xxEND", 1, &stops), Some(2));
        assert_eq!(find_stop(b"END", 3, &stops), Some(0));
    }
}
