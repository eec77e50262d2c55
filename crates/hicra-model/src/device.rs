//! Device and dtype choices as users write them (`cpu`, `cuda:1`, `bf16`), resolved to candle's
//! [`Device`] and [`DType`] with errors that say what is missing.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device};

use crate::error::{ModelError, Result};

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// The CPU.
    #[default]
    Cpu,
    /// The CUDA GPU with this ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| format!("`{s}` is not a device (cpu, cuda or cuda:N)")),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceSpec {
    /// Opens the device. Asking for CUDA in a build without it is an error that says how to
    /// build with it.
    pub fn device(&self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(_) => Err(ModelError::InvalidInput(format!(
                "{self}: this build of hicra has no CUDA support; build it with \
                 `cargo build --release -p hicra-cli --features cuda`"
            ))),
        }
    }
}

/// The compute dtype of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DTypeSpec {
    /// f32 on the CPU, bf16 on CUDA.
    #[default]
    Auto,
    /// 32-bit floats.
    F32,
    /// bfloat16 (CUDA only: candle has no CPU bf16 matmul).
    Bf16,
    /// 64-bit floats (gradient checks).
    F64,
}

impl FromStr for DTypeSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DTypeSpec::Auto),
            "f32" | "float32" => Ok(DTypeSpec::F32),
            "bf16" | "bfloat16" => Ok(DTypeSpec::Bf16),
            "f64" | "float64" => Ok(DTypeSpec::F64),
            other => Err(format!("`{other}` is not a dtype (auto, f32, bf16, f64)")),
        }
    }
}

impl fmt::Display for DTypeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DTypeSpec::Auto => "auto",
            DTypeSpec::F32 => "f32",
            DTypeSpec::Bf16 => "bf16",
            DTypeSpec::F64 => "f64",
        })
    }
}

impl DTypeSpec {
    /// The dtype on `device`; bf16 on the CPU is refused by name.
    pub fn resolve(&self, device: &DeviceSpec) -> Result<DType> {
        match (self, device) {
            (DTypeSpec::Auto, DeviceSpec::Cpu) | (DTypeSpec::F32, _) => Ok(DType::F32),
            (DTypeSpec::Auto, DeviceSpec::Cuda(_)) | (DTypeSpec::Bf16, DeviceSpec::Cuda(_)) => {
                Ok(DType::BF16)
            }
            (DTypeSpec::Bf16, DeviceSpec::Cpu) => Err(ModelError::InvalidInput(
                "bf16 is not available on the CPU (candle has no CPU bf16 matmul); use f32".into(),
            )),
            (DTypeSpec::F64, _) => Ok(DType::F64),
        }
    }
}

macro_rules! serde_as_string {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_string!(DeviceSpec);
serde_as_string!(DTypeSpec);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_print_back() {
        assert_eq!("cpu".parse::<DeviceSpec>(), Ok(DeviceSpec::Cpu));
        assert_eq!("cuda".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(0)));
        assert_eq!("cuda:3".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(3)));
        assert_eq!(DeviceSpec::Cuda(3).to_string(), "cuda:3");
        assert!("tpu".parse::<DeviceSpec>().unwrap_err().contains("tpu"));
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn dtypes_resolve_per_device() {
        let cuda = DeviceSpec::Cuda(0);
        assert_eq!(
            DTypeSpec::Auto.resolve(&DeviceSpec::Cpu).unwrap(),
            DType::F32
        );
        assert_eq!(DTypeSpec::Auto.resolve(&cuda).unwrap(), DType::BF16);
        assert_eq!(DTypeSpec::F32.resolve(&cuda).unwrap(), DType::F32);
        let e = DTypeSpec::Bf16.resolve(&DeviceSpec::Cpu).unwrap_err();
        assert!(e.to_string().contains("bf16"), "{e}");
    }

    #[test]
    fn cuda_without_the_feature_says_how_to_build_it() {
        let e = DeviceSpec::Cuda(0).device().unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
    }
}
