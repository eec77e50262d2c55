//! Weights packed once for batched decoding, and the kernels that multiply activation rows with
//! them: `y = x · wᵀ` for rows `x` (M × K) and a weight `w` (N × K, as HF stores it).
//!
//! A [`PackedMatrix`] holds the weight in panels of [`PANEL`] output columns, each panel laid out
//! k-major (the 32 columns' values for one k side by side), so a register tile of up to eight
//! input rows × 32 columns accumulates with one broadcast of `x` and two vector loads of the
//! panel per step, and no horizontal sums. Packing costs one pass over the weight, paid once per
//! generate call; decoding then reads each panel once per step from the cache for all rows.
//! A product of more rows than a third of L2 holds (a prefill) runs in blocks of rows, each
//! block passing over every panel, so the rows stay in L2 instead of streaming from L3.
//!
//! Two precisions:
//! - f32: AVX-512F FMA (`vfmadd231ps`), accumulated in f32 in the order of k; on CPUs with
//!   AVX2 and FMA only, the same sums with 8-lane FMA ([`avx2`], tiles of six rows);
//! - bf16: weights and activation rows rounded to bf16 (round to nearest even), pairs along k
//!   multiplied and accumulated in f32 by AVX-512 BF16 (`vdpbf16ps`). Half the bytes of the
//!   f32 panels and twice the multiply rate. Where the CPU has AMX-BF16 and K is a multiple of
//!   32, the same panels feed AMX tiles instead ([`crate::amx`], `tdpbf16ps`), which multiply
//!   eight times as much per instruction. The two differ in the last bits (their sums group
//!   the products differently); which one a weight takes depends only on the CPU and its shape.
//!
//! bf16 panels have no AVX2 kernel: without `vdpbf16ps` the bf16 values must be widened to f32
//! in registers, and on an AVX2 CPU (Zen 3) that kernel decoded SmolLM2 a quarter slower than
//! the f32 one at batch 8 and 32 and no faster at batch 1 (docs/PERFORMANCE.md).
//!
//! The instructions are detected at run time; elsewhere a portable loop computes the same sums
//! (slowly), and callers ask [`Precision::fast_on_this_cpu`] before choosing packing.
//! Each output element is accumulated in the same order whatever the tiling and threading, so a
//! row's result does not depend on the rows decoded beside it.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Storage, Tensor};
use rayon::prelude::*;

use crate::cpu::{isa, l2_bytes};
use crate::precision::Precision;
pub use layout::PANEL;
use layout::{TILE_ROWS, bf16_bits};

#[cfg(target_arch = "x86_64")]
const _: () = assert!(
    crate::amx::PANEL_COLS == PANEL,
    "AMX reads the packed panels as they are"
);
/// Elements of padding in front of the panels, so that they start on a 64-byte line.
const ALIGN_ELEMS: usize = 16;

/// Which implementation multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Portable,
    Avx512F32,
    Avx512Bf16,
    Avx2F32,
}

impl Kernel {
    fn detect(precision: Precision) -> Kernel {
        let isa = isa();
        match precision {
            Precision::F32 if isa.avx512f => Kernel::Avx512F32,
            Precision::Bf16 if isa.avx512_bf16 => Kernel::Avx512Bf16,
            Precision::F32 if isa.avx2_fma => Kernel::Avx2F32,
            _ => Kernel::Portable,
        }
    }

    /// Input rows per register tile.
    fn tile_rows(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2F32 => avx2::F32_ROWS,
            _ => TILE_ROWS,
        }
    }
}

/// Panel storage: f32 values, or bf16 pairs along k in a `u32` (the even k in the low half).
enum Panels {
    F32(Vec<f32>),
    Bf16(Vec<u32>),
}

/// A weight (N × K) packed into panels of [`PANEL`] output columns for one precision.
pub struct PackedMatrix {
    n: usize,
    k: usize,
    precision: Precision,
    /// Offset of the first panel element in the storage (64-byte alignment).
    start: usize,
    panels: Panels,
}

