//! Attention of decoding steps in one pass over the KV cache: for each (sequence, KV head), the
//! scores of its query rows against the cached keys, the mask, the softmax and the weighted sum
//! of the cached values, without materialising the scores as tensors or calling a matrix
//! kernel per head. A decoding step has one query per row (a few per KV head under
//! grouped-query attention), so the products are too small for gemm to pay its set-up, and
//! reading the cache is the work: here each cached key and value is read once per step.
//!
//! f32 on the CPU, no gradient (inference tensors only). Each output row is computed on its
//! own, in a fixed order, so it does not depend on the rows decoded beside it.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Whether [`attend`] takes these queries (f32 on the CPU).
pub fn supported(q: &Tensor) -> bool {
    q.dtype() == DType::F32 && q.device().is_cpu()
}

/// `softmax(q · kᵀ + mask) · v` for queries `q` (B, KV, R, hd), with R = rep · T rows per KV
/// head (row `i` being query `i % T`), keys and values `k`, `v` (B, KV, S, hd) with contiguous
/// rows (a narrowed cache is read in place), and the additive mask (B, 1, T, S). Returns
/// (B, KV, R, hd). `q` must already carry the 1/√hd scale.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (b, g, r, hd) = q.dims4()?;
    let (_, _, s, _) = k.dims4()?;
    let t = mask.dim(2).unwrap_or(0);
    if k.dims() != [b, g, s, hd] || v.dims() != [b, g, s, hd] {
        candle_core::bail!(
            "decode attention: keys {:?} and values {:?} for queries {:?}",
            k.dims(),
            v.dims(),
            q.dims()
        );
    }
    if mask.dims() != [b, 1, t, s] || t == 0 || r % t != 0 {
        candle_core::bail!(
            "decode attention: mask {:?} for queries {:?} over {s} keys",
            mask.dims(),
            q.dims()
        );
    }
    let mask = mask.flatten_all()?.to_vec1::<f32>()?;
    q.contiguous()?
        .apply_op3_no_bwd(k, v, &Attend { mask, queries: t })
}

struct Attend {
    /// The mask (B, 1, T, S), flattened.
    mask: Vec<f32>,
    queries: usize,
}

/// A (B, KV, S, hd) operand read in place: element offsets of (b, g) blocks and of rows.
struct Cache<'a> {
    data: &'a [f32],
    strides: [usize; 3],
}

impl<'a> Cache<'a> {
    fn new(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<Cache<'a>> {
        let data = match storage {
            CpuStorage::F32(d) => &d[layout.start_offset()..],
            _ => candle_core::bail!("decode attention: f32 {what} expected"),
        };
        let st = layout.stride();
        let dims = layout.shape().dims();
        if st.len() != 4 || (st[3] != 1 && dims[3] > 1) {
            candle_core::bail!("decode attention: {what} rows must be contiguous");
        }
        // The furthest element the strides reach must lie inside the storage.
        let reach: usize = dims
            .iter()
            .zip(st)
            .map(|(&n, &s)| n.saturating_sub(1) * s)
            .sum();
        if dims.iter().product::<usize>() > 0 && reach >= data.len() {
            candle_core::bail!("decode attention: {what} layout exceeds its storage");
        }
        Ok(Cache {
            data,
            strides: [st[0], st[1], st[2]],
        })
    }

    /// Row `j` of block (bi, gi), `hd` values.
    fn row(&self, bi: usize, gi: usize, j: usize, hd: usize) -> &[f32] {
        let at = bi * self.strides[0] + gi * self.strides[1] + j * self.strides[2];
        &self.data[at..at + hd]
    }
}

