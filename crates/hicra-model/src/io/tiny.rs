//! Tiny random models in Hugging Face layout with a tokenizer built in code, for tests and the
//! reasoning lab (~100k parameters; written and loaded in milliseconds).

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Arch, ModelConfig};
use crate::error::{ModelError, Result};
use crate::io::hf_files::{
    write_config, write_generation_config, write_safetensors, write_tokenizer_files,
};
use crate::io::tokenizer::Tokenizer;
use crate::model::weights::expected_tensors;

/// End-of-text token of the test tokenizer.
pub const EOS_TOKEN: &str = "<|endoftext|>";
/// Start-of-turn token of the test tokenizer (ChatML).
pub const IM_START: &str = "<|im_start|>";
/// End-of-turn token of the test tokenizer (ChatML).
pub const IM_END: &str = "<|im_end|>";

/// A ChatML chat template (the SmolLM2/Qwen2.5 style) for tiny models.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const CORPUS: &[&str] = &[
    "Let's think step by step. First, we compute 12 + 30 = 42.",
    "We can use the fact that the sum of the angles of a triangle is 180 degrees.",
    "Wait, that's not right. Let me try a different approach.",
    "The answer is \\boxed{7}. So the final answer is 7.",
    "If x = 3, then 2x + 5 = 11, and therefore the result is 11.",
    "Alice has 5 apples and buys 7 more, so she has 12 apples in total.",
    "Multiply both sides by 4: 4 * 9 = 36. Divide 36 by 6 to get 6.",
    "user assistant system: Solve the problem. Answer: 0123456789",
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "Therefore, the probability is 1/2 and the expected value is 3.5.",
];

/// The shared test tokenizer: byte-level BPE (~400 tokens) trained on a small built-in corpus,
/// with `<|endoftext|>`, `<|im_start|>`, `<|im_end|>` as special tokens (ids 0, 1, 2).
pub fn test_tokenizer() -> Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let corpus: Vec<String> = CORPUS.iter().map(|s| s.to_string()).collect();
        Tokenizer::train_bpe(&corpus, 400, &[EOS_TOKEN, IM_START, IM_END])
            .expect("training the built-in tokenizer")
    })
    .clone()
}

/// A tiny config: 2 layers, width 64, 4 query heads over 2 KV heads (GQA); Llama and Qwen3
/// tie embeddings, Qwen2 does not; Qwen3 uses an explicit head_dim different from width/heads.
pub fn tiny_config(arch: Arch, vocab_size: usize) -> ModelConfig {
    ModelConfig {
        arch,
        vocab_size,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: if arch == Arch::Qwen3 { 24 } else { 16 },
        rms_norm_eps: 1e-6,
        rope_theta: 10000.0,
        rope_scaling: None,
        max_position_embeddings: 256,
        tie_word_embeddings: arch != Arch::Qwen2,
        attention_bias: false,
        mlp_bias: false,
        bos_token_id: None,
        eos_token_ids: vec![],
        torch_dtype: Some("float32".into()),
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Random f32 weights for `config` in HF naming. Scales give moderately peaked next-token
/// distributions: greedy decoding has clear margins, sampling still varies.
pub fn random_tensors(config: &ModelConfig, seed: u64) -> Result<HashMap<String, Tensor>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = HashMap::new();
    for (name, shape) in expected_tensors(config) {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = if name.ends_with("norm.weight") {
            (0..n).map(|_| 1.0 + 0.1 * normal(&mut rng)).collect()
        } else if name.ends_with(".bias") {
            (0..n).map(|_| 0.1 * normal(&mut rng)).collect()
        } else if name.contains("embed_tokens") || name == "lm_head.weight" {
            (0..n).map(|_| 0.3 * normal(&mut rng)).collect()
        } else {
            let fan_in = *shape.last().unwrap_or(&1) as f32;
            (0..n).map(|_| normal(&mut rng) / fan_in.sqrt()).collect()
        };
        out.insert(name, Tensor::from_vec(values, shape, &Device::Cpu)?);
    }
    Ok(out)
}

/// Writes a random model for `config` with `tokenizer` into `dir` (created if needed):
/// config.json, model.safetensors, tokenizer.json, tokenizer_config.json (with the chat template
/// when given) and generation_config.json. EOS is `<|im_end|>` with a chat template, else
/// `<|endoftext|>` (when the tokenizer has them).
pub fn write_tiny_model(
    dir: &Path,
    config: &ModelConfig,
    tokenizer: &Tokenizer,
    chat_template: Option<&str>,
    seed: u64,
) -> Result<()> {
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(ModelError::InvalidInput(format!(
            "tokenizer has {} tokens but the config's vocab_size is {}",
            tokenizer.vocab_size(),
            config.vocab_size
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let eos_text = if chat_template.is_some() {
        IM_END
    } else {
        EOS_TOKEN
    };
    let eos_id = tokenizer.token_to_id(eos_text);
    let pad_id = tokenizer.token_to_id(EOS_TOKEN);
    let mut cfg = config.clone();
    cfg.eos_token_ids = eos_id.into_iter().collect();
    write_config(dir, &cfg)?;
    write_safetensors(
        &dir.join("model.safetensors"),
        &random_tensors(config, seed)?,
    )?;
    write_tokenizer_files(
        dir,
        tokenizer,
        None,
        eos_id.map(|_| eos_text),
        pad_id.map(|_| EOS_TOKEN),
        chat_template,
        config.max_position_embeddings,
    )?;
    write_generation_config(dir, None, &cfg.eos_token_ids, pad_id)
}
