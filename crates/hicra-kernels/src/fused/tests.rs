use super::*;
use crate::ops;
use crate::test_util::max_abs_diff as max_diff;
use candle_core::{D, DType, Result, Tensor};
use candle_core::{Device, Var};

#[test]
fn softmax_and_its_gradient_match_the_composition() -> Result<()> {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f64, 2.0, (3, 4, 7), &dev)?)?;
    let weights = Tensor::randn(0f64, 1.0, (3, 4, 7), &dev)?;
    let fused = softmax_last(x.as_tensor())?;
    let composed = ops::softmax_last(x.as_tensor())?;
    assert!(max_diff(&fused, &composed) < 1e-12);
    let g_fused = (fused * &weights)?.sum_all()?.backward()?;
    let g_composed = (composed * &weights)?.sum_all()?.backward()?;
    let (a, b) = (
        g_fused.get(x.as_tensor()).expect("grad"),
        g_composed.get(x.as_tensor()).expect("grad"),
    );
    assert!(max_diff(a, b) < 1e-12);
    Ok(())
}

#[test]
fn token_scores_and_their_gradient_match_the_composition() -> Result<()> {
    let dev = Device::Cpu;
    for dtype in [DType::F64, DType::F32] {
        let tol = if dtype == DType::F64 { 1e-10 } else { 1e-4 };
        let z = Var::from_tensor(&Tensor::randn(0f64, 3.0, (5, 11), &dev)?.to_dtype(dtype)?)?;
        let targets = Tensor::new(&[0u32, 10, 3, 3, 7], &dev)?;
        let fused = token_logprob_entropy(z.as_tensor(), &targets)?;
        let lsm = ops::log_softmax_last(z.as_tensor())?;
        let lp = lsm.gather(&targets.unsqueeze(1)?, D::Minus1)?.squeeze(1)?;
        let entropy = (lsm.exp()? * &lsm)?.sum(D::Minus1)?.neg()?;
        assert!(max_diff(&fused.narrow(1, 0, 1)?.squeeze(1)?, &lp) < tol);
        assert!(max_diff(&fused.narrow(1, 1, 1)?.squeeze(1)?, &entropy) < tol);
        // A loss mixing both outputs with per-row weights.
        let w_lp = Tensor::new(&[1.0f64, -2.0, 0.5, 0.0, 3.0], &dev)?.to_dtype(dtype)?;
        let w_h = Tensor::new(&[0.3f64, 0.1, -1.0, 2.0, 0.0], &dev)?.to_dtype(dtype)?;
        let loss = |lp: &Tensor, h: &Tensor| -> Result<Tensor> {
            (lp * &w_lp)?.sum_all()? + (h * &w_h)?.sum_all()?
        };
        let g_fused = loss(
            &fused.narrow(1, 0, 1)?.squeeze(1)?,
            &fused.narrow(1, 1, 1)?.squeeze(1)?,
        )?
        .backward()?;
        let g_composed = loss(&lp, &entropy)?.backward()?;
        let (a, b) = (
            g_fused.get(z.as_tensor()).expect("grad"),
            g_composed.get(z.as_tensor()).expect("grad"),
        );
        assert!(max_diff(a, b) < tol, "{dtype:?}");
    }
    Ok(())
}

#[test]
fn out_of_vocabulary_targets_are_an_error() {
    let dev = Device::Cpu;
    let z = Tensor::zeros((2, 4), DType::F32, &dev).unwrap();
    let t = Tensor::new(&[1u32, 4], &dev).unwrap();
    assert!(token_logprob_entropy(&z, &t).is_err());
}

#[test]
fn rms_norm_and_its_gradients_match_the_composition() -> Result<()> {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f64, 2.0, (2, 3, 8), &dev)?)?;
    let w = Var::from_tensor(&Tensor::randn(1f64, 0.3, 8, &dev)?)?;
    let probe = Tensor::randn(0f64, 1.0, (2, 3, 8), &dev)?;
    let fused = rms_norm(x.as_tensor(), w.as_tensor(), 1e-5)?;
    let composed = ops::rms_norm(x.as_tensor(), w.as_tensor(), 1e-5)?;
    assert!(max_diff(&fused, &composed) < 1e-12);
    let g_fused = (fused * &probe)?.sum_all()?.backward()?;
    let g_composed = (composed * &probe)?.sum_all()?.backward()?;
    for v in [&x, &w] {
        let a = g_fused.get(v.as_tensor()).expect("grad");
        let b = g_composed.get(v.as_tensor()).expect("grad");
        assert_eq!(a.dims(), b.dims());
        assert!(max_diff(a, b) < 1e-10);
    }
    Ok(())
}

#[test]
fn rope_and_its_gradient_match_the_composition() -> Result<()> {
    let dev = Device::Cpu;
    let (b, t, h, hd) = (2, 5, 3, 8);
    let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, (b, t, h, hd), &dev)?)?;
    let angles = Tensor::randn(0f64, 2.0, (b, t, hd / 2), &dev)?;
    let (cos, sin) = (angles.cos()?, angles.sin()?);
    let probe = Tensor::randn(0f64, 1.0, (b, h, t, hd), &dev)?;
    // The composition works on (B, H, T, hd) with full-width (B, 1, T, hd) tables.
    let full = |t: &Tensor| Tensor::cat(&[t, t], 2)?.unsqueeze(1);
    let composed = ops::rope(&x.as_tensor().transpose(1, 2)?, &full(&cos)?, &full(&sin)?)?;
    let fused = rope_bthd(x.as_tensor(), &cos, &sin)?.transpose(1, 2)?;
    assert!(max_diff(&fused, &composed) < 1e-12);
    let g_fused = (fused * &probe)?.sum_all()?.backward()?;
    let g_composed = (composed * &probe)?.sum_all()?.backward()?;
    let a = g_fused.get(x.as_tensor()).expect("grad");
    let b2 = g_composed.get(x.as_tensor()).expect("grad");
    assert!(max_diff(a, b2) < 1e-12);
    Ok(())
}

