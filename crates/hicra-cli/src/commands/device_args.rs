//! The `--device` / `--dtype` flags shared by the commands that run a model: parsed into
//! hicra-model's specs, turned into load options, or into `model.device` / `model.dtype`
//! overrides for the commands that take a training config.

use hicra_model::{DTypeSpec, DeviceSpec, LoadOptions};

/// Where a model runs and in which dtype.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DeviceArgs {
    /// Where the model runs: `cpu`, `cuda` or `cuda:N` (CUDA needs a `--features cuda`
    /// build). Commands with a config default to `model.device`, the others to `cpu`.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<DeviceSpec>,
    /// Compute dtype: `auto` (f32 on the CPU, bf16 on CUDA), `f32` or `bf16`.
    #[arg(long, value_name = "DTYPE")]
    pub dtype: Option<DTypeSpec>,
}

impl DeviceArgs {
    /// The device and dtype to load a model with (the CPU and `auto` when not given); an
    /// error names the flag and what is missing.
    pub fn load_options(&self) -> anyhow::Result<LoadOptions> {
        let spec = self.device.unwrap_or_default();
        let dtype = self
            .dtype
            .unwrap_or_default()
            .resolve(&spec)
            .map_err(|e| anyhow::anyhow!("--dtype: {e}"))?;
        let device = spec
            .device()
            .map_err(|e| anyhow::anyhow!("--device: {e}"))?;
        Ok(LoadOptions { device, dtype })
    }

    /// The flags as `--set` overrides of a training config (`model.device=...`).
    pub fn config_overrides(&self) -> Vec<String> {
        let mut sets = Vec::new();
        if let Some(d) = self.device {
            sets.push(format!("model.device={d}"));
        }
        if let Some(t) = self.dtype {
            sets.push(format!("model.dtype={t}"));
        }
        sets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_on_the_cpu_in_f32() {
        let opts = DeviceArgs::default().load_options().unwrap();
        assert!(opts.device.is_cpu());
        assert_eq!(opts.dtype, candle_core::DType::F32);
        assert!(DeviceArgs::default().config_overrides().is_empty());
    }

    #[test]
    fn flags_become_config_overrides() {
        let args = DeviceArgs {
            device: Some(DeviceSpec::Cuda(1)),
            dtype: Some(DTypeSpec::Bf16),
        };
        assert_eq!(
            args.config_overrides(),
            vec!["model.device=cuda:1", "model.dtype=bf16"]
        );
    }

    #[test]
    fn bf16_on_the_cpu_is_refused_by_flag_name() {
        let args = DeviceArgs {
            device: None,
            dtype: Some(DTypeSpec::Bf16),
        };
        let e = args.load_options().unwrap_err().to_string();
        assert!(e.starts_with("--dtype: ") && e.contains("bf16"), "{e}");
    }
}