/// Rows of `k` values (`x`, row-major) as bf16 pairs along k, rows of `k.div_ceil(2)` pairs
/// (the last pair of an odd row padded with zero), followed by zero rows up to `rows` rows.
fn bf16_pairs(kernel: Kernel, x: &[f32], k: usize, rows: usize) -> Vec<u32> {
    let k2 = k.div_ceil(2);
    let mut out = vec![0u32; rows * k2];
    for (row, xr) in out.chunks_mut(k2).zip(x.chunks(k)) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX-512 BF16 (detected for this kernel); a row of k2 pairs
            // holds the k values' bf16 halves in order, the even k in the low half.
            Kernel::Avx512Bf16 => unsafe {
                let halves = std::slice::from_raw_parts_mut(row.as_mut_ptr().cast::<u16>(), k);
                avx512::round_to_bf16(xr, halves);
            },
            _ => {
                for (slot, pair) in row.iter_mut().zip(xr.chunks(2)) {
                    let hi = pair.get(1).map_or(0, |&v| bf16_bits(v));
                    *slot = bf16_bits(pair[0]) | (hi << 16);
                }
            }
        }
    }
    out
}

/// `dst[i]` = `src[i]` rounded to bf16 (nearest even), as bits.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512 BF16; `dst` at least as long as `src`.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn round_to_bf16(src: &[f32], dst: &mut [u16]) {
    // SAFETY: forwarded from the caller.
    unsafe { avx512::round_to_bf16(src, dst) }
}

/// `out[i]` = the bf16 pair (`even[i]`, `odd[i]`), the even value in the low half; without
/// `odd`, the high halves are zero.
///
/// # Safety
/// As [`round_to_bf16`]; `even` (and `odd`) at least as long as `out`.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn interleave_bf16(even: &[f32], odd: Option<&[f32]>, out: &mut [u32]) {
    // SAFETY: forwarded from the caller.
    unsafe { avx512::interleave_bf16(even, odd, out) }
}

/// `rows` rows of bf16 pairs (`x`, k2 pairs each) times one whole panel (k2 × 32 pairs),
/// stored into `y` (row stride `stride`, all 32 columns), in register tiles of eight rows on
/// `vdpbf16ps`: the AVX-512 BF16 path of [`crate::bf16_matmul`] where AMX is absent.
///
/// # Safety
/// As [`round_to_bf16`]; `x` holds rows × k2 pairs, `panel` k2 × 32, and `y` rows × 32
/// writable values at stride `stride`.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn bf16_panel_rows(
    x: &[u32],
    rows: usize,
    k2: usize,
    panel: &[u32],
    y: *mut f32,
    stride: usize,
) {
    for r0 in (0..rows).step_by(TILE_ROWS) {
        let tile = TILE_ROWS.min(rows - r0);
        // SAFETY: forwarded from the caller; the tile's rows lie inside x and y.
        unsafe {
            avx512::bf16_tile(
                &x[r0 * k2..(r0 + tile) * k2],
                tile,
                k2,
                panel,
                y.add(r0 * stride),
                stride,
                PANEL,
            )
        };
    }
}

/// An element offset that puts `ptr + offset` on a 64-byte boundary.
fn align_offset<T>(ptr: *const T) -> usize {
    let size = std::mem::size_of::<T>();
    (ptr.align_offset(64)).min(ALIGN_ELEMS * 4 / size)
}

impl PackedMatrix {
    /// Packs `w` (`n` rows of `k` values, row-major).
    ///
    /// # Panics
    /// If `w` holds fewer than `n * k` values (callers pass validated shapes).
    pub fn pack(w: &[f32], n: usize, k: usize, precision: Precision) -> PackedMatrix {
        assert!(w.len() >= n * k, "w holds {} of {n}x{k} values", w.len());
        let panels = n.div_ceil(PANEL);
        match precision {
            Precision::F32 => {
                let mut data = vec![0f32; panels * k * PANEL + ALIGN_ELEMS];
                let start = align_offset(data.as_ptr());
                data[start..start + panels * k * PANEL]
                    .par_chunks_mut(k * PANEL)
                    .enumerate()
                    .for_each(|(p, panel)| {
                        for c in 0..PANEL.min(n - p * PANEL) {
                            let row = &w[(p * PANEL + c) * k..(p * PANEL + c + 1) * k];
                            for (kk, &v) in row.iter().enumerate() {
                                panel[kk * PANEL + c] = v;
                            }
                        }
                    });
                PackedMatrix {
                    n,
                    k,
                    precision,
                    start,
                    panels: Panels::F32(data),
                }
            }
            Precision::Bf16 => {
                let k2 = k.div_ceil(2);
                let mut data = vec![0u32; panels * k2 * PANEL + ALIGN_ELEMS];
                let start = align_offset(data.as_ptr());
                data[start..start + panels * k2 * PANEL]
                    .par_chunks_mut(k2 * PANEL)
                    .enumerate()
                    .for_each(|(p, panel)| {
                        for c in 0..PANEL.min(n - p * PANEL) {
                            let row = &w[(p * PANEL + c) * k..(p * PANEL + c + 1) * k];
                            for (kp, pair) in row.chunks(2).enumerate() {
                                let hi = pair.get(1).map_or(0, |&v| bf16_bits(v));
                                panel[kp * PANEL + c] = bf16_bits(pair[0]) | (hi << 16);
                            }
                        }
                    });
                PackedMatrix {
                    n,
                    k,
                    precision,
                    start,
                    panels: Panels::Bf16(data),
                }
            }
        }
    }

