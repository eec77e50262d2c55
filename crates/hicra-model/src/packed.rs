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
//! (slowly), and callers ask [`DecodePrecision::fast_on_this_cpu`] before choosing packing.
//! Each output element is accumulated in the same order whatever the tiling and threading, so a
//! row's result does not depend on the rows decoded beside it.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Storage, Tensor};
use rayon::prelude::*;

/// Output columns per panel (two 16-lane vectors).
pub const PANEL: usize = 32;
/// Input rows per register tile (AVX-512 and portable kernels).
const TILE_ROWS: usize = 8;
/// Elements of padding in front of the panels, so that they start on a 64-byte line.
const ALIGN_ELEMS: usize = 16;

/// The precision decoding projections run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecodePrecision {
    /// f32 weights and activations (the model's own numerics).
    #[default]
    F32,
    /// bf16 weights and activation rows with f32 accumulation (AVX-512 BF16 CPUs only; other
    /// CPUs decode in f32).
    Bf16,
}

impl DecodePrecision {
    /// Parses `f32` or `bf16`.
    pub fn parse(text: &str) -> Option<DecodePrecision> {
        match text.trim().to_ascii_lowercase().as_str() {
            "f32" => Some(DecodePrecision::F32),
            "bf16" => Some(DecodePrecision::Bf16),
            _ => None,
        }
    }

    /// The name as written in configs and flags.
    pub fn name(self) -> &'static str {
        match self {
            DecodePrecision::F32 => "f32",
            DecodePrecision::Bf16 => "bf16",
        }
    }

    /// Whether this CPU has the instructions of this precision's packed kernel.
    pub fn fast_on_this_cpu(self) -> bool {
        match self {
            DecodePrecision::F32 => Kernel::detect(DecodePrecision::F32) != Kernel::Portable,
            DecodePrecision::Bf16 => Kernel::detect(DecodePrecision::Bf16) != Kernel::Portable,
        }
    }
}

/// Which implementation multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Portable,
    Avx512F32,
    Avx512Bf16,
    Avx2F32,
}

impl Kernel {
    fn detect(precision: DecodePrecision) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let f = has!("avx512f");
            let avx2 = has!("avx2") && has!("fma");
            match precision {
                DecodePrecision::F32 if f => return Kernel::Avx512F32,
                DecodePrecision::Bf16 if f && has!("avx512bf16") => return Kernel::Avx512Bf16,
                DecodePrecision::F32 if avx2 => return Kernel::Avx2F32,
                _ => {}
            }
        }
        let _ = precision;
        Kernel::Portable
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
    precision: DecodePrecision,
    /// Offset of the first panel element in the storage (64-byte alignment).
    start: usize,
    panels: Panels,
}

