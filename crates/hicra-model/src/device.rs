//! Device and dtype choices as users write them (`cpu`, `cuda:1`, `bf16`), resolved to candle's
//! [`Device`] and [`DType`] with errors that say what is missing; and the free-memory check
//! that turns "does not fit on the GPU" into a named error instead of a driver failure.

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
    /// build with it; with it, a missing driver or GPU is named.
    pub fn device(&self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(ordinal) => open_cuda(*ordinal),
        }
    }

    /// Whether this is a CUDA device.
    pub fn is_cuda(&self) -> bool {
        matches!(self, DeviceSpec::Cuda(_))
    }

    /// The spec of an opened device (`cuda:N` for a CUDA device).
    pub fn of(device: &Device) -> DeviceSpec {
        match device.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => DeviceSpec::Cuda(gpu_id),
            _ => DeviceSpec::Cpu,
        }
    }
}

fn device_error(ordinal: usize, message: impl Into<String>) -> ModelError {
    ModelError::Device {
        device: DeviceSpec::Cuda(ordinal).to_string(),
        message: message.into(),
    }
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(ordinal: usize) -> Result<Device> {
    Err(device_error(
        ordinal,
        "this build of hicra has no CUDA support; build it with \
         `cargo build --release -p hicra-cli --features cuda` (README: Building with CUDA)",
    ))
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize) -> Result<Device> {
    use candle_core::cuda_backend::cudarc::driver::{CudaContext, DriverError, sys::CUresult};
    let driver = |e: DriverError| {
        let why = match e.0 {
            CUresult::CUDA_ERROR_STUB_LIBRARY => {
                "the CUDA driver library loaded is a stub (libcuda.so.1 from \
                 scripts/cuda-toolkit.sh's link folder, not the NVIDIA driver's)"
                    .to_string()
            }
            CUresult::CUDA_ERROR_NO_DEVICE => "the NVIDIA driver sees no GPU".to_string(),
            CUresult::CUDA_ERROR_SYSTEM_DRIVER_MISMATCH => {
                "the NVIDIA kernel driver and libcuda.so.1 are of different versions".to_string()
            }
            _ => format!("the CUDA driver failed to initialise ({e})"),
        };
        device_error(ordinal, why)
    };
    let count = CudaContext::device_count().map_err(driver)?;
    let count = usize::try_from(count).unwrap_or(0);
    if count == 0 {
        return Err(device_error(ordinal, "the NVIDIA driver sees no GPU"));
    }
    if ordinal >= count {
        return Err(device_error(
            ordinal,
            format!(
                "no such GPU: this machine has {count} (cuda:0 to cuda:{})",
                count - 1
            ),
        ));
    }
    Device::new_cuda(ordinal).map_err(|e| {
        device_error(
            ordinal,
            format!(
                "cannot open the GPU (a CUDA library may be missing: cublas, curand, nvrtc): {e}"
            ),
        )
    })
}

/// Free and total memory of a CUDA device, in bytes (`None` on the CPU).
pub fn device_memory(device: &Device) -> Result<Option<(u64, u64)>> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(cuda) = device {
        let (free, total) =
            cuda.cuda_stream()
                .context()
                .mem_get_info()
                .map_err(|e| ModelError::Device {
                    device: DeviceSpec::of(device).to_string(),
                    message: format!("cannot read the GPU's free memory: {e}"),
                })?;
        return Ok(Some((free as u64, total as u64)));
    }
    let _ = device;
    Ok(None)
}

/// Fails with [`ModelError::OutOfDeviceMemory`] when `needed_bytes` exceed the free memory of a
/// GPU (always passes on the CPU).
pub fn ensure_fits(device: &Device, needed_bytes: u64, what: &str) -> Result<()> {
    match device_memory(device)? {
        Some((free, _)) if needed_bytes > free => Err(ModelError::OutOfDeviceMemory {
            device: DeviceSpec::of(device).to_string(),
            what: what.to_string(),
            needed_bytes,
            free_bytes: free,
        }),
        _ => Ok(()),
    }
}

/// The peak GPU memory in use while it runs: a background thread polls the device's used
/// memory (total − free, device-wide as `nvidia-smi` shows it) every millisecond.
pub struct PeakMemory {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    baseline: u64,
    poller: Option<std::thread::JoinHandle<()>>,
}

impl PeakMemory {
    /// Starts watching `device`; `None` on the CPU.
    pub fn start(device: &Device) -> Result<Option<PeakMemory>> {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let Some((free, total)) = device_memory(device)? else {
            return Ok(None);
        };
        let baseline = total - free;
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(baseline));
        let poller = {
            let (stop, peak, device) = (stop.clone(), peak.clone(), device.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(Some((free, total))) = device_memory(&device) {
                        peak.fetch_max(total - free, Ordering::Relaxed);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
        };
        Ok(Some(PeakMemory {
            stop,
            peak,
            baseline,
            poller: Some(poller),
        }))
    }

    /// The peak so far above the memory in use when watching started, in bytes.
    pub fn peak_above_start(&self) -> u64 {
        self.peak.load(std::sync::atomic::Ordering::Relaxed) - self.baseline
    }

    /// The device memory in use when watching started (CUDA context, earlier allocations).
    pub fn at_start(&self) -> u64 {
        self.baseline
    }
}

impl Drop for PeakMemory {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(p) = self.poller.take() {
            let _ = p.join();
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

/// Where and in which dtype to load weights.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Device for the weights.
    pub device: Device,
    /// Weight dtype (f32 by default; f64 for gradient checks).
    pub dtype: DType,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: Device::Cpu,
            dtype: DType::F32,
        }
    }
}

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

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_build_it() {
        let e = DeviceSpec::Cuda(0).device().unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
        assert!(e.starts_with("cuda:0"), "{e}");
    }

    #[test]
    fn an_absent_gpu_ordinal_is_named() {
        // Without a GPU (or without the feature) every ordinal fails; the error names it.
        if std::env::var_os("HICRA_TEST_CUDA").is_some() {
            eprintln!("skipped: HICRA_TEST_CUDA is set (the GPU test checks cuda:N on hardware)");
            return;
        }
        let e = DeviceSpec::Cuda(7).device().unwrap_err().to_string();
        assert!(e.starts_with("cuda:7: "), "{e}");
    }

    #[test]
    fn memory_check_passes_on_the_cpu_and_describes_a_shortfall() {
        assert!(ensure_fits(&Device::Cpu, u64::MAX, "anything").is_ok());
        assert_eq!(device_memory(&Device::Cpu).unwrap(), None);
        assert!(PeakMemory::start(&Device::Cpu).unwrap().is_none());
        let e = ModelError::OutOfDeviceMemory {
            device: "cuda:0".into(),
            what: "the weights".into(),
            needed_bytes: 3 << 30,
            free_bytes: 1 << 30,
        }
        .to_string();
        assert!(e.contains("needs 3221225472 bytes (3.00 GiB)"), "{e}");
        assert!(e.contains("only 1073741824 bytes (1.00 GiB)"), "{e}");
    }

    #[test]
    fn opened_devices_map_back_to_specs() {
        assert_eq!(DeviceSpec::of(&Device::Cpu), DeviceSpec::Cpu);
        assert!(DeviceSpec::Cuda(1).is_cuda() && !DeviceSpec::Cpu.is_cuda());
    }
}
