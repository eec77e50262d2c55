//! `Model`: the decoder-only transformer (Llama/Qwen2/Qwen3) with trainable `Var` weights, its
//! trunk (shared by the training and generation paths) and the full-logits forward pass.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};

use crate::batch::TokenBatch;
use crate::config::{ModelConfig, rope_inv_freq};
use crate::decode_matmul::{MAX_DECODE_ROWS, decode_linear, decode_matmul};
use crate::decode_weights::{DecodeWeights, PackedLayer};
use crate::error::{ModelError, Result};
use crate::layer_backward::Activations;
use crate::loader::LoadOptions;
use crate::ops::{linear, rms_norm, rope, softmax_last};
use crate::packed::{DecodePrecision, PackedMatrix, packed_linear};
use crate::weights::{EMBED, LM_HEAD, LayerWeights, Weights, expected_tensors};

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
    decode_precision: DecodePrecision,
    /// Whether the training backward recomputes each layer instead of keeping its activations.
    activation_checkpointing: bool,
    /// The precision of the projections in full-batch passes (training, scoring).
    matmul_precision: DecodePrecision,
}

/// Preallocated key/value cache: per layer (B, KV, capacity, head_dim).
pub(crate) struct KvCache {
    pub k: Vec<Tensor>,
    pub v: Vec<Tensor>,
    /// Number of filled positions.
    pub len: usize,
}

