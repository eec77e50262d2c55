//! The training path: teacher-forced log-probabilities and entropies of target tokens, computed
//! chunk by chunk over positions so full-vocabulary logits are never held for the whole batch,
//! without gradients (`score_tokens`) or with a chunked backward pass (`backward_token_loss`).
//! On the CPU (f32/f64) that backward pass runs by hand, the head's chunks here and the trunk
//! in `model::backward`; elsewhere through candle's autograd.

use candle_core::backprop::GradStore;
use candle_core::{D, DType, Tensor, Var};

use crate::batch::TokenBatch;
use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::model::backward::RecordedTrunk;
use crate::model::checkpointed::CheckpointedTrunk;
use crate::model::forward::fused_cpu;
use crate::model::weights::Weights;
use hicra_kernels::ops::log_softmax_last;

/// How scoring is chunked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreOptions {
    /// Positions per lm_head + log-softmax chunk (memory ≈ B × chunk × vocab floats).
    pub chunk_positions: usize,
    /// Whether to compute token entropies (zeros otherwise).
    pub with_entropy: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            chunk_positions: 64,
            with_entropy: true,
        }
    }
}

/// Per-position scores, `[B][T]`: position t holds log p(ids[t] | ids[<t]) and the entropy of
/// that predictive distribution; position 0, padding and a row's first real token give 0.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenScores {
    /// Log-probabilities of the given tokens.
    pub logprobs: Vec<Vec<f32>>,
    /// Entropies (nats) of the predictive distributions.
    pub entropy: Vec<Vec<f32>>,
}

/// One chunk of target positions handed to a loss function.
#[derive(Debug, Clone)]
pub struct TokenChunk {
    /// First target position of the chunk.
    pub start: usize,
    /// Number of positions.
    pub len: usize,
    /// (B, len) log-probabilities, differentiable (0 where not scored); f32 (f64 for an f64 model).
    pub logprobs: Tensor,
    /// (B, len) entropies, differentiable (0 where not scored or not requested); dtype as `logprobs`.
    pub entropy: Tensor,
}

/// Gradients of a chunked backward pass.
pub struct BackwardOutput {
    /// Gradients keyed by the parameter Vars (see [`Model::parameters`]).
    pub grads: GradStore,
    /// The total loss (sum of the chunk contributions).
    pub loss: f64,
}

/// The training trunk's forward pass, as its backward pass will need it.
enum Trunk {
    /// Recorded for the hand-written backward ([`crate::layer_backward`]).
    Recorded(RecordedTrunk),
    /// candle's graph of the last layer, the layers' inputs kept (activation checkpointing).
    Checkpointed(CheckpointedTrunk),
    /// candle's graph of the whole trunk.
    Graph(Tensor),
}

impl Trunk {
    /// The final normed hidden states (B, T, D).
    fn hidden(&self) -> &Tensor {
        match self {
            Trunk::Recorded(r) => &r.hidden,
            Trunk::Checkpointed(c) => &c.hidden,
            Trunk::Graph(h) => h,
        }
    }
}

/// Which target positions are scored: t > 0 with tokens t and t-1 both real.
fn scored_positions(mask_rows: &[Vec<bool>]) -> Vec<Vec<bool>> {
    mask_rows
        .iter()
        .map(|r| (0..r.len()).map(|t| t > 0 && r[t] && r[t - 1]).collect())
        .collect()
}

/// Reads the chunk losses in one transfer and sums them in chunk order; a NaN or infinite
/// chunk is an error naming its positions.
fn sum_finite_losses(chunk_losses: &[(Tensor, usize, usize)]) -> Result<f64> {
    if chunk_losses.is_empty() {
        return Ok(0.0);
    }
    let scalars: Vec<Tensor> = chunk_losses.iter().map(|(l, _, _)| l.clone()).collect();
    let values = Tensor::stack(&scalars, 0)?.to_vec1::<f64>()?;
    let mut total = 0f64;
    for (value, (_, start, len)) in values.into_iter().zip(chunk_losses) {
        if !value.is_finite() {
            return Err(ModelError::NonFinite {
                what: format!("the loss of positions {start}..{}", start + len),
                value,
            });
        }
        total += value;
    }
    Ok(total)
}

