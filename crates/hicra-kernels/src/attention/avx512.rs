//! The attention block on AVX-512F.

use super::job::{Job, softmax_in_place};
use super::portable;

#[target_feature(enable = "avx512f,fma")]
pub unsafe fn block(job: &Job, pair: usize, o: &mut [f32]) {
    portable::block::<true>(job, pair, o)
}

/// The attention block for head dim `16 · C`: each cached key is loaded once into `C` registers
/// for all the rows of the KV head, each score is one vector reduction, and each row's
/// weighted sum of values accumulates in registers (two interleaved sets, combined at the
/// end, so the FMA chains overlap).
#[target_feature(enable = "avx512f,fma")]
pub unsafe fn block_vectors<const C: usize>(job: &Job, pair: usize, o: &mut [f32]) {
    use std::arch::x86_64::*;
    // SAFETY: every pointer comes from a bounds-checked row slice of hd = 16·C values (the
    // queries, a cached key or value, an output row), and lane group c reads or writes
    // values 16c..16c + 16 of it.
    unsafe {
        let (g, r, hd, s, t) = job.dims;
        debug_assert_eq!(hd, 16 * C);
        let (bi, gi) = (pair / g, pair % g);
        let qb = &job.q[pair * r * hd..(pair + 1) * r * hd];
        let mut scores = vec![0f32; r * s];
        for j in 0..s {
            let key = job.k.row(bi, gi, j, hd).as_ptr();
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
                scores[i * s + j] = _mm512_reduce_add_ps(acc) + job.mask[row * s + j];
            }
        }
        for (i, probs) in scores.chunks_exact_mut(s).enumerate() {
            softmax_in_place(probs);
            let mut even = [_mm512_setzero_ps(); C];
            let mut odd = [_mm512_setzero_ps(); C];
            let mut j = 0;
            while j + 1 < s {
                let (v0, v1) = (
                    job.v.row(bi, gi, j, hd).as_ptr(),
                    job.v.row(bi, gi, j + 1, hd).as_ptr(),
                );
                let (p0, p1) = (_mm512_set1_ps(probs[j]), _mm512_set1_ps(probs[j + 1]));
                for c in 0..C {
                    even[c] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0.add(16 * c)), even[c]);
                    odd[c] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(v1.add(16 * c)), odd[c]);
                }
                j += 2;
            }
            if j < s {
                let v0 = job.v.row(bi, gi, j, hd).as_ptr();
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
