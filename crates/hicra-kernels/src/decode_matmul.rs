//! Matmuls for decoding steps (a few rows), without autograd. candle hands every matmul to
//! gemm's thread pool, and on small operands the threads' hand-offs cost more than they save;
//! gemm also packs the weight on every call. Here projections go through the
//! [`crate::skinny`] kernel on the weight as stored, and the attention products run gemm
//! single-threaded. Generation gets its parallelism from decoding row groups side by side; only
//! a lone group (batch 1) splits weights across the threads: every projection when it decodes a
//! single row (reading the weight is then all the work), the wide LM head otherwise.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::skinny;

/// Row counts up to this take the decoding kernels; larger ones (prefill) use candle's matmul.
pub const MAX_DECODE_ROWS: usize = 64;

/// Weights with at least this many elements (K x N) are split by rows across the threads.
const SPLIT_MIN_ELEMENTS: usize = 1 << 22;
/// The same for a single input row, where reading the weight is all the work.
const SPLIT_MIN_ELEMENTS_ONE_ROW: usize = 1 << 16;

/// `x @ w.T` for `x` (M, K) and a weight `w` (N, K) stored row-major, f32 on the CPU. No
/// gradient is recorded: use it on detached inference tensors only. Other dtypes, devices and
/// weight layouts fall back to candle's matmul.
pub fn decode_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if x.dtype() != DType::F32
        || w.dtype() != DType::F32
        || !x.device().is_cpu()
        || !w.is_contiguous()
    {
        return x.matmul(&w.t()?);
    }
    x.contiguous()?.apply_op2_no_bwd(w, &DecodeLinear)
}

struct DecodeLinear;

impl CustomOp2 for DecodeLinear {
    fn name(&self) -> &'static str {
        "decode-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w) = match (s1, s2, l1.contiguous_offsets(), l2.contiguous_offsets()) {
            (CpuStorage::F32(x), CpuStorage::F32(w), Some((x0, x1)), Some((w0, w1))) => {
                (&x[x0..x1], &w[w0..w1])
            }
            _ => candle_core::bail!("decode-linear: contiguous f32 operands expected"),
        };
        let (m, k) = l1.shape().dims2()?;
        let (n, k2) = l2.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("decode-linear: ({m}, {k}) @ ({n}, {k2}).T do not chain");
        }
        let mut y = vec![0f32; m * n];
        // Called from a worker of the thread pool, this is one of several row groups decoded
        // side by side: stay on this thread. Called from outside (one group), split a weight
        // across the threads once it is big enough to repay the hand-off.
        let threads = match rayon::current_thread_index() {
            Some(_) => 1,
            None => rayon::current_num_threads().max(1),
        };
        let split_min = if m == 1 {
            SPLIT_MIN_ELEMENTS_ONE_ROW
        } else {
            SPLIT_MIN_ELEMENTS
        };
        if threads == 1 || k * n < split_min || m == 0 {
            skinny::matmul_transposed(x, m, k, w, n, &mut y);
            return Ok((CpuStorage::F32(y), Shape::from((m, n))));
        }
        // A wide weight: each thread takes a block of its rows (output columns).
        let block = n.div_ceil(threads);
        let parts: Vec<(usize, Vec<f32>)> = (0..n.div_ceil(block))
            .into_par_iter()
            .map(|b| {
                let j0 = b * block;
                let cols = block.min(n - j0);
                let mut part = vec![0f32; m * cols];
                skinny::matmul_transposed(x, m, k, &w[j0 * k..(j0 + cols) * k], cols, &mut part);
                (j0, part)
            })
            .collect();
        for (j0, part) in parts {
            let cols = part.len() / m;
            for r in 0..m {
                y[r * n + j0..r * n + j0 + cols].copy_from_slice(&part[r * cols..(r + 1) * cols]);
            }
        }
        Ok((CpuStorage::F32(y), Shape::from((m, n))))
    }
}

