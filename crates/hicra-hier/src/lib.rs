//! Strategic Grams: matching, mining, planning-token masks and hierarchy metrics.
//!
//! - [`GramSet`]: the gram list (the paper's by default) and its matcher ([`GramSet::find`],
//!   [`GramSet::planning_mask`]).
//! - [`metrics`]: semantic entropy, conditional entropy, planning/execution token entropy and
//!   perplexity; [`HierarchyMetrics::compute`] is the per-step entry point.
//! - [`GramTally`]: the gram counts the text metrics are read from, built text by text.
//! - [`pass_at_k`]: the unbiased pass@k estimator.
//! - [`mining`]: Strategic-Gram mining (word n-grams → sentence embeddings → k-means → DF).

pub mod entropy;
pub mod error;
pub mod gram_set;
pub mod metrics;
pub mod mining;
pub mod normalize;
pub mod pass_at_k;
pub mod tally;
pub mod words;

pub use error::HierError;
pub use gram_set::{GramMatch, GramSet};
pub use metrics::{HierarchyMetrics, ResponseTokens, conditional_entropy, semantic_entropy};
pub use pass_at_k::{pass_at_k, pass_at_k_curve};
pub use tally::GramTally;
