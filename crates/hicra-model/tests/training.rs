//! The training path: scores agree with generation and across padding sides; every parameter
//! gets a finite non-zero gradient (chunked backward and full-logits backward agree); a
//! finite-difference check in f64.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{ARCHS, chunk_loss, sample_rows, tiny_model, tiny_model_with};
use hicra_model::io::tiny::{test_tokenizer, tiny_config};
use hicra_model::{
    Arch, LoadOptions, Padding, SamplingParams, ScoreOptions, TokenBatch, TokenChunk,
};

fn close(a: f32, b: f32, tol: f32) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

#[test]
fn right_and_left_padded_scores_agree() {
    for arch in ARCHS {
        let (_d, loaded) = tiny_model(arch, 3);
        let rows = sample_rows(&loaded);
        let opts = ScoreOptions {
            chunk_positions: 5,
            with_entropy: true,
        };
        let dev = Device::Cpu;
        let right =
            TokenBatch::from_rows(&rows, loaded.pad_token_id, Padding::Right, &dev).unwrap();
        let left = TokenBatch::from_rows(&rows, loaded.pad_token_id, Padding::Left, &dev).unwrap();
        let r = loaded.model.score_tokens(&right, &opts).unwrap();
        let l = loaded.model.score_tokens(&left, &opts).unwrap();
        let t = right.dims().unwrap().1;
        for (i, row) in rows.iter().enumerate() {
            let pad = t - row.len();
            assert_eq!(r.logprobs[i][0], 0.0);
            for j in 1..row.len() {
                let (a, b) = (r.logprobs[i][j], l.logprobs[i][pad + j]);
                assert!(
                    a < 0.0 && close(a, b, 1e-4),
                    "{arch:?} row {i} pos {j}: {a} vs {b}"
                );
                let (ea, eb) = (r.entropy[i][j], l.entropy[i][pad + j]);
                assert!(
                    ea > 0.0 && close(ea, eb, 1e-4),
                    "{arch:?} entropy {ea} vs {eb}"
                );
            }
            for j in row.len()..t {
                assert_eq!(r.logprobs[i][j], 0.0, "padding scores zero");
            }
            for j in 0..=pad {
                assert_eq!(
                    l.logprobs[i][j], 0.0,
                    "left padding and first token score zero"
                );
            }
        }
        // Chunk size does not change the result.
        let whole = loaded
            .model
            .score_tokens(
                &right,
                &ScoreOptions {
                    chunk_positions: 1000,
                    with_entropy: true,
                },
            )
            .unwrap();
        for (a, b) in whole
            .logprobs
            .iter()
            .flatten()
            .zip(r.logprobs.iter().flatten())
        {
            assert!(close(*a, *b, 1e-5));
        }
    }
}

#[test]
fn generation_logprobs_equal_training_logprobs() {
    for arch in ARCHS {
        let (_d, loaded) = tiny_model(arch, 4);
        let prompts = sample_rows(&loaded);
        let params = SamplingParams {
            temperature: 1.0,
            max_new_tokens: 12,
            seed: 9,
            ..SamplingParams::default()
        };
        let gens = loaded.model.generate(&prompts, &params, None).unwrap();
        let full: Vec<Vec<u32>> = prompts
            .iter()
            .zip(&gens)
            .map(|(p, g)| [p.clone(), g.token_ids.clone()].concat())
            .collect();
        let batch = TokenBatch::from_rows(&full, loaded.pad_token_id, Padding::Right, &Device::Cpu)
            .unwrap();
        let scores = loaded
            .model
            .score_tokens(&batch, &ScoreOptions::default())
            .unwrap();
        for (i, (p, g)) in prompts.iter().zip(&gens).enumerate() {
            assert_eq!(g.token_ids.len(), 12);
            for (k, lp) in g.logprobs.iter().enumerate() {
                let train = scores.logprobs[i][p.len() + k];
                assert!(
                    close(*lp, train, 1e-4),
                    "{arch:?} row {i} token {k}: gen {lp} vs train {train}"
                );
            }
        }
    }
}

