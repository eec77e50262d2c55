//! Stable hashing for reproducible, seed-independent train/validation splits and for
//! deriving per-position random streams.

/// 64-bit FNV-1a of `text` (stable across platforms and Rust versions).
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64 finaliser: mixes a seed and a stream position into one well-spread seed.
pub fn mix_seed(seed: u64, position: u64) -> u64 {
    let mut z = seed
        .wrapping_add(position.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Share of the problem space (by hash of the problem's text) reserved for validation, per mille.
pub const VALIDATION_PER_MILLE: u64 = 100;

/// The split a problem belongs to, decided by a hash of its canonical text alone, so train
/// and validation streams are disjoint whatever the seeds.
pub fn split_of(key: &str) -> crate::task::Split {
    if stable_hash(key) % 1000 < VALIDATION_PER_MILLE {
        crate::task::Split::Validation
    } else {
        crate::task::Split::Train
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_its_definition() {
        // FNV-1a of the empty string is the offset basis; of "a" a known constant.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn mixed_seeds_differ_by_position() {
        assert_ne!(mix_seed(1, 0), mix_seed(1, 1));
        assert_ne!(mix_seed(1, 0), mix_seed(2, 0));
        assert_eq!(mix_seed(5, 9), mix_seed(5, 9));
    }
}
