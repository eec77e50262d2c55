//! The precision of matrix products, shared by decoding (the packed projections) and by the
//! full-batch products of training and scoring.

use crate::cpu::isa;

/// The precision a product runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 operands (the model's own numerics).
    #[default]
    F32,
    /// Operands rounded to bf16, products accumulated in f32 (AVX-512 BF16 CPUs only; other
    /// CPUs stay in f32).
    Bf16,
}

impl Precision {
    /// Parses `f32` or `bf16`.
    pub fn parse(text: &str) -> Option<Precision> {
        match text.trim().to_ascii_lowercase().as_str() {
            "f32" => Some(Precision::F32),
            "bf16" => Some(Precision::Bf16),
            _ => None,
        }
    }

    /// The name as written in configs and flags.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Whether this CPU has the vector instructions of this precision's packed kernel (AVX-512F
    /// or AVX2 with FMA for f32, AVX-512 BF16 for bf16); elsewhere the portable kernel runs.
    pub fn fast_on_this_cpu(self) -> bool {
        match self {
            Precision::F32 => isa().has_f32_vectors(),
            Precision::Bf16 => isa().avx512_bf16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(Precision::parse("BF16"), Some(Precision::Bf16));
        assert_eq!(Precision::parse("f32"), Some(Precision::F32));
        assert_eq!(Precision::parse("fp8"), None);
        assert_eq!(Precision::Bf16.name(), "bf16");
    }
}
