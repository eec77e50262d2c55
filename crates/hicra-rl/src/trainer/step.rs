//! One RL step, as its five phases ([`Trainer::train_step`]): collect, score, advantages,
//! update, metrics.

use std::time::Instant;

use hicra_hier::{HierarchyMetrics, ResponseTokens};
use hicra_model::{Model, ScoreOptions};
use hicra_tasks::{Problem, task_anatomy};

use super::{Trainer, derive_seed};
use crate::batch::{Sequence, build_batch, gather, place};
use crate::credit::{CreditInputs, assign_credit};
use crate::error::{Result, RlError};
use crate::events::{TrainEvent, TrainObserver};
use crate::hicra::TokenAdvantages;
use crate::loss::{ChunkStats, LossInputs, LossStats, chunk_loss, sequence_weights};
use crate::metrics::Record;
use crate::rollout::{Rollout, collect_rollouts, rollout_plan};
use crate::run::peak_rss_mib;
use crate::step_metrics::{
    UpdateSummary, advantage_metrics, hierarchy_metrics, sampling_metrics, update_metrics,
};

/// Steps in a row with all-zero advantages after which the trainer warns.
pub const ZERO_ADVANTAGE_WARN_STEPS: u64 = 3;

/// Per-response, per-token values (`[response][token]`).
type PerToken = Vec<Vec<f32>>;

/// The responses of a step: those kept for training and every one sampled, with the problems
/// of `all` (indexed by `Rollout::prompt_index`).
struct Collected {
    kept: Vec<Rollout>,
    all: Vec<Rollout>,
    /// Per response of `all`: whether it is one of `kept`.
    trained: Vec<bool>,
    problems: Vec<Problem>,
}

/// What the score phase adds to the kept responses.
struct Scored {
    /// Planning-token flags per response token.
    masks: Vec<Vec<bool>>,
    /// Hierarchy metrics of the kept responses.
    hierarchy: HierarchyMetrics,
    /// Behaviour-policy log-probs (sampling, or recomputed).
    old_logprobs: PerToken,
    /// Reference log-probs (KL on).
    ref_logprobs: Option<PerToken>,
    /// Token entropies, when a scoring pass ran.
    entropies: Option<PerToken>,
}

impl Trainer {
    /// One RL step; returns its metrics.
    pub fn train_step(&mut self, step: u64, observer: &mut dyn TrainObserver) -> Result<Record> {
        observer.event(&TrainEvent::Stage {
            step,
            stage: "rollout",
        });
        let t_rollout = Instant::now();
        let collected = self.collect(step)?;
        let time_rollout = t_rollout.elapsed().as_secs_f64();
        observer.event(&TrainEvent::Stage {
            step,
            stage: "train",
        });
        let t_train = Instant::now();
        let scored = self.score(&collected.kept)?;
        let advantages = self.advantages(step, &collected.kept, &scored)?;
        observer.event(&TrainEvent::Credit {
            step,
            rollouts: &collected.kept,
            planning: &scored.masks,
            entropies: scored.entropies.as_deref(),
            advantages: &advantages,
        });
        self.watch_zero_advantages(step, &advantages, observer);
        let update = self.update(step, &collected.kept, &scored, &advantages)?;
        let time_train = t_train.elapsed().as_secs_f64();

        let g = self.config.rollout.group_size;
        let mut m = Record::new();
        sampling_metrics(&collected.all, g, &mut m);
        let responses = collected.all.iter().map(|r| {
            (
                &collected.problems[r.prompt_index],
                r.text.as_str(),
                r.correct,
            )
        });
        if let Some(anatomy) = task_anatomy(self.task.as_ref(), responses) {
            m.extend(anatomy.metrics(""));
        }
        update_metrics(&update, self.reference.is_some(), &mut m);
        m.insert("groups_trained".into(), (collected.kept.len() / g) as f64);
        advantage_metrics(&collected.kept, &scored.masks, &advantages, &mut m);
        let entropies = scored
            .entropies
            .as_ref()
            .unwrap_or(&update.first_epoch_entropy);
        hierarchy_metrics(&scored.hierarchy, &scored.masks, entropies, &mut m);
        let gen_tokens: usize = collected.all.iter().map(|r| r.response_ids.len()).sum();
        m.insert("time_rollout_s".into(), time_rollout);
        m.insert("time_train_s".into(), time_train);
        m.insert(
            "tokens_per_s".into(),
            gen_tokens as f64 / time_rollout.max(1e-9),
        );
        if let Some(rss) = peak_rss_mib() {
            m.insert("peak_rss_mib".into(), rss);
        }
        let every = self.config.trainer.samples_every;
        if every > 0 && step.is_multiple_of(every as u64) {
            self.run
                .write_step_samples(step, &collected.all, &collected.trained, &self.grams)?;
        }
        Ok(m)
    }