#[test]
fn every_parameter_gets_a_gradient_and_chunked_equals_full_backward() {
    for arch in ARCHS {
        let (_d, loaded) = tiny_model(arch, 8);
        let model = &loaded.model;
        let rows = sample_rows(&loaded);
        let batch =
            TokenBatch::from_rows(&rows, loaded.pad_token_id, Padding::Left, &Device::Cpu).unwrap();
        let opts = ScoreOptions {
            chunk_positions: 4,
            with_entropy: true,
        };
        let out = model
            .backward_token_loss(&batch, &opts, &mut chunk_loss)
            .unwrap();
        assert!(out.loss.is_finite() && out.loss > 0.0);

        // The same loss from full logits, differentiated in one go.
        let total = full_logits_loss(model, &batch);
        let full_loss = total.to_scalar::<f32>().unwrap() as f64;
        assert!(
            (full_loss - out.loss).abs() < 1e-3 * full_loss.abs(),
            "{full_loss} vs {}",
            out.loss
        );
        let full = total.backward().unwrap();

        for (name, var) in model.parameters() {
            let g = out
                .grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{arch:?}: no gradient for {name}"));
            assert_eq!(g.dims(), var.dims());
            let v = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(
                v.iter().all(|x| x.is_finite()),
                "{name}: non-finite gradient"
            );
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(norm > 0.0, "{arch:?}: zero gradient for {name}");
            let gf = full
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("full backward: no gradient for {name}"));
            let vf = gf.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let diff: f32 = v
                .iter()
                .zip(&vf)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt();
            assert!(
                diff <= 1e-3 * norm.max(1e-3),
                "{arch:?} {name}: chunked vs full gradient differ by {diff} (norm {norm})"
            );
        }
    }
}

/// `-Σ log p - 0.1 Σ entropy` over the scored positions of `batch`, from the full logits
/// (candle's autograd through the whole model), in the model's dtype.
fn full_logits_loss(model: &hicra_model::Model, batch: &TokenBatch) -> Tensor {
    let logits = model.forward_logits(batch).unwrap();
    let lsm = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1).unwrap();
    let (b, t) = batch.dims().unwrap();
    let ids = batch.input_ids.to_vec2::<u32>().unwrap();
    let mask = batch.mask_rows().unwrap();
    let mut terms = Vec::new();
    for r in 0..b {
        for p in 1..t {
            if mask[r][p] && mask[r][p - 1] {
                let row = lsm.get(r).unwrap().get(p - 1).unwrap();
                let lp = row.get(ids[r][p] as usize).unwrap();
                let ent = (row.exp().unwrap() * &row)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .neg()
                    .unwrap();
                terms.push((lp.neg().unwrap() - (ent * 0.1).unwrap()).unwrap());
            }
        }
    }
    Tensor::stack(&terms, 0).unwrap().sum_all().unwrap()
}

/// The hand-written trunk backward that `backward_token_loss` runs on the CPU, against
/// candle's autograd of the same loss from full logits, in f64: every parameter of each
/// architecture (biases on the MLP too), with and without activation checkpointing.
#[test]
fn the_hand_written_backward_gives_autograds_gradients_in_f64() {
    let opts = LoadOptions {
        dtype: DType::F64,
        ..LoadOptions::default()
    };
    for arch in ARCHS {
        let mut cfg = tiny_config(arch, test_tokenizer().vocab_size());
        cfg.mlp_bias = true;
        let (_d, loaded) = tiny_model_with(cfg, 5, &opts);
        let rows = sample_rows(&loaded);
        let batch =
            TokenBatch::from_rows(&rows, loaded.pad_token_id, Padding::Left, &Device::Cpu).unwrap();
        let total = full_logits_loss(&loaded.model, &batch);
        let reference_loss = total.to_scalar::<f64>().unwrap();
        let reference = total.backward().unwrap();
        for checkpointing in [false, true] {
            let model = loaded
                .model
                .clone()
                .with_activation_checkpointing(checkpointing);
            let mut loss_fn = |c: &TokenChunk| -> candle_core::Result<Tensor> {
                c.logprobs.sum_all()?.neg()? - (c.entropy.sum_all()? * 0.1)?
            };
            let opts = ScoreOptions {
                chunk_positions: 4,
                with_entropy: true,
            };
            let out = model
                .backward_token_loss(&batch, &opts, &mut loss_fn)
                .unwrap();
            assert!((out.loss - reference_loss).abs() < 1e-9 * reference_loss.abs());
            for (name, var) in model.parameters() {
                let ours = out.grads.get(var.as_tensor()).unwrap_or_else(|| {
                    panic!("{arch:?} checkpointing {checkpointing}: no gradient for {name}")
                });
                let theirs = reference.get(var.as_tensor()).unwrap();
                let a = ours.flatten_all().unwrap().to_vec1::<f64>().unwrap();
                let b = theirs.flatten_all().unwrap().to_vec1::<f64>().unwrap();
                assert_eq!(a.len(), b.len(), "{name}");
                let scale = b.iter().fold(0f64, |m, x| m.max(x.abs()));
                let diff = a
                    .iter()
                    .zip(&b)
                    .fold(0f64, |m, (x, y)| m.max((x - y).abs()));
                assert!(
                    scale > 0.0 && diff <= 1e-10 * scale,
                    "{arch:?} checkpointing {checkpointing} {name}: max |Δ| {diff} (max |g| {scale})"
                );
            }
        }
    }
}

