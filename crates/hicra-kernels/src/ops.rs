//! Differentiable building blocks composed from basic candle ops (candle's fused kernels have no
//! backward): RMSNorm, softmax, log-softmax, RoPE, linear layers. Every op here has a forward
//! and a backward on every candle device (the CUDA training path uses them). The reductions
//! (RMSNorm, softmax, log-softmax) run in f32 for bf16/f16 inputs, as PyTorch's do, and return
//! the input's dtype.

use candle_core::{D, DType, Result, Tensor};

/// Runs `f` in f32 when `x` is half precision (bf16/f16) and casts the result back; other
/// dtypes run as they are. Both casts are differentiable.
fn in_f32_for_half(x: &Tensor, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    match x.dtype() {
        DType::BF16 | DType::F16 => f(&x.to_dtype(DType::F32)?)?.to_dtype(x.dtype()),
        _ => f(x),
    }
}

/// RMSNorm over the last dimension: `x / sqrt(mean(x²) + eps) * weight`.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let normed = in_f32_for_half(x, |x| {
        let inv = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
        x.broadcast_mul(&inv)
    })?;
    normed.broadcast_mul(&weight.to_dtype(dtype)?)
}

/// Softmax over the last dimension (the max shift is a constant, so it is detached).
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    in_f32_for_half(x, |x| {
        let max = x.max_keepdim(D::Minus1)?.detach();
        let e = x.broadcast_sub(&max)?.exp()?;
        let s = e.sum_keepdim(D::Minus1)?;
        e.broadcast_div(&s)
    })
}

/// Log-softmax over the last dimension.
pub fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
    in_f32_for_half(x, log_softmax_exact)
}

fn log_softmax_exact(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// Rotary embedding, HF "rotate half" layout. `x`: (B, H, T, hd); `cos`, `sin`: (B, 1, T, hd).
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let hd = x.dim(D::Minus1)?;
    let half = hd / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?
}

/// `x @ w.T + b` for `x` of shape (N, in) and `w` of shape (out, in).
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let y = x.matmul(&w.t()?)?;
    match b {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    #[test]
    fn softmax_and_log_softmax_match_candle_kernels() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 3.0, (4, 7), &dev)?;
        let ours = softmax_last(&x)?;
        let theirs = candle_nn::ops::softmax_last_dim(&x)?;
        let diff = (ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "softmax differs by {diff}");
        let lsm = log_softmax_last(&x)?.exp()?;
        let diff = (lsm - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "log-softmax differs by {diff}");
        Ok(())
    }

    #[test]
    fn rms_norm_matches_candle_kernel_and_has_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 8), &dev)?)?;
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.1, 8, &dev)?)?;
        let ours = rms_norm(x.as_tensor(), w.as_tensor(), 1e-5)?;
        let theirs =
            candle_nn::ops::rms_norm(&x.as_detached_tensor(), &w.as_detached_tensor(), 1e-5)?;
        let diff = (&ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "rms_norm differs by {diff}");
        let grads = ours.sqr()?.sum_all()?.backward()?;
        for v in [&x, &w] {
            let g = grads.get(v.as_tensor()).expect("gradient present");
            let n = g
                .abs()?
                .sum_all()?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
            assert!(n.is_finite() && n > 0.0);
        }
        Ok(())
    }

    #[test]
    fn half_precision_reductions_run_in_f32_and_keep_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let x32 = Tensor::randn(0f32, 4.0, (3, 64), &dev)?;
        let w32 = Tensor::randn(1f32, 0.1, 64, &dev)?;
        let x = Var::from_tensor(&x32.to_dtype(DType::BF16)?)?;
        let w = Var::from_tensor(&w32.to_dtype(DType::BF16)?)?;
        let exact = |t: Tensor| t.to_dtype(DType::F32);
        let half_in = |t: &Tensor| t.to_dtype(DType::BF16)?.to_dtype(DType::F32);
        let cases = [
            (
                rms_norm(x.as_tensor(), w.as_tensor(), 1e-6)?,
                rms_norm(&half_in(&x32)?, &half_in(&w32)?, 1e-6)?,
            ),
            (softmax_last(x.as_tensor())?, softmax_last(&half_in(&x32)?)?),
            (
                log_softmax_last(x.as_tensor())?,
                log_softmax_last(&half_in(&x32)?)?,
            ),
        ];
        for (half, reference) in cases {
            assert_eq!(half.dtype(), DType::BF16);
            // Only the roundings to bf16 (at most two, 2^-8 each) separate the two.
            let err = (exact(half.clone())? - &reference)?.abs()?;
            let bound = ((reference.abs()? * (1.0 / 64.0))? + 1e-6)?;
            let over = err
                .gt(&bound)?
                .to_dtype(DType::F32)?
                .sum_all()?
                .to_scalar::<f32>()?;
            assert_eq!(over, 0.0, "bf16 result differs from f32 beyond rounding");
            let grads = half.to_dtype(DType::F32)?.sqr()?.sum_all()?.backward()?;
            let g = grads
                .get(x.as_tensor())
                .expect("gradient reaches the bf16 input");
            assert_eq!(g.dtype(), DType::BF16);
            let n = g
                .to_dtype(DType::F32)?
                .abs()?
                .sum_all()?
                .to_scalar::<f32>()?;
            assert!(n.is_finite() && n > 0.0);
        }
        Ok(())
    }
}
