//! What generation is made of: the parameters it is asked with ([`SamplingParams`], a
//! [`StopCheck`]), what it returns ([`Generation`]), the sampler ([`sampling`]), the token picks
//! of a decoding step ([`token_picks`]) and the weights packed for batched decoding
//! ([`decode_weights`]). The decoding loop itself is `Model::generate` (in `model/decode.rs`).

pub mod decode_weights;
pub mod sampling;
pub(crate) mod token_picks;

/// Packed calls split their rows into groups from this many rows on. Below, reading the
/// weights once per group costs more than the groups save: the steps are bound by memory
/// bandwidth, not by the products.
pub const PACKED_GROUP_MIN_ROWS: usize = 32;

/// Sampling and stopping parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplingParams {
    /// 0 = greedy.
    pub temperature: f64,
    /// Nucleus mass; 1 = off.
    pub top_p: f64,
    /// Top-k; 0 = off.
    pub top_k: usize,
    /// Most tokens to generate per prompt.
    pub max_new_tokens: usize,
    /// Seed; each row draws from its own stream of a ChaCha8 generator seeded with it.
    pub seed: u64,
    /// Tokens that end a sequence (included in the output).
    pub stop_token_ids: Vec<u32>,
    /// Strings that end a sequence (checked by a [`StopCheck`], e.g. `LoadedModel::generate`).
    pub stop_strings: Vec<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            max_new_tokens: 256,
            seed: 0,
            stop_token_ids: vec![],
            stop_strings: vec![],
        }
    }
}

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// A stop token or stop string.
    Stop,
    /// `max_new_tokens` reached.
    Length,
}

/// One generated sequence.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Generation {
    /// New token ids (a final stop token included).
    pub token_ids: Vec<u32>,
    /// Log-prob of each new token under the model's untempered distribution.
    pub logprobs: Vec<f32>,
    /// Why generation ended.
    pub finish_reason: FinishReason,
}

/// Decides whether a row should stop after its latest token (e.g. a stop string appeared).
/// Row groups are decoded on several threads, hence `Sync`.
pub trait StopCheck: Sync {
    /// `row` indexes the prompts; `generated` holds the row's new tokens so far.
    fn should_stop(&self, row: usize, generated: &[u32]) -> bool;
}
