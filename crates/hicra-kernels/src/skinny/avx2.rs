//! The skinny product on AVX2 with FMA: 8-lane tiles of four input rows × two weight rows.

use super::tiles::{COLS, ONE_ROW_COLS, ROWS, dot_tile, store, tiled_kernel, walk_tiles};
use std::arch::x86_64::*;

tiled_kernel!("avx2,fma", COLS);

dot_tile!(
    "avx2,fma",
    __m256,
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_fmadd_ps,
    hsum
);

#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0b01));
    _mm_cvtss_f32(s)
}