impl Model {
    /// Log-probs and entropies of `batch`'s tokens, without gradients, chunked over positions.
    pub fn score_tokens(&self, batch: &TokenBatch, opts: &ScoreOptions) -> Result<TokenScores> {
        let w = self.inference_weights();
        let (b, t) = batch.dims()?;
        let hidden = self.batch_hidden(&w, batch)?;
        let scored = scored_positions(&batch.mask_rows()?);
        let mut logprobs = vec![vec![0f32; t]; b];
        let mut entropy = vec![vec![0f32; t]; b];
        for (start, len) in chunks(t, opts.chunk_positions)? {
            let chunk =
                self.score_chunk(&w, &hidden, &Chunk::new(batch, &scored, start, len, opts))?;
            let lp = chunk.logprobs.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            let en = chunk.entropy.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            for r in 0..b {
                logprobs[r][start..start + len].copy_from_slice(&lp[r]);
                entropy[r][start..start + len].copy_from_slice(&en[r]);
            }
        }
        Ok(TokenScores { logprobs, entropy })
    }

    /// Runs the trunk once with gradients, then lm_head + log-softmax chunk by chunk; `loss_fn`
    /// returns each chunk's scalar contribution to the total loss. Returns the gradients of the
    /// total loss for every parameter Var and the loss value.
    pub fn backward_token_loss(
        &self,
        batch: &TokenBatch,
        opts: &ScoreOptions,
        loss_fn: &mut dyn FnMut(&TokenChunk) -> candle_core::Result<Tensor>,
    ) -> Result<BackwardOutput> {
        let trunk = self.training_trunk(batch)?;
        let head = self.head_backward(&trunk, batch, opts, loss_fn)?;
        let mut grads = head.grads;
        if let Some(gh) = head.grad_hidden {
            let trunk_grads = self.trunk_grads(trunk, &gh)?;
            match grads.as_mut() {
                Some(all) => all.extend(trunk_grads)?,
                None => grads = Some(trunk_grads),
            }
        }
        let grads = match grads {
            Some(g) => g,
            None => Tensor::zeros((), DType::F32, self.device())?.backward()?,
        };
        Ok(BackwardOutput {
            grads,
            loss: head.loss,
        })
    }

    /// The training trunk's forward pass, kept the way its backward pass reads it.
    fn training_trunk(&self, batch: &TokenBatch) -> Result<Trunk> {
        let w = self.training_weights();
        Ok(if self.hand_backward_applies(w) {
            Trunk::Recorded(self.trunk_forward(batch)?)
        } else if self.activation_checkpointing() {
            Trunk::Checkpointed(self.checkpointed_hidden(w, batch)?)
        } else {
            Trunk::Graph(self.batch_hidden(w, batch)?)
        })
    }

    /// The trunk's parameter gradients from the gradient of its hidden states.
    fn trunk_grads(&self, trunk: Trunk, grad_hidden: &Tensor) -> Result<GradStore> {
        let w = self.training_weights();
        Ok(match trunk {
            Trunk::Recorded(r) => self.trunk_backward(r, grad_hidden)?,
            Trunk::Checkpointed(c) => self.checkpointed_backward(w, c, grad_hidden)?,
            Trunk::Graph(hidden) => {
                self.parameter_grads((hidden * grad_hidden)?.sum_all()?.backward()?)
            }
        })
    }

