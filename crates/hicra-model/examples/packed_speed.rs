//! Times the packed decoding kernels (f32 and bf16) against the skinny kernel on one thread,
//! for a few decoding shapes: `cargo run --release -p hicra-model --example packed_speed`.
//! Prints GFLOP/s; asserts nothing.

use hicra_model::DecodePrecision;
use hicra_model::packed::PackedMatrix;
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
            hicra_model::skinny::matmul_transposed(&x, m, k, &w, n, &mut y)
        });
        let mut line = format!(
            "m={m:>3} k={k:>4} n={n:>4}: skinny {:>6.1}",
            flops / skinny / 1e9
        );
        for p in [DecodePrecision::F32, DecodePrecision::Bf16] {
            if !p.fast_on_this_cpu() {
                continue;
            }
            let packed = PackedMatrix::pack(&w, n, k, p);
            let t = best_of(20, || packed.matmul(&x, m, &mut y, 1));
            line += &format!("  packed {} {:>6.1}", p.name(), flops / t / 1e9);
        }
        println!("{line} GFLOP/s (one thread)");
    }
}
