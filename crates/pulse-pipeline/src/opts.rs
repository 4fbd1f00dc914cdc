//! The options the pipeline's commands take. They are clap `Args` / `ValueEnum` types so the `pulse`
//! binary flattens them into its subcommands; a library caller (tests, the coming server) builds them
//! directly, e.g. with [`ModelArgs::defaults`].
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct TotArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// SQLite rationale store (created if missing).
    #[arg(long, default_value = "runs/rationales.sqlite")]
    pub store: PathBuf,
    /// How chains are judged: space = cos(R(chain), B(history, chosen)) (PULSE); likelihood = the SLM's
    /// mean log-probability of the chain (the "ToT with likelihood" ablation).
    #[arg(long, value_enum, default_value_t = ScoreArg::Space)]
    pub score: ScoreArg,
    /// A trained Thought Space (`pulse thought train --out`); needed for --score space.
    #[arg(long)]
    pub space: Option<PathBuf>,
    /// Sentence-encoder folder the space was trained on.
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    pub encoder: PathBuf,
    /// TOML with any of: depth, branching, beam, group, similar_users, similar_items, similar_title_words,
    /// [prompt], [sampling].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// SASRec settings behind the similar users: a TOML with a [sasrec] table, as for `pulse train
    /// --config` (default: the built-in settings). Trained with seed 42 if its checkpoint is missing; the
    /// checkpoint is shared with every run of the same settings (e.g. an experiment's `sasrec` row).
    #[arg(long)]
    pub sasrec: Option<PathBuf>,
    /// A JSON file keeping the similar users' items of the users asked for, keyed by the SASRec behind
    /// them: read when it matches (no SASRec training then), written when it does not. Commit it next to
    /// a store export and a fresh checkout refines on without retraining SASRec.
    #[arg(long)]
    pub neighbours: Option<PathBuf>,
    /// First N users of the split (default: all).
    #[arg(long)]
    pub users: Option<usize>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the run summary (users, tokens, time, mean chain score) as JSON here.
    #[arg(long)]
    pub summary: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SftArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Rationale store (not read by --variant plain unless the config's `require` names methods).
    #[arg(long, default_value = "runs/rationales.sqlite")]
    pub store: PathBuf,
    /// Which rationale the training prompt shows: plain (none), reasons (step-2 rationales),
    /// tot-likelihood (ToT judged by the SLM), pulse (ToT judged by the Thought Space).
    #[arg(long, value_enum)]
    pub variant: VariantArg,
    /// TOML with any of: max_tokens, require (rationale methods every trained user must have, so all
    /// variants share users), [prompt] (history, candidates, title_words, rationale_words),
    /// [train] (lr, epochs, batch_size, micro_batch, checkpoint_every, [train.lora] rank, alpha, dropout, targets).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Most training users (chosen at random, seeded, among those with the required rationales).
    #[arg(long, default_value_t = 500)]
    pub users: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output folder: checkpoints (resumed), examples.jsonl, adapter.safetensors/.json, adapter.gguf,
    /// summary.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Stop after this many optimizer steps in this call (the run stays resumable).
    #[arg(long)]
    pub max_steps: Option<usize>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariantArg {
    Plain,
    Reasons,
    TotLikelihood,
    Pulse,
    /// A control: SFT with reasons' rationales, each given to another user.
    ShuffledReasons,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreArg {
    Space,
    Likelihood,
}

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// GGUF model file (llama / qwen2-3 / gemma3 …). The default is fetched by scripts/fetch_models.sh
    /// (run automatically when it is missing).
    #[arg(long, default_value = pulse_slm::DEFAULT_MODEL)]
    pub model: PathBuf,
    /// f16: quantized weights are dequantized once to f16 (cached beside the model; ~2× faster prompt
    /// processing and ~1.3× faster batched decode on CPU); native: run them as stored.
    #[arg(long, value_enum, default_value_t = WeightsArg::F16)]
    pub weights: WeightsArg,
    /// CPU threads (0 = all).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Most sequences decoded together.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// KV-cache tokens per sequence (prompt + new tokens).
    #[arg(long, default_value_t = 1024)]
    pub ctx: usize,
    /// MiB of prompt KV kept between batches, so prompts sharing a beginning (the chat template, a ToT
    /// user's prompt at every depth) compute it once; 0 = off.
    #[arg(long, default_value_t = 1024)]
    pub prefix_cache_mb: usize,
}

impl ModelArgs {
    /// The command-line defaults for `model` (what experiments use for their SLM rows).
    pub fn defaults(model: &std::path::Path) -> Self {
        ModelArgs { model: model.to_path_buf(), weights: WeightsArg::F16, threads: 0, batch: 32, ctx: 1024, prefix_cache_mb: 1024 }
    }
}

#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// 0 = off.
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 150)]
    pub max_tokens: usize,
    /// Stop string (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Never repeat an n-gram of generated tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    pub no_repeat_ngram: usize,
    /// Repetition penalty on tokens already generated (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
}

