//! The reasoning lab: procedurally generated additions whose solutions are hierarchical.
//!
//! Problems are `Q: a+b =` with two equal-length operands (2–3 digits by default). Two
//! strategies, each announced by a planning phrase from the paper's Strategic Gram list:
//!
//! * **column method** (`let's break this down` …): column addition from the units with
//!   carries, one line per column — long, always valid, but every step can slip;
//! * **shortcut** (`use the fact that no column carries` …): left-to-right digit sums —
//!   about half as long and rarely slips, but only valid when no column carries.
//!
//! Whether the shortcut is valid is visible in the problem (does any column's digit sum
//! reach 10?), so the better opening is learnable. A shortcut that meets a two-digit sum
//! either backtracks (`wait, that's not right`, `let's try a different angle`, then the
//! column method) or carries on and answers wrongly. SFT traces choose strategies blind to
//! the problem and contain execution slips, so a warm-started model sits well below 100%:
//! RL can improve both execution (fewer slips) and planning (open with the right strategy,
//! backtrack when the shortcut breaks). Every planning decision sits on planted phrases,
//! so HICRA's planning-token credit acts exactly where the choices are made.
//!
//! Train and validation problems are disjoint by a hash of the problem text (whatever the
//! seeds); streams are addressed by position for exact resumption. Every response can be
//! diagnosed ([`diagnose_lab`]): correct, or a planning, execution or format failure.

mod anatomy;
mod config;
mod phrases;
mod problem;
mod task;
mod trace;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use anatomy::{diagnose_lab, strategy_valid};
pub use config::LabConfig;
pub use phrases::{COLUMN, DETECT, SHORTCUT, SHORTCUT_CLAIM, SWITCH, planted_phrases};
pub use problem::{LAB_SOURCE, LabProblem, problem_at, problems, problems_with, validation_set};
pub use task::{LabTask, score_lab};
pub use trace::{
    LabTrace, Strategy, TracePlan, extract_answer, sft_example, sft_trace, units_habit, write_trace,
};

use crate::hash::mix_seed;
use crate::task::Split;

/// `n` SFT examples on training problems, reproducible for `config.seed`.
pub fn sft_corpus(config: &LabConfig, n: usize) -> Vec<LabTrace> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(config.seed, u64::MAX));
    problems_with(Split::Train, config)
        .take(n)
        .map(|p| sft_example(&p, config, &mut rng))
        .collect()
}

/// Texts to train the lab's own small BPE tokenizer on (`Tokenizer::train_bpe`): 4000
/// full SFT texts (prompts and completions) covering every phrase, digit and format line.
pub fn tokenizer_corpus() -> Vec<String> {
    let config = LabConfig::default();
    sft_corpus(&config, 4000)
        .iter()
        .map(LabTrace::text)
        .collect()
}
