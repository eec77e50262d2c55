//! Intel AMX for the bf16 decoding panels of the packed products: `tdpbf16ps` multiplies a
//! tile of 16 rows × 32 bf16 values with a tile of 32 bf16 values × 16 columns and accumulates the
//! 16 × 16 products in f32, eight times the work of one AVX-512 `vdpbf16ps`.
//!
//! The packed bf16 panels already hold what AMX reads as its second operand: row `kp` of a
//! panel is the 32 columns' (k = 2kp, 2kp + 1) pairs, so columns 0–15 and 16–31 of 16
//! consecutive pair rows are two tiles, 128 bytes apart. The activation rows, as pairs along k,
//! are the first operand. A block of 32 rows × one panel keeps four accumulator tiles.
//!
//! Each output is accumulated in k order, 32 values per instruction, so a row's result does not
//! depend on the rows beside it or on the threads. Linux hands out the tile state only on
//! request (`arch_prctl(ARCH_REQ_XCOMP_PERM)`), asked once per process; where the CPU lacks
//! AMX-BF16 or the request fails, [`available`] is false and callers use AVX-512.

use std::arch::asm;
use std::sync::OnceLock;

/// Pair rows (32 values of k) per tile step.
pub const K_PAIRS: usize = 16;
/// Rows per tile.
pub const ROWS: usize = 16;
/// Columns of a panel as AMX reads it: two tiles of 16 f32 columns (the packed panels'
/// width, which `packed` checks).
pub const PANEL_COLS: usize = 32;

/// Whether AMX-BF16 runs here: the CPU has it and the kernel grants this process the tile data.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| crate::cpu::isa().amx_bf16 && request_tile_data())
}

/// Asks Linux for the AMX tile data state (XTILEDATA) for this process.
#[cfg(target_os = "linux")]
fn request_tile_data() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: this arch_prctl request only changes which xsave features this process may use.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn request_tile_data() -> bool {
    false
}

/// The tile configuration (palette 1): all eight tiles 16 rows × 64 bytes. tmm0–3 accumulate
/// (16 × 16 f32), tmm4–5 hold activation pairs (16 rows × 16 pairs), tmm6–7 panel pairs
/// (16 pair rows × 16 columns).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: TileConfig = {
    let mut colsb = [0u16; 16];
    let mut rows = [0u8; 16];
    let mut i = 0;
    while i < 8 {
        colsb[i] = 64;
        rows[i] = ROWS as u8;
        i += 1;
    }
    TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb,
        rows,
    }
};

/// The tile registers of the current thread, configured for [`Tiles::panel`]; released on drop
/// (on the same thread: the pointer marker keeps it from being sent).
pub struct Tiles(std::marker::PhantomData<*const ()>);

impl Tiles {
    /// Loads the tile configuration on this thread.
    ///
    /// # Safety
    /// [`available`] must have returned true.
    pub unsafe fn configure() -> Tiles {
        // SAFETY: AMX is available (caller); CONFIG is a valid palette-1 configuration.
        unsafe { asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly)) };
        Tiles(std::marker::PhantomData)
    }

    /// `c = a · panel`: `rows` (a multiple of 16) activation rows of `k2` pairs each (`a`,
    /// row-major) against a 32-column panel of `k2` (a multiple of 16) pair rows, into `c` (row
    /// stride `ldc` f32 values, 32 columns written).
    ///
    /// # Safety
    /// `a` must hold `rows × k2` pairs, `panel` `k2 × 32` pairs, and `c` `rows` rows of 32
    /// writable f32 at stride `ldc`.
    pub unsafe fn panel(
        &self,
        a: *const u32,
        rows: usize,
        k2: usize,
        panel: *const u32,
        c: *mut f32,
        ldc: usize,
    ) {
        debug_assert!(rows.is_multiple_of(ROWS) && k2.is_multiple_of(K_PAIRS));
        let mut r = 0;
        // SAFETY (both arms): the blocks lie inside the caller's extents.
        unsafe {
            while r + 2 * ROWS <= rows {
                block::<2>(a.add(r * k2), k2, panel, c.add(r * ldc), ldc);
                r += 2 * ROWS;
            }
            if r < rows {
                block::<1>(a.add(r * k2), k2, panel, c.add(r * ldc), ldc);
            }
        }
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: the tiles were configured on this thread (Tiles is not Send); releasing
        // returns them to the init state.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

/// One block of `B` × 16 rows against the panel's 32 columns: accumulators tmm0/1 (rows 0–15,
/// columns 0–15 / 16–31) and, for `B = 2`, tmm2/3 (rows 16–31).
///
/// # Safety
/// As [`Tiles::panel`], for `16·B` rows; the tiles configured.
#[inline(always)]
unsafe fn block<const B: usize>(
    a: *const u32,
    k2: usize,
    panel: *const u32,
    c: *mut f32,
    ldc: usize,
) {
    let (sa, sb, sc) = (k2 * 4, PANEL_COLS * 4, ldc * 4);
    // SAFETY: every load reads 16 rows of 64 bytes inside `a` or `panel` (the caller's
    // extents); every store writes 16 rows of 64 bytes inside `c`.
    unsafe {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        );
        for kp in (0..k2).step_by(K_PAIRS) {
            let b0 = panel.add(kp * PANEL_COLS);
            let a0 = a.add(kp);
            if B == 2 {
                asm!(
                    "tileloadd tmm6, [{b0} + {sb}*1]",
                    "tileloadd tmm7, [{b1} + {sb}*1]",
                    "tileloadd tmm4, [{a0} + {sa}*1]",
                    "tileloadd tmm5, [{a1} + {sa}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    b0 = in(reg) b0,
                    b1 = in(reg) b0.add(16),
                    a0 = in(reg) a0,
                    a1 = in(reg) a0.add(ROWS * k2),
                    sa = in(reg) sa,
                    sb = in(reg) sb,
                    options(nostack, readonly)
                );
            } else {
                asm!(
                    "tileloadd tmm6, [{b0} + {sb}*1]",
                    "tileloadd tmm7, [{b1} + {sb}*1]",
                    "tileloadd tmm4, [{a0} + {sa}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    b0 = in(reg) b0,
                    b1 = in(reg) b0.add(16),
                    a0 = in(reg) a0,
                    sa = in(reg) sa,
                    sb = in(reg) sb,
                    options(nostack, readonly)
                );
            }
        }
        asm!(
            "tilestored [{c0} + {sc}*1], tmm0",
            "tilestored [{c1} + {sc}*1], tmm1",
            c0 = in(reg) c,
            c1 = in(reg) c.add(16),
            sc = in(reg) sc,
            options(nostack)
        );
        if B == 2 {
            let c2 = c.add(ROWS * ldc);
            asm!(
                "tilestored [{c2} + {sc}*1], tmm2",
                "tilestored [{c3} + {sc}*1], tmm3",
                c2 = in(reg) c2,
                c3 = in(reg) c2.add(16),
                sc = in(reg) sc,
                options(nostack)
            );
        }
    }
}
