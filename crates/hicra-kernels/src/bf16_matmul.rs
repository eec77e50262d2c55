//! bf16 matrix products with f32 accumulation, for the full-batch passes (training
//! forward and backward, scoring) when a model is set to [`crate::precision::Precision::Bf16`]
//! matmuls (`Model::with_matmul_precision` in hicra-model): the mixed precision PyTorch's autocast
//! gives, with the f32 weights kept as the master copy.
//!
//! [`linear`] computes `x · wᵀ` and records a backward whose two products (`g · w` and
//! `gᵀ · x`) run the same way. Each product rounds its operands to bf16 (nearest even) while
//! packing them as pairs along k (K padded with zeros to a multiple of 32) and multiplies them
//! on AMX tiles ([`crate::amx`], `tdpbf16ps`) where the CPU has AMX-BF16, and on AVX-512 BF16
//! register tiles (`vdpbf16ps`, the decoding kernel of [`crate::packed`]) elsewhere. Every
//! output is accumulated in the order of k, so results do not depend on the threads; the two
//! instruction sets group the products differently, so their last bits differ.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::amx::{K_PAIRS, ROWS, Tiles};
use crate::packed::{OutPtr, PANEL, split_panels};

/// Rows of the left operand per block: a block's pairs stay in L2 while the thread's panels
/// pass over it.
const ROW_BLOCK: usize = 128;

/// Whether bf16 products run here: the CPU runs the packed AVX-512 BF16 kernel
/// ([`crate::precision::Precision::fast_on_this_cpu`]); AMX-BF16, where granted, makes them faster.
pub fn available() -> bool {
    crate::precision::Precision::Bf16.fast_on_this_cpu()
}

/// `x · wᵀ` for `x` (N, in) and `w` (out, in), f32 on the CPU, in bf16 with f32 accumulation;
/// differentiable w.r.t. both.
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2(&w.contiguous()?, Product(Form::RowsTimesWeightT))
}

/// The gradients (dx = g · w, dw = gᵀ · x) of [`linear`] from its output gradient `grad`, each
/// product in bf16 with f32 accumulation.
pub fn linear_backward(x: &Tensor, w: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)> {
    let g = grad.contiguous()?;
    let dx = g.apply_op2_no_bwd(&w.contiguous()?, &Product(Form::RowsTimesMatrix))?;
    let dw = g.apply_op2_no_bwd(&x.contiguous()?, &Product(Form::TransposedTimesMatrix))?;
    Ok((dx, dw))
}

/// Which product of two row-major matrices `a`, `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// `a (m, k) · b (n, k)ᵀ`: the forward pass, `x · wᵀ`.
    RowsTimesWeightT,
    /// `a (m, k) · b (k, n)`: the input gradient, `g · w`.
    RowsTimesMatrix,
    /// `a (k, m)ᵀ · b (k, n)`: the weight gradient, `gᵀ · x`.
    TransposedTimesMatrix,
}

/// A product of [`Form`] as a candle op (the forward form records a backward).
struct Product(Form);

impl CustomOp2 for Product {
    fn name(&self) -> &'static str {
        match self.0 {
            Form::RowsTimesWeightT => "bf16-linear",
            Form::RowsTimesMatrix => "bf16-linear-grad-input",
            Form::TransposedTimesMatrix => "bf16-linear-grad-weight",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (a, b) = match (s1, s2, l1.contiguous_offsets(), l2.contiguous_offsets()) {
            (CpuStorage::F32(a), CpuStorage::F32(b), Some((a0, a1)), Some((b0, b1))) => {
                (&a[a0..a1], &b[b0..b1])
            }
            _ => candle_core::bail!("{}: contiguous f32 operands expected", self.name()),
        };
        let (ar, ac) = l1.shape().dims2()?;
        let (br, bc) = l2.shape().dims2()?;
        let (m, k, n) = match self.0 {
            Form::RowsTimesWeightT => (ar, ac, br),
            Form::RowsTimesMatrix => (ar, ac, bc),
            Form::TransposedTimesMatrix => (ac, ar, bc),
        };
        let chains = match self.0 {
            Form::RowsTimesWeightT => ac == bc,
            Form::RowsTimesMatrix | Form::TransposedTimesMatrix => {
                (if self.0 == Form::RowsTimesMatrix {
                    ac
                } else {
                    ar
                }) == br
            }
        };
        if !chains {
            candle_core::bail!(
                "{}: operands ({ar}, {ac}) and ({br}, {bc}) do not chain",
                self.name()
            );
        }
        if !available() {
            candle_core::bail!("{}: this CPU has no AVX-512 BF16", self.name());
        }
        let out = product(self.0, a, b, m, k, n, crate::amx::available());
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        if self.0 != Form::RowsTimesWeightT {
            candle_core::bail!("{}: no second derivative", self.name());
        }
        let (dx, dw) = linear_backward(x, w, grad)?;
        Ok((Some(dx), Some(dw)))
    }
}

