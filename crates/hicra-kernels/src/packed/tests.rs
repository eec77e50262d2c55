use super::*;
use crate::cpu::l2_bytes;

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
        let packed = PackedMatrix::pack(&w, n, k, Precision::F32);
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
    let packed = PackedMatrix::pack(&w, n, k, Precision::F32);
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
        let packed = PackedMatrix::pack(&w, n, k, Precision::Bf16);
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
    let kernel = Kernel::detect(Precision::F32);
    for (m, k, n) in SHAPES {
        let (x, w) = (values(m * k, 19), values(n * k, 23));
        let packed = PackedMatrix::pack(&w, n, k, Precision::F32);
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
    if !crate::cpu::isa().avx2_fma {
        eprintln!("skipped: this CPU has no AVX2 and FMA");
        return;
    }
    for (m, k, n) in SHAPES {
        let (x, w) = (values(m * k, 29), values(n * k, 31));
        let packed = PackedMatrix::pack(&w, n, k, Precision::F32);
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
    if !(crate::amx::available() && Precision::Bf16.fast_on_this_cpu()) {
        eprintln!("skipped: this CPU (or kernel) runs no AMX-BF16");
        return;
    }
    let k = 576;
    let k2 = k / 2;
    for (m, n) in [(1, 32), (16, 70), (17, 64), (40, 96), (64, 33)] {
        let (x, w) = (values(m * k, 13), values(n * k, 17));
        let packed = PackedMatrix::pack(&w, n, k, Precision::Bf16);
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
    let packed = PackedMatrix::from_tensor(&w, Precision::F32)?;
    let got = packed_linear(&x, &packed)?;
    let want = x.matmul(&w.t()?)?;
    assert!(crate::test_util::max_abs_diff(&got, &want) < 1e-4);
    let bad = Tensor::zeros((2, 47), DType::F32, &dev)?;
    assert!(packed_linear(&bad, &packed).is_err());
    assert!(PackedMatrix::from_tensor(&w.t()?, Precision::F32).is_err());
    Ok(())
}

#[test]
fn row_blocks_hold_whole_tiles() {
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
    let m = row_block(k, Kernel::detect(Precision::F32).tile_rows()) * 2 + 5;
    let (x, w) = (values(m * k, 11), values(n * k, 12));
    let want = reference(&x, m, k, &w, n);
    let packed = PackedMatrix::pack(&w, n, k, Precision::F32);
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
