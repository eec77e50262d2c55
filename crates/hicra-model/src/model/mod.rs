//! `Model`: the decoder-only transformer (Llama/Qwen2/Qwen3) with trainable `Var` weights.
//!
//! This file holds the struct, its constructors and settings; the model's other concerns are
//! methods in the files beside it:
//! - [`forward`]: the forward pass (the one place that chooses kernels), trunk, layer, heads;
//! - [`backward`]: the training backward written by hand (fused CPU kernels);
//! - [`checkpointed`]: the backward with activation checkpointing through candle's autograd;
//! - [`score`]: teacher-forced log-probs and entropies, chunked, and the training loss backward;
//! - [`decode`]: batched generation with a KV cache ([`kv_cache`]);
//! - [`weights`]: the HF tensor names and the weights as the passes read them.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use hicra_kernels::Precision;

use crate::config::{ModelConfig, rope_inv_freq};
use crate::device::{LoadOptions, ensure_fits};
use crate::error::{ModelError, Result};
use weights::{EMBED, LM_HEAD, Weights, expected_tensors};

pub(crate) mod backward;
pub(crate) mod checkpointed;
mod decode;
pub(crate) mod forward;
pub(crate) mod kv_cache;
pub mod score;
pub mod weights;

/// A decoder-only transformer whose weights are candle `Var`s (so they can be trained).
///
/// A clone shares the parameters (candle `Var`s are handles): an optimiser step on one is seen
/// by every clone. [`Model::deep_clone`] copies them.
#[derive(Clone)]
pub struct Model {
    config: ModelConfig,
    device: Device,
    dtype: DType,
    /// Parameters by HF name, sorted by name; a tied `lm_head` is not listed.
    vars: Vec<(String, Var)>,
    /// Tracked tensors of the Vars (training path).
    weights: Weights,
    inv_freq: Vec<f64>,
    /// The precision generation runs its projections in.
    decode_precision: Precision,
    /// Whether the training backward recomputes each layer instead of keeping its activations.
    activation_checkpointing: bool,
    /// The precision of the projections in full-batch passes (training, scoring).
    matmul_precision: Precision,
}

impl Model {
    /// Builds a model from HF-named tensors (any dtype/device; converted to `opts`).
    /// Extra tensors are ignored; a missing or mis-shaped tensor is an error.
    pub fn from_tensors(
        config: ModelConfig,
        tensors: HashMap<String, Tensor>,
        opts: &LoadOptions,
    ) -> Result<Model> {
        Self::from_tensors_named(config, tensors, opts, "tensors")
    }

    /// As [`Model::from_tensors`]; `source_name` (e.g. the weights file) appears in errors.
    pub fn from_tensors_named(
        config: ModelConfig,
        mut tensors: HashMap<String, Tensor>,
        opts: &LoadOptions,
        source_name: &str,
    ) -> Result<Model> {
        check_dtype(opts)?;
        // On a GPU, too little free memory is a named error before anything is copied there.
        let elements: u64 = expected_tensors(&config)
            .iter()
            .map(|(_, shape)| shape.iter().product::<usize>() as u64)
            .sum();
        ensure_fits(
            &opts.device,
            elements * opts.dtype.size_in_bytes() as u64,
            &format!("the {:?} weights of {source_name}", opts.dtype),
        )?;
        let mut vars = HashMap::new();
        for (name, shape) in expected_tensors(&config) {
            let t = tensors
                .remove(&name)
                .ok_or_else(|| ModelError::MissingTensor {
                    source_name: source_name.to_string(),
                    name: name.clone(),
                })?;
            if t.dims() != shape.as_slice() {
                return Err(ModelError::WrongShape {
                    source_name: source_name.to_string(),
                    name,
                    expected: shape,
                    actual: t.dims().to_vec(),
                });
            }
            let t = t.to_device(&opts.device)?.to_dtype(opts.dtype)?;
            let var = if t.is_variable() {
                Var::from_tensor(&t.copy()?)?
            } else {
                Var::from_tensor(&t)?
            };
            vars.insert(name, var);
        }
        Ok(Self::from_var_map(
            config,
            vars,
            opts.device.clone(),
            opts.dtype,
        ))
    }

