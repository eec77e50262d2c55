//! The attention block on AVX2 with FMA.

use super::job::{Job, softmax_in_place};
use super::portable;

#[target_feature(enable = "avx2,fma")]
pub unsafe fn block(job: &Job, pair: usize, o: &mut [f32]) {
    portable::block::<true>(job, pair, o)
}

/// [`Job::block`] for head dim `8 · C` on AVX2: as the AVX-512 `block_vectors` with
/// 8-lane vectors, each score two interleaved FMA chains and one reduction (sixteen
/// registers cannot also hold the key, so its rows are read from L1 per query row), and
/// one set of value accumulators.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn block_vectors<const C: usize>(job: &Job, pair: usize, o: &mut [f32]) {
    use std::arch::x86_64::*;
    // SAFETY: every pointer comes from a bounds-checked row slice of hd = 8·C values (the
    // queries, a cached key or value, an output row), and lane group c reads or writes
    // values 8c..8c + 8 of it.
    unsafe {
        let (g, r, hd, s, t) = job.dims;
        debug_assert_eq!(hd, 8 * C);
        let (bi, gi) = (pair / g, pair % g);
        let qb = &job.q[pair * r * hd..(pair + 1) * r * hd];
        let mut scores = vec![0f32; r * s];
        for j in 0..s {
            let key = job.k.row(bi, gi, j, hd).as_ptr();
            for i in 0..r {
                let qi = qb[i * hd..(i + 1) * hd].as_ptr();
                let mut acc = [_mm256_setzero_ps(); 2];
                for c in 0..C {
                    let prod = _mm256_loadu_ps(qi.add(8 * c));
                    acc[c % 2] = _mm256_fmadd_ps(prod, _mm256_loadu_ps(key.add(8 * c)), acc[c % 2]);
                }
                let row = bi * t + i % t;
                scores[i * s + j] = hsum256(_mm256_add_ps(acc[0], acc[1])) + job.mask[row * s + j];
            }
        }
        for (i, probs) in scores.chunks_exact_mut(s).enumerate() {
            softmax_in_place(probs);
            let mut acc = [_mm256_setzero_ps(); C];
            for (j, &p) in probs.iter().enumerate() {
                let vj = job.v.row(bi, gi, j, hd).as_ptr();
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

/// The sum of the eight lanes (a fixed order).
#[inline]
#[target_feature(enable = "avx2")]
fn hsum256(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
    _mm_cvtss_f32(_mm_add_ss(pair, _mm_movehdup_ps(pair)))
}
