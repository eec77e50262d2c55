//! What the kernels need to know of this CPU, read once per process: its instruction sets
//! ([`isa`]), which every kernel asks before it picks its AVX-512, AVX2 or portable variant
//! (nothing else in the workspace asks the CPU), and the size of a core's L2 cache
//! ([`l2_bytes`]), which sizes the blocks of rows of the packed products.

use std::sync::OnceLock;

/// The vector instruction sets the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Isa {
    /// AVX2 with FMA: 8-lane f32 fused multiply-add.
    pub avx2_fma: bool,
    /// AVX-512F: 16-lane f32 (with its fused multiply-add).
    pub avx512f: bool,
    /// AVX-512F with AVX-512 BF16: `vdpbf16ps`, bf16 pairs multiplied and summed in f32.
    pub avx512_bf16: bool,
    /// AMX-BF16 with the tile unit, as the CPU reports it. Whether Linux grants this process the
    /// tile state is a separate question, asked by [`crate::amx::available`].
    pub amx_bf16: bool,
}

impl Isa {
    /// Whether a 16-lane or 8-lane f32 FMA kernel runs here.
    pub fn has_f32_vectors(self) -> bool {
        self.avx512f || self.avx2_fma
    }

    /// The instruction sets, asked of the CPU (no caching).
    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx512f = has!("avx512f");
            let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
            let amx_bf16 = (leaf7.edx >> 22) & 1 == 1;
            let amx_tile = (leaf7.edx >> 24) & 1 == 1;
            Isa {
                avx2_fma: has!("avx2") && has!("fma"),
                avx512f,
                avx512_bf16: avx512f && has!("avx512bf16"),
                amx_bf16: amx_bf16 && amx_tile,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Isa::default()
    }
}

/// This CPU's instruction sets (detected on the first call).
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(Isa::detect)
}

/// The L2 cache of one core in bytes, as Linux reports it (the `size` of the level-2 entry
/// among `/sys/devices/system/cpu/cpu0/cache/index*`, e.g. "1280K"); 512 KB where it cannot
/// be read.
pub fn l2_bytes() -> usize {
    static L2: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *L2.get_or_init(|| {
        let read = |index: usize, file: &str| {
            std::fs::read_to_string(format!(
                "/sys/devices/system/cpu/cpu0/cache/index{index}/{file}"
            ))
            .ok()
        };
        (0..8)
            .find(|&i| read(i, "level").is_some_and(|level| level.trim() == "2"))
            .and_then(|i| read(i, "size"))
            .and_then(|text| parse_cache_size(&text))
            .unwrap_or(512 * 1024)
    })
}

/// "1280K" → 1 310 720, "2M" → 2 097 152, "65536" → 65 536; `None` for anything else.
fn parse_cache_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (i, 'K') => (&text[..i], 1024),
        (i, 'M') => (&text[..i], 1024 * 1024),
        _ => (text, 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .filter(|&v| v > 0)
        .map(|v| v * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sets_imply_what_they_build_on() {
        let isa = isa();
        assert_eq!(isa, Isa::detect(), "detection is stable");
        assert!(!isa.avx512_bf16 || isa.avx512f, "BF16 extends AVX-512F");
        assert_eq!(isa.has_f32_vectors(), isa.avx512f || isa.avx2_fma);
        eprintln!("this CPU: {isa:?}");
    }

    #[test]
    fn cache_sizes_parse() {
        assert_eq!(parse_cache_size("1280K\n"), Some(1280 * 1024));
        assert_eq!(parse_cache_size("2M"), Some(2 * 1024 * 1024));
        assert_eq!(parse_cache_size("65536"), Some(65536));
        assert_eq!(parse_cache_size("0K"), None);
        assert_eq!(parse_cache_size("big"), None);
        assert_eq!(parse_cache_size(""), None);
        assert!(l2_bytes() >= 1024, "an L2 of {} bytes", l2_bytes());
    }
}