    fn from_var_map(
        config: ModelConfig,
        vars: HashMap<String, Var>,
        device: Device,
        dtype: DType,
    ) -> Model {
        let weights = Weights::from_vars(&config, &vars, false);
        let mut list: Vec<(String, Var)> = vars.into_iter().collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let inv_freq = rope_inv_freq(&config);
        Model {
            config,
            device,
            dtype,
            vars: list,
            weights,
            inv_freq,
            decode_precision: Precision::F32,
            activation_checkpointing: false,
            matmul_precision: Precision::F32,
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The same model (sharing the parameters) generating in `precision`: bf16 runs the
    /// projections of generation with bf16 weights and f32 accumulation where the CPU has
    /// AVX-512 BF16, f32 elsewhere. Scoring and training keep the model's dtype.
    pub fn with_decode_precision(mut self, precision: Precision) -> Model {
        self.decode_precision = precision;
        self
    }

    /// The precision generation is asked to run in (see [`Model::with_decode_precision`]).
    pub fn decode_precision(&self) -> Precision {
        self.decode_precision
    }

    /// The same model (sharing the parameters) whose training backward (`backward_token_loss`)
    /// keeps only each layer's input and recomputes the layer's activations during the backward
    /// pass: peak memory of about one layer's activations instead of all of them, for one more
    /// forward pass of the trunk.
    pub fn with_activation_checkpointing(mut self, on: bool) -> Model {
        self.activation_checkpointing = on;
        self
    }

    /// Whether the training backward checkpoints activations.
    pub fn activation_checkpointing(&self) -> bool {
        self.activation_checkpointing
    }

    /// The same model (sharing the parameters) whose full-batch passes (the training forward
    /// and backward, and [`Model::score_tokens`]) run their projections and the LM head in
    /// `precision`: bf16 rounds both operands of each product to bf16 and accumulates in f32
    /// on AMX or AVX-512 BF16 (`hicra_kernels::bf16_matmul`), with the f32 weights as master copy, as
    /// autocast does. f32 models on CPUs with AVX-512 BF16 only; elsewhere the products stay
    /// f32. Attention products, norms and the softmax stay f32, and generation keeps its own
    /// precision.
    pub fn with_matmul_precision(mut self, precision: Precision) -> Model {
        self.matmul_precision = precision;
        self
    }

    /// The precision asked for the full-batch products (see [`Model::with_matmul_precision`]).
    pub fn matmul_precision(&self) -> Precision {
        self.matmul_precision
    }

    /// Whether full-batch passes run their products in bf16 here: asked for, an f32 CPU
    /// model, and the instructions present.
    pub(crate) fn bf16_products(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self.matmul_precision == Precision::Bf16
                && self.dtype == DType::F32
                && self.device.is_cpu()
                && hicra_kernels::bf16_matmul::available()
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// Trainable parameters by HF tensor name, sorted by name; tied weights appear once
    /// (as `model.embed_tokens.weight`).
    pub fn parameters(&self) -> Vec<(String, Var)> {
        self.vars.clone()
    }

    /// The weights as HF-named tensors for saving (a tied `lm_head.weight` is not included).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_detached_tensor()))
            .collect()
    }

    /// An independent copy of the model (e.g. a frozen reference model).
    pub fn deep_clone(&self) -> Result<Model> {
        let mut vars = HashMap::new();
        for (name, var) in &self.vars {
            vars.insert(
                name.clone(),
                Var::from_tensor(&var.as_detached_tensor().copy()?)?,
            );
        }
        Ok(
            Self::from_var_map(self.config.clone(), vars, self.device.clone(), self.dtype)
                .with_decode_precision(self.decode_precision)
                .with_activation_checkpointing(self.activation_checkpointing)
                .with_matmul_precision(self.matmul_precision),
        )
    }

    /// Detached views of the weights (share storage with the Vars; no graph recorded).
    pub(crate) fn inference_weights(&self) -> Weights {
        let map: HashMap<String, Var> = self.vars.iter().cloned().collect();
        Weights::from_vars(&self.config, &map, true)
    }

    /// Tracked weights (training path).
    pub(crate) fn training_weights(&self) -> &Weights {
        &self.weights
    }

    /// The parameters' entries of `grads`. candle's backward also leaves a gradient for every
    /// constant operand it met (full-size for a broadcast one), which nothing reads.
    pub(crate) fn parameter_grads(&self, mut grads: GradStore) -> GradStore {
        let mut kept = GradStore::default();
        for (_, var) in &self.vars {
            if let Some(g) = grads.remove(var.as_tensor()) {
                kept.insert(var.as_tensor(), g);
            }
        }
        kept
    }

    /// Whether `name` is the (possibly tied) output projection.
    pub fn is_lm_head_param(&self, name: &str) -> bool {
        name == LM_HEAD || (self.config.tie_word_embeddings && name == EMBED)
    }
}

/// Rejects dtypes candle 0.11.1 cannot multiply on this device.
fn check_dtype(opts: &LoadOptions) -> Result<()> {
    match (opts.dtype, &opts.device) {
        (DType::F32 | DType::F64 | DType::F16, _) => Ok(()),
        (DType::BF16, d) if !d.is_cpu() => Ok(()),
        (DType::BF16, _) => Err(ModelError::InvalidInput(
            "bf16 matmul is not supported on the CPU by candle 0.11.1; use f32".into(),
        )),
        (other, _) => Err(ModelError::InvalidInput(format!(
            "unsupported model dtype {other:?}"
        ))),
    }
}
