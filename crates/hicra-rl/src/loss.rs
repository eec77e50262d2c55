//! The policy loss: PPO clipped ratio with clip-higher and dual-clip, optional KL to a
//! frozen reference and entropy bonus, and the loss aggregation modes expressed as
//! per-token weights computed up front, so the loss is a plain sum over position chunks.

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

/// How per-token losses are combined (config: `algorithm.loss_agg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossAggregation {
    /// Mean over all response tokens of the mini-batch (DAPO; the paper's choice).
    #[default]
    TokenMean,
    /// Mean over sequences of each sequence's token mean (original GRPO).
    SeqMeanTokenMean,
    /// Mean over sequences of each sequence's token sum divided by a constant length (Dr.GRPO).
    SeqMeanTokenSumNorm,
}

/// KL estimator between the policy and the frozen reference (config: `algorithm.kl_estimator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KlEstimator {
    /// `log π - log π_ref`.
    K1,
    /// `½ (log π - log π_ref)²`.
    K2,
    /// `exp(log π_ref - log π) - (log π_ref - log π) - 1` (non-negative, unbiased).
    #[default]
    K3,
}

/// Loss settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LossConfig {
    /// Lower clip ε: the ratio is clipped below at `1 - clip_low`.
    pub clip_low: f32,
    /// Upper clip ε: the ratio is clipped above at `1 + clip_high`.
    pub clip_high: f32,
    /// Dual-clip constant c (> 1) bounding the loss of negative-advantage tokens by `-c·A`; 0 = off.
    pub dual_clip: f32,
    /// Aggregation of per-token losses.
    pub aggregation: LossAggregation,
    /// Weight of the KL term; 0 = off.
    pub kl_coef: f32,
    /// KL estimator.
    pub kl_estimator: KlEstimator,
    /// Weight of the entropy bonus (subtracted from the loss); 0 = off.
    pub entropy_coef: f32,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            clip_low: 0.2,
            clip_high: 0.28,
            dual_clip: 3.0,
            aggregation: LossAggregation::TokenMean,
            kl_coef: 0.0,
            kl_estimator: KlEstimator::K3,
            entropy_coef: 0.0,
        }
    }
}

/// Bound on |log ratio| before exponentiating (numerical safety, as in common trainers).
const LOG_RATIO_BOUND: f32 = 20.0;

/// Per-token aggregation weights for a mini-batch: one weight per sequence (every response
/// token of a sequence has the same weight). `lengths` are the response-token counts of the
/// sequences of the whole mini-batch (over all its micro-batches); `norm_len` is the constant
/// of `SeqMeanTokenSumNorm` (usually `max_new_tokens`).
pub fn sequence_weights(agg: LossAggregation, lengths: &[usize], norm_len: usize) -> Vec<f32> {
    let n_seq = lengths.len().max(1) as f32;
    let total: usize = lengths.iter().sum();
    lengths
        .iter()
        .map(|&l| {
            if l == 0 {
                return 0.0;
            }
            match agg {
                LossAggregation::TokenMean => 1.0 / total as f32,
                LossAggregation::SeqMeanTokenMean => 1.0 / (n_seq * l as f32),
                LossAggregation::SeqMeanTokenSumNorm => 1.0 / (n_seq * norm_len.max(1) as f32),
            }
        })
        .collect()
}

/// The KL estimate for one token given `log π` and `log π_ref`.
pub fn kl_value(est: KlEstimator, logp: f32, ref_logp: f32) -> f32 {
    let d = (logp - ref_logp).clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND);
    match est {
        KlEstimator::K1 => d,
        KlEstimator::K2 => 0.5 * d * d,
        KlEstimator::K3 => (-d).exp() + d - 1.0,
    }
}

/// The loss inputs of one micro-batch as `(B, T)` device tensors aligned with the model batch
/// (position t scores token t), built once per micro-batch. Positions that are not response
/// tokens have weight 0.
#[derive(Debug, Clone)]
pub struct LossInputs {
    /// Log-probabilities under the behaviour policy (sampling or recomputed).
    pub old_logprobs: Tensor,
    /// Log-probabilities under the frozen reference (only when a reference is used).
    pub ref_logprobs: Option<Tensor>,
    /// Per-token advantages.
    pub advantages: Tensor,
    /// Per-token aggregation weights (0 off the response).
    pub weights: Tensor,
}

/// `[row][position]` host values as one `(B, T)` tensor (rows padded with zeros to `t`).
pub fn rows_tensor(rows: &[Vec<f32>], t: usize, device: &Device) -> candle_core::Result<Tensor> {
    let mut flat = Vec::with_capacity(rows.len() * t);
    for r in rows {
        flat.extend((0..t).map(|i| r.get(i).copied().unwrap_or(0.0)));
    }
    Tensor::from_vec(flat, (rows.len(), t), device)
}

