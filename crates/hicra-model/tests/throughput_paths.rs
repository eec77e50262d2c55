//! The throughput paths keep the model's answers: packed f32 decoding of large batches equals
//! one-at-a-time decoding, bf16 decoding stays within a bound of the f32 log-probs, activation
//! checkpointing gives the gradients of the full backward pass, and bf16 products keep training
//! and scoring near f32.

mod common;

use candle_core::Device;
use common::{ARCHS, chunk_loss, max_abs, sample_rows, tiny_model};
use hicra_model::generate::decode_weights::PACK_MIN_ROWS_F32 as PACK_MIN_ROWS;
use hicra_model::{Padding, Precision, SamplingParams, ScoreOptions, TokenBatch};

/// `n` prompts cycling through the sample rows, each a little different (a row index token).
fn many_prompts(loaded: &hicra_model::LoadedModel, n: usize) -> Vec<Vec<u32>> {
    let rows = sample_rows(loaded);
    (0..n)
        .map(|i| {
            let mut p = rows[i % rows.len()].clone();
            p.push((i % 50) as u32 + 10);
            p
        })
        .collect()
}

fn greedy(max_new_tokens: usize) -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        max_new_tokens,
        seed: 3,
        ..SamplingParams::default()
    }
}

#[test]
fn packed_f32_batches_decode_like_single_rows() {
    for arch in ARCHS {
        let (_d, loaded) = tiny_model(arch, 21);
        let prompts = many_prompts(&loaded, PACK_MIN_ROWS + 3);
        let params = greedy(12);
        let batched = loaded.model.generate(&prompts, &params, None).unwrap();
        for (i, p) in prompts.iter().enumerate().step_by(4) {
            let alone = loaded
                .model
                .generate(std::slice::from_ref(p), &params, None)
                .unwrap();
            assert_eq!(alone[0].token_ids, batched[i].token_ids, "{arch:?} row {i}");
            for (a, b) in alone[0].logprobs.iter().zip(&batched[i].logprobs) {
                assert!((a - b).abs() < 1e-4, "{arch:?} row {i}: {a} vs {b}");
            }
        }
        // Sampling is reproducible for a seed.
        let sampled = SamplingParams {
            temperature: 1.0,
            ..params.clone()
        };
        let a = loaded.model.generate(&prompts, &sampled, None).unwrap();
        let b = loaded.model.generate(&prompts, &sampled, None).unwrap();
        assert_eq!(a, b, "{arch:?}");
    }
}

#[test]
fn a_packed_row_decodes_the_same_in_one_group_and_in_row_groups() {
    // Below PACKED_GROUP_MIN_ROWS a packed call is one group whose products split their panels
    // across the threads; from it on the rows are decoded in groups side by side. A row's tokens
    // and log-probs must not depend on which.
    use hicra_model::generate::PACKED_GROUP_MIN_ROWS;
    let (_d, loaded) = tiny_model(ARCHS[0], 23);
    let prompts = many_prompts(&loaded, PACKED_GROUP_MIN_ROWS + 5);
    let few = &prompts[..PACK_MIN_ROWS.max(PACKED_GROUP_MIN_ROWS / 2)];
    let params = SamplingParams {
        temperature: 1.0,
        ..greedy(10)
    };
    let grouped = loaded.model.generate(&prompts, &params, None).unwrap();
    let one_group = loaded.model.generate(few, &params, None).unwrap();
    assert_eq!(one_group[..], grouped[..few.len()]);
}

/// Scores `gens` (continuations of `prompts`) with the model in f32: per-token log-probs.
fn f32_logprobs(
    loaded: &hicra_model::LoadedModel,
    prompts: &[Vec<u32>],
    gens: &[hicra_model::Generation],
) -> Vec<Vec<f32>> {
    let rows: Vec<Vec<u32>> = prompts
        .iter()
        .zip(gens)
        .map(|(p, g)| p.iter().chain(&g.token_ids).copied().collect())
        .collect();
    let batch =
        TokenBatch::from_rows(&rows, loaded.pad_token_id, Padding::Right, &Device::Cpu).unwrap();
    let scores = loaded
        .model
        .score_tokens(&batch, &ScoreOptions::default())
        .unwrap();
    prompts
        .iter()
        .zip(gens)
        .enumerate()
        .map(|(i, (p, g))| scores.logprobs[i][p.len()..p.len() + g.token_ids.len()].to_vec())
        .collect()
}

#[test]
fn bf16_decoding_log_probs_stay_near_the_f32_scores() {
    if !Precision::Bf16.fast_on_this_cpu() {
        eprintln!("no packed bf16 kernel on this CPU: bf16 decoding runs in f32 here");
    }
    for arch in ARCHS {
        let (_d, loaded) = tiny_model(arch, 5);
        let bf16 = loaded.model.clone().with_decode_precision(Precision::Bf16);
        let prompts = many_prompts(&loaded, 6);
        let params = SamplingParams {
            temperature: 1.0,
            max_new_tokens: 16,
            seed: 9,
            ..SamplingParams::default()
        };
        let gens = bf16.generate(&prompts, &params, None).unwrap();
        let exact = f32_logprobs(&loaded, &prompts, &gens);
        let (mut sum, mut max, mut count) = (0f64, 0f64, 0usize);
        for (g, e) in gens.iter().zip(&exact) {
            for (a, b) in g.logprobs.iter().zip(e) {
                let d = (a - b).abs() as f64;
                sum += d;
                max = max.max(d);
                count += 1;
            }
        }
        let mean = sum / count as f64;
        eprintln!("{arch:?}: bf16 vs f32 log-prob |Δ| mean {mean:.2e}, max {max:.2e}");
        // bf16 keeps 8 significant bits (relative rounding 2^-9 per value). On these tiny
        // random models that moves token log-probs by about 1e-2 on average (measured: 0.9e-2
        // to 1.5e-2 mean, under 0.06 max); a broken path (wrong pairing, lost rows) moves them
        // by whole nats.
        assert!(mean < 3e-2, "{arch:?}: mean |Δ| {mean}");
        assert!(max < 0.25, "{arch:?}: max |Δ| {max}");
        if Precision::Bf16.fast_on_this_cpu() {
            // The path really is another precision: the log-probs are not the f32 ones.
            assert!(
                max > 0.0,
                "{arch:?}: bf16 decoding gave f32's exact log-probs"
            );
        }
    }
}