/// The product of `form` (m × n out of a k-long sum), operands rounded to bf16; on AMX tiles
/// where `amx` is set (the caller checked [`crate::amx::available`]), else on AVX-512 BF16.
fn product(form: Form, a: &[f32], b: &[f32], m: usize, k: usize, n: usize, amx: bool) -> Vec<f32> {
    let k2 = k.next_multiple_of(2 * K_PAIRS) / 2;
    let rows = m.next_multiple_of(ROWS);
    // Left operand: `rows` rows of k2 pairs along k; right: 32-column panels of k2 pair rows.
    let left = match form {
        Form::RowsTimesWeightT | Form::RowsTimesMatrix => pairs_along_rows(a, m, k, k2, rows),
        Form::TransposedTimesMatrix => transpose(&pairs_across_rows(a, k, m, k2), k2, m, rows),
    };
    let panels = match form {
        Form::RowsTimesWeightT => panels_of_columns(&pairs_along_rows(b, n, k, k2, n), n, k2),
        Form::RowsTimesMatrix | Form::TransposedTimesMatrix => {
            panels_of_rows(&pairs_across_rows(b, k, n, k2), n, k2)
        }
    };
    multiply(&left, rows, k2, &panels, m, n, amx)
}

/// `out[r][j]` = the pair (src[r][2j], src[r][2j + 1]) of a row-major (r_count × k) matrix,
/// rows of `k2` pairs (zeros past k), followed by zero rows up to `rows`.
fn pairs_along_rows(src: &[f32], r_count: usize, k: usize, k2: usize, rows: usize) -> Vec<u32> {
    let mut out = vec![0u32; rows * k2];
    out.par_chunks_mut(k2)
        .zip(src.par_chunks(k))
        .take(r_count)
        .for_each(|(row, s)| {
            // SAFETY: bf16 products run only where AVX-512 BF16 is present (`available`);
            // the row of k2 pairs holds 2·k2 ≥ k bf16 halves.
            unsafe {
                let halves = std::slice::from_raw_parts_mut(row.as_mut_ptr().cast::<u16>(), k);
                crate::packed::round_to_bf16(s, halves);
            }
        });
    out
}

/// `out[j][c]` = the pair (src[2j][c], src[2j + 1][c]) of a row-major (k × c_count) matrix:
/// `k2` rows of pairs (zeros past k).
fn pairs_across_rows(src: &[f32], k: usize, c_count: usize, k2: usize) -> Vec<u32> {
    let mut out = vec![0u32; k2 * c_count];
    out.par_chunks_mut(c_count)
        .enumerate()
        .for_each(|(j, row)| {
            let even = src.get(2 * j * c_count..(2 * j + 1) * c_count);
            let odd = src.get((2 * j + 1) * c_count..(2 * j + 2) * c_count);
            if let Some(even) = even.filter(|_| 2 * j < k) {
                let odd = odd.filter(|_| 2 * j + 1 < k);
                // SAFETY: as above; `row`, `even` and `odd` hold c_count values.
                unsafe { crate::packed::interleave_bf16(even, odd, row) };
            }
        });
    out
}

/// The transpose (c_count × k2, then zero rows up to `rows`) of pairs (k2 × c_count).
fn transpose(pairs: &[u32], k2: usize, c_count: usize, rows: usize) -> Vec<u32> {
    const B: usize = 16;
    let mut out = vec![0u32; rows * k2];
    out.par_chunks_mut(B * k2)
        .enumerate()
        .for_each(|(blk, dst)| {
            let c0 = blk * B;
            for j0 in (0..k2).step_by(B) {
                for c in c0..(c0 + B).min(c_count) {
                    for j in j0..(j0 + B).min(k2) {
                        dst[(c - c0) * k2 + j] = pairs[j * c_count + c];
                    }
                }
            }
        });
    out
}

