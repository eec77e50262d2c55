//! The skinny product on AVX-512F: 16-lane tiles of four input rows × four weight rows.

use super::tiles::{COLS_512, ONE_ROW_COLS, ROWS, dot_tile, store, tiled_kernel, walk_tiles};
use std::arch::x86_64::*;

tiled_kernel!("avx512f", COLS_512);

dot_tile!(
    "avx512f",
    __m512,
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_fmadd_ps,
    _mm512_reduce_add_ps
);