/// `x @ w` for `x` (M, K) and `w` (K, N), or batched with one or two leading batch dimensions
/// (the attention products), f32 on the CPU, any strides, gemm on this thread. No gradient is
/// recorded: use it on detached inference tensors only. Other dtypes and devices fall back to
/// candle's matmul.
pub fn decode_matmul(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if x.dtype() != DType::F32 || w.dtype() != DType::F32 || !x.device().is_cpu() {
        return x.matmul(w);
    }
    x.apply_op2_no_bwd(w, &DecodeMatmul)
}

struct DecodeMatmul;

/// One operand: (batch, rows, cols) with its strides and the element offset of its start. A
/// rank-4 operand's two leading dimensions form the batch, each keeping its own stride (so a
/// narrowed KV cache is read in place).
struct Operand<'a> {
    data: &'a [f32],
    /// Sizes and strides of the (up to two) batch dimensions, outer first.
    batch_dims: [(usize, isize); 2],
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

impl<'a> Operand<'a> {
    fn new(storage: &'a [f32], layout: &Layout) -> Result<Operand<'a>> {
        let dims = layout.shape().dims();
        let stride = layout.stride();
        let r = dims
            .len()
            .checked_sub(2)
            .filter(|&r| r <= 2)
            .ok_or_else(|| {
                candle_core::Error::Msg(format!(
                    "decode-matmul: rank-2 to rank-4 operands expected, got rank {}",
                    dims.len()
                ))
            })?;
        let mut batch_dims = [(1, 0isize); 2];
        for (slot, d) in batch_dims[2 - r..].iter_mut().zip(0..r) {
            *slot = (dims[d], stride[d] as isize);
        }
        let op = Operand {
            data: &storage[layout.start_offset()..],
            batch_dims,
            rows: dims[r],
            cols: dims[r + 1],
            row_stride: stride[r] as isize,
            col_stride: stride[r + 1] as isize,
        };
        // The furthest element the strides reach must lie inside the storage.
        let last = |n: usize, s: isize| n.saturating_sub(1) as isize * s;
        let reach = op
            .batch_dims
            .iter()
            .map(|&(n, s)| last(n, s))
            .sum::<isize>()
            + last(op.rows, op.row_stride)
            + last(op.cols, op.col_stride);
        if op.batch() * op.rows * op.cols > 0 && reach as usize >= op.data.len() {
            candle_core::bail!("decode-matmul: operand layout exceeds its storage");
        }
        Ok(op)
    }

    fn batch(&self) -> usize {
        self.batch_dims[0].0 * self.batch_dims[1].0
    }

    /// Element offset of flat batch index `bi`.
    fn batch_offset(&self, bi: usize) -> isize {
        let [(_, s0), (n1, s1)] = self.batch_dims;
        (bi / n1) as isize * s0 + (bi % n1) as isize * s1
    }
}

impl CustomOp2 for DecodeMatmul {
    fn name(&self) -> &'static str {
        "decode-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w) = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(w)) => {
                (Operand::new(x, l1)?, Operand::new(w, l2)?)
            }
            _ => candle_core::bail!("decode-matmul: f32 operands expected"),
        };
        let ranks = (l1.shape().rank(), l2.shape().rank());
        let batch_sizes = |o: &Operand| [o.batch_dims[0].0, o.batch_dims[1].0];
        if ranks.0 != ranks.1 || batch_sizes(&x) != batch_sizes(&w) || x.cols != w.rows {
            candle_core::bail!(
                "decode-matmul: shapes {:?} and {:?} do not chain",
                l1.shape(),
                l2.shape()
            );
        }
        let (b, m, k, n) = (x.batch(), x.rows, x.cols, w.cols);
        let mut dims = l1.shape().dims().to_vec();
        *dims.last_mut().expect("rank >= 2") = n;
        let shape = Shape::from(dims);
        let mut out = vec![0f32; b * m * n];
        if out.is_empty() {
            return Ok((CpuStorage::F32(out), shape));
        }
        for bi in 0..b {
            // SAFETY: both operands were checked to hold every element their strides reach;
            // `out` holds b x m x n elements and this call writes batch bi's m x n block.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    out.as_mut_ptr().add(bi * m * n),
                    1,
                    n as isize,
                    false,
                    x.data.as_ptr().offset(x.batch_offset(bi)),
                    x.col_stride,
                    x.row_stride,
                    w.data.as_ptr().offset(w.batch_offset(bi)),
                    w.col_stride,
                    w.row_stride,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            }
        }
        Ok((CpuStorage::F32(out), shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::max_abs_diff as max_diff;
    use candle_core::Device;

    #[test]
    fn matches_candle_matmul_for_both_weight_layouts() -> Result<()> {
        let dev = Device::Cpu;
        for (m, k, n) in [(1, 16, 70), (3, 33, 200), (8, 64, 129), (5, 7, 1)] {
            let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
            let w_rows = Tensor::randn(0f32, 1.0, (n, k), &dev)?; // (N, K): used as w.t()
            let expected = x.matmul(&w_rows.t()?)?;
            assert!(max_diff(&decode_matmul(&x, &w_rows.t()?)?, &expected) < 1e-4);
            let w_cols = w_rows.t()?.contiguous()?; // (K, N) row-major
            assert!(max_diff(&decode_matmul(&x, &w_cols)?, &expected) < 1e-4);
            // A strided left side (a column slice of a wider matrix).
            let wide = Tensor::randn(0f32, 1.0, (m, k + 5), &dev)?;
            let xs = wide.narrow(1, 2, k)?;
            let expected = xs.matmul(&w_cols)?;
            assert!(max_diff(&decode_matmul(&xs, &w_cols)?, &expected) < 1e-4);
        }
        Ok(())
    }

    #[test]
    fn batched_operands_match_candle_matmul() -> Result<()> {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (6, 3, 16), &dev)?;
        // A key cache with spare capacity, narrowed and transposed as in attention.
        let cache = Tensor::randn(0f32, 1.0, (6, 40, 16), &dev)?;
        let keys = cache.narrow(1, 0, 25)?;
        let expected = q.matmul(&keys.t()?)?;
        assert!(max_diff(&decode_matmul(&q, &keys.t()?)?, &expected) < 1e-4);
        let probs = Tensor::randn(0f32, 1.0, (6, 3, 25), &dev)?;
        let expected = probs.matmul(&keys)?;
        assert!(max_diff(&decode_matmul(&probs, &keys)?, &expected) < 1e-4);
        // Rank 4: (B, KV, rows, hd) against a narrowed (B, KV, capacity, hd) cache.
        let q = Tensor::randn(0f32, 1.0, (2, 3, 3, 16), &dev)?;
        let cache = Tensor::randn(0f32, 1.0, (2, 3, 40, 16), &dev)?;
        let keys = cache.narrow(2, 0, 25)?;
        let expected = q.matmul(&keys.t()?)?;
        assert!(max_diff(&decode_matmul(&q, &keys.t()?)?, &expected) < 1e-4);
        Ok(())
    }

    #[test]
    fn decode_linear_matches_candle_for_narrow_and_wide_weights() -> Result<()> {
        let dev = Device::Cpu;
        for (m, k, n) in [(1, 64, 70), (6, 33, 129), (3, 64, 70_000)] {
            let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
            let w = Tensor::randn(0f32, 1.0, (n, k), &dev)?;
            let expected = x.matmul(&w.t()?)?;
            assert!(
                max_diff(&decode_linear(&x, &w)?, &expected) < 1e-3,
                "{m}x{k}x{n}"
            );
            // A transposed (non-contiguous) input row block.
            let xt = x.t()?.contiguous()?.t()?;
            assert!(
                max_diff(&decode_linear(&xt, &w)?, &expected) < 1e-3,
                "{m}x{k}x{n}"
            );
        }
        Ok(())
    }

    #[test]
    fn mismatched_inner_dimensions_are_an_error() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((2, 3), DType::F32, &dev).unwrap();
        let w = Tensor::zeros((4, 5), DType::F32, &dev).unwrap();
        assert!(decode_matmul(&x, &w).is_err());
    }
}