impl KvCache {
    /// Zero-filled cache for `batch` rows and `capacity` positions.
    pub fn new(
        config: &ModelConfig,
        batch: usize,
        capacity: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<KvCache> {
        let shape = (batch, config.num_key_value_heads, capacity, config.head_dim);
        let mut k = Vec::with_capacity(config.num_hidden_layers);
        let mut v = Vec::with_capacity(config.num_hidden_layers);
        for _ in 0..config.num_hidden_layers {
            k.push(Tensor::zeros(shape, dtype, device)?);
            v.push(Tensor::zeros(shape, dtype, device)?);
        }
        Ok(KvCache { k, v, len: 0 })
    }
}

/// The large negative added to masked attention scores (finite, so no NaN appears).
fn mask_value(dtype: DType) -> f32 {
    match dtype {
        DType::F16 | DType::BF16 => -6.0e4,
        _ => -1.0e9,
    }
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
        crate::device::ensure_fits(
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
            decode_precision: DecodePrecision::F32,
            activation_checkpointing: false,
            matmul_precision: DecodePrecision::F32,
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
    pub fn with_decode_precision(mut self, precision: DecodePrecision) -> Model {
        self.decode_precision = precision;
        self
    }

    /// The precision generation is asked to run in (see [`Model::with_decode_precision`]).
    pub fn decode_precision(&self) -> DecodePrecision {
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
    /// on AMX or AVX-512 BF16 ([`crate::bf16_matmul`]), with the f32 weights as master copy, as
    /// autocast does. f32 models on CPUs with AVX-512 BF16 only; elsewhere the products stay
    /// f32. Attention products, norms and the softmax stay f32, and generation keeps its own
    /// precision.
    pub fn with_matmul_precision(mut self, precision: DecodePrecision) -> Model {
        self.matmul_precision = precision;
        self
    }

    /// The precision asked for the full-batch products (see [`Model::with_matmul_precision`]).
    pub fn matmul_precision(&self) -> DecodePrecision {
        self.matmul_precision
    }

    /// Whether full-batch passes run their products in bf16 here: asked for, an f32 CPU
    /// model, and the instructions present.
    pub(crate) fn bf16_products(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self.matmul_precision == DecodePrecision::Bf16
                && self.dtype == DType::F32
                && self.device.is_cpu()
                && crate::bf16_matmul::available()
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

    /// Logits for every position, (B, T, V), differentiable w.r.t. the parameters. Holds the full
    /// logits, so use it for small inputs; training uses `backward_token_loss`.
    pub fn forward_logits(&self, batch: &TokenBatch) -> Result<Tensor> {
        let (b, t) = batch.input_ids.dims2()?;
        let hidden = self.batch_hidden(self.training_weights(), batch)?;
        let logits = linear(
            &hidden.reshape((b * t, self.config.hidden_size))?,
            &self.weights.lm_head,
            None,
        )?;
        Ok(logits.reshape((b, t, self.config.vocab_size))?)
    }

    /// Final normed hidden states (B, T, D) of a padded batch (no cache).
    pub(crate) fn batch_hidden(&self, w: &Weights, batch: &TokenBatch) -> Result<Tensor> {
        let (cos, sin, mask) = self.batch_tables(batch)?;
        self.trunk(w, None, &batch.input_ids, &cos, &sin, &mask, None)
    }

    /// The RoPE tables and attention mask of a padded batch (no cache).
    fn batch_tables(&self, batch: &TokenBatch) -> Result<(Tensor, Tensor, Tensor)> {
        let (b, t) = batch.input_ids.dims2()?;
        if b == 0 || t == 0 {
            return Err(ModelError::InvalidInput("empty token batch".into()));
        }
        let mask_rows = batch.mask_rows()?;
        let positions: Vec<Vec<u32>> = mask_rows.iter().map(|r| positions_from_mask(r)).collect();
        let max_pos = positions.iter().flatten().copied().max().unwrap_or(0) as usize;
        if max_pos >= self.config.max_position_embeddings {
            return Err(ModelError::InvalidInput(format!(
                "sequence of {} positions exceeds the context of {} tokens",
                max_pos + 1,
                self.config.max_position_embeddings
            )));
        }
        let (cos, sin) = self.rope_tables(&positions)?;
        let mask = self.attention_mask(&mask_rows, 0, t)?;
        Ok((cos, sin, mask))
    }

    /// The ids, RoPE tables and mask of a padded batch for the training trunk.
    pub(crate) fn trunk_inputs(&self, batch: &TokenBatch) -> Result<TrunkInputs> {
        let (cos, sin, mask) = self.batch_tables(batch)?;
        Ok(TrunkInputs {
            ids: batch.input_ids.flatten_all()?,
            cos,
            sin,
            mask,
            dims: batch.input_ids.dims2()?,
        })
    }

    /// The training trunk with activation checkpointing: runs the layers keeping only their
    /// (detached) inputs; the returned hidden states are tracked from the last layer's output
    /// and the final norm only. [`Model::checkpointed_backward`] completes the backward pass.
    pub(crate) fn checkpointed_hidden(
        &self,
        w: &Weights,
        batch: &TokenBatch,
    ) -> Result<CheckpointedTrunk> {
        let inputs = self.trunk_inputs(batch)?;
        let (b, t) = inputs.dims;
        let mut layer_inputs = Vec::with_capacity(w.layers.len());
        let (top, hidden) = {
            let f = Forward::new(
                w,
                self.config.rms_norm_eps,
                &inputs.cos,
                &inputs.sin,
                self.bf16_products(),
            )?;
            let mut x = w.embed.index_select(&inputs.ids, 0)?.detach();
            for (li, lw) in w.layers.iter().enumerate() {
                // Detaching drops the layer's graph, and with it its activations.
                let (y, _) = self.layer(&f, lw, None, li, &x, (b, t), &inputs.mask, None, false)?;
                let y = y.detach();
                layer_inputs.push(std::mem::replace(&mut x, y));
            }
            let top = Var::from_tensor(&x)?;
            let hidden = f.norm(top.as_tensor(), &w.norm)?;
            (top, hidden.reshape((b, t, self.config.hidden_size))?)
        };
        Ok(CheckpointedTrunk {
            layer_inputs,
            top,
            hidden,
            inputs,
        })
    }

    /// Gradients of `Σ hidden ⊙ grad_hidden` for every parameter, recomputing one layer at a
    /// time from its saved input, last layer first.
    pub(crate) fn checkpointed_backward(
        &self,
        w: &Weights,
        trunk: CheckpointedTrunk,
        grad_hidden: &Tensor,
    ) -> Result<GradStore> {
        let lost = |what: &str| ModelError::InvalidInput(format!("checkpointed backward: {what}"));
        let mut grads = (&trunk.hidden * grad_hidden)?.sum_all()?.backward()?;
        let mut g = grads
            .remove(trunk.top.as_tensor())
            .ok_or_else(|| lost("no gradient reached the last layer"))?;
        let f = Forward::new(
            w,
            self.config.rms_norm_eps,
            &trunk.inputs.cos,
            &trunk.inputs.sin,
            self.bf16_products(),
        )?;
        for (li, lw) in w.layers.iter().enumerate().rev() {
            let input = Var::from_tensor(&trunk.layer_inputs[li])?;
            let (y, _) = self.layer(
                &f,
                lw,
                None,
                li,
                input.as_tensor(),
                trunk.inputs.dims,
                &trunk.inputs.mask,
                None,
                false,
            )?;
            let mut layer_grads = (y * &g)?.sum_all()?.backward()?;
            g = layer_grads
                .remove(input.as_tensor())
                .ok_or_else(|| lost("no gradient reached a layer's input"))?;
            grads.extend(self.parameter_grads(layer_grads))?;
        }
        let embedded = w.embed.index_select(&trunk.inputs.ids, 0)?;
        grads.extend((embedded * g)?.sum_all()?.backward()?)?;
        Ok(self.parameter_grads(grads))
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

    /// cos/sin tables (B, 1, T, hd) for per-row positions.
    pub(crate) fn rope_tables(&self, positions: &[Vec<u32>]) -> Result<(Tensor, Tensor)> {
        let b = positions.len();
        let t = positions.first().map_or(0, Vec::len);
        let hd = self.config.head_dim;
        let half = hd / 2;
        let mut cos = vec![0f32; b * t * hd];
        let mut sin = vec![0f32; b * t * hd];
        for (r, row) in positions.iter().enumerate() {
            for (i, &p) in row.iter().enumerate() {
                let base = (r * t + i) * hd;
                for (j, f) in self.inv_freq.iter().enumerate() {
                    let a = p as f64 * f;
                    let (s, c) = a.sin_cos();
                    cos[base + j] = c as f32;
                    cos[base + j + half] = c as f32;
                    sin[base + j] = s as f32;
                    sin[base + j + half] = s as f32;
                }
            }
        }
        let cos = Tensor::from_vec(cos, (b, 1, t, hd), &self.device)?.to_dtype(self.dtype)?;
        let sin = Tensor::from_vec(sin, (b, 1, t, hd), &self.device)?.to_dtype(self.dtype)?;
        Ok((cos, sin))
    }

    /// Additive attention mask (B, 1, T, S) for `t` queries at absolute offsets
    /// `q_offset..q_offset + t` over `key_valid[row].len()` keys: causal, padding keys hidden (a
    /// query always sees itself, so padding rows stay finite).
    pub(crate) fn attention_mask(
        &self,
        key_valid: &[Vec<bool>],
        q_offset: usize,
        t: usize,
    ) -> Result<Tensor> {
        let b = key_valid.len();
        let s = key_valid.first().map_or(0, Vec::len);
        let neg = mask_value(self.dtype);
        let mut m = vec![0f32; b * t * s];
        for (r, keys) in key_valid.iter().enumerate() {
            for i in 0..t {
                let qi = q_offset + i;
                let row = &mut m[(r * t + i) * s..(r * t + i + 1) * s];
                for (j, slot) in row.iter_mut().enumerate() {
                    let visible = j == qi || (j < qi && keys[j]);
                    if !visible {
                        *slot = neg;
                    }
                }
            }
        }
        Ok(Tensor::from_vec(m, (b, 1, t, s), &self.device)?.to_dtype(self.dtype)?)
    }

    /// Runs embedding + decoder layers + final norm. `ids`: (B, T) u32. With a cache, new keys
    /// and values are written at `cache.len` and attention covers the filled cache. `packed`
    /// (inference only) holds the projections packed for batched decoding.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn trunk(
        &self,
        w: &Weights,
        packed: Option<&DecodeWeights>,
        ids: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let cfg = &self.config;
        let (b, t) = ids.dims2()?;
        let d = cfg.hidden_size;
        // Generation (with a cache) keeps its own precision.
        let bf16 = cache.is_none() && self.bf16_products();
        let f = Forward::new(w, cfg.rms_norm_eps, cos, sin, bf16)?;
        let mut x = w.embed.index_select(&ids.flatten_all()?, 0)?; // (B*T, D)
        for (li, lw) in w.layers.iter().enumerate() {
            let pl = packed.map(|p| &p.layers[li]);
            (x, _) = self.layer(
                &f,
                lw,
                pl,
                li,
                &x,
                (b, t),
                mask,
                cache.as_deref_mut(),
                false,
            )?;
        }
        if let Some(c) = cache {
            c.len += t;
        }
        let x = f.norm(&x, &w.norm)?;
        Ok(x.reshape((b, t, d))?)
    }

    /// One decoder layer on `x` (B*T, D): attention (writing this step's keys and values into
    /// `cache` at `cache.len`, if given) and the MLP, each with its residual. With `record`
    /// (full-batch passes, no cache), also the activations [`crate::layer_backward`] reads.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn layer(
        &self,
        f: &Forward,
        lw: &LayerWeights,
        pl: Option<&PackedLayer>,
        li: usize,
        x: &Tensor,
        (b, t): (usize, usize),
        mask: &Tensor,
        cache: Option<&mut KvCache>,
        record: bool,
    ) -> Result<(Tensor, Option<Activations>)> {
        let cfg = &self.config;
        let (nh, nkv, hd) = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        );
        let rep = nh / nkv;
        let scale = 1.0 / (hd as f64).sqrt();
        let xn = f.norm(x, &lw.input_norm)?;
        let q_lin = f
            .linear(&xn, &lw.q, pl.map(|p| &p.q))?
            .reshape((b, t, nh, hd))?;
        let k_lin = f
            .linear(&xn, &lw.k, pl.map(|p| &p.k))?
            .reshape((b, t, nkv, hd))?;
        let v = f
            .linear(&xn, &lw.v, pl.map(|p| &p.v))?
            .reshape((b, t, nkv, hd))?;
        let (q, k) = match (&lw.q_norm, &lw.k_norm) {
            (Some(qn), Some(kn)) => (f.norm(&q_lin, qn)?, f.norm(&k_lin, kn)?),
            _ => (q_lin.clone(), k_lin.clone()),
        };
        let q = f.rope(&q)?.affine(scale, 0.0)?; // (B, H, T, hd)
        let k = f.rope(&k)?; // (B, KV, T, hd)
        let v = v.transpose(1, 2)?.contiguous()?;
        let (k_all, v_all) = match cache {
            Some(c) => {
                c.k[li].slice_set(&k.contiguous()?, 2, c.len)?;
                c.v[li].slice_set(&v, 2, c.len)?;
                let s = c.len + t;
                (c.k[li].narrow(2, 0, s)?, c.v[li].narrow(2, 0, s)?)
            }
            None => (k, v),
        };
        let s = k_all.dim(2)?;
        // GQA without copying K/V: fold the query heads of a group into the row dimension.
        let qg = q.contiguous()?.reshape((b, nkv, rep * t, hd))?;
        let mut probs_kept = None;
        let ctx =
            if f.inference && rep * t <= MAX_DECODE_ROWS && crate::decode_attention::supported(&qg)
            {
                // Decoding steps: one pass over the cache per (sequence, KV head).
                crate::decode_attention::attend(&qg, &k_all, &v_all, mask)?
            } else {
                let scores = f.batched_matmul(&qg, &k_all.t()?)?; // (B, KV, rep*T, S)
                let probs = f.masked_softmax(&scores, mask, (b, nh, t, s))?;
                let ctx = f.batched_matmul(&probs, &v_all)?; // (B, KV, rep*T, hd)
                if record {
                    probs_kept = Some(probs);
                }
                ctx
            };
        let ctx = ctx
            .reshape((b, nh, t, hd))?
            .transpose(1, 2)?
            .reshape((b * t, nh * hd))?;
        let attn = f.linear(&ctx, &lw.o, pl.map(|p| &p.o))?;
        let x2 = (x + attn)?;
        let xn2 = f.norm(&x2, &lw.post_norm)?;
        let gate = f.linear(&xn2, &lw.gate, pl.map(|p| &p.gate))?;
        let up = f.linear(&xn2, &lw.up, pl.map(|p| &p.up))?;
        let act = f.swiglu(&gate, &up)?;
        let mlp = f.linear(&act, &lw.down, pl.map(|p| &p.down))?;
        let y = (&x2 + mlp)?;
        let kept = match (record, probs_kept) {
            (false, _) => None,
            (true, Some(probs)) => {
                let normed = lw.q_norm.is_some();
                Some(Activations {
                    x: x.clone(),
                    xn1: xn,
                    q_lin: normed.then_some(q_lin),
                    k_lin: normed.then_some(k_lin),
                    qg,
                    k: k_all,
                    v: v_all,
                    probs,
                    ctx,
                    x2,
                    xn2,
                    gate,
                    up,
                    act,
                })
            }
            (true, None) => {
                return Err(ModelError::InvalidInput(
                    "a layer's activations are recorded for full-batch passes only".into(),
                ));
            }
        };
        Ok((y, kept))
    }

    /// Logits (N, V) of hidden rows (N, D) with the given weights.
    pub(crate) fn lm_head(&self, w: &Weights, hidden: &Tensor) -> Result<Tensor> {
        Ok(project(w.inference, hidden, &w.lm_head, None)?)
    }

    /// Logits (N, V) of a full-batch pass (scoring, training): in the products' precision.
    pub(crate) fn score_head(&self, w: &Weights, hidden: &Tensor) -> Result<Tensor> {
        #[cfg(target_arch = "x86_64")]
        if self.bf16_products() {
            return Ok(crate::bf16_matmul::linear(hidden, &w.lm_head)?);
        }
        self.lm_head(w, hidden)
    }

    /// Whether `name` is the (possibly tied) output projection.
    pub fn is_lm_head_param(&self, name: &str) -> bool {
        name == LM_HEAD || (self.config.tie_word_embeddings && name == EMBED)
    }
}

/// What [`Model::checkpointed_hidden`] keeps for the backward pass.
pub(crate) struct CheckpointedTrunk {
    /// Detached inputs of the layers, the embeddings first.
    layer_inputs: Vec<Tensor>,
    /// The last layer's output, as a leaf of `hidden`'s graph.
    top: Var,
    /// Final normed hidden states (B, T, D).
    pub hidden: Tensor,
    inputs: TrunkInputs,
}

/// A padded batch as the training trunk's passes read it.
pub(crate) struct TrunkInputs {
    /// The flattened input ids (B·T).
    pub ids: Tensor,
    /// RoPE tables (B, 1, T, hd).
    pub cos: Tensor,
    pub sin: Tensor,
    /// Additive attention mask (B, 1, T, T).
    pub mask: Tensor,
    /// (B, T).
    pub dims: (usize, usize),
}

/// Which implementation of the non-matmul building blocks a forward pass uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernels {
    /// candle's fused kernels: no backward, so only for detached inference weights.
    Candle,
    /// Our fused CPU kernels with a backward (f32/f64 on the CPU).
    Fused,
    /// Compositions of basic candle ops (differentiable anywhere).
    Composed,
}

/// The forward pass's building blocks for one set of weights: candle's fused kernels and the
/// decoding matmuls for detached inference weights, where no backward is needed; for tracked
/// (training) weights our fused kernels with a backward where they apply, else compositions of
/// basic ops.
pub(crate) struct Forward<'a> {
    inference: bool,
    pub(crate) kernels: Kernels,
    pub(crate) eps: f64,
    cos: &'a Tensor,
    sin: &'a Tensor,
    /// The first halves of the cos/sin tables, (B, T, hd/2), for the fused RoPE kernels.
    pub(crate) half_tables: Option<(Tensor, Tensor)>,
    /// Projections in bf16 with f32 accumulation ([`crate::bf16_matmul`]).
    pub(crate) bf16_products: bool,
}

