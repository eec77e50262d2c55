//! The forward pass: [`Forward`], the one place that chooses the building blocks (candle's fused
//! kernels for inference, our fused CPU kernels with a backward for training, compositions of
//! basic ops elsewhere) and the products (packed, decoding, bf16 or candle's), and the model's
//! trunk, layer and heads built from it.

use candle_core::{DType, Tensor};

use hicra_kernels::decode_matmul::{MAX_DECODE_ROWS, decode_linear, decode_matmul};
use hicra_kernels::ops::{linear, rms_norm, rope, softmax_last};
use hicra_kernels::packed::{PackedMatrix, packed_linear};
use hicra_kernels::{attention, fused};

use crate::batch::TokenBatch;
use crate::error::{ModelError, Result};
use crate::generate::decode_weights::{DecodeWeights, PackedLayer};
use crate::model::Model;
use crate::model::kv_cache::KvCache;
use crate::model::weights::{LayerWeights, Linear, Weights};

/// What a layer's backward pass reads, recorded by its forward pass ([`Model::layer`]).
pub(crate) struct Activations {
    /// The layer's input (B·T, D).
    pub x: Tensor,
    /// The input after the input norm.
    pub xn1: Tensor,
    /// Query and key projections (B, T, heads, hd) before their norms, where the model has them.
    pub q_lin: Option<Tensor>,
    pub k_lin: Option<Tensor>,
    /// Rotated, scaled queries grouped by KV head (B, KV, rep·T, hd).
    pub qg: Tensor,
    /// Rotated keys and the values (B, KV, T, hd).
    pub k: Tensor,
    pub v: Tensor,
    /// Attention probabilities (B, KV, rep·T, T).
    pub probs: Tensor,
    /// Attention output before the output projection (B·T, H·hd).
    pub ctx: Tensor,
    /// The residual stream after attention, and it normed.
    pub x2: Tensor,
    pub xn2: Tensor,
    /// The MLP's gate and up projections and the SwiGLU of them.
    pub gate: Tensor,
    pub up: Tensor,
    pub act: Tensor,
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
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kernels {
    /// candle's fused kernels: no backward, so only for detached inference weights.
    Candle,
    /// Our fused CPU kernels with a backward (f32/f64 on the CPU).
    Fused,
    /// Compositions of basic candle ops (differentiable anywhere).
    Composed,
}

impl Kernels {
    /// The building blocks for these weights: candle's fused kernels for inference weights
    /// (they cover f32/f16/bf16; candle's RMSNorm has no f64), ours for training weights where
    /// they apply ([`fused_cpu`]), compositions of basic ops elsewhere.
    pub(crate) fn for_weights(w: &Weights) -> Kernels {
        if w.inference && w.embed.dtype() != DType::F64 {
            Kernels::Candle
        } else if fused_cpu(w) {
            Kernels::Fused
        } else {
            Kernels::Composed
        }
    }
}

/// Whether our fused CPU kernels take tensors of these weights' dtype and device (f32/f64 on
/// the CPU), for training and for scoring alike.
pub(crate) fn fused_cpu(w: &Weights) -> bool {
    fused::supported(&w.embed)
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
    /// Projections in bf16 with f32 accumulation (`hicra_kernels::bf16_matmul`).
    pub(crate) bf16_products: bool,
    /// Our fused CPU kernels take these tensors (see [`fused_cpu`]); inference on the CPU uses
    /// their SwiGLU and masked softmax too.
    fused_cpu: bool,
    /// Decoding steps attend in one pass over the cache (f32 inference on the CPU).
    decode_attention: bool,
}

impl<'a> Forward<'a> {
    pub(crate) fn new(
        w: &Weights,
        eps: f64,
        cos: &'a Tensor,
        sin: &'a Tensor,
        bf16_products: bool,
    ) -> Result<Forward<'a>> {
        let kernels = Kernels::for_weights(w);
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
            fused_cpu: fused_cpu(w),
            decode_attention: w.inference && attention::supported(&w.embed),
        })
    }

    pub(crate) fn norm(&self, x: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
        match self.kernels {
            Kernels::Candle => candle_nn::ops::rms_norm(&x.contiguous()?, weight, self.eps as f32),
            Kernels::Fused => fused::rms_norm(x, weight, self.eps),
            Kernels::Composed => rms_norm(x, weight, self.eps),
        }
    }

    /// `x @ l.wᵀ + l.b`, through the packed weight when there is one (inference only).
    fn linear(
        &self,
        x: &Tensor,
        l: &Linear,
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
                let y = hicra_kernels::bf16_matmul::linear(x, &l.w)?;
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
            (Kernels::Fused, Some((cos, sin))) => {
                fused::rope_bthd(x, cos, sin)?.transpose(1, 2)?.contiguous()
            }
            _ => rope(&x.transpose(1, 2)?, self.cos, self.sin),
        }
    }

    /// `silu(gate) ⊙ up`.
    fn swiglu(&self, gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
        // Inference on the CPU takes the fused kernel too: candle splits large elementwise ops
        // over its own thread pool, which contends with the decoding row groups.
        match self.kernels {
            Kernels::Fused => fused::swiglu(gate, up),
            Kernels::Candle if self.fused_cpu => fused::swiglu(gate, up),
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
            Kernels::Candle if !self.fused_cpu => {
                candle_nn::ops::softmax_last_dim(&by_head(scores)?)?.reshape(grouped)
            }
            Kernels::Candle | Kernels::Fused => fused::masked_softmax(scores, mask),
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

/// The large negative added to masked attention scores (finite, so no NaN appears).
fn mask_value(dtype: DType) -> f32 {
    match dtype {
        DType::F16 | DType::BF16 => -6.0e4,
        _ => -1.0e9,
    }
}

impl Model {
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
    /// (full-batch passes, no cache), also the activations the hand-written backward reads.
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
        let ctx = if f.decode_attention && rep * t <= MAX_DECODE_ROWS {
            // Decoding steps: one pass over the cache per (sequence, KV head).
            attention::attend(&qg, &k_all, &v_all, mask)?
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
            return Ok(hicra_kernels::bf16_matmul::linear(hidden, &w.lm_head)?);
        }
        self.lm_head(w, hidden)
    }
}