/// The sample rows as a left-padded batch, scored in chunks of 4 positions with entropies.
fn sample_batch(loaded: &hicra_model::LoadedModel) -> (TokenBatch, ScoreOptions) {
    let rows = sample_rows(loaded);
    let batch =
        TokenBatch::from_rows(&rows, loaded.pad_token_id, Padding::Left, &Device::Cpu).unwrap();
    let opts = ScoreOptions {
        chunk_positions: 4,
        with_entropy: true,
    };
    (batch, opts)
}

/// `model`'s training backward of the gradient tests' loss on [`sample_batch`].
fn sample_backward(
    loaded: &hicra_model::LoadedModel,
    model: &hicra_model::Model,
) -> hicra_model::BackwardOutput {
    let (batch, opts) = sample_batch(loaded);
    model
        .backward_token_loss(&batch, &opts, &mut chunk_loss)
        .unwrap()
}

#[test]
fn activation_checkpointing_gives_the_full_backward_gradients() {
    for arch in ARCHS {
        let (_d, loaded) = tiny_model(arch, 8);
        let full = &loaded.model;
        let checkpointed = full.clone().with_activation_checkpointing(true);
        assert!(checkpointed.activation_checkpointing() && !full.activation_checkpointing());
        let a = sample_backward(&loaded, full);
        let b = sample_backward(&loaded, &checkpointed);
        assert_eq!(
            a.loss, b.loss,
            "{arch:?}: the forward pass is recomputed exactly"
        );
        for (name, var) in full.parameters() {
            let ga = a.grads.get(var.as_tensor()).expect("full gradient");
            let gb = b
                .grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{arch:?}: no checkpointed gradient for {name}"));
            let diff = max_abs(&(ga - gb).unwrap());
            let scale = max_abs(ga);
            assert!(
                diff <= 1e-5 * (1.0 + scale),
                "{arch:?} {name}: gradients differ by {diff} (scale {scale})"
            );
        }
        // Both stores hold the parameters' gradients and nothing else (no gradients for the
        // constant attention mask or RoPE tables, which would be full-size and never read).
        let params = full.parameters().len();
        assert_eq!(a.grads.get_ids().count(), params, "{arch:?}: full backward");
        assert_eq!(b.grads.get_ids().count(), params, "{arch:?}: checkpointed");
    }
}

#[test]
fn bf16_products_keep_training_and_scoring_near_f32_with_every_gradient() {
    if !hicra_kernels::bf16_matmul::available() {
        eprintln!("skipped: this CPU has no AVX-512 BF16");
        return;
    }
    for arch in ARCHS {
        let (_d, loaded) = tiny_model(arch, 8);
        let f32_model = &loaded.model;
        let bf16 = f32_model.clone().with_matmul_precision(Precision::Bf16);
        let a = sample_backward(&loaded, f32_model);
        let b = sample_backward(&loaded, &bf16);
        assert_ne!(a.loss, b.loss, "{arch:?}: the bf16 products ran");
        assert!(
            (a.loss - b.loss).abs() < 1e-2 * a.loss.abs(),
            "{arch:?}: loss {} vs {}",
            a.loss,
            b.loss
        );
        let params = f32_model.parameters();
        assert_eq!(b.grads.get_ids().count(), params.len());
        for (name, var) in &params {
            let ga = a.grads.get(var.as_tensor()).expect("f32 gradient");
            let gb = b
                .grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{arch:?}: no bf16 gradient for {name}"));
            let err = max_abs(&(ga - gb).unwrap());
            let scale = max_abs(ga);
            assert!(scale > 0.0, "{arch:?} {name}: zero gradient");
            assert!(
                err <= 0.05 * scale + 1e-6,
                "{arch:?} {name}: bf16 gradient off by {err} (scale {scale})"
            );
        }
        // Scoring runs the same products: the policy's own log-probs for the ratio.
        let (batch, opts) = sample_batch(&loaded);
        let sa = f32_model.score_tokens(&batch, &opts).unwrap();
        let sb = bf16.score_tokens(&batch, &opts).unwrap();
        let (mut sum, mut max, mut count) = (0f64, 0f64, 0usize);
        for (ra, rb) in sa.logprobs.iter().zip(&sb.logprobs) {
            for (x, y) in ra.iter().zip(rb) {
                let d = (x - y).abs() as f64;
                sum += d;
                max = max.max(d);
                count += 1;
            }
        }
        let mean = sum / count as f64;
        eprintln!("{arch:?}: bf16-product vs f32 log-prob |Δ| mean {mean:.2e}, max {max:.2e}");
        // The same bounds as bf16 decoding's (bf16_decoding_log_probs_stay_near_the_f32_scores):
        // rounding moves these tiny models' log-probs by about 1e-2; a broken product by nats.
        assert!(
            max > 0.0,
            "{arch:?}: bf16 scoring gave f32's exact log-probs"
        );
        assert!(mean < 3e-2, "{arch:?}: mean |Δ| {mean}");
        assert!(max < 0.25, "{arch:?}: max |Δ| {max}");
    }
}
