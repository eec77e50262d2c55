//! Rough generation and training throughput of a SmolLM2-135M-shaped model with random weights
//! (no download needed): `cargo run --release -p hicra-model --example gen_speed [new_tokens]`.
//! The real benchmark is `hicra bench model`; this is a quick check while developing.

use std::time::Instant;

use candle_core::Device;
use hicra_model::io::tiny::random_tensors;
use hicra_model::{
    Arch, LoadOptions, Model, ModelConfig, Padding, SamplingParams, ScoreOptions, TokenBatch,
};

fn main() -> hicra_model::Result<()> {
    let new_tokens: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let config = smol();
    {
        let a = candle_core::Tensor::randn(0f32, 1.0, (512, 576), &Device::Cpu)?;
        let w = candle_core::Tensor::randn(0f32, 1.0, (1536, 576), &Device::Cpu)?;
        let t = Instant::now();
        for _ in 0..20 {
            let _ = a.matmul(&w.t()?)?;
        }
        let gf = 20.0 * 2.0 * 512.0 * 576.0 * 1536.0 / t.elapsed().as_secs_f64() / 1e9;
        println!("calibration matmul: {gf:.1} GFLOP/s");
    }
    for m in [1usize, 8, 32] {
        let x = candle_core::Tensor::randn(0f32, 1.0, (m, 576), &Device::Cpu)?;
        let w = candle_core::Tensor::randn(0f32, 1.0, (1536, 576), &Device::Cpu)?;
        let wt = w.t()?.contiguous()?;
        for round in 0..2 {
            let t = Instant::now();
            for _ in 0..200 {
                let _ = x.matmul(&w.t()?)?;
            }
            let a = t.elapsed().as_secs_f64() / 200.0 * 1e6;
            let t = Instant::now();
            for _ in 0..200 {
                let _ = x.matmul(&wt)?;
            }
            let b = t.elapsed().as_secs_f64() / 200.0 * 1e6;
            println!("m={m} round {round}: x·w.t() {a:.0} µs, x·(contiguous wᵀ) {b:.0} µs");
        }
    }
    if std::env::var("ONLY_CAL").is_ok() {
        return Ok(());
    }
    let t0 = Instant::now();
    let tensors = random_tensors(&config, 0)?;
    let model = Model::from_tensors(config, tensors, &LoadOptions::default())?;
    eprintln!("built model in {:.1}s", t0.elapsed().as_secs_f64());
    {
        let prompt = vec![(0..40u32).collect::<Vec<u32>>()];
        let params = SamplingParams {
            max_new_tokens: 1,
            ..SamplingParams::default()
        };
        let t = Instant::now();
        model.generate(&prompt, &params, None)?;
        println!(
            "setup + 40-token prefill at batch 1: {:.2}s",
            t.elapsed().as_secs_f64()
        );
    }
    for batch in [1usize, 8, 32] {
        let prompts: Vec<Vec<u32>> = (0..batch)
            .map(|i| {
                (0..40 + (i % 5) as u32)
                    .map(|t| (t * 7 + i as u32) % 49000)
                    .collect()
            })
            .collect();
        let params = SamplingParams {
            temperature: 1.0,
            max_new_tokens: new_tokens,
            seed: 1,
            ..SamplingParams::default()
        };
        let t = Instant::now();
        let out = model.generate(&prompts, &params, None)?;
        let n: usize = out.iter().map(|g| g.token_ids.len()).sum();
        println!(
            "gen batch {batch:>2}: {:.1} tok/s ({n} tokens in {:.2}s)",
            n as f64 / t.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
    }
    if std::env::var("SKIP_TRAIN").is_ok() {
        return Ok(());
    }
    let rows: Vec<Vec<u32>> = (0..8)
        .map(|i| (0..256u32).map(|t| (t * 13 + i) % 49000).collect())
        .collect();
    let batch = TokenBatch::from_rows(&rows, 0, Padding::Right, &Device::Cpu)?;
    let t = Instant::now();
    let out = model.backward_token_loss(
        &batch,
        &ScoreOptions {
            chunk_positions: 32,
            with_entropy: true,
        },
        &mut |c| c.logprobs.sum_all()?.neg(),
    )?;
    let dt = t.elapsed().as_secs_f64();
    println!(
        "train fwd+bwd 8x256: {:.1} tok/s ({dt:.2}s, loss {:.1})",
        2048.0 / dt,
        out.loss
    );
    Ok(())
}

fn smol() -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        vocab_size: 49152,
        hidden_size: 576,
        intermediate_size: 1536,
        num_hidden_layers: 30,
        num_attention_heads: 9,
        num_key_value_heads: 3,
        head_dim: 64,
        rms_norm_eps: 1e-5,
        rope_theta: 100000.0,
        rope_scaling: None,
        max_position_embeddings: 8192,
        tie_word_embeddings: true,
        attention_bias: false,
        mlp_bias: false,
        bos_token_id: None,
        eos_token_ids: vec![],
        torch_dtype: None,
    }
}
