//! Shared helpers: tiny models written to temporary directories and loaded back.
#![allow(dead_code)]

use candle_core::{DType, Tensor};
use hicra_model::io::tiny::{CHATML_TEMPLATE, test_tokenizer, tiny_config, write_tiny_model};
use hicra_model::{Arch, LoadOptions, LoadedModel, ModelConfig, TokenChunk, load_model};

/// All architectures under test.
pub const ARCHS: [Arch; 3] = [Arch::Llama, Arch::Qwen2, Arch::Qwen3];

/// Writes a tiny model of `arch` and loads it through the real loader.
pub fn tiny_model(arch: Arch, seed: u64) -> (tempfile::TempDir, LoadedModel) {
    tiny_model_with(
        tiny_config(arch, test_tokenizer().vocab_size()),
        seed,
        &LoadOptions::default(),
    )
}

/// Writes a tiny model with `config` and loads it with `opts`.
pub fn tiny_model_with(
    config: ModelConfig,
    seed: u64,
    opts: &LoadOptions,
) -> (tempfile::TempDir, LoadedModel) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(
        dir.path(),
        &config,
        &test_tokenizer(),
        Some(CHATML_TEMPLATE),
        seed,
    )
    .unwrap();
    let loaded = load_model(dir.path().to_str().unwrap(), opts).unwrap();
    (dir, loaded)
}

/// A few token rows of different lengths from real text.
pub fn sample_rows(loaded: &LoadedModel) -> Vec<Vec<u32>> {
    [
        "Let's think step by step.",
        "The answer is 42",
        "Wait, that's not right. Let me try again with x = 3.",
    ]
    .iter()
    .map(|t| loaded.tokenizer.encode(t, false).unwrap())
    .collect()
}

/// Training loss of the gradient tests: -Σ logprob - 0.1 Σ entropy over a chunk.
pub fn chunk_loss(c: &TokenChunk) -> candle_core::Result<Tensor> {
    let lp = c.logprobs.sum_all()?;
    let en = c.entropy.sum_all()?;
    (lp.neg()? - (en * 0.1)?)?.to_dtype(DType::F32)
}

/// Largest |x| over an f32 tensor's elements.
pub fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}