impl CustomOp3 for Attend {
    fn name(&self) -> &'static str {
        "decode-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let q = match (s1, l1.contiguous_offsets()) {
            (CpuStorage::F32(q), Some((a, z))) => &q[a..z],
            _ => candle_core::bail!("decode attention: contiguous f32 queries expected"),
        };
        let (b, g, r, hd) = l1.shape().dims4()?;
        let s = l2.shape().dims4()?.2;
        let (k, v) = (Cache::new(s2, l2, "keys")?, Cache::new(s3, l3, "values")?);
        let job = Job {
            q,
            k,
            v,
            mask: &self.mask,
            dims: (g, r, hd, s, self.queries),
        };
        let mut out = vec![0f32; b * g * r * hd];
        let block = |(pair, o): (usize, &mut [f32])| job.block(pair, o);
        // Inside a decoding row group (a pool worker) the blocks run on this thread.
        if rayon::current_thread_index().is_some() {
            out.chunks_mut(r * hd).enumerate().for_each(block);
        } else {
            out.par_chunks_mut(r * hd).enumerate().for_each(block);
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// One decoding step's attention: the operands and (KV heads, rows per head, head dim, keys,
/// queries).
struct Job<'a> {
    q: &'a [f32],
    k: Cache<'a>,
    v: Cache<'a>,
    mask: &'a [f32],
    dims: (usize, usize, usize, usize, usize),
}