    /// The head's part of the backward pass, chunk by chunk: each chunk's loss, its gradients
    /// for the head's parameters, and the hidden states' gradient they add up to.
    fn head_backward(
        &self,
        trunk: &Trunk,
        batch: &TokenBatch,
        opts: &ScoreOptions,
        loss_fn: &mut dyn FnMut(&TokenChunk) -> candle_core::Result<Tensor>,
    ) -> Result<HeadBackward> {
        let w = self.training_weights();
        let (_, t) = batch.dims()?;
        let path = match trunk {
            Trunk::Recorded(r) => HeadPath::ByHand(&r.weights),
            _ => HeadPath::Graph(Var::from_tensor(&trunk.hidden().detach())?),
        };
        let scored = scored_positions(&batch.mask_rows()?);
        let mut out = HeadBackward::default();
        let mut head = HeadGrads::default();
        // Chunk losses stay on the device; they are read once, after the last chunk. They are
        // kept detached: a tracked loss would hold its chunk's graph (the logits and the
        // log-softmax state, B × chunk × vocabulary each) alive until the end.
        let mut chunk_losses: Vec<(Tensor, usize, usize)> = Vec::new();
        for (start, len) in chunks(t, opts.chunk_positions)? {
            let spec = Chunk::new(batch, &scored, start, len, opts);
            let (chunk, hand) = match &path {
                HeadPath::ByHand(uw) => self.score_chunk_by_hand(uw, trunk.hidden(), &spec)?,
                HeadPath::Graph(h) => (self.score_chunk(w, h.as_tensor(), &spec)?, None),
            };
            let loss = scalar_loss(loss_fn(&chunk)?, start)?;
            chunk_losses.push((loss.detach().to_dtype(DType::F64)?, start, len));
            let mut g = loss.backward()?;
            match &path {
                // A chunk without positions to score has nothing to carry back.
                HeadPath::ByHand(uw) => {
                    if let Some(hand) = hand {
                        let first_hidden = hand.rows.first - 1;
                        let bf16 = self.bf16_products();
                        if let Some((d_hidden, d_head)) = hand.backward(&g, &uw.lm_head, bf16)? {
                            head.add(first_hidden, d_hidden, d_head)?;
                        }
                    }
                }
                HeadPath::Graph(h) => {
                    if let Some(gh) = g.remove(h.as_tensor()) {
                        add_into(&mut out.grad_hidden, gh)?;
                    }
                    out.add_grads(self.parameter_grads(g))?;
                }
            }
        }
        out.loss = sum_finite_losses(&chunk_losses)?;
        if let Some(d_head) = head.head.take() {
            out.grad_hidden = Some(head.grad_hidden(trunk.hidden().dims3()?, &d_head)?);
            let mut g = GradStore::default();
            g.insert(&w.lm_head, d_head);
            out.grads = Some(g);
        }
        Ok(out)
    }

    /// Log-probs/entropies for target positions `start..start+len` from `hidden` (B, T, D).
    fn score_chunk(&self, w: &Weights, hidden: &Tensor, c: &Chunk) -> Result<TokenChunk> {
        let Some(rows) = ChunkRows::new(hidden, c)? else {
            return self.empty_chunk(c);
        };
        let (b, n) = (rows.batch, rows.n);
        let out_dtype = self.score_dtype();
        let logits = self.score_head(w, &rows.hidden)?;
        let (lp, en) = if fused_cpu(w) {
            let scores = hicra_kernels::fused::token_logprob_entropy(&logits, &rows.targets)?;
            score_columns(&scores, b, n, out_dtype)?
        } else {
            // bf16/f16 logits (CUDA) are scored in f32, like the fused CPU kernel.
            let lsm = log_softmax_last(&logits.to_dtype(out_dtype)?)?;
            let lp = lsm
                .gather(&rows.targets.reshape((b * n, 1))?, D::Minus1)?
                .reshape((b, n))?
                .to_dtype(out_dtype)?;
            let en = if c.with_entropy {
                (lsm.exp()? * &lsm)?
                    .sum(D::Minus1)?
                    .neg()?
                    .reshape((b, n))?
                    .to_dtype(out_dtype)?
            } else {
                lp.zeros_like()?
            };
            (lp, en)
        };
        self.chunk_of(lp, en, &rows, c)
    }

    /// As [`Model::score_chunk`] for the hand-written backward pass, with the untracked
    /// weights `w` and the detached `hidden`: the chunk's scores are a leaf of the loss's graph,
    /// and [`HandChunk::backward`] carries their gradient through the head. `None` for a chunk
    /// without positions to score.
    fn score_chunk_by_hand(
        &self,
        w: &Weights,
        hidden: &Tensor,
        c: &Chunk,
    ) -> Result<(TokenChunk, Option<HandChunk>)> {
        let Some(rows) = ChunkRows::new(hidden, c)? else {
            return Ok((self.empty_chunk(c)?, None));
        };
        let logits = self.score_head(w, &rows.hidden)?;
        let (scores, logits_grad) =
            hicra_kernels::fused::token_scores_with_backward(&logits, &rows.targets)?;
        drop(logits);
        let scores = Var::from_tensor(&scores)?;
        let (lp, en) = score_columns(scores.as_tensor(), rows.batch, rows.n, self.score_dtype())?;
        let chunk = self.chunk_of(lp, en, &rows, c)?;
        let hand = HandChunk {
            scores,
            logits_grad,
            rows,
        };
        Ok((chunk, Some(hand)))
    }

