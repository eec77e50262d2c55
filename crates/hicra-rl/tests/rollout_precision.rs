//! Rollouts sampled in another precision (`rollout.decode_dtype = "bf16"`) have their old
//! log-probs rescored by the policy in its own precision, so the importance ratio of the first
//! update is 1 whatever log-probs the sampler reported; the policy generates in bf16 and trains
//! with `algorithm.activation_checkpointing` when asked.

use std::path::Path;

use hicra_model::io::tiny;
use hicra_model::{FinishReason, Generation, Precision, SamplingParams};
use hicra_rl::config::TrainConfig;
use hicra_rl::events::SilentObserver;
use hicra_rl::generator::Generator;
use hicra_rl::run::read_metrics;
use hicra_rl::trainer::Trainer;
mod common;

use common::{DigitTask, tiny_model};

/// Answers with fixed texts whose digit shares differ within a group, reporting a sampling
/// log-prob of -30 for every token: far from anything the policy assigns.
struct FarOffSampler {
    responses: Vec<Vec<u32>>,
}

const REPORTED_LOGPROB: f32 = -30.0;

impl Generator for FarOffSampler {
    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        _params: &SamplingParams,
    ) -> hicra_rl::Result<Vec<Generation>> {
        Ok((0..prompts.len())
            .map(|i| {
                let ids = self.responses[i % self.responses.len()].clone();
                Generation {
                    logprobs: vec![REPORTED_LOGPROB; ids.len()],
                    token_ids: ids,
                    finish_reason: FinishReason::Length,
                }
            })
            .collect())
    }

    fn sync_weights(&mut self, _step: u64, _policy: &hicra_model::Model) -> hicra_rl::Result<()> {
        Ok(())
    }
}

fn config(model: &Path, extra: &[&str]) -> TrainConfig {
    let mut sets: Vec<String> = vec![
        format!("model.path={}", model.display()),
        "rollout.batch_size=8".into(),
        "rollout.group_size=4".into(),
        "rollout.max_new_tokens=8".into(),
        "algorithm.micro_batch=8".into(),
        "algorithm.chunk_positions=8".into(),
        "algorithm.hicra.variant=none".into(),
        "optim.weight_decay=0".into(),
        "trainer.steps=1".into(),
        "trainer.val_every=0".into(),
        "trainer.val_size=2".into(),
        "trainer.ckpt_every=0".into(),
        "trainer.keep_checkpoints=0".into(),
    ];
    sets.extend(extra.iter().map(|s| s.to_string()));
    TrainConfig::resolve(None, &sets).unwrap()
}

/// Trains one step on the far-off sampler's rollouts and returns the step's clip fraction.
fn clip_frac_of_one_step(dir: &Path, name: &str, extra: &[&str]) -> f64 {
    let model = tiny_model(dir);
    let run = dir.join(name);
    let mut t =
        Trainer::create_with_task(config(&model, extra), Box::new(DigitTask::new()), &run).unwrap();
    let tok = tiny::test_tokenizer();
    let responses = ["12 34 56", "hello there", "7 and 8", "no digits here"]
        .iter()
        .map(|t| tok.encode(t, false).unwrap())
        .collect();
    t.set_generator(Box::new(FarOffSampler { responses }))
        .unwrap();
    t.train(&mut SilentObserver).unwrap();
    let metrics = read_metrics(&run).unwrap();
    let step = metrics
        .iter()
        .find(|m| m.get("clip_frac").is_some())
        .expect("a step record with clip_frac");
    step["clip_frac"].as_f64().unwrap()
}

#[test]
fn bf16_rollouts_are_rescored_in_the_policy_precision() {
    let d = tempfile::tempdir().unwrap();
    // f32 rollouts without recomputation: the reported log-probs are the old ones, so the
    // ratio exp(new + 30) is clipped on the trained tokens.
    let trusted = clip_frac_of_one_step(d.path(), "f32", &[]);
    assert!(
        trusted > 0.5,
        "f32 sampling log-probs were not used: clip_frac {trusted}"
    );
    // bf16 rollouts: rescored by the policy, so the first update's ratio is 1 and nothing is
    // clipped, whatever the sampler reported.
    let rescored = clip_frac_of_one_step(d.path(), "bf16", &["rollout.decode_dtype=bf16"]);
    assert_eq!(rescored, 0.0, "bf16 rollouts were not rescored");
    // bf16 training products: f32 rollouts, but the policy scores in bf16, so their old
    // log-probs are rescored by it too.
    let products =
        clip_frac_of_one_step(d.path(), "bf16-products", &["algorithm.matmul_dtype=bf16"]);
    assert_eq!(
        products, 0.0,
        "old log-probs were not rescored for bf16 products"
    );
}

#[test]
fn the_policy_takes_the_decode_precision_and_checkpointing_of_the_config() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let cfg = config(
        &model,
        &[
            "rollout.decode_dtype=bf16",
            "algorithm.activation_checkpointing=true",
        ],
    );
    assert!(cfg.rescores_old_logprobs());
    let t =
        Trainer::create_with_task(cfg, Box::new(DigitTask::new()), &d.path().join("run")).unwrap();
    assert_eq!(t.policy().model.decode_precision(), Precision::Bf16);
    assert!(t.policy().model.activation_checkpointing());
    assert_eq!(t.policy().model.matmul_precision(), Precision::F32);
    // bf16 training products: the policy takes them, and the old log-probs are rescored.
    let cfg = config(&model, &["algorithm.matmul_dtype=bf16"]);
    assert!(cfg.rescores_old_logprobs());
    let t = Trainer::create_with_task(cfg, Box::new(DigitTask::new()), &d.path().join("run-bf16"))
        .unwrap();
    assert_eq!(t.policy().model.matmul_precision(), Precision::Bf16);
    // A misspelt precision is a named config error.
    let bad = TrainConfig::resolve(
        None,
        &[
            format!("model.path={}", model.display()),
            "rollout.decode_dtype=fp8".into(),
        ],
    );
    let err = bad.unwrap_err().to_string();
    assert!(err.contains("rollout") && err.contains("fp8"), "{err}");
}