    /// Counts the steps in a row whose advantages are all zero (nothing to learn from) and
    /// warns when they reach [`ZERO_ADVANTAGE_WARN_STEPS`].
    fn watch_zero_advantages(
        &mut self,
        step: u64,
        advantages: &TokenAdvantages,
        observer: &mut dyn TrainObserver,
    ) {
        let zero = advantages.advantages.iter().flatten().all(|&v| v == 0.0);
        self.zero_advantage_streak = if zero {
            self.zero_advantage_streak + 1
        } else {
            0
        };
        if self.zero_advantage_streak == ZERO_ADVANTAGE_WARN_STEPS {
            observer.event(&TrainEvent::Warning {
                step,
                message: format!(
                    "every advantage of the last {ZERO_ADVANTAGE_WARN_STEPS} steps was zero, so \
                     they trained nothing: each group's rewards were all equal (all correct or \
                     all wrong; see zero_var_group_frac in metrics.jsonl). \
                     Easier or harder problems, a larger rollout.group_size or \
                     algorithm.dynamic_sampling = true give the groups something to compare"
                ),
            });
        }
    }

    /// Phase 1: samples the step's groups (with dynamic sampling: rounds until enough groups
    /// have unequal rewards).
    fn collect(&mut self, step: u64) -> Result<Collected> {
        let n_prompts = self.config.prompts_per_step();
        let g = self.config.rollout.group_size;
        let a = &self.config.algorithm;
        let dynamic = a.dynamic_sampling;
        let rounds = if dynamic { a.max_sampling_rounds } else { 1 };
        let prompts = self.config.model.prompt_settings();
        let mut kept: Vec<Rollout> = Vec::new();
        let mut all: Vec<Rollout> = Vec::new();
        let mut trained: Vec<bool> = Vec::new();
        let mut sampled_problems: Vec<Problem> = Vec::new();
        for round in 0..rounds as u64 {
            let need = n_prompts - kept.len() / g;
            let problems = self.task.train_batch(self.state.data_position, need);
            self.state.data_position += need as u64;
            let plan = rollout_plan(
                &self.config.rollout,
                derive_seed(self.config.trainer.seed, step, round),
                &prompts,
            );
            let mut rs = collect_rollouts(
                self.generator.as_mut(),
                &self.policy,
                self.task.as_ref(),
                &problems,
                &plan,
                &self.config.rollout,
            )?;
            let offset = all.len() / g;
            for r in &mut rs {
                r.prompt_index += offset;
            }
            sampled_problems.extend(problems);
            for group in rs.chunks(g) {
                all.extend(group.iter().cloned());
                let flat = group.iter().all(|r| r.reward == group[0].reward);
                let keep = !dynamic || !flat;
                if keep {
                    kept.extend(group.iter().cloned());
                }
                trained.extend(std::iter::repeat_n(keep, group.len()));
            }
            if kept.len() / g >= n_prompts {
                break;
            }
        }
        kept.truncate(n_prompts * g);
        // Kept responses past the truncation are not trained on.
        let mut room = kept.len();
        for t in trained.iter_mut().filter(|t| **t) {
            *t = room > 0;
            room = room.saturating_sub(1);
        }
        Ok(Collected {
            kept,
            all,
            trained,
            problems: sampled_problems,
        })
    }

