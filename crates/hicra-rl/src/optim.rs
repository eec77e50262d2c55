//! AdamW with decoupled weight decay over named candle `Var`s, global grad-norm clipping,
//! the learning-rate schedule, and gradient accumulation across micro-batches. State
//! (moments and step count) can be saved and restored exactly.
//!
//! Mixed precision: for bf16/f16 parameters (a CUDA model) the optimiser keeps f32 master
//! copies; the step updates the masters in f32 with f32 moments and writes their rounding back
//! to the parameters, so small updates accumulate instead of vanishing in bf16 rounding.

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{Result, RlError};

mod in_place;

/// Shape of the learning rate after warm-up (config: `optim.schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// Constant at the peak rate.
    #[default]
    Constant,
    /// Cosine decay from the peak to `min_lr_ratio · peak` at `total_steps`.
    Cosine,
}

/// Linear warm-up then constant or cosine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    /// Peak learning rate.
    pub lr: f64,
    /// Steps of linear warm-up (step 0 uses `lr / warmup_steps`).
    pub warmup_steps: usize,
    /// After warm-up.
    pub kind: ScheduleKind,
    /// Steps of the whole run (for cosine).
    pub total_steps: usize,
    /// Floor of the cosine as a fraction of `lr`.
    pub min_lr_ratio: f64,
}

impl LrSchedule {
    /// The learning rate of optimiser step `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.kind {
            ScheduleKind::Constant => self.lr,
            ScheduleKind::Cosine => {
                let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
                let floor = self.min_lr_ratio * self.lr;
                floor + (self.lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

/// AdamW hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// β1.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Global grad-norm clip; 0 = off.
    pub grad_clip: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            grad_clip: 1.0,
        }
    }
}

/// Sums gradients of several backward passes (micro-batches), per parameter.
#[derive(Debug)]
pub struct GradAccumulator {
    sums: Vec<Option<Tensor>>,
}

impl GradAccumulator {
    /// An empty accumulator for `n` parameters.
    pub fn new(n: usize) -> Self {
        GradAccumulator {
            sums: vec![None; n],
        }
    }

    /// Adds the gradients of `params` found in `grads` (parameters without a gradient are skipped).
    pub fn add(&mut self, params: &[(String, Var)], grads: &GradStore) -> Result<()> {
        for (i, (_, var)) in params.iter().enumerate() {
            if let Some(g) = grads.get(var.as_tensor()) {
                let g = g.to_dtype(DType::F32)?;
                self.sums[i] = Some(match self.sums[i].take() {
                    Some(s) => (s + g)?,
                    None => g,
                });
            }
        }
        Ok(())
    }

    /// The accumulated gradients, aligned with the parameters.
    pub fn grads(&self) -> &[Option<Tensor>] {
        &self.sums
    }

    /// The accumulated gradients, to replace in place (e.g. by an all-reduce).
    pub fn grads_mut(&mut self) -> &mut [Option<Tensor>] {
        &mut self.sums
    }
}

/// What an optimiser step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Global gradient L2 norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// AdamW over a fixed list of named parameters.
pub struct AdamW {
    params: Vec<(String, Var)>,
    config: AdamWConfig,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// f32 master weights of the half-precision parameters (`None` for f32/f64 ones).
    masters: Vec<Option<Tensor>>,
    step: u64,
}

/// Whether parameters of `dtype` get an f32 master copy (bf16, f16).
fn master_of_dtype(dtype: DType) -> bool {
    matches!(dtype, DType::BF16 | DType::F16)
}

/// The f32 master copy of a half-precision parameter (`None` for f32/f64).
fn master_of(var: &Var) -> Result<Option<Tensor>> {
    Ok(if master_of_dtype(var.dtype()) {
        Some(var.as_detached_tensor().to_dtype(DType::F32)?)
    } else {
        None
    })
}

impl AdamW {
    /// A fresh optimiser (zero moments, step 0).
    pub fn new(params: Vec<(String, Var)>, config: AdamWConfig) -> Result<Self> {
        // On a GPU, state that cannot fit is a named error (moments: 8 bytes per value; f32
        // masters of half-precision parameters: 4 more).
        if let Some((_, first)) = params.first() {
            let bytes: u64 = params
                .iter()
                .map(|(_, p)| {
                    let per = if master_of_dtype(p.dtype()) { 12 } else { 8 };
                    p.elem_count() as u64 * per
                })
                .sum();
            hicra_model::device::ensure_fits(
                first.device(),
                bytes,
                "the AdamW state (f32 moments and master weights)",
            )
            .map_err(|e| RlError::model("optimiser", e))?;
        }
        let mut m = Vec::with_capacity(params.len());
        let mut v = Vec::with_capacity(params.len());
        let mut masters = Vec::with_capacity(params.len());
        for (_, p) in &params {
            // Separate buffers: the CPU step updates them in place.
            m.push(Tensor::zeros(p.shape(), DType::F32, p.device())?);
            v.push(Tensor::zeros(p.shape(), DType::F32, p.device())?);
            masters.push(master_of(p)?);
        }
        Ok(AdamW {
            params,
            config,
            m,
            v,
            masters,
            step: 0,
        })
    }

