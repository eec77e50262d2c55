//! GPU tests (run with `HICRA_TEST_CUDA=1` on a machine with an NVIDIA GPU, in a
//! `--features cuda` build; skipped with a message otherwise): the CUDA forward pass against
//! the CPU (logits and log-probs, f32 and bf16), every parameter's gradient against the CPU
//! f64 reference, greedy generation parity, seeded sampling, an AdamW step with f32 master
//! weights, and the named device errors.

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use common::{ARCHS, chunk_loss};
use hicra_model::device::{PeakMemory, device_memory, ensure_fits};
use hicra_model::io::tiny::{random_tensors, tiny_config};
use hicra_model::{
    Arch, DeviceSpec, LoadOptions, Model, ModelError, Padding, SamplingParams, ScoreOptions,
    TokenBatch,
};

const VOCAB: usize = 320;

/// The GPU to test on, or `None` (after saying why) when the tests are not asked for.
fn gpu() -> Option<Device> {
    if std::env::var("HICRA_TEST_CUDA").as_deref() != Ok("1") {
        eprintln!("skipped: set HICRA_TEST_CUDA=1 to run the GPU tests (needs an NVIDIA GPU)");
        return None;
    }
    match DeviceSpec::Cuda(0).device() {
        Ok(d) => Some(d),
        Err(e) => panic!("HICRA_TEST_CUDA=1 but the GPU cannot be opened: {e}"),
    }
}

fn tensors(arch: Arch, seed: u64) -> HashMap<String, Tensor> {
    random_tensors(&tiny_config(arch, VOCAB), seed).unwrap()
}

fn model_on(arch: Arch, seed: u64, device: &Device, dtype: DType) -> Model {
    let opts = LoadOptions {
        device: device.clone(),
        dtype,
    };
    Model::from_tensors(tiny_config(arch, VOCAB), tensors(arch, seed), &opts).unwrap()
}

/// Rows of pseudo-random token ids, of different lengths (padding exercised).
fn rows(seed: u64) -> Vec<Vec<u32>> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    [17usize, 9, 24, 3]
        .iter()
        .map(|&len| {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % VOCAB as u64) as u32
                })
                .collect()
        })
        .collect()
}

fn batch(rows: &[Vec<u32>], padding: Padding, device: &Device) -> TokenBatch {
    TokenBatch::from_rows(rows, 0, padding, device).unwrap()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    let a = a
        .to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    let b = b
        .to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// The largest difference of two score tables over the positions that are scored.
fn max_table_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn cuda_logits_and_logprobs_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    for arch in ARCHS {
        let cpu = model_on(arch, 3, &Device::Cpu, DType::F32);
        let rows = rows(1);
        let cpu_logits = cpu
            .forward_logits(&batch(&rows, Padding::Left, &Device::Cpu))
            .unwrap();
        let opts = ScoreOptions {
            chunk_positions: 8,
            with_entropy: true,
        };
        let cpu_scores = cpu
            .score_tokens(&batch(&rows, Padding::Left, &Device::Cpu), &opts)
            .unwrap();
        // f32 on the GPU: the same arithmetic up to summation order. bf16: 8-bit mantissas
        // through two layers.
        for (dtype, logit_tol, lp_tol) in [(DType::F32, 1e-4, 1e-4), (DType::BF16, 0.15, 0.15)] {
            let m = model_on(arch, 3, &gpu, dtype);
            assert_eq!(m.device().location(), gpu.location());
            let logits = m
                .forward_logits(&batch(&rows, Padding::Left, &gpu))
                .unwrap();
            assert_eq!(logits.dtype(), dtype);
            let d = max_abs(&logits, &cpu_logits);
            eprintln!("{arch:?} {dtype:?}: logits differ by at most {d:.2e}");
            assert!(d <= logit_tol, "{arch:?} {dtype:?}: logits differ by {d}");
            let scores = m
                .score_tokens(&batch(&rows, Padding::Left, &gpu), &opts)
                .unwrap();
            let dl = max_table_diff(&scores.logprobs, &cpu_scores.logprobs);
            let de = max_table_diff(&scores.entropy, &cpu_scores.entropy);
            eprintln!("{arch:?} {dtype:?}: log-probs {dl:.2e}, entropies {de:.2e}");
            assert!(dl <= lp_tol, "{arch:?} {dtype:?}: log-probs differ by {dl}");
            assert!(de <= lp_tol, "{arch:?} {dtype:?}: entropies differ by {de}");
        }
    }
}

