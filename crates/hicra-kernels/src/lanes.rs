//! Scalar arithmetic in the shape of a vector register, for the portable kernels that are the
//! bit-exact references of the vector ones: `L` lanes updated with fused multiply-adds, and the
//! horizontal sum every vector kernel here uses (halves added pairwise: lanes `i` and `i + L/2`,
//! then `i` and `i + L/4`, …, down to one lane; AVX2's `hsum` and Rust's
//! `_mm512_reduce_add_ps` both add in this order).

/// `acc[l] = a[l] · b[l] + acc[l]`, fused (one rounding), for every lane.
#[inline(always)]
pub fn fma_lanes<const L: usize>(acc: &mut [f32; L], a: &[f32], b: &[f32]) {
    for l in 0..L {
        acc[l] = a[l].mul_add(b[l], acc[l]);
    }
}

/// `acc[l] += other[l]` for every lane (one vector add).
#[inline(always)]
pub fn add_lanes<const L: usize>(acc: &mut [f32; L], other: &[f32; L]) {
    for l in 0..L {
        acc[l] += other[l];
    }
}

/// The horizontal sum of `L` lanes (`L` a power of two), halves added pairwise.
#[inline(always)]
pub fn halving_sum<const L: usize>(mut lanes: [f32; L]) -> f32 {
    let mut width = L;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
    }
    lanes[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_sum_adds_halves_pairwise() {
        // Values whose sum depends on the order: 1e8 + 1 rounds the 1 away.
        let v = [1e8f32, 1.0, -1e8, 1.0, 0.0, 0.0, 0.0, 0.0];
        // (1e8 + 0) + (-1e8 + 0) = 0, (1 + 0) + (1 + 0) = 2: total 2.
        assert_eq!(halving_sum(v), 2.0);
        assert_eq!(halving_sum([3.5f32]), 3.5);
        let mut acc = [1f32; 4];
        fma_lanes(&mut acc, &[2.0, 3.0, 4.0, 5.0], &[1.0, 1.0, 0.5, -1.0]);
        assert_eq!(acc, [3.0, 4.0, 3.0, -4.0]);
    }
}