#[derive(Args, Debug)]
pub struct RationalesRun {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// SQLite rationale store (created if missing).
    #[arg(long, default_value = "runs/rationales.sqlite")]
    pub store: PathBuf,
    /// First N users of the split (default: all).
    #[arg(long, visible_alias = "limit")]
    pub users: Option<usize>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Users generated and committed together: fixed slices of the user order, each from a clean engine,
    /// so a killed run, resumed, writes the same texts as an uninterrupted one (a kill loses at most the
    /// slice in flight). Runs with different slices may differ in places.
    #[arg(long, default_value_t = pulse_rationale::stage::DEFAULT_SLICE, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub slice: usize,
    /// TOML file with [prompt] and [sampling] tables (any subset of their fields).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Write the run summary (counts, parse failures, tokens, time) as JSON here.
    #[arg(long)]
    pub summary: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightsArg {
    F16,
    Native,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
}

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Dataset folder (folder TSV/JSONL, RecBole atomic files, or raw Amazon 2018 JSON).
    #[arg(long, default_value = "data/amazon2018-luxury-beauty")]
    pub data: PathBuf,
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,
    /// Folder format: read this interactions file instead of interactions.tsv.
    #[arg(long)]
    pub interactions_file: Option<String>,
    /// Remove repeated (user, item) pairs, keeping the first.
    #[arg(long)]
    pub dedup: bool,
    /// Iterative k-core filter (0 = off).
    #[arg(long, default_value_t = 0)]
    pub kcore: usize,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    Auto,
    Folder,
    Recbole,
    Amazon,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelArg {
    Pop,
    Sasrec,
    /// SASRec over frozen item-text embeddings only (MoRec-like).
    Text,
    /// PULSE-TS without the rationale term: SASRec over item IDs + item-text embeddings.
    PulseTsNorat,
    /// PULSE-TS: the same plus the contrastive term aligning the user state with the rationale in the
    /// Thought Space ([pulse_ts] store / space in the config).
    PulseTs,
    /// PULSE-TS over item texts only (no item IDs): the Thought-Space rationale term on the text-only
    /// model, the PULSE-TS variant that can rank another domain's catalogue zero-shot.
    PulseTsText,
    /// Content similarity: cosine between an item's text embedding and the user's recent items'
    /// (recency-weighted); nothing trained, so it ranks any catalogue zero-shot.
    Content,
    /// Item-KNN: item-to-item co-occurrence in the training sequences (cosine), summed over the user's
    /// last items; ID-based, nothing trained beyond counting.
    Itemknn,
    /// Lexical similarity: TF-IDF over title words and word pairs, cosine to the user's recent items'
    /// (recency-weighted, as content); nothing trained, so it ranks any catalogue zero-shot.
    Lexical,
    /// The SLM as a ranker (cand protocols only): each candidate title scored by its log-likelihood after
    /// the test prompt; `--adapter` applies a `pulse sft` adapter (PULSE and its ablations), none = the
    /// base model zero-shot.
    Slm,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolArg {
    Full,
    Cand5,
    Cand20,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossArg {
    Ce,
    Bce,
    Sampled,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum)]
    pub model: ModelArg,
    #[arg(long, value_enum)]
    pub protocol: ProtocolArg,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Result JSON; per-user ranks go to <out>.ranks.tsv.gz and timings to <out>.meta.json.
    #[arg(long)]
    pub out: PathBuf,
    /// `full` protocol: keep history items in the ranking (RecBole's SASRec behaviour). By default
    /// they are removed, so repeat-purchase targets count as misses.
    #[arg(long)]
    pub no_mask_history: bool,
    /// Candidate list file for cand5/cand20 (drawn and written if missing). Default:
    /// candidates/<dataset>-<split>/cand<N>-seed<S>.tsv.
    #[arg(long)]
    pub candidates: Option<PathBuf>,
    /// Model settings: a TOML file with a [sasrec] table (any subset of its fields) and, for text /
    /// pulse-ts models, a [pulse_ts] table (encoder, store, space, methods, align_weight,
    /// align_temperature).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// SASRec loss (overrides the config).
    #[arg(long, value_enum)]
    pub loss: Option<LossArg>,
    /// SASRec maximum epochs (overrides the config).
    #[arg(long)]
    pub max_epochs: Option<usize>,
    /// Where SASRec checkpoints go (resumed if present). Default: runs/<dataset>-<split>/sasrec-<config>-seed<S>.
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Bootstrap resamples for the per-metric 95% CIs in the report (0 = none).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Evaluate a fixed, seeded sample of this many test users (default: all; --model slm: 1000).
    #[arg(long)]
    pub users: Option<usize>,
    /// --model slm: the GGUF model.
    #[arg(long, default_value = pulse_slm::DEFAULT_MODEL)]
    pub slm: PathBuf,
    /// --model slm: a LoRA adapter in GGUF (`pulse sft --out DIR` writes DIR/adapter.gguf).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// --model slm: a candidate's score — `sum`: its title's log-likelihood after the test prompt; `pmi`:
    /// minus the same title's log-likelihood after the prompt with no history (costs a second pass).
    #[arg(long, value_enum, default_value_t = RankScoreArg::Sum)]
    pub score: RankScoreArg,
    /// --model slm: the model first writes its "Let me think" rationale for each row (T 0.3, top-p 0.9,
    /// at most 60 tokens) and the candidates are scored after it, as the rationale variants were trained.
    #[arg(long)]
    pub think: bool,
    /// --model slm: when the model writes a rationale (--think, --explain), it never repeats an n-gram
    /// of its own tokens (0 = off, the paper's sampling; 3 stops the loops a small model writes).
    #[arg(long, default_value_t = 0)]
    pub no_repeat_ngram: usize,
    /// --model slm: when the model writes a rationale, CTRL's repetition penalty on the tokens it has
    /// written (1 = off, the paper's sampling).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// --model slm: also the paper's protocol — generate (T 0.3, top-p 0.9), hit if the normalised true
    /// title is in the output — written beside the report as <out>.generate.json (+ .jsonl of texts).
    #[arg(long)]
    pub generate: bool,
    /// --model slm: write the model's "Let me think" rationale and its top-ranked item for the first N
    /// evaluated users to <out>.explain.jsonl.
    #[arg(long, default_value_t = 0)]
    pub explain: usize,
    /// --model slm --protocol full: rank the catalogue in two stages. This model (trained or reused as
    /// `--model` would be) scores every item; the SLM reranks its top --shortlist-k items outside the
    /// history, above every other item, which keeps this model's order.
    #[arg(long, value_enum)]
    pub shortlist: Option<ModelArg>,
    /// --shortlist: how many of the retriever's items the SLM reranks per user.
    #[arg(long, default_value_t = 20)]
    pub shortlist_k: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RankScoreArg {
    Sum,
    Pmi,
}

impl From<RankScoreArg> for pulse_sft::rank::Scoring {
    fn from(s: RankScoreArg) -> Self {
        match s {
            RankScoreArg::Sum => pulse_sft::rank::Scoring::Sum,
            RankScoreArg::Pmi => pulse_sft::rank::Scoring::Pmi,
        }
    }
}

/// Where `pulse thought` reads rationales from, and the encoder that embeds them (train and eval).
#[derive(Args, Debug, Clone)]
pub struct RationaleSource {
    #[command(flatten)]
    pub data: DataArgs,
    /// Rationale store (SQLite, written by `pulse rationales` / `pulse tot`).
    #[arg(long)]
    pub store: PathBuf,
    /// Rationale method to train on or measure ("initial", "tot-space", "tot-likelihood", ...).
    #[arg(long, default_value = "initial")]
    pub method: String,
    /// Sentence-encoder folder (config.json, tokenizer.json, model.safetensors; a sentence-transformers
    /// 1_Pooling/config.json picks [CLS] pooling, as bge's, else mean); for eval, the one the space was
    /// trained on.
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    pub encoder: PathBuf,
}