/// Gradients of every parameter, by name, as f64 on the CPU.
fn gradients(model: &Model, device: &Device) -> (f64, HashMap<String, Tensor>) {
    let b = batch(&rows(2), Padding::Right, device);
    let opts = ScoreOptions {
        chunk_positions: 8,
        with_entropy: true,
    };
    let out = model
        .backward_token_loss(&b, &opts, &mut chunk_loss)
        .unwrap();
    let grads = model
        .parameters()
        .into_iter()
        .map(|(name, var)| {
            let g = out
                .grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name} on {device:?}"));
            assert_eq!(g.device().location(), device.location(), "{name}");
            let g = g
                .to_device(&Device::Cpu)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap();
            (name, g)
        })
        .collect();
    (out.loss, grads)
}

fn norm(t: &Tensor) -> f64 {
    t.sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
        .sqrt()
}

#[test]
fn every_cuda_gradient_matches_the_cpu_f64_reference() {
    let Some(gpu) = gpu() else { return };
    for arch in ARCHS {
        let reference = model_on(arch, 5, &Device::Cpu, DType::F64);
        let (ref_loss, ref_grads) = gradients(&reference, &Device::Cpu);
        // Relative L2 error per parameter: f32 is exact up to rounding; bf16 forward and
        // backward keep the direction within a few percent.
        for (dtype, tol) in [(DType::F32, 1e-4), (DType::BF16, 0.08)] {
            let m = model_on(arch, 5, &gpu, dtype);
            let (loss, grads) = gradients(&m, &gpu);
            let dl = (loss - ref_loss).abs() / ref_loss.abs();
            assert!(dl <= tol, "{arch:?} {dtype:?}: loss {loss} vs {ref_loss}");
            let mut worst = (0.0f64, String::new());
            for (name, g_ref) in &ref_grads {
                let g = &grads[name];
                let rel = norm(&(g - g_ref).unwrap()) / norm(g_ref).max(1e-12);
                if rel > worst.0 {
                    worst = (rel, name.clone());
                }
                assert!(
                    rel <= tol,
                    "{arch:?} {dtype:?} {name}: gradient off by {rel:.3e} (relative)"
                );
            }
            eprintln!(
                "{arch:?} {dtype:?}: {} gradients, worst relative error {:.2e} ({})",
                grads.len(),
                worst.0,
                worst.1
            );
        }
    }
}

#[test]
fn greedy_generation_on_cuda_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let params = SamplingParams {
        temperature: 0.0,
        max_new_tokens: 24,
        stop_token_ids: vec![],
        ..SamplingParams::default()
    };
    for arch in ARCHS {
        let prompts = rows(3);
        let cpu = model_on(arch, 7, &Device::Cpu, DType::F32);
        let want = cpu.generate(&prompts, &params, None).unwrap();
        let f32_gpu = model_on(arch, 7, &gpu, DType::F32)
            .generate(&prompts, &params, None)
            .unwrap();
        for (r, (a, b)) in want.iter().zip(&f32_gpu).enumerate() {
            assert_eq!(a.token_ids, b.token_ids, "{arch:?} row {r}: f32 greedy ids");
            let d = max_table_diff(
                std::slice::from_ref(&a.logprobs),
                std::slice::from_ref(&b.logprobs),
            );
            assert!(d <= 1e-4, "{arch:?} row {r}: log-probs differ by {d}");
        }
        // bf16 may break near-ties differently; every token it picks must be (near-)greedy
        // under the CPU model, with the CPU's untempered log-prob within bf16 tolerance.
        let bf16 = model_on(arch, 7, &gpu, DType::BF16)
            .generate(&prompts, &params, None)
            .unwrap();
        let mut same = 0;
        for (r, (prompt, g)) in prompts.iter().zip(&bf16).enumerate() {
            let full = [prompt.clone(), g.token_ids.clone()].concat();
            let b = batch(&[full], Padding::Right, &Device::Cpu);
            let logits = cpu.forward_logits(&b).unwrap().squeeze(0).unwrap();
            let lsm = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1).unwrap();
            let lsm = lsm.to_vec2::<f32>().unwrap();
            for (i, (&tok, &lp)) in g.token_ids.iter().zip(&g.logprobs).enumerate() {
                let row = &lsm[prompt.len() + i - 1];
                let best = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let cpu_lp = row[tok as usize];
                assert!(
                    best - cpu_lp <= 0.1,
                    "{arch:?} row {r} token {i}: bf16 picked {tok} ({cpu_lp}), best is {best}"
                );
                assert!(
                    (cpu_lp - lp).abs() <= 0.15,
                    "{arch:?} row {r} token {i}: log-prob {lp} vs CPU {cpu_lp}"
                );
            }
            same += usize::from(g.token_ids == want[r].token_ids);
        }
        eprintln!(
            "{arch:?} bf16: {same} of {} greedy rows equal the CPU's",
            prompts.len()
        );
    }
}