    /// f32 scores, except that an f64 model keeps f64 (for gradient checks).
    fn score_dtype(&self) -> DType {
        if self.dtype() == DType::F64 {
            DType::F64
        } else {
            DType::F32
        }
    }

    /// A chunk of zeros (no position in it has a predecessor).
    fn empty_chunk(&self, c: &Chunk) -> Result<TokenChunk> {
        let (b, _) = c.batch.dims()?;
        let zeros = Tensor::zeros((b, c.len), self.score_dtype(), self.device())?;
        Ok(TokenChunk {
            start: c.start,
            len: c.len,
            logprobs: zeros.clone(),
            entropy: zeros,
        })
    }

    /// The chunk of per-row scores (B, n) of `rows`: positions not scored (and entropies not
    /// asked for) zeroed, and a zero column first where the chunk starts at position 0.
    fn chunk_of(&self, lp: Tensor, en: Tensor, rows: &ChunkRows, c: &Chunk) -> Result<TokenChunk> {
        let (b, n, first) = (rows.batch, rows.n, rows.first);
        let (out_dtype, device) = (self.score_dtype(), self.device());
        let mask: Vec<f32> = c
            .scored
            .iter()
            .flat_map(|r| {
                r[first..first + n]
                    .iter()
                    .map(|&s| if s { 1f32 } else { 0f32 })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (b, n), device)?.to_dtype(out_dtype)?;
        let mut lp = (lp * &mask)?;
        let mut en = if c.with_entropy {
            (en * mask)?
        } else {
            Tensor::zeros((b, n), out_dtype, device)?
        };
        if first > c.start {
            let zero = Tensor::zeros((b, 1), out_dtype, device)?;
            lp = Tensor::cat(&[&zero, &lp], 1)?;
            en = Tensor::cat(&[&zero, &en], 1)?;
        }
        Ok(TokenChunk {
            start: c.start,
            len: c.len,
            logprobs: lp,
            entropy: en,
        })
    }
}

/// One chunk of target positions, `start..start + len`, of a batch.
struct Chunk<'a> {
    batch: &'a TokenBatch,
    /// Which positions are scored ([`scored_positions`]).
    scored: &'a [Vec<bool>],
    start: usize,
    len: usize,
    with_entropy: bool,
}

impl<'a> Chunk<'a> {
    fn new(
        batch: &'a TokenBatch,
        scored: &'a [Vec<bool>],
        start: usize,
        len: usize,
        opts: &ScoreOptions,
    ) -> Chunk<'a> {
        Chunk {
            batch,
            scored,
            start,
            len,
            with_entropy: opts.with_entropy,
        }
    }
}

/// The hidden rows of one chunk and the targets they predict.
struct ChunkRows {
    /// B.
    batch: usize,
    /// First target position with a predecessor (the chunk's start, or 1).
    first: usize,
    /// Target positions `first..first + n`.
    n: usize,
    /// Hidden states of positions `first - 1..first - 1 + n`, (B·n, D).
    hidden: Tensor,
    /// Their target ids (B·n).
    targets: Tensor,
}

impl ChunkRows {
    /// The rows of chunk `c`; `None` if none of its positions has a predecessor.
    fn new(hidden: &Tensor, c: &Chunk) -> Result<Option<Self>> {
        let (b, _, d) = hidden.dims3()?;
        let first = c.start.max(1);
        let n = (c.start + c.len).saturating_sub(first);
        if n == 0 {
            return Ok(None);
        }
        let targets = c
            .batch
            .input_ids
            .narrow(1, first, n)?
            .contiguous()?
            .reshape(b * n)?;
        Ok(Some(ChunkRows {
            batch: b,
            first,
            n,
            hidden: hidden.narrow(1, first - 1, n)?.reshape((b * n, d))?,
            targets,
        }))
    }
}

/// (log-probs, entropies), each (B, n), from fused scores (B·n, 2).
fn score_columns(
    scores: &Tensor,
    b: usize,
    n: usize,
    dtype: DType,
) -> candle_core::Result<(Tensor, Tensor)> {
    let column = |c: usize| scores.narrow(1, c, 1)?.reshape((b, n))?.to_dtype(dtype);
    Ok((column(0)?, column(1)?))
}

