//! The pulse pipeline as a library: what every `pulse` subcommand does, for the binary, the tests and
//! the coming HTTP server alike.
//!
//! Modules, each depending only on the ones above it:
//! - [`opts`]: the option types the commands take (clap `Args`, so the binary flattens them);
//! - [`util`]: config files, one-line errors, short hashes, progress bars, UTC dates;
//! - [`engine`]: the embedded SLM engine from its options;
//! - [`eval`]: data loading, model construction (baselines, text models, PULSE-TS, the SLM ranker),
//!   one protocol run and its output files;
//! - [`evaluate`]: `pulse eval` and `pulse compare`;
//! - [`slm`]: PULSE steps 2–4 (rationales, the Thought Space, Tree-of-Thought);
//! - [`sft`]: step 5, LoRA SFT of the SLM;
//! - [`plot`]: pictures of the Thought Space;
//! - [`experiment`]: the experiment runner — config types, stages with resume markers, rows, tables.
//!
//! Every command returns the lines it reports instead of printing them; the binary prints.
pub mod opts;
pub mod util;
pub mod engine;
pub mod eval;
pub mod evaluate;
pub mod slm;
pub mod sft;
pub mod plot;
pub mod experiment;
pub mod fit;

pub use util::{error_line, progress};
