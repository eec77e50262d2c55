//! CPU kernels for hicra's transformer. Each family with instruction-set variants keeps them
//! one file each (`portable.rs`, `avx2.rs`, `avx512.rs`), and the portable version is the
//! reference whose bits the f32 vector versions reproduce (a test per family checks it on the
//! CPU at hand); the bf16 kernels (AVX-512 BF16, AMX) are checked against the exact product of
//! their rounded operands instead, as `vdpbf16ps` flushes subnormals and AMX groups sums
//! differently.
//!
//! - [`packed`]: weights packed into panels once, multiplied with many rows (decoding and
//!   prefill projections), f32 or bf16;
//! - [`skinny`]: products of a few rows with an unpacked weight (decoding without packing);
//! - [`bf16_matmul`]: bf16 products with f32 accumulation and their backward (training);
//! - [`fused`]: fused softmax, RMSNorm, RoPE, SwiGLU and token scores, with backward;
//! - [`attention`]: one decoding step's attention over the KV cache;
//! - [`vexp`]: vector exponentials for softmax-like sums;
//! - [`ops`]: the same building blocks composed from basic candle ops (differentiable on
//!   every device), the reference of [`fused`];
//! - [`decode_matmul`]: candle ops over [`skinny`] for decoding steps.
//!
//! [`cpu`] detects the instruction sets once; every kernel asks it. [`precision`] names the
//! precision of a product, for decoding and training alike. `lanes` holds the scalar
//! arithmetic in a vector register's shape that the portable references are written in.

#[cfg(target_arch = "x86_64")]
pub mod amx;
pub mod attention;
#[cfg(target_arch = "x86_64")]
pub mod bf16_matmul;
pub mod cpu;
pub mod decode_matmul;
pub mod fused;
mod lanes;
pub mod ops;
pub mod packed;
pub mod precision;
pub mod skinny;
pub mod vexp;

#[cfg(test)]
mod test_util;

pub use precision::Precision;