    /// The parameters being optimised.
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Optimiser steps applied so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Global L2 norm of `grads` (missing entries count as zero), computed on the device and
    /// read in one transfer; errors on NaN/Inf naming the parameter.
    pub fn grad_norm(&self, grads: &[Option<Tensor>]) -> Result<f64> {
        let mut names = Vec::new();
        let mut squares = Vec::new();
        for ((name, _), g) in self.params.iter().zip(grads) {
            if let Some(g) = g {
                names.push(name);
                squares.push(g.to_dtype(DType::F32)?.sqr()?.sum_all()?);
            }
        }
        if squares.is_empty() {
            return Ok(0.0);
        }
        let squares = Tensor::stack(&squares, 0)?.to_vec1::<f32>()?;
        let mut sq = 0.0f64;
        for (name, s) in names.into_iter().zip(squares) {
            if !s.is_finite() {
                return Err(RlError::NonFiniteGradient {
                    parameter: name.clone(),
                    step: None,
                });
            }
            sq += s as f64;
        }
        Ok(sq.sqrt())
    }

    /// One AdamW step with global-norm clipping. If any gradient is NaN/Inf nothing is changed
    /// and an error names the parameter.
    pub fn step(&mut self, grads: &[Option<Tensor>], lr: f64) -> Result<StepReport> {
        if grads.len() != self.params.len() {
            return Err(RlError::Invalid(format!(
                "{} gradients for {} parameters",
                grads.len(),
                self.params.len()
            )));
        }
        let grad_norm = self.grad_norm(grads)?;
        let c = self.config;
        let scale = if c.grad_clip > 0.0 && grad_norm > c.grad_clip {
            c.grad_clip / (grad_norm + 1e-6)
        } else {
            1.0
        };
        let t = (self.step + 1) as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        for (i, (_, var)) in self.params.iter().enumerate() {
            let Some(g) = &grads[i] else { continue };
            let hyper = in_place::Hyper {
                lr,
                weight_decay: c.weight_decay,
                beta1: c.beta1,
                beta2: c.beta2,
                eps: c.eps,
                grad_scale: scale,
                bias_correction1: bc1,
                bias_correction2: bc2,
            };
            if in_place::applies(var.as_tensor(), g, &self.m[i], &self.v[i]) {
                in_place::step(var.as_tensor(), g, &self.m[i], &self.v[i], &hyper)?;
                continue;
            }
            let g = (g * scale)?;
            let m = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let m_hat = (&m / bc1)?;
            let v_hat = (&v / bc2)?;
            let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            let w = match &self.masters[i] {
                Some(master) => master.clone(),
                None => var.as_tensor().to_dtype(DType::F32)?,
            };
            let w = ((&w * (1.0 - lr * c.weight_decay))? - (update * lr)?)?;
            var.set(&w.to_dtype(var.dtype())?)?;
            if self.masters[i].is_some() {
                self.masters[i] = Some(w);
            }
            self.m[i] = m;
            self.v[i] = v;
        }
        self.step += 1;
        Ok(StepReport { grad_norm, lr })
    }