#[test]
fn finite_difference_gradient_check_f64() {
    let opts = LoadOptions {
        dtype: DType::F64,
        ..LoadOptions::default()
    };
    for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3] {
        let cfg = tiny_config(arch, test_tokenizer().vocab_size());
        let (_d, loaded) = tiny_model_with(cfg, 21, &opts);
        let model = &loaded.model;
        let rows = vec![
            loaded
                .tokenizer
                .encode("First, 12 + 30 = 42.", false)
                .unwrap(),
        ];
        let batch = TokenBatch::from_rows(&rows, loaded.pad_token_id, Padding::Right, &Device::Cpu)
            .unwrap();
        let sopts = ScoreOptions {
            chunk_positions: 3,
            with_entropy: true,
        };
        let mut loss_fn = |c: &TokenChunk| -> candle_core::Result<Tensor> {
            c.logprobs.sum_all()?.neg()? - (c.entropy.sum_all()? * 0.1)?
        };
        let out = model
            .backward_token_loss(&batch, &sopts, &mut loss_fn)
            .unwrap();
        let eval = || -> f64 {
            let s = model.score_tokens(&batch, &sopts).unwrap();
            -s.logprobs[0].iter().map(|&x| x as f64).sum::<f64>()
                - 0.1 * s.entropy[0].iter().map(|&x| x as f64).sum::<f64>()
        };
        // score_tokens reports f32; use the f64 backward loss path for the probes instead.
        let eval64 = |model: &hicra_model::Model| -> f64 {
            let mut f = |c: &TokenChunk| -> candle_core::Result<Tensor> {
                c.logprobs.sum_all()?.neg()? - (c.entropy.sum_all()? * 0.1)?
            };
            model
                .backward_token_loss(&batch, &sopts, &mut f)
                .unwrap()
                .loss
        };
        assert!((eval() - out.loss).abs() < 1e-3);
        let params = model.parameters();
        let probe = [
            "model.layers.0.self_attn.q_proj.weight",
            "model.layers.1.mlp.down_proj.weight",
            "model.norm.weight",
            "model.embed_tokens.weight",
        ];
        for name in probe {
            let var = &params.iter().find(|(n, _)| n == name).unwrap().1;
            let grad = out
                .grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let base = var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            // Probe the coordinates with the largest gradients.
            let mut idx: Vec<usize> = (0..grad.len()).collect();
            idx.sort_by(|a, b| grad[*b].abs().total_cmp(&grad[*a].abs()));
            for &i in idx.iter().take(3) {
                let eps = 1e-5;
                let mut plus = base.clone();
                plus[i] += eps;
                var.set(&Tensor::from_vec(plus, var.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                let lp = eval64(model);
                let mut minus = base.clone();
                minus[i] -= eps;
                var.set(&Tensor::from_vec(minus, var.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                let lm = eval64(model);
                var.set(&Tensor::from_vec(base.clone(), var.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                let numeric = (lp - lm) / (2.0 * eps);
                let rel = (numeric - grad[i]).abs() / grad[i].abs().max(1e-6);
                assert!(
                    rel < 1e-4,
                    "{arch:?} {name}[{i}]: analytic {} vs numeric {numeric}",
                    grad[i]
                );
            }
        }
    }
}
