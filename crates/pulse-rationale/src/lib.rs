//! PULSE step 2 — initial rationales: the prompt, tolerant extraction of the model's JSON, and the
//! resumable SQLite store every later stage reads (and ToT writes into).

pub mod error;
pub mod export;
pub mod parse;
pub mod prompt;
pub mod stage;
pub mod store;
pub mod words;

pub use error::{RationaleError, Result};
pub use parse::{parse_rationale, Parsed, Status};
pub use prompt::{messages, training_choices, Choice, PromptOptions, PROMPT_VERSION};
pub use stage::{run, Progress, RationaleConfig, RunOptions, RunSummary};
pub use store::{Key, Record, Store};