    /// Writes the moments as safetensors (`m.<name>`, `v.<name>`, and `w.<name>` for the f32
    /// master weights of half-precision parameters); the step count is returned for the
    /// caller's manifest.
    pub fn save_state(&self, path: &Path) -> Result<u64> {
        let mut map: HashMap<String, Tensor> = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            map.insert(format!("m.{name}"), self.m[i].clone());
            map.insert(format!("v.{name}"), self.v[i].clone());
            if let Some(master) = &self.masters[i] {
                map.insert(format!("w.{name}"), master.clone());
            }
        }
        candle_core::safetensors::save(&map, path).map_err(|e| file_error(path, e))?;
        Ok(self.step)
    }

    /// Restores moments from `path` and the step count; every parameter must be present with
    /// its shape. Master weights come from `w.<name>` where saved, else from the parameters'
    /// current values (a state saved by an f32 run).
    pub fn load_state(&mut self, path: &Path, step: u64) -> Result<()> {
        let map = candle_core::safetensors::load(path, &candle_core::Device::Cpu)
            .map_err(|e| file_error(path, e))?;
        let dev = self.params.first().map(|(_, v)| v.device().clone());
        for (i, (name, var)) in self.params.iter().enumerate() {
            for (kind, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let key = format!("{kind}.{name}");
                let t = map.get(&key).ok_or_else(|| {
                    RlError::Invalid(format!("{}: optimiser state lacks `{key}`", path.display()))
                })?;
                if t.dims() != var.dims() {
                    return Err(RlError::Invalid(format!(
                        "{}: `{key}` has shape {:?}, parameter has {:?}",
                        path.display(),
                        t.dims(),
                        var.dims()
                    )));
                }
                *slot = t.to_device(dev.as_ref().unwrap())?;
            }
            if self.masters[i].is_some() {
                self.masters[i] = match map.get(&format!("w.{name}")) {
                    Some(w) if w.dims() == var.dims() => {
                        Some(w.to_dtype(DType::F32)?.to_device(var.device())?)
                    }
                    Some(w) => {
                        return Err(RlError::Invalid(format!(
                            "{}: `w.{name}` has shape {:?}, parameter has {:?}",
                            path.display(),
                            w.dims(),
                            var.dims()
                        )));
                    }
                    None => master_of(var)?,
                };
            }
        }
        self.step = step;
        Ok(())
    }
}