    /// Packs a contiguous f32 CPU weight tensor (N, K).
    pub fn from_tensor(w: &Tensor, precision: Precision) -> candle_core::Result<PackedMatrix> {
        let (n, k) = w.dims2()?;
        let (storage, layout) = w.storage_and_layout();
        match (&*storage, layout.contiguous_offsets()) {
            (Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => {
                Ok(PackedMatrix::pack(&v[a..b], n, k, precision))
            }
            _ => candle_core::bail!("packing: a contiguous f32 CPU weight expected"),
        }
    }

    /// Output columns N.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Input columns K.
    pub fn cols(&self) -> usize {
        self.k
    }

    /// The precision the panels hold.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// `y = x · wᵀ` for `m` rows `x` (row-major, K values each) into `y` (M × N), splitting the
    /// panels over `threads` threads of the rayon pool (1: this thread only).
    ///
    /// # Panics
    /// If `x` or `y` is shorter than its shape requires.
    pub fn matmul(&self, x: &[f32], m: usize, y: &mut [f32], threads: usize) {
        assert!(
            y.len() >= m * self.n,
            "y holds {} of {m}x{} values",
            y.len(),
            self.n
        );
        // SAFETY: y holds the m × n outputs.
        unsafe { self.matmul_into(x, m, y.as_mut_ptr(), threads) }
    }

    /// [`PackedMatrix::matmul`] into a new vector (not zeroed first: every output is written).
    ///
    /// # Panics
    /// If `x` is shorter than its shape requires.
    pub fn matmul_to_vec(&self, x: &[f32], m: usize, threads: usize) -> Vec<f32> {
        let mut y = Vec::with_capacity(m * self.n);
        // SAFETY: the capacity holds the m × n outputs, and `matmul_into` writes every one of
        // them before the length is set.
        unsafe {
            self.matmul_into(x, m, y.as_mut_ptr(), threads);
            y.set_len(m * self.n);
        }
        y
    }

    /// The product into `y`, written through the pointer only (every output once).
    ///
    /// # Safety
    /// `y` must point to m × n writable f32 values.
    unsafe fn matmul_into(&self, x: &[f32], m: usize, y: *mut f32, threads: usize) {
        let (n, k) = (self.n, self.k);
        assert!(x.len() >= m * k, "x holds {} of {m}x{k} values", x.len());
        if m == 0 || n == 0 {
            return;
        }
        let kernel = Kernel::detect(self.precision);
        let amx = kernel == Kernel::Avx512Bf16 && self.amx_fits();
        // bf16: the activation rows as bf16 pairs along k, like the panels (for AMX, zero rows
        // up to a whole tile).
        let pairs: Vec<u32> = match self.panels {
            Panels::Bf16(_) => {
                let padded = if amx {
                    m.next_multiple_of(crate::amx::ROWS)
                } else {
                    m
                };
                bf16_pairs(kernel, &x[..m * k], k, padded)
            }
            Panels::F32(_) => Vec::new(),
        };
        #[cfg(target_arch = "x86_64")]
        if let (true, Panels::Bf16(data)) = (amx, &self.panels) {
            // SAFETY: forwarded from the caller.
            return unsafe { self.matmul_amx(data, &pairs, m, y, threads) };
        }
        let panels = n.div_ceil(PANEL);
        let out = OutPtr(y);
        let tile_rows = kernel.tile_rows();
        let block = row_block(k, tile_rows);
        let run = |p0: usize, p1: usize| {
            for b0 in (0..m).step_by(block) {
                let b1 = (b0 + block).min(m);
                let tiles = (b1 - b0).div_ceil(tile_rows);
                for p in p0..p1 {
                    for (t, r0) in (b0..b1).step_by(tile_rows).enumerate() {
                        let rows = tile_rows.min(b1 - r0);
                        // Tile t of panel p fetches its share of panel p + 1 ahead.
                        let ahead = if p + 1 < p1 {
                            self.panel_share(p + 1, t, tiles)
                        } else {
                            &[]
                        };
                        // SAFETY: rows r0..r0+rows of x (or of the pairs) and panel p lie
                        // inside their storage (lengths checked above); the tile writes
                        // columns of panel p of rows r0.., inside y, and no other task writes
                        // panel p.
                        unsafe { self.tile(kernel, x, &pairs, p, r0, rows, out.get(), ahead) };
                    }
                }
            }
        };
        split_panels(panels, threads, run);
    }

    /// Whether the AMX kernel takes these panels: AMX-BF16 runs here and K fills whole tile
    /// steps (32 values).
    fn amx_fits(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self.k.div_ceil(2).is_multiple_of(crate::amx::K_PAIRS) && crate::amx::available()
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// [`PackedMatrix::matmul`] through AMX tiles: `pairs` holds the rows padded with zero rows
    /// to a multiple of 16. Whole 16-row blocks of full panels are stored straight into `y`;
    /// the last partial block and the last narrow panel go through a scratch block.
    #[cfg(target_arch = "x86_64")]
    ///
    /// # Safety
    /// `y` must point to m × n writable f32 values.
    unsafe fn matmul_amx(
        &self,
        data: &[u32],
        pairs: &[u32],
        m: usize,
        y: *mut f32,
        threads: usize,
    ) {
        use crate::amx::{ROWS, Tiles};
        let (n, k2) = (self.n, self.k.div_ceil(2));
        let padded = m.next_multiple_of(ROWS);
        let whole = m / ROWS * ROWS;
        debug_assert!(pairs.len() >= padded * k2);
        let panels = n.div_ceil(PANEL);
        let out = OutPtr(y);
        let run = |p0: usize, p1: usize| {
            // SAFETY: amx_fits checked that AMX is available.
            let tiles = unsafe { Tiles::configure() };
            let mut scratch = vec![0f32; padded * PANEL];
            for p in p0..p1 {
                let cols = PANEL.min(n - p * PANEL);
                let panel = data[self.start + p * k2 * PANEL..][..k2 * PANEL].as_ptr();
                let yp = out.get().wrapping_add(p * PANEL);
                // The rows stored in place: whole blocks of full panels.
                let direct = if cols == PANEL { whole } else { 0 };
                // SAFETY: pairs holds `padded` rows of k2 pairs, the panel k2 × 32 pairs;
                // rows < direct of a full panel lie inside y (row stride n), the rest inside
                // the scratch block (padded × 32). No other task writes panel p's columns.
                unsafe {
                    if direct > 0 {
                        tiles.panel(pairs.as_ptr(), direct, k2, panel, yp, n);
                    }
                    if direct < padded {
                        let rest = pairs.as_ptr().add(direct * k2);
                        tiles.panel(
                            rest,
                            padded - direct,
                            k2,
                            panel,
                            scratch.as_mut_ptr(),
                            PANEL,
                        );
                        for r in direct..m {
                            let src = &scratch[(r - direct) * PANEL..][..cols];
                            std::ptr::copy_nonoverlapping(src.as_ptr(), yp.add(r * n), cols);
                        }
                    }
                }
            }
        };
        split_panels(panels, threads, run);
    }

    /// Share `t` of `tiles` of f32 panel `p`'s values, as the slice a tile prefetches while it
    /// computes (empty for bf16 panels). Decoding reads every weight once per step from
    /// memory, so without this each panel's first tile waits on it.
    fn panel_share(&self, p: usize, t: usize, tiles: usize) -> &[f32] {
        match &self.panels {
            Panels::F32(data) => {
                let len = self.k * PANEL;
                let (a, b) = (len * t / tiles, len * (t + 1) / tiles);
                let start = self.start + p * len;
                &data[start + a..start + b]
            }
            Panels::Bf16(_) => &[],
        }
    }

    /// One tile: `rows` input rows from `r0` against panel `p`, written into `y`; `ahead` (may
    /// be empty) is prefetched on the way (f32 only).
    ///
    /// # Safety
    /// `x` (f32) or `pairs` (bf16) must hold the rows; `y` must point to M × N writable values.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        &self,
        kernel: Kernel,
        x: &[f32],
        pairs: &[u32],
        p: usize,
        r0: usize,
        rows: usize,
        y: *mut f32,
        ahead: &[f32],
    ) {
        let (n, k) = (self.n, self.k);
        let cols = PANEL.min(n - p * PANEL);
        // SAFETY: the caller guarantees y's extent; the offset lies inside it.
        let yt = unsafe { y.add(r0 * n + p * PANEL) };
        match &self.panels {
            Panels::F32(data) => {
                let panel = &data[self.start + p * k * PANEL..self.start + (p + 1) * k * PANEL];
                let xt = &x[r0 * k..(r0 + rows) * k];
                match kernel {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU has AVX-512F (detected); slices hold the tile.
                    Kernel::Avx512F32 => unsafe {
                        avx512::f32_tile(xt, rows, k, panel, yt, n, cols, ahead)
                    },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU has AVX2 and FMA (detected); slices hold the tile.
                    Kernel::Avx2F32 => unsafe {
                        avx2::f32_tile(xt, rows, k, panel, yt, n, cols, ahead)
                    },
                    _ => portable_f32(xt, rows, k, panel, yt, n, cols),
                }
            }
            Panels::Bf16(data) => {
                let k2 = k.div_ceil(2);
                let panel = &data[self.start + p * k2 * PANEL..self.start + (p + 1) * k2 * PANEL];
                let xt = &pairs[r0 * k2..(r0 + rows) * k2];
                match kernel {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU has AVX-512 BF16 (detected); slices hold the tile.
                    Kernel::Avx512Bf16 => unsafe {
                        avx512::bf16_tile(xt, rows, k2, panel, yt, n, cols)
                    },
                    _ => portable_bf16(xt, rows, k2, panel, yt, n, cols),
                }
            }
        }
    }
}

/// Rows per block of a product with K = `k`: whole tiles whose f32 rows fill at most a third
/// of a core's L2 cache ([`l2_bytes`]), at least one tile. The block's rows then stay in L2
/// while every panel passes over them, beside the panel and the next one coming in. A prefill
/// multiplies thousands of rows; without blocks every panel streamed all of them from L3
/// (on Ice Lake, 2 560 rows ran 5–11 % and 5 120 rows 16–19 % slower than in blocks). A
/// decoding step's 64-row group with K = 1 536 (SmolLM2's down projection) still fits one
/// block on Ice Lake's 1.25 MB L2.
fn row_block(k: usize, tile_rows: usize) -> usize {
    let fit = l2_bytes() / 3 / (k.max(1) * std::mem::size_of::<f32>());
    (fit / tile_rows).max(1) * tile_rows
}

/// Runs `run(p0, p1)` over `panels` panels split into contiguous ranges, one per thread of
/// the rayon pool up to `threads` (1: on this thread); empty ranges are skipped.
pub(crate) fn split_panels(panels: usize, threads: usize, run: impl Fn(usize, usize) + Sync) {
    let threads = threads.clamp(1, panels.max(1));
    if threads == 1 {
        run(0, panels);
        return;
    }
    let per = panels.div_ceil(threads);
    (0..threads).into_par_iter().for_each(|t| {
        let (p0, p1) = ((t * per).min(panels), ((t + 1) * per).min(panels));
        if p0 < p1 {
            run(p0, p1);
        }
    });
}

/// The output pointer shared by the tasks of one product (each writes its own panels).
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub(crate) *mut f32);