    /// Phase 2: planning masks and hierarchy metrics; old and reference log-probs and
    /// entropies from scoring passes where the config needs them.
    fn score(&self, rs: &[Rollout]) -> Result<Scored> {
        let tokens: Vec<ResponseTokens> = rs
            .iter()
            .map(|r| ResponseTokens {
                text: &r.text,
                token_byte_spans: &r.token_spans,
                logprobs: &r.sampling_logprobs,
                entropies: None,
            })
            .collect();
        let (hierarchy, masks) = HierarchyMetrics::compute_with_masks(&tokens, &self.grams)
            .map_err(|e| RlError::Invalid(format!("hierarchy metrics: {e}")))?;
        let a = &self.config.algorithm;
        let needs_entropy = a.hicra.variant.needs_entropy();
        let sampling = || rs.iter().map(|r| r.sampling_logprobs.clone()).collect();
        let rescore = self.config.rescores_old_logprobs();
        let (old_logprobs, entropies) = if rescore || needs_entropy {
            let (lp, en) = self.score_rollouts(&self.policy.model, rs)?;
            let old = if rescore { lp } else { sampling() };
            (old, Some(en))
        } else {
            (sampling(), None)
        };
        let ref_logprobs = match &self.reference {
            Some(m) => Some(self.score_rollouts(m, rs)?.0),
            None => None,
        };
        Ok(Scored {
            masks,
            hierarchy,
            old_logprobs,
            ref_logprobs,
            entropies,
        })
    }

    /// Scores rollouts with `model` (no grad), micro-batched: per-response log-probs and
    /// entropies.
    fn score_rollouts(&self, model: &Model, rs: &[Rollout]) -> Result<(PerToken, PerToken)> {
        let (mut lp, mut en) = (Vec::new(), Vec::new());
        let opts = ScoreOptions {
            chunk_positions: self.config.algorithm.chunk_positions,
            with_entropy: true,
        };
        for chunk in rs.chunks(self.config.algorithm.micro_batch) {
            let seqs = sequences(chunk.iter());
            let batch = build_batch(&seqs, self.policy.pad_token_id, model.device())?;
            let s = model
                .score_tokens(&batch, &opts)
                .map_err(|e| RlError::model("scoring", e))?;
            lp.extend(gather(&seqs, &s.logprobs));
            en.extend(gather(&seqs, &s.entropy));
        }
        Ok((lp, en))
    }

    /// Phase 3: per-token advantages.
    fn advantages(&self, step: u64, rs: &[Rollout], scored: &Scored) -> Result<TokenAdvantages> {
        let rewards: Vec<f32> = rs.iter().map(|r| r.reward).collect();
        let correct: Vec<bool> = rs.iter().map(|r| r.correct).collect();
        let inputs = CreditInputs {
            rewards: &rewards,
            planning: &scored.masks,
            entropies: scored.entropies.as_deref(),
            correct: &correct,
        };
        assign_credit(
            &self.config.algorithm,
            &inputs,
            self.config.rollout.group_size,
            derive_seed(self.config.trainer.seed, step, 1 << 32),
        )
    }

    /// Phase 4: PPO epochs over mini-batches of groups; one optimiser step per mini-batch,
    /// after which the generator gets the new weights.
    fn update(
        &mut self,
        step: u64,
        rs: &[Rollout],
        scored: &Scored,
        advantages: &TokenAdvantages,
    ) -> Result<UpdateSummary> {
        let a = self.config.algorithm.clone();
        let g = self.config.rollout.group_size;
        let mut summary = UpdateSummary {
            lr: self.updater.next_lr(),
            passes: a.ppo_epochs * a.mini_batches,
            first_epoch_entropy: vec![Vec::new(); rs.len()],
            ..UpdateSummary::default()
        };
        let n_groups = rs.len() / g.max(1);
        if n_groups == 0 {
            return Ok(summary);
        }
        let per = n_groups.div_ceil(a.mini_batches);
        for epoch in 0..a.ppo_epochs {
            for mb in 0..a.mini_batches {
                let idx: Vec<usize> = (mb * per * g..((mb + 1) * per * g).min(rs.len())).collect();
                if idx.is_empty() {
                    continue;
                }
                let work = self.trained_sequences(rs, &idx, advantages);
                for micro in work.chunks(a.micro_batch) {
                    let out = self
                        .micro_batch(rs, micro, scored, advantages)
                        .map_err(|e| e.at_step(step))?;
                    if epoch == 0 {
                        for (&(i, _), e) in micro.iter().zip(out.entropy) {
                            summary.first_epoch_entropy[i] = e;
                        }
                    }
                    summary.stats.merge(&out.stats);
                }
                summary.lr = self.updater.next_lr();
                let report = self.updater.step().map_err(|e| e.at_step(step))?;
                summary.grad_norms.push(report.grad_norm);
                let opt_step = self.updater.optimizer().step_count();
                self.generator.sync_weights(opt_step, &self.policy.model)?;
            }
        }
        Ok(summary)
    }