impl LossInputs {
    /// Uploads `[row][position]` host arrays (each row padded with zeros to `t`).
    pub fn upload(
        old_logprobs: &[Vec<f32>],
        ref_logprobs: Option<&[Vec<f32>]>,
        advantages: &[Vec<f32>],
        weights: &[Vec<f32>],
        t: usize,
        device: &Device,
    ) -> candle_core::Result<Self> {
        Ok(LossInputs {
            old_logprobs: rows_tensor(old_logprobs, t, device)?,
            ref_logprobs: ref_logprobs
                .map(|r| rows_tensor(r, t, device))
                .transpose()?,
            advantages: rows_tensor(advantages, t, device)?,
            weights: rows_tensor(weights, t, device)?,
        })
    }
}

/// Statistics accumulated over the chunks of a step (token-level, response tokens only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LossStats {
    /// Response tokens seen.
    pub tokens: usize,
    /// Tokens whose ratio was clipped (including dual-clip).
    pub clipped: usize,
    /// Sum of the KL estimates (k-estimator of the config, or k3 when KL is only reported).
    pub kl_sum: f64,
    /// Sum of token entropies.
    pub entropy_sum: f64,
    /// Weighted sum of per-token losses (the total loss).
    pub loss: f64,
}

impl LossStats {
    /// Fraction of tokens clipped.
    pub fn clip_frac(&self) -> f64 {
        self.clipped as f64 / self.tokens.max(1) as f64
    }
    /// Mean KL per token.
    pub fn kl_mean(&self) -> f64 {
        self.kl_sum / self.tokens.max(1) as f64
    }
    /// Mean entropy per token.
    pub fn entropy_mean(&self) -> f64 {
        self.entropy_sum / self.tokens.max(1) as f64
    }
    /// Adds another stats record.
    pub fn merge(&mut self, o: &LossStats) {
        self.tokens += o.tokens;
        self.clipped += o.clipped;
        self.kl_sum += o.kl_sum;
        self.entropy_sum += o.entropy_sum;
        self.loss += o.loss;
    }
}

/// The per-token loss value and clip flag on the host (reference for the tensor version).
pub fn token_loss(
    cfg: &LossConfig,
    logp: f32,
    old_logp: f32,
    ref_logp: Option<f32>,
    adv: f32,
    entropy: f32,
) -> (f32, bool) {
    let ratio = (logp - old_logp)
        .clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND)
        .exp();
    let pg1 = -adv * ratio;
    let pg2 = -adv * ratio.clamp(1.0 - cfg.clip_low, 1.0 + cfg.clip_high);
    let mut clipped = pg2 > pg1;
    let mut pg = pg1.max(pg2);
    if cfg.dual_clip > 0.0 && adv < 0.0 && pg > -adv * cfg.dual_clip {
        pg = -adv * cfg.dual_clip;
        clipped = true;
    }
    let kl = match ref_logp {
        Some(r) if cfg.kl_coef != 0.0 => cfg.kl_coef * kl_value(cfg.kl_estimator, logp, r),
        _ => 0.0,
    };
    (pg + kl - cfg.entropy_coef * entropy, clipped)
}

/// The per-chunk statistics of a micro-batch, kept on the device until [`ChunkStats::read`]
/// reads them all in one transfer.
#[derive(Debug, Default)]
pub struct ChunkStats {
    /// Per chunk: `(rows, positions)` and a flat tensor of `[active, clipped, entropy, kl]`
    /// (each `rows × positions`) followed by the chunk's loss.
    chunks: Vec<((usize, usize), Tensor)>,
}

/// What [`ChunkStats::read`] returns: the statistics and every position's entropy.
#[derive(Debug, Clone, PartialEq)]
pub struct MicroBatchStats {
    /// The loss statistics of the micro-batch.
    pub stats: LossStats,
    /// Token entropy at every position, `[row][position]` (the batch's width).
    pub entropy: Vec<Vec<f32>>,
}