impl Job<'_> {
    /// The rows of (sequence, KV head) `pair` into `o` (rows × hd), with fused multiply-adds
    /// where the CPU has them (AVX-512, or AVX2 and FMA, detected at run time):
    /// register-blocked vector kernels for head dims 64 and 128, the vectorisable loops
    /// elsewhere.
    fn block(&self, pair: usize, o: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let hd = self.dims.2;
            if has!("avx512f") {
                // SAFETY: AVX-512F (with its FMA) is present.
                return unsafe {
                    match hd {
                        64 => self.block_avx512_vectors::<4>(pair, o),
                        128 => self.block_avx512_vectors::<8>(pair, o),
                        _ => self.block_avx512(pair, o),
                    }
                };
            }
            if has!("avx2") && has!("fma") {
                // SAFETY: AVX2 and FMA are present.
                return unsafe {
                    match hd {
                        64 => self.block_avx2_vectors::<8>(pair, o),
                        128 => self.block_avx2_vectors::<16>(pair, o),
                        _ => self.block_avx2(pair, o),
                    }
                };
            }
        }
        self.block_with::<false>(pair, o)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_avx2(&self, pair: usize, o: &mut [f32]) {
        self.block_with::<true>(pair, o)
    }

    /// [`Job::block`] for head dim `8 · C` on AVX2: as [`Job::block_avx512_vectors`] with
    /// 8-lane vectors, each score two interleaved FMA chains and one reduction (sixteen
    /// registers cannot also hold the key, so its rows are read from L1 per query row), and
    /// one set of value accumulators.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_avx2_vectors<const C: usize>(&self, pair: usize, o: &mut [f32]) {
        use std::arch::x86_64::*;
        // SAFETY: every pointer comes from a bounds-checked row slice of hd = 8·C values (the
        // queries, a cached key or value, an output row), and lane group c reads or writes
        // values 8c..8c + 8 of it.
        unsafe {
            let (g, r, hd, s, t) = self.dims;
            debug_assert_eq!(hd, 8 * C);
            let (bi, gi) = (pair / g, pair % g);
            let qb = &self.q[pair * r * hd..(pair + 1) * r * hd];
            let mut scores = vec![0f32; r * s];
            for j in 0..s {
                let key = self.k.row(bi, gi, j, hd).as_ptr();
                for i in 0..r {
                    let qi = qb[i * hd..(i + 1) * hd].as_ptr();
                    let mut acc = [_mm256_setzero_ps(); 2];
                    for c in 0..C {
                        let prod = _mm256_loadu_ps(qi.add(8 * c));
                        acc[c % 2] =
                            _mm256_fmadd_ps(prod, _mm256_loadu_ps(key.add(8 * c)), acc[c % 2]);
                    }
                    let row = bi * t + i % t;
                    scores[i * s + j] =
                        hsum256(_mm256_add_ps(acc[0], acc[1])) + self.mask[row * s + j];
                }
            }
            for (i, probs) in scores.chunks_exact_mut(s).enumerate() {
                softmax_in_place(probs);
                let mut acc = [_mm256_setzero_ps(); C];
                for (j, &p) in probs.iter().enumerate() {
                    let vj = self.v.row(bi, gi, j, hd).as_ptr();
                    let p = _mm256_set1_ps(p);
                    for (c, a) in acc.iter_mut().enumerate() {
                        *a = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj.add(8 * c)), *a);
                    }
                }
                let oi = o[i * hd..(i + 1) * hd].as_mut_ptr();
                for (c, a) in acc.iter().enumerate() {
                    _mm256_storeu_ps(oi.add(8 * c), *a);
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn block_avx512(&self, pair: usize, o: &mut [f32]) {
        self.block_with::<true>(pair, o)
    }

    /// [`Job::block`] for head dim `16 · C`: each cached key is loaded once into `C` registers
    /// for all the rows of the KV head, each score is one vector reduction, and each row's
    /// weighted sum of values accumulates in registers (two interleaved sets, combined at the
    /// end, so the FMA chains overlap).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn block_avx512_vectors<const C: usize>(&self, pair: usize, o: &mut [f32]) {
        use std::arch::x86_64::*;
        // SAFETY: every pointer comes from a bounds-checked row slice of hd = 16·C values (the
        // queries, a cached key or value, an output row), and lane group c reads or writes
        // values 16c..16c + 16 of it.
        unsafe {
            let (g, r, hd, s, t) = self.dims;
            debug_assert_eq!(hd, 16 * C);
            let (bi, gi) = (pair / g, pair % g);
            let qb = &self.q[pair * r * hd..(pair + 1) * r * hd];
            let mut scores = vec![0f32; r * s];
            for j in 0..s {
                let key = self.k.row(bi, gi, j, hd).as_ptr();
                let mut kv = [_mm512_setzero_ps(); C];
                for (c, k) in kv.iter_mut().enumerate() {
                    *k = _mm512_loadu_ps(key.add(16 * c));
                }
                for i in 0..r {
                    let qi = qb[i * hd..(i + 1) * hd].as_ptr();
                    let mut acc = _mm512_setzero_ps();
                    for (c, k) in kv.iter().enumerate() {
                        acc = _mm512_fmadd_ps(_mm512_loadu_ps(qi.add(16 * c)), *k, acc);
                    }
                    let row = bi * t + i % t;
                    scores[i * s + j] = _mm512_reduce_add_ps(acc) + self.mask[row * s + j];
                }
            }
            for (i, probs) in scores.chunks_exact_mut(s).enumerate() {
                softmax_in_place(probs);
                let mut even = [_mm512_setzero_ps(); C];
                let mut odd = [_mm512_setzero_ps(); C];
                let mut j = 0;
                while j + 1 < s {
                    let (v0, v1) = (
                        self.v.row(bi, gi, j, hd).as_ptr(),
                        self.v.row(bi, gi, j + 1, hd).as_ptr(),
                    );
                    let (p0, p1) = (_mm512_set1_ps(probs[j]), _mm512_set1_ps(probs[j + 1]));
                    for c in 0..C {
                        even[c] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0.add(16 * c)), even[c]);
                        odd[c] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(v1.add(16 * c)), odd[c]);
                    }
                    j += 2;
                }
                if j < s {
                    let v0 = self.v.row(bi, gi, j, hd).as_ptr();
                    let p0 = _mm512_set1_ps(probs[j]);
                    for (c, e) in even.iter_mut().enumerate() {
                        *e = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0.add(16 * c)), *e);
                    }
                }
                let oi = o[i * hd..(i + 1) * hd].as_mut_ptr();
                for c in 0..C {
                    _mm512_storeu_ps(oi.add(16 * c), _mm512_add_ps(even[c], odd[c]));
                }
            }
        }
    }

    #[inline(always)]
    fn block_with<const FMA: bool>(&self, pair: usize, o: &mut [f32]) {
        let (g, r, hd, s, t) = self.dims;
        let (bi, gi) = (pair / g, pair % g);
        let qb = &self.q[pair * r * hd..(pair + 1) * r * hd];
        let mut probs = vec![0f32; s];
        for i in 0..r {
            let qi = &qb[i * hd..(i + 1) * hd];
            let row = bi * t + i % t;
            let m = &self.mask[row * s..(row + 1) * s];
            for (j, p) in probs.iter_mut().enumerate() {
                *p = dot::<FMA>(qi, self.k.row(bi, gi, j, hd)) + m[j];
            }
            softmax_in_place(&mut probs);
            let oi = &mut o[i * hd..(i + 1) * hd];
            for (j, &p) in probs.iter().enumerate() {
                axpy::<FMA>(p, self.v.row(bi, gi, j, hd), oi);
            }
        }
    }
}