    /// The sequences of mini-batch `idx` that take part in the loss, with their aggregation
    /// weight. Sequences whose loss is identically zero (no advantage on any token and no KL
    /// or entropy term) are left out: they contribute no gradient.
    fn trained_sequences(
        &self,
        rs: &[Rollout],
        idx: &[usize],
        advantages: &TokenAdvantages,
    ) -> Vec<(usize, f32)> {
        let a = &self.config.algorithm;
        let lengths: Vec<usize> = idx
            .iter()
            .map(|&i| {
                if rs[i].trainable {
                    rs[i].response_ids.len()
                } else {
                    0
                }
            })
            .collect();
        let weights = sequence_weights(a.loss_agg, &lengths, self.config.rollout.max_new_tokens);
        let only_pg = (a.kl_coef == 0.0 || self.reference.is_none()) && a.entropy_coef == 0.0;
        idx.iter()
            .zip(weights)
            .filter(|&(&i, w)| {
                w != 0.0 && (!only_pg || advantages.advantages[i].iter().any(|&v| v != 0.0))
            })
            .map(|(&i, w)| (i, w))
            .collect()
    }

    /// One micro-batch's backward pass: the loss inputs go to the device once, the clipped
    /// loss is computed chunk by chunk, and its statistics are read once at the end.
    /// Returns the statistics and each sequence's response-token entropies.
    fn micro_batch(
        &mut self,
        rs: &[Rollout],
        micro: &[(usize, f32)],
        scored: &Scored,
        advantages: &TokenAdvantages,
    ) -> Result<MicroBatchOutcome> {
        let seqs = sequences(micro.iter().map(|&(i, _)| &rs[i]));
        let device = self.policy.model.device().clone();
        let batch = build_batch(&seqs, self.policy.pad_token_id, &device)?;
        let (_, t) = batch.dims().map_err(|e| RlError::model("batch", e))?;
        let rows = |v: &PerToken| -> Vec<Vec<f32>> {
            let values: Vec<&[f32]> = micro.iter().map(|&(i, _)| v[i].as_slice()).collect();
            place(&seqs, &values, t)
        };
        let weight_rows: Vec<Vec<f32>> = micro
            .iter()
            .map(|&(i, w)| vec![w; rs[i].response_ids.len()])
            .collect();
        let weight_refs: Vec<&[f32]> = weight_rows.iter().map(Vec::as_slice).collect();
        let inputs = LossInputs::upload(
            &rows(&scored.old_logprobs),
            scored.ref_logprobs.as_ref().map(rows).as_deref(),
            &rows(&advantages.advantages),
            &place(&seqs, &weight_refs, t),
            t,
            &device,
        )?;
        let loss_cfg = self.config.algorithm.loss_config();
        let mut chunks = ChunkStats::default();
        self.updater
            .backward(&self.policy.model, &batch, &mut |chunk| {
                chunk_loss(
                    &loss_cfg,
                    &inputs,
                    chunk.start,
                    &chunk.logprobs,
                    &chunk.entropy,
                    &mut chunks,
                )
            })?;
        let read = chunks.read()?;
        Ok(MicroBatchOutcome {
            stats: read.stats,
            entropy: gather(&seqs, &read.entropy),
        })
    }
}

/// The statistics and per-sequence entropies of one micro-batch.
struct MicroBatchOutcome {
    stats: LossStats,
    entropy: PerToken,
}

/// The prompt + response sequences of rollouts.
fn sequences<'a>(rs: impl Iterator<Item = &'a Rollout>) -> Vec<Sequence<'a>> {
    rs.map(|r| Sequence {
        prompt: &r.prompt_ids,
        response: &r.response_ids,
    })
    .collect()
}
