//! The generator seam: token ids and sampling settings in; token ids, sampling log-probs and
//! finish reasons out. Everything about the task (rendering prompts, decoding, grading,
//! shaping rewards) stays on the trainer's side, in [`crate::generation`].
//!
//! # An external engine behind the seam
//! An HTTP inference server (vLLM, SGLang, a llama.cpp server) implements [`Generator`] alone:
//! - `generate` posts the prompt token ids (vLLM's `prompt_token_ids`, SGLang's `input_ids`,
//!   llama.cpp's tokenised `prompt`) with `temperature`, `top_p`, `top_k`, `max_tokens`, the
//!   stop strings, a seed per request, and asks for the sampled tokens' log-probs
//!   (`logprobs=0` in vLLM: the chosen token's log-prob). It returns one [`Generation`] per
//!   prompt, in order: the new token ids (a final EOS included), their log-probs under the
//!   untempered distribution when the engine reports them, and whether a stop or the length cap
//!   ended the row.
//! - `sync_weights` writes the policy as safetensors (`Model::named_tensors`, or `save_hf` for a
//!   whole Hugging Face directory) to a directory the engine can read, then asks the engine to
//!   reload its weights from there (SGLang's `update_weights_from_disk`, or the equivalent
//!   call of the engine) and waits for it.
//!   The trainer rescoring old log-probs in its own precision
//!   (`algorithm.recompute_old_logprobs`) keeps the importance ratio exact when the engine
//!   samples in another precision.

use hicra_model::{Generation, LoadedModel, Model, SamplingParams};

use crate::error::{Result, RlError};

/// Produces continuations of token-id prompts. `Send`, so a trainer holding one can move to
/// another thread (a Python binding, a data-parallel rank).
pub trait Generator: Send {
    /// One continuation per prompt, in prompt order. Row `i` of a call samples from a random
    /// stream fixed by `params.seed` and `i`.
    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
    ) -> Result<Vec<Generation>>;

    /// Called after every optimiser step (`step` counts optimiser steps) with the updated
    /// policy, so that the next `generate` samples from it.
    fn sync_weights(&mut self, step: u64, policy: &Model) -> Result<()>;
}

/// Generates with the model in this process. It holds a handle on the policy's own parameters
/// (a [`LoadedModel`] clone shares them), so the optimiser's in-place updates are seen at once
/// and [`Generator::sync_weights`] has nothing to do.
pub struct LocalGenerator {
    model: LoadedModel,
}

impl LocalGenerator {
    /// A generator over `policy`'s weights (shared, not copied).
    pub fn new(policy: &LoadedModel) -> Self {
        LocalGenerator {
            model: policy.clone(),
        }
    }
}

impl Generator for LocalGenerator {
    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
    ) -> Result<Vec<Generation>> {
        self.model
            .generate(prompts, params)
            .map_err(|e| RlError::model("generation", e))
    }

    fn sync_weights(&mut self, _step: u64, _policy: &Model) -> Result<()> {
        Ok(())
    }
}
