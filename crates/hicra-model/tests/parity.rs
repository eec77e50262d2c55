//! Parity with an independent implementation (candle-transformers' llama / qwen2 / qwen3) on
//! tiny random models written in HF layout: last-position logits and greedy continuations.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{llama, qwen2, qwen3};
use common::{ARCHS, sample_rows, tiny_model};
use hicra_model::{Arch, ModelConfig, Padding, SamplingParams, TokenBatch};

/// The reference model behind one interface: logits of the last position, with a KV cache.
enum Reference {
    Llama(Box<(llama::Llama, llama::Cache, llama::Config)>),
    Qwen2(qwen2::ModelForCausalLM),
    Qwen3(qwen3::ModelForCausalLM),
}

impl Reference {
    fn load(cfg: &ModelConfig, dir: &std::path::Path) -> Reference {
        let dev = Device::Cpu;
        let file = dir.join("model.safetensors");
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[file], DType::F32, &dev).unwrap() };
        match cfg.arch {
            Arch::Llama => {
                let c = llama::LlamaConfig {
                    hidden_size: cfg.hidden_size,
                    intermediate_size: cfg.intermediate_size,
                    vocab_size: cfg.vocab_size,
                    num_hidden_layers: cfg.num_hidden_layers,
                    num_attention_heads: cfg.num_attention_heads,
                    num_key_value_heads: Some(cfg.num_key_value_heads),
                    rms_norm_eps: cfg.rms_norm_eps,
                    rope_theta: cfg.rope_theta as f32,
                    bos_token_id: None,
                    eos_token_id: None,
                    rope_scaling: None,
                    max_position_embeddings: cfg.max_position_embeddings,
                    tie_word_embeddings: Some(cfg.tie_word_embeddings),
                }
                .into_config(false);
                let model = llama::Llama::load(vb, &c).unwrap();
                let cache = llama::Cache::new(true, DType::F32, &c, &dev).unwrap();
                Reference::Llama(Box::new((model, cache, c)))
            }
            Arch::Qwen2 => {
                let c = qwen2::Config {
                    vocab_size: cfg.vocab_size,
                    hidden_size: cfg.hidden_size,
                    intermediate_size: cfg.intermediate_size,
                    num_hidden_layers: cfg.num_hidden_layers,
                    num_attention_heads: cfg.num_attention_heads,
                    num_key_value_heads: cfg.num_key_value_heads,
                    max_position_embeddings: cfg.max_position_embeddings,
                    sliding_window: cfg.max_position_embeddings,
                    max_window_layers: cfg.num_hidden_layers,
                    tie_word_embeddings: cfg.tie_word_embeddings,
                    rope_theta: cfg.rope_theta,
                    rms_norm_eps: cfg.rms_norm_eps,
                    use_sliding_window: false,
                    hidden_act: candle_nn::Activation::Silu,
                };
                Reference::Qwen2(qwen2::ModelForCausalLM::new(&c, vb).unwrap())
            }
            Arch::Qwen3 => {
                let c = qwen3::Config {
                    vocab_size: cfg.vocab_size,
                    hidden_size: cfg.hidden_size,
                    intermediate_size: cfg.intermediate_size,
                    num_hidden_layers: cfg.num_hidden_layers,
                    num_attention_heads: cfg.num_attention_heads,
                    head_dim: cfg.head_dim,
                    attention_bias: false,
                    num_key_value_heads: cfg.num_key_value_heads,
                    max_position_embeddings: cfg.max_position_embeddings,
                    sliding_window: None,
                    max_window_layers: cfg.num_hidden_layers,
                    tie_word_embeddings: cfg.tie_word_embeddings,
                    rope_theta: cfg.rope_theta,
                    rms_norm_eps: cfg.rms_norm_eps,
                    use_sliding_window: false,
                    hidden_act: candle_nn::Activation::Silu,
                };
                Reference::Qwen3(qwen3::ModelForCausalLM::new(&c, vb).unwrap())
            }
        }
    }

    /// Fresh cache.
    fn reset(&mut self) {
        match self {
            Reference::Llama(inner) => {
                let (_, cache, c) = &mut **inner;
                *cache = llama::Cache::new(true, DType::F32, c, &Device::Cpu).unwrap()
            }
            Reference::Qwen2(m) => m.clear_kv_cache(),
            Reference::Qwen3(m) => m.clear_kv_cache(),
        }
    }

    /// Logits (V) of the last of `ids`, which start at position `offset`.
    fn last_logits(&mut self, ids: &[u32], offset: usize) -> Vec<f32> {
        let x = Tensor::new(ids, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = match self {
            Reference::Llama(inner) => {
                let (m, cache, _) = &mut **inner;
                m.forward(&x, offset, cache).unwrap()
            }
            Reference::Qwen2(m) => m.forward(&x, offset).unwrap(),
            Reference::Qwen3(m) => m.forward(&x, offset).unwrap(),
        };
        logits.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }
}

fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn logits_match_candle_transformers() {
    for arch in ARCHS {
        let (dir, loaded) = tiny_model(arch, 11);
        let mut reference = Reference::load(loaded.model.config(), dir.path());
        let rows = sample_rows(&loaded);
        let batch = TokenBatch::from_rows(&rows, loaded.pad_token_id, Padding::Right, &Device::Cpu)
            .unwrap();
        let ours = loaded.model.forward_logits(&batch).unwrap();
        for (r, row) in rows.iter().enumerate() {
            for len in [1, row.len() / 2, row.len()] {
                reference.reset();
                let theirs = reference.last_logits(&row[..len], 0);
                let mine = ours
                    .get(r)
                    .unwrap()
                    .get(len - 1)
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let d = max_rel_diff(&mine, &theirs);
                assert!(
                    d < 1e-4,
                    "{arch:?} row {r} prefix {len}: relative logit difference {d}"
                );
            }
        }
    }
}

#[test]
fn greedy_continuations_match_candle_transformers() {
    for arch in ARCHS {
        let (dir, loaded) = tiny_model(arch, 5);
        let mut reference = Reference::load(loaded.model.config(), dir.path());
        let prompt = loaded
            .tokenizer
            .encode("Let's think step by step. First,", false)
            .unwrap();
        let params = SamplingParams {
            temperature: 0.0,
            max_new_tokens: 32,
            ..SamplingParams::default()
        };
        let ours = loaded
            .model
            .generate(std::slice::from_ref(&prompt), &params, None)
            .unwrap();
        reference.reset();
        let mut theirs = Vec::new();
        let mut logits = reference.last_logits(&prompt, 0);
        for step in 0..32 {
            let next = logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i as u32)
                .unwrap();
            theirs.push(next);
            logits = reference.last_logits(&[next], prompt.len() + step);
        }
        assert_eq!(
            ours[0].token_ids, theirs,
            "{arch:?}: greedy continuation differs"
        );
    }
}