/// A chunk scored by [`Model::score_chunk_by_hand`], waiting for its loss's gradient.
struct HandChunk {
    /// The fused scores (B·n, 2), a leaf of the loss's graph.
    scores: Var,
    /// The logits' gradient from the scores' gradient.
    logits_grad: hicra_kernels::fused::ScoresBackward,
    rows: ChunkRows,
}

impl HandChunk {
    /// From the loss's gradients: the gradients of the hidden rows (B, n, D) and of the output
    /// projection `lm_head` (its products in bf16 with `bf16_products`), or `None` where the
    /// loss does not depend on the chunk.
    fn backward(
        self,
        grads: &GradStore,
        lm_head: &Tensor,
        bf16_products: bool,
    ) -> Result<Option<(Tensor, Tensor)>> {
        let Some(d_scores) = grads.get(self.scores.as_tensor()) else {
            return Ok(None);
        };
        let d_logits = self.logits_grad.logits_grad(d_scores)?;
        let (d_hidden, d_head) = crate::model::backward::linear_backward(
            bf16_products,
            &self.rows.hidden,
            lm_head,
            &d_logits,
        )?;
        let d = d_hidden.dim(1)?;
        Ok(Some((
            d_hidden.reshape((self.rows.batch, self.rows.n, d))?,
            d_head,
        )))
    }
}

/// What the head's part of the backward pass gives the trunk's.
#[derive(Default)]
struct HeadBackward {
    /// The head's parameter gradients.
    grads: Option<GradStore>,
    /// The gradient of the trunk's hidden states (B, T, D); `None` if no loss reached them.
    grad_hidden: Option<Tensor>,
    /// The total loss.
    loss: f64,
}

/// How the head's chunks carry their gradients back.
enum HeadPath<'a> {
    /// By hand, with the recorded trunk's detached weights.
    ByHand(&'a Weights),
    /// Through candle's graph, from a leaf copy of the hidden states.
    Graph(Var),
}

/// `slot += g`, starting from `g`.
fn add_into(slot: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    *slot = Some(match slot.take() {
        Some(acc) => (acc + g)?,
        None => g,
    });
    Ok(())
}

impl HeadBackward {
    fn add_grads(&mut self, g: GradStore) -> Result<()> {
        match self.grads.as_mut() {
            Some(all) => all.extend(g)?,
            None => self.grads = Some(g),
        }
        Ok(())
    }
}

/// A chunk's loss as a scalar; any other shape is an error naming the chunk.
fn scalar_loss(loss: Tensor, start: usize) -> Result<Tensor> {
    if loss.elem_count() != 1 {
        return Err(ModelError::InvalidInput(format!(
            "loss function returned shape {:?} for chunk at {start}; expected a scalar",
            loss.dims()
        )));
    }
    Ok(loss.flatten_all()?.sum_all()?)
}

/// The head's gradients gathered over the chunks of a hand-written backward pass.
#[derive(Default)]
struct HeadGrads {
    /// Per chunk: its first hidden position and the gradient of its rows (B, n, D).
    hidden: Vec<(usize, Tensor)>,
    /// The output projection's gradient, summed.
    head: Option<Tensor>,
}

impl HeadGrads {
    fn add(&mut self, first_hidden: usize, d_hidden: Tensor, d_head: Tensor) -> Result<()> {
        self.hidden.push((first_hidden, d_hidden));
        add_into(&mut self.head, d_head)
    }

    /// The hidden states' gradient (B, T, D): the chunks' rows in order, zeros between.
    fn grad_hidden(&self, (b, t, d): (usize, usize, usize), like: &Tensor) -> Result<Tensor> {
        let zeros = |n: usize| Tensor::zeros((b, n, d), like.dtype(), like.device());
        let mut parts = Vec::with_capacity(2 * self.hidden.len() + 1);
        let mut next = 0;
        for (first, g) in &self.hidden {
            if *first > next {
                parts.push(zeros(first - next)?);
            }
            next = first + g.dim(1)?;
            parts.push(g.clone());
        }
        if next < t {
            parts.push(zeros(t - next)?);
        }
        Ok(Tensor::cat(&parts, 1)?)
    }
}

/// Splits `0..t` into chunks of `size` positions.
fn chunks(t: usize, size: usize) -> Result<Vec<(usize, usize)>> {
    if size == 0 {
        return Err(ModelError::InvalidInput(
            "chunk_positions must be positive".into(),
        ));
    }
    Ok((0..t).step_by(size).map(|s| (s, size.min(t - s))).collect())
}
