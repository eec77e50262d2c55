//! The packed layout the kernels share: panel and tile sizes, and the bf16 pair encoding.

/// Output columns per panel (two 16-lane vectors).
pub const PANEL: usize = 32;
/// Input rows per register tile (AVX-512 and portable kernels).
pub const TILE_ROWS: usize = 8;

/// Rounds to bf16 (nearest even) and returns the bits.
pub fn bf16_bits(v: f32) -> u32 {
    half::bf16::from_f32(v).to_bits() as u32
}