#[test]
fn masked_softmax_matches_the_composition_and_leaves_the_mask_without_gradient() -> Result<()> {
    let dev = Device::Cpu;
    let (b, h, t, s) = (2, 3, 4, 6);
    let scores = Var::from_tensor(&Tensor::randn(0f64, 2.0, (b, h, t, s), &dev)?)?;
    // A causal mask with a padded first key in row 1, as the model builds it.
    let mut m = vec![0f64; b * t * s];
    for r in 0..b {
        for i in 0..t {
            for j in 0..s {
                if j > i + (s - t) || (r == 1 && j == 0 && i + (s - t) > 0) {
                    m[(r * t + i) * s + j] = -1e9;
                }
            }
        }
    }
    let mask = Tensor::from_vec(m, (b, 1, t, s), &dev)?;
    let probe = Tensor::randn(0f64, 1.0, (b, h, t, s), &dev)?;
    let fused = masked_softmax(scores.as_tensor(), &mask)?;
    let composed = ops::softmax_last(&scores.as_tensor().broadcast_add(&mask)?)?;
    assert!(max_diff(&fused, &composed) < 1e-12);
    let g_fused = (fused * &probe)?.sum_all()?.backward()?;
    let g_composed = (composed * &probe)?.sum_all()?.backward()?;
    let a = g_fused.get(scores.as_tensor()).expect("grad");
    let b2 = g_composed.get(scores.as_tensor()).expect("grad");
    assert!(max_diff(a, b2) < 1e-12);
    // The composition leaves a gradient for the (broadcast) mask in the store; the fused op
    // does not: its store holds the scores' and the constant probe's only.
    assert_eq!(g_fused.get_ids().count(), 2, "scores and probe only");
    assert!(g_composed.get_ids().count() > 2);
    assert!(masked_softmax(scores.as_tensor(), &mask.narrow(3, 0, 2)?).is_err());
    // Grouped-query layout: heads (0, 1, 2) as one group of 3·T rows gives the same rows.
    let grouped = scores.as_tensor().reshape((b, 1, h * t, s))?;
    let fused_grouped = masked_softmax(&grouped, &mask)?.reshape((b, h, t, s))?;
    assert!(max_diff(&fused_grouped, &masked_softmax(scores.as_tensor(), &mask)?) == 0.0);
    // Rows per group must be whole sets of queries.
    assert!(masked_softmax(&scores.as_tensor().reshape((b, 2, 6, s))?, &mask).is_err());
    Ok(())
}

/// The f32 kernels (vector exponentials) against the f64 composition, over a spread of
/// gates with saturated ones (±100, where e^(−g) overflows or underflows) among them.
#[test]
fn swiglu_in_f32_matches_the_f64_composition() -> Result<()> {
    let dev = Device::Cpu;
    let mut gates = Tensor::randn(0f64, 4.0, (2, 20_003), &dev)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    gates[5] = 100.0;
    gates[20_010] = -100.0;
    let g64 = Var::from_tensor(&Tensor::from_vec(gates, (2, 20_003), &dev)?)?;
    let up64 = Var::from_tensor(&Tensor::randn(0f64, 1.0, (2, 20_003), &dev)?)?;
    let probe = Tensor::randn(0f64, 1.0, (2, 20_003), &dev)?;
    let composed = (g64.as_tensor().silu()? * up64.as_tensor())?;
    let grads64 = (&composed * &probe)?.sum_all()?.backward()?;
    let g32 = Var::from_tensor(&g64.as_tensor().to_dtype(DType::F32)?)?;
    let up32 = Var::from_tensor(&up64.as_tensor().to_dtype(DType::F32)?)?;
    let fused = swiglu(g32.as_tensor(), up32.as_tensor())?;
    let to64 = |t: &Tensor| t.to_dtype(DType::F64);
    // f32 rounding of values up to |g·u| ≈ 40.
    assert!(max_diff(&to64(&fused)?, &composed) < 2e-5);
    let grads32 = (fused * probe.to_dtype(DType::F32)?)?
        .sum_all()?
        .backward()?;
    for (v32, v64) in [(&g32, &g64), (&up32, &up64)] {
        let a = to64(grads32.get(v32.as_tensor()).expect("grad"))?;
        let b = grads64.get(v64.as_tensor()).expect("grad");
        assert!(max_diff(&a, b) < 2e-4, "{}", max_diff(&a, b));
    }
    Ok(())
}

#[test]
fn swiglu_and_its_gradients_match_the_composition() -> Result<()> {
    let dev = Device::Cpu;
    let g = Var::from_tensor(&Tensor::randn(0f64, 2.0, (3, 40_000), &dev)?)?;
    let u = Var::from_tensor(&Tensor::randn(0f64, 1.0, (3, 40_000), &dev)?)?;
    let probe = Tensor::randn(0f64, 1.0, (3, 40_000), &dev)?;
    let fused = swiglu(g.as_tensor(), u.as_tensor())?;
    let composed = (g.as_tensor().silu()? * u.as_tensor())?;
    assert!(max_diff(&fused, &composed) < 1e-12);
    let g_fused = (fused * &probe)?.sum_all()?.backward()?;
    let g_composed = (composed * &probe)?.sum_all()?.backward()?;
    for v in [&g, &u] {
        let a = g_fused.get(v.as_tensor()).expect("grad");
        let b = g_composed.get(v.as_tensor()).expect("grad");
        assert!(max_diff(a, b) < 1e-10);
    }
    Ok(())
}
