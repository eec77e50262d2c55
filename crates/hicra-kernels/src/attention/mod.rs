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

#[cfg(target_arch = "x86_64")]
use crate::cpu::isa;
use job::{Cache, Job};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod job;
pub mod portable;

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
        let block = |(pair, o): (usize, &mut [f32])| block(&job, pair, o);
        // Inside a decoding row group (a pool worker) the blocks run on this thread.
        if rayon::current_thread_index().is_some() {
            out.chunks_mut(r * hd).enumerate().for_each(block);
        } else {
            out.par_chunks_mut(r * hd).enumerate().for_each(block);
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// The rows of (sequence, KV head) `pair` into `o` (rows × hd), with fused multiply-adds
/// where the CPU has them (AVX-512, or AVX2 and FMA, detected at run time):
/// register-blocked vector kernels for head dims 64 and 128, the vectorisable loops
/// elsewhere.
fn block(job: &Job, pair: usize, o: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        let (isa, hd) = (isa(), job.dims.2);
        if isa.avx512f {
            // SAFETY: AVX-512F (with its FMA) is present.
            return unsafe {
                match hd {
                    64 => avx512::block_vectors::<4>(job, pair, o),
                    128 => avx512::block_vectors::<8>(job, pair, o),
                    _ => avx512::block(job, pair, o),
                }
            };
        }
        if isa.avx2_fma {
            // SAFETY: AVX2 and FMA are present.
            return unsafe {
                match hd {
                    64 => avx2::block_vectors::<8>(job, pair, o),
                    128 => avx2::block_vectors::<16>(job, pair, o),
                    _ => avx2::block(job, pair, o),
                }
            };
        }
    }
    portable::block::<false>(job, pair, o)
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

    /// The queries, keys, values and mask of one decoding step, as the kernels read them.
    struct Step {
        q: Vec<f32>,
        k: CpuStorage,
        v: CpuStorage,
        mask: Vec<f32>,
        dims: (usize, usize, usize, usize, usize, usize),
    }

    impl Step {
        /// 2 sequences of `g` KV heads with `r` rows each (2 queries), 9 keys, head dim `hd`.
        fn new(hd: usize) -> Step {
            let (b, g, r, t, s) = (2, 2, 6, 2, 9);
            let values = |len: usize, seed: u32| -> Vec<f32> {
                (0..len)
                    .map(|i| {
                        (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0
                    })
                    .collect()
            };
            let mask = (0..b * t * s)
                .map(|i| {
                    if i % s > s - t + (i / s) % t {
                        -1e9
                    } else {
                        0.0
                    }
                })
                .collect();
            Step {
                q: values(b * g * r * hd, 1),
                k: CpuStorage::F32(values(b * g * s * hd, 2)),
                v: CpuStorage::F32(values(b * g * s * hd, 3)),
                mask,
                dims: (b, g, r, hd, s, t),
            }
        }

        /// Runs `kernel` on every (sequence, KV head) pair.
        fn run(&self, kernel: &dyn Fn(&Job, usize, &mut [f32])) -> Vec<f32> {
            let (b, g, r, hd, s, t) = self.dims;
            let layout = Layout::contiguous((b, g, s, hd));
            let job = Job {
                q: &self.q,
                k: Cache::new(&self.k, &layout, "keys").unwrap(),
                v: Cache::new(&self.v, &layout, "values").unwrap(),
                mask: &self.mask,
                dims: (g, r, hd, s, t),
            };
            let mut out = vec![f32::NAN; b * g * r * hd];
            for (pair, o) in out.chunks_mut(r * hd).enumerate() {
                kernel(&job, pair, o);
            }
            out
        }
    }

    fn assert_same_bits(got: &[f32], want: &[f32], what: &str) {
        let same = got
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{what}: not the portable bits");
    }

    /// Each vector kernel this CPU runs gives the bits of its portable reference: the generic
    /// path those of `portable::block` with fused multiply-adds, the register-blocked kernels
    /// those of `portable::block_lanes` with their lanes and chains.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn vector_kernels_give_the_portable_bits() {
        let isa = isa();
        if !(isa.avx2_fma || isa.avx512f) {
            eprintln!("skipped: this CPU runs no vector kernel");
            return;
        }
        for hd in [20, 64, 128] {
            let step = Step::new(hd);
            let generic = step.run(&|j, p, o| portable::block::<true>(j, p, o));
            if isa.avx2_fma {
                // SAFETY (all calls): AVX2 and FMA are present; the head dim fits the kernel.
                let got = step.run(&|j, p, o| unsafe { avx2::block(j, p, o) });
                assert_same_bits(&got, &generic, &format!("avx2 generic, hd {hd}"));
                let want = step.run(&|j, p, o| portable::block_lanes::<8, 2, 1>(j, p, o));
                let got = match hd {
                    64 => step.run(&|j, p, o| unsafe { avx2::block_vectors::<8>(j, p, o) }),
                    128 => step.run(&|j, p, o| unsafe { avx2::block_vectors::<16>(j, p, o) }),
                    _ => want.clone(),
                };
                assert_same_bits(&got, &want, &format!("avx2 vectors, hd {hd}"));
            }
            if isa.avx512f {
                // SAFETY (all calls): AVX-512F is present; the head dim fits the kernel.
                let got = step.run(&|j, p, o| unsafe { avx512::block(j, p, o) });
                assert_same_bits(&got, &generic, &format!("avx512 generic, hd {hd}"));
                let want = step.run(&|j, p, o| portable::block_lanes::<16, 1, 2>(j, p, o));
                let got = match hd {
                    64 => step.run(&|j, p, o| unsafe { avx512::block_vectors::<4>(j, p, o) }),
                    128 => step.run(&|j, p, o| unsafe { avx512::block_vectors::<8>(j, p, o) }),
                    _ => want.clone(),
                };
                assert_same_bits(&got, &want, &format!("avx512 vectors, hd {hd}"));
            }
        }
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
