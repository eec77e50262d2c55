//! The sentence-encoder seam used by mining, and a deterministic hashing encoder for tests
//! and offline use.

use crate::error::HierError;

/// Embeds short texts (word n-grams) as fixed-size vectors; similar meanings should give
/// nearby vectors. hicra's real encoder is all-MiniLM-L6-v2
/// (`hicra_model::encoder::BertSentenceEncoder`).
pub trait SentenceEncoder {
    /// Length of every embedding.
    fn dim(&self) -> usize;
    /// One embedding per text, in order.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, HierError>;
}

/// A deterministic bag-of-words encoder: every word (and word bigram, at half weight) adds
/// ±1 to a few hashed dimensions; the result is L2-normalised. Texts sharing words land
/// near each other, with no model. For tests and `--encoder hashing`.
#[derive(Debug, Clone)]
pub struct HashingEncoder {
    dim: usize,
}

impl HashingEncoder {
    /// An encoder with `dim` dimensions (at least 1).
    pub fn new(dim: usize) -> Self {
        Self { dim: dim.max(1) }
    }
}

impl Default for HashingEncoder {
    fn default() -> Self {
        Self::new(256)
    }
}

/// FNV-1a, 64 bit: a fixed hash so embeddings never change between runs or platforms.
fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl HashingEncoder {
    fn add_feature(&self, feature: &str, weight: f32, out: &mut [f32]) {
        for seed in 0..2u64 {
            let h = fnv1a(feature.as_bytes(), seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
            out[(h % self.dim as u64) as usize] += sign * weight;
        }
    }
}

impl SentenceEncoder for HashingEncoder {
    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, HierError> {
        Ok(texts
            .iter()
            .map(|text| {
                let mut v = vec![0f32; self.dim];
                let words: Vec<&str> = text.split_whitespace().collect();
                for w in &words {
                    self.add_feature(w, 1.0, &mut v);
                }
                for pair in words.windows(2) {
                    self.add_feature(&pair.join(" "), 0.5, &mut v);
                }
                l2_normalize(&mut v);
                v
            })
            .collect())
    }
}

/// Scales a vector to unit length (left as is when it is all zeros).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}