/// Rounds to bf16 (nearest even) and returns the bits.
fn bf16_bits(v: f32) -> u32 {
    half::bf16::from_f32(v).to_bits() as u32
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
    pub fn pack(w: &[f32], n: usize, k: usize, precision: DecodePrecision) -> PackedMatrix {
        assert!(w.len() >= n * k, "w holds {} of {n}x{k} values", w.len());
        let panels = n.div_ceil(PANEL);
        match precision {
            DecodePrecision::F32 => {
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
            DecodePrecision::Bf16 => {
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
    pub fn from_tensor(
        w: &Tensor,
        precision: DecodePrecision,
    ) -> candle_core::Result<PackedMatrix> {
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
    pub fn precision(&self) -> DecodePrecision {
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

/// The L2 cache of one core in bytes, as Linux reports it (the `size` of the level-2 entry
/// among `/sys/devices/system/cpu/cpu0/cache/index*`, e.g. "1280K"); 512 KB where it cannot
/// be read.
fn l2_bytes() -> usize {
    static L2: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *L2.get_or_init(|| {
        let read = |index: usize, file: &str| {
            std::fs::read_to_string(format!(
                "/sys/devices/system/cpu/cpu0/cache/index{index}/{file}"
            ))
            .ok()
        };
        (0..8)
            .find(|&i| read(i, "level").is_some_and(|level| level.trim() == "2"))
            .and_then(|i| read(i, "size"))
            .and_then(|text| parse_cache_size(&text))
            .unwrap_or(512 * 1024)
    })
}

/// "1280K" → 1 310 720, "2M" → 2 097 152, "65536" → 65 536; `None` for anything else.
fn parse_cache_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (i, 'K') => (&text[..i], 1024),
        (i, 'M') => (&text[..i], 1024 * 1024),
        _ => (text, 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .filter(|&v| v > 0)
        .map(|v| v * unit)
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

/// Portable f32 tile: the same per-element order (fused multiply-add along k) as the AVX-512
/// kernel.
fn portable_f32(
    x: &[f32],
    rows: usize,
    k: usize,
    panel: &[f32],
    y: *mut f32,
    n: usize,
    cols: usize,
) {
    for r in 0..rows {
        for c in 0..cols {
            let mut acc = 0f32;
            for kk in 0..k {
                acc = x[r * k + kk].mul_add(panel[kk * PANEL + c], acc);
            }
            // SAFETY: the caller's tile lies inside y (row stride n).
            unsafe { *y.add(r * n + c) = acc };
        }
    }
}

/// The f32 value of the bf16 in the low (`hi = false`) or high half of a pair.
fn bf16_value(pair: u32, hi: bool) -> f32 {
    let bits = if hi { pair & 0xffff_0000 } else { pair << 16 };
    f32::from_bits(bits)
}

/// Portable bf16 tile: per pair, the odd product then the even one added in f32, as
/// `vdpbf16ps` does (the products of two bf16 values are exact in f32).
fn portable_bf16(
    x: &[u32],
    rows: usize,
    k2: usize,
    panel: &[u32],
    y: *mut f32,
    n: usize,
    cols: usize,
) {
    for r in 0..rows {
        for c in 0..cols {
            let mut acc = 0f32;
            for kp in 0..k2 {
                let (a, b) = (x[r * k2 + kp], panel[kp * PANEL + c]);
                acc += bf16_value(a, true) * bf16_value(b, true);
                acc += bf16_value(a, false) * bf16_value(b, false);
            }
            // SAFETY: the caller's tile lies inside y (row stride n).
            unsafe { *y.add(r * n + c) = acc };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2;

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{PANEL, TILE_ROWS};
    use std::arch::x86_64::*;

    /// Writes the accumulators of a tile: full panels with plain stores, the last (narrower)
    /// panel with masked ones.
    ///
    /// # Safety
    /// AVX-512F; `y` must hold `acc.len()` rows (stride `n`) of `cols` values.
    #[target_feature(enable = "avx512f")]
    unsafe fn store(acc: &[[__m512; 2]], y: *mut f32, n: usize, cols: usize) {
        for (r, a) in acc.iter().enumerate() {
            // SAFETY: row r of the tile lies inside y; masked lanes are not written.
            unsafe {
                let yr = y.add(r * n);
                if cols == PANEL {
                    _mm512_storeu_ps(yr, a[0]);
                    _mm512_storeu_ps(yr.add(16), a[1]);
                } else {
                    let lo = cols.min(16);
                    let hi = cols - lo;
                    _mm512_mask_storeu_ps(yr, ((1u32 << lo) - 1) as u16, a[0]);
                    _mm512_mask_storeu_ps(yr.add(16), ((1u32 << hi) - 1) as u16, a[1]);
                }
            }
        }
    }

    /// f32 tile of `rows` (≤ 8) rows; see [`super::PackedMatrix::matmul`]. The cache lines of
    /// `ahead` are prefetched into L2, spread evenly over the k steps.
    ///
    /// # Safety
    /// AVX-512F; `x` holds rows × k values, `panel` k × 32, `y` the tile's outputs.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn f32_tile(
        x: &[f32],
        rows: usize,
        k: usize,
        panel: &[f32],
        y: *mut f32,
        n: usize,
        cols: usize,
        ahead: &[f32],
    ) {
        // SAFETY (all arms): forwarded from the caller.
        unsafe {
            match rows {
                8 => f32_rows::<8>(x, k, panel, y, n, cols, ahead),
                7 => f32_rows::<7>(x, k, panel, y, n, cols, ahead),
                6 => f32_rows::<6>(x, k, panel, y, n, cols, ahead),
                5 => f32_rows::<5>(x, k, panel, y, n, cols, ahead),
                4 => f32_rows::<4>(x, k, panel, y, n, cols, ahead),
                3 => f32_rows::<3>(x, k, panel, y, n, cols, ahead),
                2 => f32_rows::<2>(x, k, panel, y, n, cols, ahead),
                1 => f32_rows::<1>(x, k, panel, y, n, cols, ahead),
                _ => unreachable!("tiles hold 1..={TILE_ROWS} rows"),
            }
        }
    }

    /// f32 values per cache line.
    const LINE: usize = 16;

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn f32_rows<const R: usize>(
        x: &[f32],
        k: usize,
        panel: &[f32],
        y: *mut f32,
        n: usize,
        cols: usize,
        ahead: &[f32],
    ) {
        debug_assert!(x.len() >= R * k && panel.len() >= k * PANEL);
        let (xp, pp) = (x.as_ptr(), panel.as_ptr());
        // One prefetch every `every` k steps covers `ahead` by the end of the tile.
        let lines = ahead.len().div_ceil(LINE);
        let every = k.checked_div(lines).map_or(usize::MAX, |e| e.max(1));
        let per_step = lines.div_ceil(k.max(1));
        if !ahead.is_empty() {
            // The next panel's outputs of these rows: a wide product (the LM head) writes
            // rows far apart, each store a cache miss without this. Only an address hint
            // (`wrapping_add`, prefetches never fault).
            for r in 0..R {
                let line = y.wrapping_add(r * n + PANEL);
                _mm_prefetch::<_MM_HINT_T0>(line.cast_const().cast());
                _mm_prefetch::<_MM_HINT_T0>(line.wrapping_add(LINE).cast_const().cast());
            }
        }
        let mut next_line = 0;
        let mut countdown = 0;
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for kk in 0..k {
            if countdown == 0 {
                countdown = every;
                for _ in 0..per_step.min(lines - next_line) {
                    // SAFETY: next_line < lines, so the line starts inside `ahead`;
                    // prefetching never faults.
                    unsafe {
                        _mm_prefetch::<_MM_HINT_T1>(ahead.as_ptr().add(next_line * LINE).cast());
                    }
                    next_line += 1;
                }
            }
            countdown -= 1;
            // SAFETY: kk < k, so the 32 panel values of step kk and x[r][kk] are in bounds.
            unsafe {
                let w0 = _mm512_loadu_ps(pp.add(kk * PANEL));
                let w1 = _mm512_loadu_ps(pp.add(kk * PANEL + 16));
                for (r, a) in acc.iter_mut().enumerate() {
                    let xv = _mm512_set1_ps(*xp.add(r * k + kk));
                    a[0] = _mm512_fmadd_ps(xv, w0, a[0]);
                    a[1] = _mm512_fmadd_ps(xv, w1, a[1]);
                }
            }
        }
        // SAFETY: forwarded from the caller.
        unsafe { store(&acc, y, n, cols) };
    }

    /// `dst[i]` = `src[i]` rounded to bf16 (nearest even; `vcvtneps2bf16`, which reads
    /// subnormal inputs as zero), as bits.
    ///
    /// # Safety
    /// AVX-512F and AVX-512 BF16; `dst` at least as long as `src`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn round_to_bf16(src: &[f32], dst: &mut [u16]) {
        debug_assert!(dst.len() >= src.len());
        let whole = src.len() / 16 * 16;
        for i in (0..whole).step_by(16) {
            // SAFETY: i + 16 <= src.len() <= dst.len(); __m256bh and __m256i are both 32 bytes
            // of plain bits.
            unsafe {
                let v = _mm512_loadu_ps(src.as_ptr().add(i));
                let b: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
                _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), b);
            }
        }
        for i in whole..src.len() {
            dst[i] = half::bf16::from_f32(src[i]).to_bits();
        }
    }

    /// See [`super::interleave_bf16`].
    ///
    /// # Safety
    /// AVX-512F and AVX-512 BF16; `even` (and `odd`) at least as long as `out`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn interleave_bf16(even: &[f32], odd: Option<&[f32]>, out: &mut [u32]) {
        debug_assert!(even.len() >= out.len() && odd.is_none_or(|o| o.len() >= out.len()));
        let whole = out.len() / 16 * 16;
        // SAFETY: 16 values from i < whole lie inside even, odd and out.
        let widen = |v: &[f32], i: usize| unsafe {
            let b: __m256i =
                std::mem::transmute(_mm512_cvtneps_pbh(_mm512_loadu_ps(v.as_ptr().add(i))));
            _mm512_cvtepu16_epi32(b)
        };
        for i in (0..whole).step_by(16) {
            let lo = widen(even, i);
            let pair = match odd {
                Some(o) => _mm512_or_si512(lo, _mm512_slli_epi32::<16>(widen(o, i))),
                None => lo,
            };
            // SAFETY: i + 16 <= out.len().
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(i).cast(), pair) };
        }
        for i in whole..out.len() {
            let hi = odd.map_or(0, |o| super::bf16_bits(o[i]));
            out[i] = super::bf16_bits(even[i]) | (hi << 16);
        }
    }

    /// bf16 tile of `rows` (≤ 8) rows of pairs; see [`super::PackedMatrix::matmul`].
    ///
    /// # Safety
    /// AVX-512F and AVX-512 BF16; `x` holds rows × k2 pairs, `panel` k2 × 32, `y` the outputs.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn bf16_tile(
        x: &[u32],
        rows: usize,
        k2: usize,
        panel: &[u32],
        y: *mut f32,
        n: usize,
        cols: usize,
    ) {
        // SAFETY (all arms): forwarded from the caller.
        unsafe {
            match rows {
                8 => bf16_rows::<8>(x, k2, panel, y, n, cols),
                7 => bf16_rows::<7>(x, k2, panel, y, n, cols),
                6 => bf16_rows::<6>(x, k2, panel, y, n, cols),
                5 => bf16_rows::<5>(x, k2, panel, y, n, cols),
                4 => bf16_rows::<4>(x, k2, panel, y, n, cols),
                3 => bf16_rows::<3>(x, k2, panel, y, n, cols),
                2 => bf16_rows::<2>(x, k2, panel, y, n, cols),
                1 => bf16_rows::<1>(x, k2, panel, y, n, cols),
                _ => unreachable!("tiles hold 1..={TILE_ROWS} rows"),
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn bf16_rows<const R: usize>(
        x: &[u32],
        k2: usize,
        panel: &[u32],
        y: *mut f32,
        n: usize,
        cols: usize,
    ) {
        debug_assert!(x.len() >= R * k2 && panel.len() >= k2 * PANEL);
        let (xp, pp) = (x.as_ptr(), panel.as_ptr());
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for kp in 0..k2 {
            // SAFETY: kp < k2, so the 32 panel pairs of step kp and x[r][kp] are in bounds;
            // __m512i and __m512bh are both 64-byte vectors of plain bits.
            unsafe {
                let w0: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(pp.add(kp * PANEL) as *const _));
                let w1: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(pp.add(kp * PANEL + 16) as *const _));
                for (r, a) in acc.iter_mut().enumerate() {
                    let xv: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*xp.add(r * k2 + kp) as i32));
                    a[0] = _mm512_dpbf16_ps(a[0], xv, w0);
                    a[1] = _mm512_dpbf16_ps(a[1], xv, w1);
                }
            }
        }
        // SAFETY: forwarded from the caller.
        unsafe { store(&acc, y, n, cols) };
    }
}

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
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    fn reference(x: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f64> {
        let mut y = vec![0f64; m * n];
        for r in 0..m {
            for j in 0..n {
                y[r * n + j] = (0..k)
                    .map(|i| x[r * k + i] as f64 * w[j * k + i] as f64)
                    .sum();
            }
        }
        y
    }

    /// Shapes covering every tile height (1..=8 and more), a partial last panel, odd k.
    const SHAPES: [(usize, usize, usize); 6] = [
        (1, 8, 1),
        (3, 13, 5),
        (8, 64, 32),
        (9, 33, 70),
        (17, 576, 40),
        (64, 7, 100),
    ];

    #[test]
    fn f32_product_matches_the_reference_on_every_thread_count() {
        for (m, k, n) in SHAPES {
            let (x, w) = (values(m * k, 7), values(n * k, 11));
            let expected = reference(&x, m, k, &w, n);
            let packed = PackedMatrix::pack(&w, n, k, DecodePrecision::F32);
            let mut one = vec![f32::NAN; m * n];
            packed.matmul(&x, m, &mut one, 1);
            let mut two = vec![f32::NAN; m * n];
            packed.matmul(&x, m, &mut two, 2);
            assert_eq!(one, two, "{m}x{k}x{n}: threads change the result");
            for (i, (&got, &want)) in one.iter().zip(&expected).enumerate() {
                let tol = 1e-4 * (1.0 + want.abs());
                assert!(
                    (got as f64 - want).abs() < tol,
                    "{m}x{k}x{n} [{i}]: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn f32_rows_do_not_depend_on_their_neighbours() {
        // Row 5 alone and inside a 17-row block (tiles of 8, 8, 1) give the same bits.
        let (m, k, n) = (17, 100, 45);
        let (x, w) = (values(m * k, 3), values(n * k, 5));
        let packed = PackedMatrix::pack(&w, n, k, DecodePrecision::F32);
        let mut all = vec![0f32; m * n];
        packed.matmul(&x, m, &mut all, 1);
        let mut alone = vec![0f32; n];
        packed.matmul(&x[5 * k..6 * k], 1, &mut alone, 1);
        assert_eq!(&all[5 * n..6 * n], alone.as_slice());
    }

    #[test]
    fn bf16_product_matches_the_rounded_reference() {
        let round = |v: &[f32]| -> Vec<f32> {
            v.iter()
                .map(|&a| half::bf16::from_f32(a).to_f32())
                .collect()
        };
        for (m, k, n) in SHAPES {
            let (x, w) = (values(m * k, 7), values(n * k, 11));
            // The exact product of the bf16-rounded operands, and of the f32 ones.
            let rounded = reference(&round(&x), m, k, &round(&w), n);
            let exact = reference(&x, m, k, &w, n);
            let packed = PackedMatrix::pack(&w, n, k, DecodePrecision::Bf16);
            let mut got = vec![f32::NAN; m * n];
            packed.matmul(&x, m, &mut got, 2);
            let mut slow = vec![f32::NAN; m * n];
            let k2 = k.div_ceil(2);
            let mut pairs = vec![0u32; m * k2];
            for r in 0..m {
                for kp in 0..k2 {
                    let hi = x.get(r * k + 2 * kp + 1).filter(|_| 2 * kp + 1 < k);
                    pairs[r * k2 + kp] =
                        bf16_bits(x[r * k + 2 * kp]) | (hi.map_or(0, |&v| bf16_bits(v)) << 16);
                }
            }
            let Panels::Bf16(data) = &packed.panels else {
                panic!("bf16 panels expected")
            };
            for p in 0..n.div_ceil(PANEL) {
                let panel = &data[packed.start + p * k2 * PANEL..];
                let cols = PANEL.min(n - p * PANEL);
                let yt = unsafe { slow.as_mut_ptr().add(p * PANEL) };
                portable_bf16(&pairs, m, k2, panel, yt, n, cols);
            }
            for i in 0..m * n {
                // f32 accumulation of exact products: close to the rounded operands' product.
                let tol = 1e-4 * (1.0 + rounded[i].abs());
                assert!(
                    (got[i] as f64 - rounded[i]).abs() < tol,
                    "{m}x{k}x{n} [{i}]"
                );
                assert!(
                    (slow[i] as f64 - rounded[i]).abs() < tol,
                    "{m}x{k}x{n} [{i}]"
                );
                // And within bf16 rounding (2^-8 relative per operand) of the f32 product.
                let scale: f64 = (0..k)
                    .map(|t| (x[i / n * k + t] as f64 * w[i % n * k + t] as f64).abs())
                    .sum();
                assert!((got[i] as f64 - exact[i]).abs() <= scale * 2.0 * 2f64.powi(-8) + 1e-6);
            }
        }
    }

    /// The f32 product through the portable tiles, panel by panel.
    fn portable_product(packed: &PackedMatrix, x: &[f32], m: usize) -> Vec<f32> {
        let (n, k) = (packed.n, packed.k);
        let Panels::F32(data) = &packed.panels else {
            panic!("f32 panels expected")
        };
        let mut y = vec![f32::NAN; m * n];
        for p in 0..n.div_ceil(PANEL) {
            // SAFETY: the tile's rows and columns lie inside y.
            let yt = unsafe { y.as_mut_ptr().add(p * PANEL) };
            let cols = PANEL.min(n - p * PANEL);
            portable_f32(x, m, k, &data[packed.start + p * k * PANEL..], yt, n, cols);
        }
        y
    }

    /// The f32 kernel this CPU runs (AVX-512 or AVX2) gives the portable kernel's bits. (bf16
    /// has a vector kernel only on AVX-512 BF16, whose `vdpbf16ps` flushes subnormal results,
    /// and on AMX, which groups the sums differently: both are checked with tolerances.)
    #[test]
    fn vector_kernels_give_the_portable_bits() {
        let kernel = Kernel::detect(DecodePrecision::F32);
        for (m, k, n) in SHAPES {
            let (x, w) = (values(m * k, 19), values(n * k, 23));
            let packed = PackedMatrix::pack(&w, n, k, DecodePrecision::F32);
            let mut got = vec![f32::NAN; m * n];
            packed.matmul(&x, m, &mut got, 2);
            let want = portable_product(&packed, &x, m);
            let same = got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "{kernel:?} {m}x{k}x{n}: not the portable kernel's bits"
            );
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx2_kernel_gives_the_portable_bits_on_avx512_cpus_too() {
        use std::arch::is_x86_feature_detected as has;
        if !(has!("avx2") && has!("fma")) {
            eprintln!("skipped: this CPU has no AVX2 and FMA");
            return;
        }
        for (m, k, n) in SHAPES {
            let (x, w) = (values(m * k, 29), values(n * k, 31));
            let packed = PackedMatrix::pack(&w, n, k, DecodePrecision::F32);
            let want = portable_product(&packed, &x, m);
            let Panels::F32(data) = &packed.panels else {
                panic!("f32 panels expected")
            };
            let mut got = vec![f32::NAN; m * n];
            for p in 0..n.div_ceil(PANEL) {
                let cols = PANEL.min(n - p * PANEL);
                let panel = &data[packed.start + p * k * PANEL..];
                for r0 in (0..m).step_by(avx2::F32_ROWS) {
                    let rows = avx2::F32_ROWS.min(m - r0);
                    // SAFETY: AVX2 and FMA detected; the tile lies inside x, the panel and got.
                    unsafe {
                        let yt = got.as_mut_ptr().add(r0 * n + p * PANEL);
                        avx2::f32_tile(&x[r0 * k..], rows, k, panel, yt, n, cols, &[]);
                    }
                }
            }
            let same = got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{m}x{k}x{n}: AVX2 differs from the portable kernel");
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn amx_bf16_agrees_with_avx512_and_rows_stay_independent() {
        if !(crate::amx::available() && DecodePrecision::Bf16.fast_on_this_cpu()) {
            eprintln!("skipped: this CPU (or kernel) runs no AMX-BF16");
            return;
        }
        let k = 576;
        let k2 = k / 2;
        for (m, n) in [(1, 32), (16, 70), (17, 64), (40, 96), (64, 33)] {
            let (x, w) = (values(m * k, 13), values(n * k, 17));
            let packed = PackedMatrix::pack(&w, n, k, DecodePrecision::Bf16);
            assert!(packed.amx_fits());
            let mut amx = vec![f32::NAN; m * n];
            packed.matmul(&x, m, &mut amx, 2);
            // The same sums through the AVX-512 BF16 tiles.
            let pairs: Vec<u32> = x
                .chunks(2)
                .map(|p| bf16_bits(p[0]) | (bf16_bits(p[1]) << 16))
                .collect();
            let Panels::Bf16(data) = &packed.panels else {
                panic!("bf16 panels expected")
            };
            let mut avx = vec![f32::NAN; m * n];
            for p in 0..n.div_ceil(PANEL) {
                let panel = &data[packed.start + p * k2 * PANEL..];
                let cols = PANEL.min(n - p * PANEL);
                for r0 in (0..m).step_by(TILE_ROWS) {
                    let rows = TILE_ROWS.min(m - r0);
                    // SAFETY: AVX-512 BF16 detected; the tile lies inside pairs, panel and avx.
                    unsafe {
                        let yt = avx.as_mut_ptr().add(r0 * n + p * PANEL);
                        avx512::bf16_tile(&pairs[r0 * k2..], rows, k2, panel, yt, n, cols);
                    }
                }
            }
            for i in 0..m * n {
                let tol = 1e-5 * (1.0 + avx[i].abs());
                assert!(
                    (amx[i] - avx[i]).abs() < tol,
                    "{m}x{n} [{i}]: {} vs {}",
                    amx[i],
                    avx[i]
                );
            }
            // The last row alone gives the same bits as in the batch.
            let mut alone = vec![0f32; n];
            packed.matmul(&x[(m - 1) * k..], 1, &mut alone, 1);
            assert_eq!(&amx[(m - 1) * n..], alone.as_slice(), "{m}x{n}");
        }
    }

    #[test]
    fn packed_linear_matches_candle_and_checks_shapes() -> candle_core::Result<()> {
        let dev = candle_core::Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (20, 48), &dev)?;
        let w = Tensor::randn(0f32, 1.0, (70, 48), &dev)?;
        let packed = PackedMatrix::from_tensor(&w, DecodePrecision::F32)?;
        let got = packed_linear(&x, &packed)?;
        let want = x.matmul(&w.t()?)?;
        assert!(crate::test_util::max_abs_diff(&got, &want) < 1e-4);
        let bad = Tensor::zeros((2, 47), DType::F32, &dev)?;
        assert!(packed_linear(&bad, &packed).is_err());
        assert!(PackedMatrix::from_tensor(&w.t()?, DecodePrecision::F32).is_err());
        Ok(())
    }

    #[test]
    fn cache_sizes_parse_and_row_blocks_hold_whole_tiles() {
        assert_eq!(parse_cache_size("1280K\n"), Some(1280 * 1024));
        assert_eq!(parse_cache_size("2M"), Some(2 * 1024 * 1024));
        assert_eq!(parse_cache_size("65536"), Some(65536));
        assert_eq!(parse_cache_size("0K"), None);
        assert_eq!(parse_cache_size("big"), None);
        assert_eq!(parse_cache_size(""), None);
        for k in [1, 64, 576, 1536, 1 << 20] {
            let block = row_block(k, 8);
            assert!(
                block >= 8 && block.is_multiple_of(8),
                "k {k}: block {block}"
            );
            assert!(
                block == 8 || block * k * 4 <= l2_bytes() / 3,
                "k {k}: block {block}"
            );
        }
    }

    #[test]
    fn products_of_many_row_blocks_match_the_reference() {
        // More rows than one block holds at this K, with a ragged last tile and panel.
        let (k, n) = (1536, 70);
        let m = row_block(k, Kernel::detect(DecodePrecision::F32).tile_rows()) * 2 + 5;
        let (x, w) = (values(m * k, 11), values(n * k, 12));
        let want = reference(&x, m, k, &w, n);
        let packed = PackedMatrix::pack(&w, n, k, DecodePrecision::F32);
        for threads in [1, 2] {
            let mut y = vec![f32::NAN; m * n];
            packed.matmul(&x, m, &mut y, threads);
            for (i, (&got, &exact)) in y.iter().zip(&want).enumerate() {
                assert!(
                    (got as f64 - exact).abs() <= 1e-3 * (1.0 + exact.abs()),
                    "{i}: {got} vs {exact}"
                );
            }
            let row = m - 1;
            let alone = packed.matmul_to_vec(&x[row * k..], 1, 1);
            assert_eq!(
                alone,
                y[row * n..].to_vec(),
                "the last row alone, {threads} threads"
            );
        }
    }

    #[test]
    fn precision_names_parse() {
        assert_eq!(DecodePrecision::parse("BF16"), Some(DecodePrecision::Bf16));
        assert_eq!(DecodePrecision::parse("f32"), Some(DecodePrecision::F32));
        assert_eq!(DecodePrecision::parse("fp8"), None);
        assert_eq!(DecodePrecision::Bf16.name(), "bf16");
    }
}