/// Panels (32 columns, k2 pair rows each) of pairs laid out as k2 rows of `n` columns.
fn panels_of_rows(pairs: &[u32], n: usize, k2: usize) -> Vec<u32> {
    let count = n.div_ceil(PANEL);
    let mut out = vec![0u32; count * k2 * PANEL];
    out.par_chunks_mut(k2 * PANEL)
        .enumerate()
        .for_each(|(p, panel)| {
            let (c0, cols) = (p * PANEL, PANEL.min(n - p * PANEL));
            for j in 0..k2 {
                panel[j * PANEL..j * PANEL + cols]
                    .copy_from_slice(&pairs[j * n + c0..j * n + c0 + cols]);
            }
        });
    out
}

/// Panels of pairs laid out as `n` rows (columns of the product) of k2 pairs each.
fn panels_of_columns(pairs: &[u32], n: usize, k2: usize) -> Vec<u32> {
    let count = n.div_ceil(PANEL);
    let mut out = vec![0u32; count * k2 * PANEL];
    out.par_chunks_mut(k2 * PANEL)
        .enumerate()
        .for_each(|(p, panel)| {
            for c in 0..PANEL.min(n - p * PANEL) {
                let col = &pairs[(p * PANEL + c) * k2..(p * PANEL + c + 1) * k2];
                for (j, &v) in col.iter().enumerate() {
                    panel[j * PANEL + c] = v;
                }
            }
        });
    out
}

