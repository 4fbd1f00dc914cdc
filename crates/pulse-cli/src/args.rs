//! The command line, and nothing else (kept apart from what the commands do).
use clap::{Args, Parser, Subcommand};
use pulse_pipeline::opts::*;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "pulse", version, about = "PULSE: recommendations with reasons, offline, on a CPU")]
pub struct Cli {
    /// Only errors on stderr (no progress bars or log lines).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Inspect datasets.
    Data {
        #[command(subcommand)]
        cmd: DataCmd,
    },
    /// Train what a model needs on the train split and evaluate it on the test split.
    Eval(EvalArgs),
    /// Paired bootstrap CI for the difference between two `pulse eval` results (same users).
    Compare(CompareArgs),
    /// Run an experiment described by a TOML config; results go to runs/<name>/ (or --results DIR).
    Experiment(ExperimentArgs),
    /// The small language model directly: tokenize, generate, score continuations.
    Slm {
        #[command(subcommand)]
        cmd: SlmCmd,
    },
    /// PULSE step 3: the Thought Space (encoders + projection heads trained with InfoNCE).
    Thought {
        #[command(subcommand)]
        cmd: ThoughtCmd,
    },
    /// PULSE step 2: generate a rationale for each user's last training choice into a SQLite store
    /// (resumable: what the store has is skipped). `rationales export` writes the store as JSON lines,
    /// `rationales import` reads them back.
    #[command(args_conflicts_with_subcommands = true)]
    Rationales(RationalesArgs),
    /// PULSE step 4: Tree-of-Thought refinement of each training choice's rationale (beam search over
    /// chains of short thoughts, scored in the Thought Space or by the SLM's likelihood) into the store
    /// (resumable: stored users are skipped).
    Tot(TotArgs),
    /// PULSE step 5: LoRA fine-tuning of the SLM on "history + candidates [+ Let me think: rationale] →
    /// chosen title" (answer tokens only), resumable; writes the adapter as safetensors and as a llama.cpp
    /// GGUF adapter.
    Sft(SftArgs),
    /// Train the serving stack on a dataset (PULSE-TS and the validation-tuned hybrid with its parts) and
    /// write a model bundle: manifest (sha256 of every file), catalogue, weights, neighbour lists. Training
    /// checkpoints under runs/, so a killed fit resumes; the bundle appears only when complete.
    Fit(FitArgs),
    /// Top-k recommendations with the reason and the evidence behind each, from a bundle.
    Recommend(RecommendArgs),
    /// Serve a bundle over HTTP: the JSON API (/v1/recommend, /v1/users/{id}/recommendations, /v1/items,
    /// /healthz, /readyz, /metrics) and a web page at /. SIGTERM or Ctrl-C finishes requests in flight.
    Serve(ServeArgs),
    /// The counterfactual check of the evidence: for sampled users' top-1, remove the cited history items
    /// and re-rank: the share whose item leaves the top k (probability of necessity) and the rank drop,
    /// beside the same number of random history items. Every model and evidence source of the bundle.
    ExplainCheck(ExplainCheckArgs),
    /// Pictures.
    Plot {
        #[command(subcommand)]
        cmd: PlotCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum PlotCmd {
    /// 2-D PCA of the Thought Space: rationales R(·) and behaviours B(·) of sampled users, coloured by
    /// domain, as a PNG (with a JSON sidecar: counts, settings, seed).
    ThoughtSpace {
        /// A trained space (`pulse thought train --out`).
        #[arg(long)]
        space: PathBuf,
        #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
        encoder: PathBuf,
        /// DATA_DIR=STORE: a dataset and the rationale store holding its rationales (repeatable).
        #[arg(long, required = true)]
        domain: Vec<String>,
        /// Rationale methods in order of preference.
        #[arg(long, default_value = "tot-space,initial", value_delimiter = ',')]
        methods: Vec<String>,
        /// Users sampled per domain.
        #[arg(long, default_value_t = 300)]
        users: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum SlmCmd {
    /// Token ids of a text as the model tokenizes it (JSON array on stdout).
    Tokenize {
        #[command(flatten)]
        model: ModelArgs,
        /// Apply the chat template to TEXT as one user message first.
        #[arg(long)]
        chat: bool,
        text: String,
    },
    /// Complete a prompt (one user message, chat template applied) n times.
    Generate {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        sampling: SamplingArgs,
        #[arg(long)]
        system: Option<String>,
        #[arg(long, default_value_t = 1)]
        n: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Print JSON (text, tokens, finish) instead of plain text.
        #[arg(long)]
        json: bool,
        prompt: String,
    },
    /// Throughput: prompt and decode tokens/s for 1..B sequences, and the memory-bandwidth bound for
    /// single-sequence decode (JSON lines on stdout; bench/slm/run.sh prints it beside llama.cpp's).
    Bench {
        #[command(flatten)]
        model: ModelArgs,
        /// Raw prompt text file.
        #[arg(long, default_value = "bench/slm/prompt.txt")]
        prompt: PathBuf,
        /// Sequence counts to measure.
        #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
        seqs: Vec<usize>,
        #[arg(long, default_value_t = 64)]
        new_tokens: usize,
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
    /// Log-likelihood (sum, mean) of each candidate continuation after a raw prompt.
    Score {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        prompt: String,
        candidates: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct RationalesArgs {
    #[command(subcommand)]
    pub cmd: Option<RationalesCmd>,
    #[command(flatten)]
    pub run: RationalesRun,
}

#[derive(Subcommand, Debug)]
pub enum RationalesCmd {
    /// Write the store as JSON lines, one per (user, rationale).
    Export {
        #[arg(long)]
        store: PathBuf,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Only this method ("initial", later ToT methods).
        #[arg(long)]
        method: Option<String>,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Read JSON lines written by `rationales export` into a store (created if missing): all or nothing,
    /// rows the store already has are kept as they are. Rebuilds a store from a committed export.
    Import {
        /// The JSON-lines file.
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        store: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum DataCmd {
    /// Users, items, interactions, average length, title coverage.
    Stats {
        #[command(flatten)]
        data: DataArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Result JSON of model A.
    pub a: PathBuf,
    /// Result JSON of model B.
    pub b: PathBuf,
    /// Metrics to compare (default: all metrics of the protocol).
    #[arg(long)]
    pub metric: Vec<String>,
    #[arg(long, default_value_t = 2000)]
    pub resamples: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Pair on the users both files rank (e.g. a 400-user run against the first 400 of a 1,000-user run
    /// on the same candidate files); without it, files that rank different users are an error.
    #[arg(long)]
    pub common: bool,
}

#[derive(Args, Debug)]
pub struct ExperimentArgs {
    /// The experiment's TOML config.
    pub config: PathBuf,
    /// Where <RESULTS>/<name>/ is created. The default, runs/, is git-ignored; `--results results`
    /// regenerates the committed result folders. Rows already there with the same resolved config are
    /// reused and labelled so, with the date they were measured.
    #[arg(long, default_value = "runs")]
    pub results: PathBuf,
    /// Only train (or resume, or reuse) the LoRA adapter that this config's rows of VARIANT rank with: the
    /// config's [slm] settings, seed and rationale store (restored from [snapshot] when missing). Prints the
    /// adapter's path and stops: no stage runs, no row is scored, nothing is written under results/.
    #[arg(long, value_enum, value_name = "VARIANT")]
    pub train_adapter: Option<VariantArg>,
}

#[derive(Subcommand, Debug)]
pub enum ThoughtCmd {
    /// Train the heads on a rationale store; report held-out rationale↔behaviour retrieval (1 of 100)
    /// for the frozen encoder (untrained) and the trained space.
    Train {
        #[command(flatten)]
        src: RationaleSource,
        /// TOML with any of: temperature, batch, epochs, lr, weight_decay.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Users held out for the retrieval report.
        #[arg(long, default_value_t = 100)]
        holdout: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output folder: space.safetensors, report.json (config + seed inside), heldout.tsv.
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure a trained space on a store's rationales (any method, e.g. the ToT chains it judged):
    /// rationale↔behaviour retrieval (1 of 100) and "which item" among same-history negatives, for the
    /// frozen encoder and the space.
    Eval {
        #[command(flatten)]
        src: RationaleSource,
        /// A trained space (`pulse thought train --out`).
        #[arg(long)]
        space: PathBuf,
        /// Same-history negatives per pair for "which item" (0 = leave it out); drawn as training draws
        /// them for --seed.
        #[arg(long, default_value_t = 8)]
        negatives: usize,
        /// Only the choices the space held out in training (its heldout.tsv).
        #[arg(long)]
        heldout: bool,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Write the report (JSON) here too.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}
#[derive(Args, Debug)]
pub struct FitArgs {
    /// Dataset folder (overrides the config's [data] path).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The bundle folder to write (replaced if it exists).
    #[arg(long)]
    pub out: PathBuf,
    /// TOML with any of: name, seed, [data], [sasrec], [pulse_ts], [hybrid], [content], [itemknn],
    /// [lexical] (configs/bundle/ has the ones the README uses).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["user", "history", "titles"])))]
pub struct RecommendArgs {
    /// A bundle written by `pulse fit`.
    #[arg(long)]
    pub bundle: PathBuf,
    /// A user of the bundle's dataset (their history, the last 200 items).
    #[arg(long)]
    pub user: Option<String>,
    /// Catalogue item ids, oldest first: "id,id,…".
    #[arg(long, value_delimiter = ',')]
    pub history: Option<Vec<String>>,
    /// Titles, oldest first: "title;title;…" (case and punctuation do not matter).
    #[arg(long)]
    pub titles: Option<String>,
    /// How many items (at most 100).
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Which model ranks: pulse-ts (the sequence model) or hybrid (pulse-ts + content + item-KNN +
    /// lexical + popularity, weights tuned on validation).
    #[arg(long, default_value = "pulse-ts")]
    pub model: String,
    /// Attribute the sequence model itself by leaving each history item out (slower); otherwise the
    /// evidence comes from the hybrid's decomposable parts.
    #[arg(long)]
    pub leave_one_out: bool,
    /// Keep items already in the history among the candidates.
    #[arg(long)]
    pub include_history: bool,
    /// Print JSON (items with score, reason and structured evidence) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A bundle written by `pulse fit`.
    #[arg(long, required_unless_present = "openapi")]
    pub bundle: Option<PathBuf>,
    /// Print the OpenAPI document (docs/openapi.json) and exit.
    #[arg(long)]
    pub openapi: bool,
    /// Address to listen on. Beyond loopback a token is required.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Bearer token every /v1/* and /metrics request must carry.
    #[arg(long, env = "PULSE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 65536)]
    pub max_body_bytes: usize,
}

#[derive(Args, Debug)]
pub struct ExplainCheckArgs {
    #[arg(long)]
    pub bundle: PathBuf,
    /// Users drawn (their history: everything before their last item).
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// The top-k the item must leave.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Also write the results (JSON, with the bundle's manifest summary and the settings) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}