#[test]
fn seeded_sampling_on_cuda_repeats_and_follows_the_seed() {
    let Some(gpu) = gpu() else { return };
    let m = model_on(Arch::Qwen2, 9, &gpu, DType::BF16);
    let params = SamplingParams {
        temperature: 1.0,
        top_p: 0.9,
        top_k: 50,
        max_new_tokens: 32,
        seed: 11,
        stop_token_ids: vec![],
        ..SamplingParams::default()
    };
    let prompts = vec![rows(4)[0].clone(); 8];
    let a = m.generate(&prompts, &params, None).unwrap();
    let b = m.generate(&prompts, &params, None).unwrap();
    let ids = |g: &[hicra_model::Generation]| -> Vec<Vec<u32>> {
        g.iter().map(|x| x.token_ids.clone()).collect()
    };
    assert_eq!(ids(&a), ids(&b), "same seed, same samples");
    let distinct: std::collections::HashSet<_> = ids(&a).into_iter().collect();
    assert!(
        distinct.len() > 1,
        "rows of one prompt draw different samples"
    );
    let c = m
        .generate(&prompts, &SamplingParams { seed: 12, ..params }, None)
        .unwrap();
    assert_ne!(ids(&a), ids(&c), "another seed, other samples");
}

#[test]
fn device_errors_are_named() {
    let Some(gpu) = gpu() else { return };
    let count = (0..64)
        .take_while(|&n| DeviceSpec::Cuda(n).device().is_ok())
        .count();
    let e = DeviceSpec::Cuda(count).device().unwrap_err().to_string();
    assert!(e.starts_with(&format!("cuda:{count}: no such GPU")), "{e}");
    let (free, total) = device_memory(&gpu)
        .unwrap()
        .expect("a GPU reports its memory");
    assert!(free <= total && total > 0);
    match ensure_fits(&gpu, total + 1, "a model") {
        Err(ModelError::OutOfDeviceMemory {
            needed_bytes,
            free_bytes,
            ..
        }) => assert!(needed_bytes == total + 1 && free_bytes <= total),
        other => panic!("expected OutOfDeviceMemory, got {other:?}"),
    }
    let watch = PeakMemory::start(&gpu).unwrap().expect("a GPU watch");
    let big = Tensor::zeros((64, 1 << 20), DType::F32, &gpu).unwrap(); // 256 MiB
    std::thread::sleep(std::time::Duration::from_millis(50));
    drop(big);
    assert!(
        watch.peak_above_start() >= 200 << 20,
        "peak {}",
        watch.peak_above_start()
    );
}

#[test]
fn an_adamw_like_update_on_cuda_matches_the_cpu() {
    // The optimiser lives in hicra-rl; here the device side of its arithmetic: f32 master
    // weights updated on the GPU equal the CPU's, and the bf16 copy is their rounding.
    let Some(gpu) = gpu() else { return };
    let w = Tensor::randn(0f32, 1.0, (64, 64), &Device::Cpu).unwrap();
    let g = Tensor::randn(0f32, 1.0, (64, 64), &Device::Cpu).unwrap();
    let step = |w: &Tensor, g: &Tensor| -> Tensor {
        let m = (g * 0.1).unwrap();
        let v = (g.sqr().unwrap() * 0.001).unwrap();
        let update =
            ((m / 0.1).unwrap() / ((v / 0.001).unwrap().sqrt().unwrap() + 1e-8).unwrap()).unwrap();
        ((w * (1.0 - 1e-3 * 0.01)).unwrap() - (update * 1e-3).unwrap()).unwrap()
    };
    let cpu = step(&w, &g);
    let on_gpu = step(&w.to_device(&gpu).unwrap(), &g.to_device(&gpu).unwrap());
    assert!(max_abs(&cpu, &on_gpu) <= 1e-6);
    let rounded = on_gpu.to_dtype(DType::BF16).unwrap();
    assert!(max_abs(&rounded, &cpu) <= 4.0 * 2f64.powi(-8));
}