impl ChunkStats {
    /// Reads the statistics of all chunks (one device-to-host transfer), summing in chunk,
    /// row and position order.
    pub fn read(self) -> candle_core::Result<MicroBatchStats> {
        let mut stats = LossStats::default();
        let Some(&((rows, _), _)) = self.chunks.first() else {
            return Ok(MicroBatchStats {
                stats,
                entropy: Vec::new(),
            });
        };
        let parts: Vec<Tensor> = self.chunks.iter().map(|(_, t)| t.clone()).collect();
        let flat = Tensor::cat(&parts, 0)?.to_vec1::<f32>()?;
        let mut entropy = vec![Vec::new(); rows];
        let mut at = 0;
        for &((b, len), _) in &self.chunks {
            let n = b * len;
            let (active, rest) = flat[at..at + 4 * n + 1].split_at(n);
            let (clipped, rest) = rest.split_at(n);
            let (ent, rest) = rest.split_at(n);
            let (kl, loss) = rest.split_at(n);
            for i in 0..n {
                if active[i] != 0.0 {
                    stats.tokens += 1;
                    stats.clipped += usize::from(clipped[i] != 0.0);
                    stats.entropy_sum += ent[i] as f64;
                    stats.kl_sum += kl[i] as f64;
                }
            }
            for (r, row) in entropy.iter_mut().enumerate() {
                row.extend_from_slice(&ent[r * len..(r + 1) * len]);
            }
            stats.loss += loss[0] as f64;
            at += 4 * n + 1;
        }
        Ok(MicroBatchStats { stats, entropy })
    }
}

/// The KL estimate per token as a tensor (the rule of [`kl_value`]).
fn kl_tensor(est: KlEstimator, logp: &Tensor, ref_logp: &Tensor) -> candle_core::Result<Tensor> {
    let d = (logp - ref_logp)?.clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND)?;
    match est {
        KlEstimator::K1 => Ok(d),
        KlEstimator::K2 => d.sqr()? * 0.5,
        KlEstimator::K3 => (d.neg()?.exp()? + &d)? - 1.0,
    }
}