/// `left` (rows × k2 pairs) times the panels, cropped to m × n; see [`product`] for `amx`.
fn multiply(
    left: &[u32],
    rows: usize,
    k2: usize,
    panels: &[u32],
    m: usize,
    n: usize,
    amx: bool,
) -> Vec<f32> {
    let count = n.div_ceil(PANEL);
    let width = count * PANEL;
    // Every element is written by a tile store before the length is set.
    let mut full: Vec<f32> = Vec::with_capacity(rows * width);
    let out = OutPtr(full.as_mut_ptr());
    split_panels(count, rayon::current_num_threads(), |p0, p1| {
        // SAFETY: the caller checked that AMX is available where `amx` is set.
        let tiles = amx.then(|| unsafe { Tiles::configure() });
        for r0 in (0..rows).step_by(ROW_BLOCK) {
            let block = ROW_BLOCK.min(rows - r0);
            for p in p0..p1 {
                // SAFETY: left holds `rows` rows of k2 pairs, each panel k2 × 32 pairs; the
                // block's outputs (rows r0.., columns of panel p) lie inside `full`, and only
                // this task writes panel p's columns. `available` (AVX-512 BF16) was checked
                // before any product runs.
                unsafe {
                    let y = out.get().add(r0 * width + p * PANEL);
                    let x = &left[r0 * k2..(r0 + block) * k2];
                    let panel = &panels[p * k2 * PANEL..(p + 1) * k2 * PANEL];
                    match &tiles {
                        Some(tiles) => tiles.panel(x.as_ptr(), block, k2, panel.as_ptr(), y, width),
                        None => crate::packed::bf16_panel_rows(x, block, k2, panel, y, width),
                    }
                }
            }
        }
    });
    // SAFETY: the tasks stored every row block of every panel: rows × width values.
    unsafe { full.set_len(rows * width) };
    if rows == m && width == n {
        return full;
    }
    let mut y = vec![0f32; m * n];
    for (dst, src) in y.chunks_mut(n).zip(full.chunks(width)) {
        dst.copy_from_slice(&src[..n]);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    fn round(t: &Tensor) -> Tensor {
        t.to_dtype(DType::BF16)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
    }

    fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
        let a = a.to_dtype(DType::F64).unwrap();
        let b = b.to_dtype(DType::F64).unwrap();
        let diff = (&a - &b).unwrap().abs().unwrap().max_all().unwrap();
        let scale = b.abs().unwrap().max_all().unwrap();
        diff.to_scalar::<f64>().unwrap() / (scale.to_scalar::<f64>().unwrap() + 1e-12)
    }

    #[test]
    fn products_and_gradients_match_the_rounded_operands_in_f64() -> Result<()> {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 BF16");
            return Ok(());
        }
        let dev = Device::Cpu;
        // Shapes off every tile size: rows, k and columns all padded inside.
        for (n_rows, d_in, d_out) in [(37, 45, 70), (128, 64, 32), (5, 96, 200)] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n_rows, d_in), &dev)?)?;
            let w = Var::from_tensor(&Tensor::randn(0f32, 0.5, (d_out, d_in), &dev)?)?;
            let probe = Tensor::randn(0f32, 1.0, (n_rows, d_out), &dev)?;
            let y = linear(x.as_tensor(), w.as_tensor())?;
            let want = round(x.as_tensor()).matmul(&round(w.as_tensor()).t()?)?;
            assert!(max_rel(&y, &want) < 1e-5, "{n_rows}x{d_in}x{d_out} forward");
            let grads = (y * &probe)?.sum_all()?.backward()?;
            let (gx, gw) = (
                grads.get(x.as_tensor()).expect("input gradient"),
                grads.get(w.as_tensor()).expect("weight gradient"),
            );
            let p = round(&probe);
            let want_gx = p.matmul(&round(w.as_tensor()))?;
            let want_gw = p.t()?.matmul(&round(x.as_tensor()))?;
            assert!(max_rel(gx, &want_gx) < 1e-5, "{n_rows}x{d_in}x{d_out} dx");
            assert!(max_rel(gw, &want_gw) < 1e-5, "{n_rows}x{d_in}x{d_out} dw");
            // And within bf16 rounding of the f32 products.
            let exact = x.as_tensor().matmul(&w.as_tensor().t()?)?;
            assert!(max_rel(&linear(x.as_tensor(), w.as_tensor())?, &exact) < 2e-2);
        }
        Ok(())
    }

    #[test]
    fn both_instruction_sets_give_every_form_of_the_rounded_product() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 BF16");
            return;
        }
        let values = |len: usize, seed: u64| -> Vec<f32> {
            (0..len as u64)
                .map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
                .collect()
        };
        let bf = |v: f32| half::bf16::from_f32(v).to_f64();
        // (m, k, n) off the tile sizes: 8-row register tiles, 16-row AMX tiles, 128-row blocks,
        // 32-column panels, k padded to 32.
        for (m, k, n) in [(1, 3, 1), (9, 45, 33), (130, 70, 64), (17, 96, 100)] {
            let amx_too = [false, true]
                .into_iter()
                .filter(|&a| !a || crate::amx::available());
            for amx in amx_too {
                for form in [
                    Form::RowsTimesWeightT,
                    Form::RowsTimesMatrix,
                    Form::TransposedTimesMatrix,
                ] {
                    let (a, b) = (values(m * k, 3), values(n * k, 5));
                    // Element (i, kk) of the left operand and (kk, j) of the right one.
                    let left = |i: usize, kk: usize| match form {
                        Form::TransposedTimesMatrix => a[kk * m + i],
                        _ => a[i * k + kk],
                    };
                    let right = |kk: usize, j: usize| match form {
                        Form::RowsTimesWeightT => b[j * k + kk],
                        _ => b[kk * n + j],
                    };
                    let got = product(form, &a, &b, m, k, n, amx);
                    assert_eq!(got.len(), m * n);
                    for i in 0..m {
                        for j in 0..n {
                            let want: f64 =
                                (0..k).map(|kk| bf(left(i, kk)) * bf(right(kk, j))).sum();
                            let g = got[i * n + j] as f64;
                            assert!(
                                (g - want).abs() <= 1e-5 * (1.0 + want.abs()),
                                "{form:?} {m}x{k}x{n} amx={amx} [{i},{j}]: {g} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn operands_that_do_not_chain_are_an_error() {
        if !available() {
            return;
        }
        let dev = Device::Cpu;
        let x = Tensor::zeros((4, 8), DType::F32, &dev).unwrap();
        let w = Tensor::zeros((3, 7), DType::F32, &dev).unwrap();
        let err = linear(&x, &w).unwrap_err().to_string();
        assert!(err.contains("do not chain"), "{err}");
    }
}
