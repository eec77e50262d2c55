//! Differentiable building blocks composed from basic candle ops (candle's fused kernels have no
//! backward): RMSNorm, softmax, log-softmax, RoPE, linear layers.

use candle_core::{D, Result, Tensor};

/// RMSNorm over the last dimension: `x / sqrt(mean(x²) + eps) * weight`.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let inv = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    x.broadcast_mul(&inv)?.broadcast_mul(weight)
}

/// Softmax over the last dimension (the max shift is a constant, so it is detached).
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&s)
}

/// Log-softmax over the last dimension.
pub fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
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
}