impl<'a> Forward<'a> {
    pub(crate) fn new(
        w: &Weights,
        eps: f64,
        cos: &'a Tensor,
        sin: &'a Tensor,
        bf16_products: bool,
    ) -> Result<Forward<'a>> {
        let dtype = w.embed.dtype();
        // candle's fused kernels cover f32/f16/bf16 (its RMSNorm has no f64).
        let kernels = if w.inference && dtype != DType::F64 {
            Kernels::Candle
        } else if crate::fused::supported(&w.embed) {
            Kernels::Fused
        } else {
            Kernels::Composed
        };
        let half_tables = if kernels == Kernels::Composed {
            None
        } else {
            let half = cos.dim(3)? / 2;
            let cut = |t: &Tensor| t.squeeze(1)?.narrow(2, 0, half)?.contiguous();
            Some((cut(cos)?, cut(sin)?))
        };
        Ok(Forward {
            inference: w.inference,
            kernels,
            eps,
            cos,
            sin,
            half_tables,
            bf16_products,
        })
    }

    pub(crate) fn norm(&self, x: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
        match self.kernels {
            Kernels::Candle => candle_nn::ops::rms_norm(&x.contiguous()?, weight, self.eps as f32),
            Kernels::Fused => crate::fused::rms_norm(x, weight, self.eps),
            Kernels::Composed => rms_norm(x, weight, self.eps),
        }
    }

    /// `x @ l.wᵀ + l.b`, through the packed weight when there is one (inference only).
    fn linear(
        &self,
        x: &Tensor,
        l: &crate::weights::Linear,
        packed: Option<&PackedMatrix>,
    ) -> candle_core::Result<Tensor> {
        match packed {
            Some(p) if self.inference => {
                let y = packed_linear(x, p)?;
                match &l.b {
                    Some(b) => y.broadcast_add(b),
                    None => Ok(y),
                }
            }
            #[cfg(target_arch = "x86_64")]
            _ if self.bf16_products => {
                let y = crate::bf16_matmul::linear(x, &l.w)?;
                match &l.b {
                    Some(b) => y.broadcast_add(b),
                    None => Ok(y),
                }
            }
            _ => project(self.inference, x, &l.w, l.b.as_ref()),
        }
    }

    /// Rotary embedding of `x` (B, T, H, hd); returns (B, H, T, hd).
    fn rope(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match (self.kernels, &self.half_tables) {
            (Kernels::Candle, Some((cos, sin))) => {
                candle_nn::rotary_emb::rope(&x.transpose(1, 2)?.contiguous()?, cos, sin)
            }
            (Kernels::Fused, Some((cos, sin))) => crate::fused::rope_bthd(x, cos, sin)?
                .transpose(1, 2)?
                .contiguous(),
            _ => rope(&x.transpose(1, 2)?, self.cos, self.sin),
        }
    }

    /// `silu(gate) ⊙ up`.
    fn swiglu(&self, gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
        // Inference on the CPU takes the fused kernel too: candle splits large elementwise ops
        // over its own thread pool, which contends with the decoding row groups.
        match self.kernels {
            Kernels::Fused => crate::fused::swiglu(gate, up),
            Kernels::Candle if crate::fused::supported(gate) => crate::fused::swiglu(gate, up),
            _ => gate.silu()? * up,
        }
    }

    /// Softmax of grouped attention scores (B, KV, rep·T, S) plus the additive mask
    /// (B, 1, T, S), in the scores' layout; `heads` = (B, H, T, S) for the paths that
    /// broadcast the mask.
    fn masked_softmax(
        &self,
        scores: &Tensor,
        mask: &Tensor,
        heads: (usize, usize, usize, usize),
    ) -> candle_core::Result<Tensor> {
        let grouped = scores.shape().clone();
        let by_head = |t: &Tensor| t.reshape(heads)?.broadcast_add(mask);
        match self.kernels {
            Kernels::Candle if !crate::fused::supported(scores) => {
                candle_nn::ops::softmax_last_dim(&by_head(scores)?)?.reshape(grouped)
            }
            Kernels::Candle | Kernels::Fused => crate::fused::masked_softmax(scores, mask),
            Kernels::Composed => softmax_last(&by_head(scores)?)?.reshape(grouped),
        }
    }

    /// (B, KV, M, K) @ (B, KV, K, N).
    fn batched_matmul(&self, a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
        if self.inference && a.dim(2)? <= MAX_DECODE_ROWS {
            decode_matmul(a, b)
        } else {
            a.matmul(b)
        }
    }
}

/// `x @ w.T + b` (`x`: (N, in), `w`: (out, in)); few inference rows take the decoding matmul.
fn project(
    inference: bool,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    if !(inference && x.dim(0)? <= MAX_DECODE_ROWS) {
        return linear(x, w, b);
    }
    let y = decode_linear(x, w)?;
    match b {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

/// Positions from an attention mask row: real tokens count 0, 1, 2, ...; padding gets 0 (or
/// the last real position, for right padding).
pub(crate) fn positions_from_mask(mask: &[bool]) -> Vec<u32> {
    let mut next = 0u32;
    mask.iter()
        .map(|&m| {
            if m {
                next += 1;
                next - 1
            } else {
                next.saturating_sub(1)
            }
        })
        .collect()
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