/// A failure to read or write the optimiser state file, naming it.
fn file_error(path: &Path, error: candle_core::Error) -> RlError {
    match error {
        candle_core::Error::Io(source) => RlError::io(path, source),
        other => RlError::Invalid(format!("{}: {other}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn one_param(v: Vec<f32>) -> Vec<(String, Var)> {
        let n = v.len();
        vec![("w".into(), Var::from_vec(v, n, &Device::Cpu).unwrap())]
    }

    #[test]
    fn first_adamw_step_matches_hand_computation() {
        // After one step m̂ = g, v̂ = g², so update = g/(|g|+eps) ≈ sign(g).
        // w = 1·(1 - lr·wd) - lr·sign(g) = 1·(1-0.1·0.5) - 0.1 = 0.85 for g>0; 1.05·... for g<0
        let params = one_param(vec![1.0, 1.0]);
        let mut opt = AdamW::new(
            params.clone(),
            AdamWConfig {
                weight_decay: 0.5,
                grad_clip: 0.0,
                ..AdamWConfig::default()
            },
        )
        .unwrap();
        let g = Tensor::new(&[0.3f32, -2.0], &Device::Cpu).unwrap();
        let rep = opt.step(&[Some(g)], 0.1).unwrap();
        let w = params[0].1.as_tensor().to_vec1::<f32>().unwrap();
        assert!((w[0] - 0.85).abs() < 1e-5, "{w:?}");
        assert!((w[1] - 1.05).abs() < 1e-5, "{w:?}");
        assert!((rep.grad_norm - (0.09f64 + 4.0).sqrt()).abs() < 1e-5);
        assert_eq!(opt.step_count(), 1);
    }

    #[test]
    fn grad_clipping_scales_to_the_max_norm() {
        // g = [3, 4] has norm 5; clipped to norm 1 the first moment is (1-β1)·[0.6, 0.8].
        let params = one_param(vec![0.0, 0.0]);
        let cfg = AdamWConfig {
            grad_clip: 1.0,
            ..AdamWConfig::default()
        };
        let mut opt = AdamW::new(params, cfg).unwrap();
        let g = Tensor::new(&[3.0f32, 4.0], &Device::Cpu).unwrap();
        let rep = opt.step(&[Some(g)], 0.01).unwrap();
        assert!((rep.grad_norm - 5.0).abs() < 1e-6);
        let m = opt.m[0].to_vec1::<f32>().unwrap();
        assert!(
            (m[0] - 0.06).abs() < 1e-6 && (m[1] - 0.08).abs() < 1e-6,
            "{m:?}"
        );
    }

    #[test]
    fn nan_gradient_is_refused_and_nothing_changes() {
        let params = one_param(vec![1.0, 2.0]);
        let mut opt = AdamW::new(params.clone(), AdamWConfig::default()).unwrap();
        let g = Tensor::new(&[f32::NAN, 1.0], &Device::Cpu).unwrap();
        let err = opt.step(&[Some(g)], 0.1).unwrap_err();
        assert!(err.to_string().contains("gradient of w"), "{err}");
        assert_eq!(
            params[0].1.as_tensor().to_vec1::<f32>().unwrap(),
            vec![1.0, 2.0]
        );
        assert_eq!(opt.step_count(), 0);
    }

    #[test]
    fn saved_state_resumes_identically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        let pa = one_param(vec![0.5, -0.5]);
        let mut a = AdamW::new(pa.clone(), AdamWConfig::default()).unwrap();
        let g1 = Tensor::new(&[0.1f32, -0.3], &Device::Cpu).unwrap();
        let g2 = Tensor::new(&[-0.2f32, 0.4], &Device::Cpu).unwrap();
        a.step(&[Some(g1.clone())], 0.01).unwrap();
        let step = a.save_state(&path).unwrap();
        let pb = one_param(pa[0].1.as_tensor().to_vec1::<f32>().unwrap());
        let mut b = AdamW::new(pb.clone(), AdamWConfig::default()).unwrap();
        b.load_state(&path, step).unwrap();
        a.step(&[Some(g2.clone())], 0.01).unwrap();
        b.step(&[Some(g2)], 0.01).unwrap();
        assert_eq!(
            pa[0].1.as_tensor().to_vec1::<f32>().unwrap(),
            pb[0].1.as_tensor().to_vec1::<f32>().unwrap()
        );
    }

    #[test]
    fn schedule_warms_up_then_follows_cosine() {
        let s = LrSchedule {
            lr: 1.0,
            warmup_steps: 2,
            kind: ScheduleKind::Cosine,
            total_steps: 6,
            min_lr_ratio: 0.0,
        };
        assert_eq!(s.lr_at(0), 0.5);
        assert_eq!(s.lr_at(1), 1.0);
        assert!((s.lr_at(2) - 1.0).abs() < 1e-12);
        assert!((s.lr_at(4) - 0.5).abs() < 1e-12);
        assert!(s.lr_at(6).abs() < 1e-12);
        let c = LrSchedule {
            kind: ScheduleKind::Constant,
            ..s
        };
        assert_eq!(c.lr_at(5), 1.0);
    }

    #[test]
    fn accumulator_sums_micro_batches() {
        let params = one_param(vec![1.0, 2.0]);
        let mut acc = GradAccumulator::new(1);
        for k in [1.0, 3.0] {
            let loss = (params[0].1.as_tensor() * k).unwrap().sum_all().unwrap();
            acc.add(&params, &loss.backward().unwrap()).unwrap();
        }
        let g = acc.grads()[0].as_ref().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(g, vec![4.0, 4.0]);
    }

    #[test]
    fn half_precision_parameters_keep_f32_master_weights() {
        // lr·update = 1e-4 is far below bf16's resolution at 1.0 (2^-7): without a master the
        // parameter would never move; with one, 100 steps move it by 1e-2 (a visible change).
        let p = Var::from_tensor(
            &Tensor::new(&[1.0f32, -1.0], &Device::Cpu)
                .unwrap()
                .to_dtype(DType::BF16)
                .unwrap(),
        )
        .unwrap();
        let params = vec![("w".to_string(), p.clone())];
        let cfg = AdamWConfig {
            weight_decay: 0.0,
            grad_clip: 0.0,
            ..AdamWConfig::default()
        };
        let mut opt = AdamW::new(params, cfg).unwrap();
        let g = Tensor::new(&[1.0f32, -1.0], &Device::Cpu).unwrap();
        for _ in 0..100 {
            opt.step(&[Some(g.clone())], 1e-4).unwrap();
        }
        let master = opt.masters[0].as_ref().unwrap().to_vec1::<f32>().unwrap();
        assert!((master[0] - 0.99).abs() < 1e-4, "{master:?}");
        assert!((master[1] + 0.99).abs() < 1e-4, "{master:?}");
        assert_eq!(p.dtype(), DType::BF16);
        let w = p
            .as_tensor()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!((w[0] - 0.99).abs() < 4e-3 && w[0] < 1.0, "{w:?}");

        // The masters survive a save and load.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        let step = opt.save_state(&path).unwrap();
        let q = Var::from_tensor(&p.as_detached_tensor().copy().unwrap()).unwrap();
        let mut resumed = AdamW::new(vec![("w".to_string(), q)], cfg).unwrap();
        resumed.load_state(&path, step).unwrap();
        assert_eq!(
            resumed.masters[0]
                .as_ref()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            master
        );
    }
}
