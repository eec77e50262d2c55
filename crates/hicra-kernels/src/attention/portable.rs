//! The attention block in plain loops, the reference of every vector path: [`block`] is the
//! fallback where the CPU has no vector kernel and, compiled with fused multiply-adds, the
//! vector kernels' path for head dims other than 64 and 128; [`block_lanes`] computes what
//! the register-blocked kernels for head dims 64 and 128 compute, bit for bit.

use super::job::{Job, softmax_in_place};
use crate::lanes::{add_lanes, fma_lanes, halving_sum};

/// The rows of (sequence, KV head) `pair` into `o` (rows × hd): scores, mask, softmax and the
/// weighted sum of values, row by row; multiply-adds fused with `FMA`.
#[inline(always)]
pub fn block<const FMA: bool>(job: &Job, pair: usize, o: &mut [f32]) {
    each_row(job, pair, o, dot::<FMA>, |probs, (bi, gi), oi| {
        for (j, &p) in probs.iter().enumerate() {
            axpy::<FMA>(p, job.v.row(bi, gi, j, oi.len()), oi);
        }
    });
}

/// Runs the rows of (sequence, KV head) `pair` into `o`: each query row's scores (`score` of
/// the row and a cached key, plus the mask), their softmax, then `mix` of the probabilities
/// and the values of (sequence, KV head) into the row's output.
#[inline(always)]
fn each_row(
    job: &Job,
    pair: usize,
    o: &mut [f32],
    score: impl Fn(&[f32], &[f32]) -> f32,
    mix: impl Fn(&[f32], (usize, usize), &mut [f32]),
) {
    let (g, r, hd, s, t) = job.dims;
    let (bi, gi) = (pair / g, pair % g);
    let qb = &job.q[pair * r * hd..(pair + 1) * r * hd];
    let mut probs = vec![0f32; s];
    for i in 0..r {
        let qi = &qb[i * hd..(i + 1) * hd];
        let row = bi * t + i % t;
        let m = &job.mask[row * s..(row + 1) * s];
        for (j, p) in probs.iter_mut().enumerate() {
            *p = score(qi, job.k.row(bi, gi, j, hd)) + m[j];
        }
        softmax_in_place(&mut probs);
        mix(&probs, (bi, gi), &mut o[i * hd..(i + 1) * hd]);
    }
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

/// The rows of (sequence, KV head) `pair` into `o` as the register-blocked vector kernels
/// compute them (head dim a multiple of `L`): each score is `S` interleaved chains of `L`-lane
/// fused products (chunk `c` of the head dim in chain `c % S`), the chains added lane-wise,
/// then the horizontal sum, plus the mask; each output is `V` interleaved chains of fused
/// products over the keys (key `j` in chain `j % V`), added lane-wise. AVX2's kernel is
/// `L = 8, S = 2, V = 1`; AVX-512's is `L = 16, S = 1, V = 2`.
pub fn block_lanes<const L: usize, const S: usize, const V: usize>(
    job: &Job,
    pair: usize,
    o: &mut [f32],
) {
    let score = |query: &[f32], key: &[f32]| {
        let mut chains = [[0f32; L]; S];
        for c in 0..query.len() / L {
            let lanes = c * L..(c + 1) * L;
            fma_lanes(&mut chains[c % S], &query[lanes.clone()], &key[lanes]);
        }
        halving_sum(combined(chains))
    };
    each_row(job, pair, o, score, |probs, (bi, gi), oi| {
        let hd = oi.len();
        for c in 0..hd / L {
            let mut chains = [[0f32; L]; V];
            for (j, &p) in probs.iter().enumerate() {
                let value = &job.v.row(bi, gi, j, hd)[c * L..(c + 1) * L];
                fma_lanes(&mut chains[j % V], &[p; L], value);
            }
            oi[c * L..(c + 1) * L].copy_from_slice(&combined(chains));
        }
    });
}

/// Chains of lanes added lane-wise, in order.
fn combined<const L: usize, const N: usize>(chains: [[f32; L]; N]) -> [f32; L] {
    let mut sum = chains[0];
    for chain in &chains[1..] {
        add_lanes(&mut sum, chain);
    }
    sum
}
