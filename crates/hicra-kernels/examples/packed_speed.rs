//! Times the packed decoding kernels (f32 and bf16) against the skinny kernel and gemm (the
//! kernels candle's matmul runs, AVX-512 where the CPU has it) on one thread, for a few
//! decoding shapes: `cargo run --release -p hicra-kernels --example packed_speed`.
//! Prints GFLOP/s; asserts nothing.

use hicra_kernels::Precision;
use hicra_kernels::packed::PackedMatrix;
use std::time::Instant;

fn best_of<F: FnMut()>(runs: usize, mut f: F) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..runs {
        let start = Instant::now();
        f();
        best = best.min(start.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    for (m, k, n) in [
        (1, 576, 1536),
        (8, 576, 1536),
        (32, 576, 1536),
        (64, 1536, 576),
        (128, 576, 4096),
        // one row group of a batch-128 SmolLM2 step: k/v projection and the LM head
        (64, 576, 192),
        (64, 576, 49152),
    ] {
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 104729) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let mut y = vec![0f32; m * n];
        let flops = 2.0 * (m * k * n) as f64;
        let skinny = best_of(20, || {
            hicra_kernels::skinny::matmul_transposed(&x, m, k, &w, n, &mut y)
        });
        let mut line = format!(
            "m={m:>3} k={k:>4} n={n:>4}: skinny {:>6.1}",
            flops / skinny / 1e9
        );
        // gemm on the weight as stored: y (m, n) = x (m, k) · wᵀ, wᵀ read with strides (1, k).
        let gemm = best_of(20, || unsafe {
            // SAFETY: x holds m·k, w holds n·k and y holds m·n elements, as the strides read.
            gemm::gemm(
                m,
                n,
                k,
                y.as_mut_ptr(),
                1,
                n as isize,
                false,
                x.as_ptr(),
                1,
                k as isize,
                w.as_ptr(),
                k as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        });
        line += &format!("  gemm {:>6.1}", flops / gemm / 1e9);
        for p in [Precision::F32, Precision::Bf16] {
            if !p.fast_on_this_cpu() {
                continue;
            }
            let packed = PackedMatrix::pack(&w, n, k, p);
            let t = best_of(20, || packed.matmul(&x, m, &mut y, 1));
            line += &format!("  packed {} {:>6.1}", p.name(), flops / t / 1e9);
        }
        println!("{line} GFLOP/s (one thread)");
    }
    cold_weights();
}

/// A decoding step reads every weight from memory: 30 gate-projection-sized weights
/// (576 × 1536, 106 MB in all, more than the caches hold) are multiplied in turn, 64 rows each.
fn cold_weights() {
    let (m, k, n, count) = (64, 576, 1536, 30);
    let x: Vec<f32> = (0..m * k)
        .map(|i| ((i * 104729) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let mut y = vec![0f32; m * n];
    let flops = 2.0 * (m * k * n * count) as f64;
    let mut line = format!("m={m:>3} k={k:>4} n={n:>4} x {count} weights in turn (cold):");
    for p in [Precision::F32, Precision::Bf16] {
        if !p.fast_on_this_cpu() {
            continue;
        }
        let packed: Vec<PackedMatrix> = (0..count)
            .map(|c| {
                let w: Vec<f32> = (0..n * k)
                    .map(|i| (((i + c) * 7919) % 1000) as f32 / 1000.0 - 0.5)
                    .collect();
                PackedMatrix::pack(&w, n, k, p)
            })
            .collect();
        let t = best_of(5, || {
            for w in &packed {
                w.matmul(&x, m, &mut y, 1);
            }
        });
        line += &format!("  packed {} {:>6.1}", p.name(), flops / t / 1e9);
    }
    println!("{line} GFLOP/s (one thread)");
}