/// The loss contribution of one position chunk `[start, start + len)` as a differentiable
/// scalar: `Σ_t weight_t · ℓ_t` with ℓ the clipped PPO loss plus KL minus entropy bonus (the
/// rule of [`token_loss`], decided with tensor ops on the device). `logprobs` and `entropy` are
/// the chunk's `(B, len)` tensors from the model (with grad); the chunk's statistics are added
/// to `stats` without leaving the device.
pub fn chunk_loss(
    cfg: &LossConfig,
    inputs: &LossInputs,
    start: usize,
    logprobs: &Tensor,
    entropy: &Tensor,
    stats: &mut ChunkStats,
) -> candle_core::Result<Tensor> {
    let (b, len) = logprobs.dims2()?;
    let cols = |t: &Tensor| t.narrow(1, start, len);
    let old = cols(&inputs.old_logprobs)?;
    let adv = cols(&inputs.advantages)?;
    let w = cols(&inputs.weights)?;
    let refs = inputs.ref_logprobs.as_ref().map(cols).transpose()?;

    let logp = logprobs.to_dtype(DType::F32)?;
    let ent = entropy.to_dtype(DType::F32)?;
    let log_ratio = (&logp - &old)?.clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND)?;
    let ratio = log_ratio.exp()?;
    let neg_adv = adv.neg()?;
    let pg1 = (&neg_adv * &ratio)?;
    // On clipped tokens the clipped term is constant in θ: its value, no gradient.
    let pg2 = (&neg_adv
        * ratio
            .detach()
            .clamp(1.0 - cfg.clip_low, 1.0 + cfg.clip_high)?)?;
    let use_pg2 = pg2.gt(&pg1)?;
    let mut pg = use_pg2.where_cond(&pg2, &pg1)?;
    let mut clipped = use_pg2.to_dtype(DType::F32)?;
    if cfg.dual_clip > 0.0 {
        let dual_val = (&neg_adv * cfg.dual_clip as f64)?;
        let dual = (adv.lt(0f64)?.to_dtype(DType::F32)?
            * pg.detach().gt(&dual_val)?.to_dtype(DType::F32)?)?;
        pg = dual.ne(0f64)?.where_cond(&dual_val, &pg)?;
        clipped = clipped.maximum(&dual)?;
    }
    let kl = refs
        .as_ref()
        .map(|r| kl_tensor(cfg.kl_estimator, &logp, r))
        .transpose()?;
    let mut per_token = pg;
    if cfg.kl_coef != 0.0
        && let Some(kl) = &kl
    {
        per_token = (per_token + (kl * cfg.kl_coef as f64)?)?;
    }
    if cfg.entropy_coef != 0.0 {
        per_token = (per_token - (&ent * cfg.entropy_coef as f64)?)?;
    }
    let total = (per_token * &w)?.sum_all()?;

    let kl = match kl {
        Some(kl) => kl.detach(),
        None => ent.detach().zeros_like()?,
    };
    let active = w.ne(0f64)?.to_dtype(DType::F32)?;
    let flat = Tensor::cat(
        &[
            active.flatten_all()?,
            clipped.flatten_all()?,
            ent.detach().flatten_all()?,
            kl.flatten_all()?,
            total.detach().reshape(1)?,
        ],
        0,
    )?
    // Detached: `clipped` comes from comparisons, which candle records in the graph, so a
    // tracked copy would keep the chunk's logits alive until the step's end.
    .detach();
    stats.chunks.push(((b, len), flat));
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn cfg() -> LossConfig {
        LossConfig::default()
    }

    /// Loss inputs as host rows, for building cases and checking against [`token_loss`].
    struct HostInputs {
        old_logprobs: Vec<Vec<f32>>,
        ref_logprobs: Option<Vec<Vec<f32>>>,
        advantages: Vec<Vec<f32>>,
        weights: Vec<Vec<f32>>,
    }

    impl HostInputs {
        fn upload(&self, t: usize) -> LossInputs {
            LossInputs::upload(
                &self.old_logprobs,
                self.ref_logprobs.as_deref(),
                &self.advantages,
                &self.weights,
                t,
                &Device::Cpu,
            )
            .unwrap()
        }
    }

    #[test]
    fn aggregation_weights_match_hand_values() {
        let l = [2, 4];
        assert_eq!(
            sequence_weights(LossAggregation::TokenMean, &l, 8),
            vec![1.0 / 6.0; 2]
        );
        assert_eq!(
            sequence_weights(LossAggregation::SeqMeanTokenMean, &l, 8),
            vec![0.25, 0.125]
        );
        assert_eq!(
            sequence_weights(LossAggregation::SeqMeanTokenSumNorm, &l, 8),
            vec![1.0 / 16.0; 2]
        );
    }

    #[test]
    fn kl_estimators_match_hand_values() {
        // logp = -1, ref = -2 → d = 1
        assert!((kl_value(KlEstimator::K1, -1.0, -2.0) - 1.0).abs() < 1e-6);
        assert!((kl_value(KlEstimator::K2, -1.0, -2.0) - 0.5).abs() < 1e-6);
        // k3 = e^-1 + 1 - 1 = 0.367879
        assert!((kl_value(KlEstimator::K3, -1.0, -2.0) - 0.367_879).abs() < 1e-5);
        assert_eq!(kl_value(KlEstimator::K3, -1.0, -1.0), 0.0);
    }

    #[test]
    fn token_loss_clips_high_low_and_dual() {
        let c = cfg();
        let ln = |x: f32| x.ln();
        // ratio 1.5, A = 1: clipped at 1.28 → -1.28
        let (l, clip) = token_loss(&c, ln(1.5), 0.0, None, 1.0, 0.0);
        assert!((l + 1.28).abs() < 1e-5 && clip);
        // ratio 0.5, A = 1: unclipped (min of objective) → -0.5
        let (l, clip) = token_loss(&c, ln(0.5), 0.0, None, 1.0, 0.0);
        assert!((l + 0.5).abs() < 1e-5 && !clip);
        // ratio 0.5, A = -1: clipped at 0.8 → 0.8
        let (l, clip) = token_loss(&c, ln(0.5), 0.0, None, -1.0, 0.0);
        assert!((l - 0.8).abs() < 1e-5 && clip);
        // ratio 5, A = -1: 5 > dual clip 3 → 3
        let (l, clip) = token_loss(&c, ln(5.0), 0.0, None, -1.0, 0.0);
        assert!((l - 3.0).abs() < 1e-5 && clip);
        // without dual clip → 5
        let nd = LossConfig {
            dual_clip: 0.0,
            ..cfg()
        };
        let (l, _) = token_loss(&nd, ln(5.0), 0.0, None, -1.0, 0.0);
        assert!((l - 5.0).abs() < 1e-4);
        // KL k3 with coef .1 and entropy bonus .01: ratio 1 (A=2 → -2) + .1*.367879 - .01*3
        let kc = LossConfig {
            kl_coef: 0.1,
            entropy_coef: 0.01,
            ..cfg()
        };
        let (l, _) = token_loss(&kc, -1.0, -1.0, Some(-2.0), 2.0, 3.0);
        assert!((l - (-2.0 + 0.036_787_9 - 0.03)).abs() < 1e-5, "{l}");
    }

    #[test]
    fn chunk_loss_equals_weighted_sum_of_token_losses_and_has_right_gradient() {
        let c = LossConfig {
            kl_coef: 0.05,
            entropy_coef: 0.01,
            ..cfg()
        };
        let logp_v = vec![-0.5f32, -1.0, -2.0, -0.1, -0.7, -3.0];
        let ent_v = vec![1.0f32, 0.5, 0.2, 0.9, 1.1, 0.3];
        let logp = Var::from_vec(logp_v.clone(), (2, 3), &Device::Cpu).unwrap();
        let ent = Tensor::from_vec(ent_v.clone(), (2, 3), &Device::Cpu).unwrap();
        let host = HostInputs {
            old_logprobs: vec![vec![-0.6, -1.5, -1.0], vec![-0.1, -0.2, -1.0]],
            ref_logprobs: Some(vec![vec![-0.4, -1.2, -2.1], vec![-0.3, -0.9, -2.0]]),
            advantages: vec![vec![1.0, 1.0, 1.2], vec![-1.0, -1.0, -0.8]],
            weights: vec![vec![0.2, 0.2, 0.2], vec![0.0, 0.2, 0.2]],
        };
        let inputs = host.upload(3);
        let mut chunks = ChunkStats::default();
        let total = chunk_loss(&c, &inputs, 0, logp.as_tensor(), &ent, &mut chunks).unwrap();
        // The kept statistics hold no graph: a tracked tensor would keep the chunk's logits
        // alive until the stats are read at the end of the step.
        assert!(chunks.chunks.iter().all(|(_, flat)| !flat.track_op()));
        let read = chunks.read().unwrap();
        let stats = read.stats;
        assert_eq!(read.entropy, vec![ent_v[..3].to_vec(), ent_v[3..].to_vec()]);
        let inputs = host;
        let mut expect = 0.0f32;
        let mut clipped = 0;
        let (mut kl_sum, mut ent_sum) = (0.0f64, 0.0f64);
        for i in 0..6 {
            let (r, t) = (i / 3, i % 3);
            let (l, cl) = token_loss(
                &c,
                logp_v[i],
                inputs.old_logprobs[r][t],
                Some(inputs.ref_logprobs.as_ref().unwrap()[r][t]),
                inputs.advantages[r][t],
                ent_v[i],
            );
            expect += inputs.weights[r][t] * l;
            if inputs.weights[r][t] != 0.0 {
                clipped += usize::from(cl);
                let reference = inputs.ref_logprobs.as_ref().unwrap()[r][t];
                kl_sum += kl_value(c.kl_estimator, logp_v[i], reference) as f64;
                ent_sum += ent_v[i] as f64;
            }
        }
        assert_eq!(stats.kl_sum, kl_sum);
        assert_eq!(stats.entropy_sum, ent_sum);
        assert!((stats.loss - expect as f64).abs() < 1e-5);
        let got = total.to_scalar::<f32>().unwrap();
        assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
        assert_eq!(stats.tokens, 5);
        assert_eq!(stats.clipped, clipped);
        assert!(clipped > 0, "the test data should exercise clipping");

        // gradient by central finite differences of the host reference
        let grads = total.backward().unwrap();
        let g = grads
            .get(&logp)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for i in 0..6 {
            let (r, t) = (i / 3, i % 3);
            let f = |x: f32| {
                let (l, _) = token_loss(
                    &c,
                    x,
                    inputs.old_logprobs[r][t],
                    Some(inputs.ref_logprobs.as_ref().unwrap()[r][t]),
                    inputs.advantages[r][t],
                    ent_v[i],
                );
                inputs.weights[r][t] * l
            };
            let h = 1e-3;
            let fd = (f(logp_v[i] + h) - f(logp_v[i] - h)) / (2.0 * h);
            assert!(
                (g[i] - fd).abs() < 2e-3,
                "token {i}: grad {} vs fd {fd}",
                g[i]
            );
        }
    }

    #[test]
    fn chunk_offsets_select_the_right_columns() {
        let c = LossConfig {
            dual_clip: 0.0,
            ..cfg()
        };
        let logp = Tensor::from_vec(vec![-1.0f32, -1.0], (1, 2), &Device::Cpu).unwrap();
        let ent = logp.zeros_like().unwrap();
        let inputs = HostInputs {
            old_logprobs: vec![vec![0.0, 0.0, -1.0, -1.0]],
            ref_logprobs: None,
            advantages: vec![vec![0.0, 0.0, 1.0, 2.0]],
            weights: vec![vec![0.0, 0.0, 0.5, 0.5]],
        }
        .upload(4);
        let mut stats = ChunkStats::default();
        let l = chunk_loss(&c, &inputs, 2, &logp, &ent, &mut stats).unwrap();
        assert_eq!(stats.read().unwrap().stats.tokens, 2);
        // ratio 1 → -(0.5*1 + 0.5*2)
        assert!((l.to_scalar::<f32>().unwrap() + 1.5).abs() < 1e-6);
    }
}