/// The sum of the eight lanes (a fixed order).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn hsum256(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
    _mm_cvtss_f32(_mm_add_ss(pair, _mm_movehdup_ps(pair)))
}

/// `a·b + c`, fused where asked (only where the CPU fuses it: the software fallback is slow).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Σ a·b in 16 interleaved partial sums (vectorisable), combined in a fixed order.
#[inline(always)]
fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] = madd::<FMA>(x[l], y[l], acc[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `y += a·x`.
#[inline(always)]
fn axpy<const FMA: bool>(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = madd::<FMA>(a, x, *y);
    }
}

#[inline(always)]
fn softmax_in_place(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    crate::vexp::shifted_exps_in_place(v, max);
    let inv = 1.0 / v.iter().sum::<f32>();
    v.iter_mut().for_each(|x| *x *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::max_abs_diff;
    use candle_core::Device;

    /// The composition the model runs elsewhere: grouped scores, masked softmax, values.
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, g, r, _) = q.dims4()?;
        let (t, s) = (mask.dim(2)?, k.dim(2)?);
        let scores = q.matmul(&k.t()?)?.reshape((b, g * r / t, t, s))?;
        let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(mask)?)?;
        probs.reshape((b, g, r, s))?.matmul(v)
    }

    /// Head dim 20 runs the generic loops; 64 and 128 the register-blocked kernels (with an odd
    /// key count, so the unpaired last value is summed too).
    #[test]
    fn matches_the_composition_on_a_narrowed_cache() -> Result<()> {
        for hd in [20, 64, 128] {
            check_against_the_composition(hd)?;
        }
        Ok(())
    }

    fn check_against_the_composition(hd: usize) -> Result<()> {
        let dev = Device::Cpu;
        // 2 sequences, 2 KV heads of 3 query heads, 2 queries, 7 of 10 cached positions.
        let (b, g, rep, t, cap, s) = (2, 2, 3, 2, 10, 7);
        let q = Tensor::randn(0f32, 1.0, (b, g, rep * t, hd), &dev)?;
        let k_cache = Tensor::randn(0f32, 1.0, (b, g, cap, hd), &dev)?;
        let v_cache = Tensor::randn(0f32, 1.0, (b, g, cap, hd), &dev)?;
        let (k, v) = (k_cache.narrow(2, 0, s)?, v_cache.narrow(2, 0, s)?);
        let mut m = vec![0f32; b * t * s];
        for i in 0..t {
            // Query i sees keys up to s - t + i; sequence 1's first key is padding.
            for j in 0..s {
                if j > s - t + i || (j == 0 && i == 0) {
                    m[i * s + j] = -1e9;
                }
                if j > s - t + i || j == 0 {
                    m[(t + i) * s + j] = -1e9;
                }
            }
        }
        let mask = Tensor::from_vec(m, (b, 1, t, s), &dev)?;
        let got = attend(&q, &k, &v, &mask)?;
        let want = reference(&q, &k.contiguous()?, &v.contiguous()?, &mask)?;
        assert!(max_abs_diff(&got, &want) < 1e-5, "head dim {hd}");
        // One sequence alone gives the same bits as in the batch.
        let alone = attend(
            &q.narrow(0, 1, 1)?,
            &k.narrow(0, 1, 1)?,
            &v.narrow(0, 1, 1)?,
            &mask.narrow(0, 1, 1)?,
        )?;
        assert_eq!(max_abs_diff(&alone, &got.narrow(0, 1, 1)?), 0.0);
        // Shapes that do not fit are errors.
        assert!(attend(&q, &k.narrow(3, 0, 4)?, &v, &mask).is_err());
        assert!(attend(&q.narrow(2, 0, 5)?, &k, &v, &mask).is_err());
        Ok(())
    }
}