impl OutPtr {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: tasks write disjoint column ranges of the output.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

mod layout;
mod portable;
use portable::{portable_bf16, portable_f32};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// `x @ wᵀ` for `x` (M, K) f32 on the CPU against a packed weight. No gradient is recorded.
/// Called from a worker of the thread pool (one of several row groups decoded side by side) it
/// stays on that thread; called from outside it splits the panels over the pool.
pub fn packed_linear(x: &Tensor, w: &PackedMatrix) -> candle_core::Result<Tensor> {
    if x.dtype() != DType::F32 || !x.device().is_cpu() {
        candle_core::bail!("packed-linear: f32 CPU rows expected, got {:?}", x.dtype());
    }
    x.contiguous()?.apply_op1_no_bwd(&PackedLinear(w))
}

struct PackedLinear<'a>(&'a PackedMatrix);

impl CustomOp1 for PackedLinear<'_> {
    fn name(&self) -> &'static str {
        "packed-linear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = match (s, l.contiguous_offsets()) {
            (CpuStorage::F32(x), Some((a, b))) => &x[a..b],
            _ => candle_core::bail!("packed-linear: contiguous f32 rows expected"),
        };
        let (m, k) = l.shape().dims2()?;
        let w = self.0;
        if k != w.k {
            candle_core::bail!(
                "packed-linear: ({m}, {k}) @ ({}, {}).T do not chain",
                w.n,
                w.k
            );
        }
        let threads = match rayon::current_thread_index() {
            Some(_) => 1,
            None => rayon::current_num_threads().max(1),
        };
        let y = w.matmul_to_vec(x, m, threads);
        Ok((CpuStorage::F32(y), Shape::from((m, w.n))))
    }
}

#[cfg(test)]
mod tests;
