//! Trainer integration tests on tiny random models: steps run with finite losses and changing
//! parameters, the reward rises on a trivially learnable task, resuming reproduces the
//! uninterrupted run exactly, and damaged checkpoints are refused.

use std::path::Path;

use std::sync::{Arc, Mutex};

use hicra_model::io::tiny;
use hicra_model::{FinishReason, Generation, SamplingParams};
use hicra_rl::RlError;
use hicra_rl::advantage::{AdvantageEstimator, AdvantageOptions, compute_advantages};
use hicra_rl::config::TrainConfig;
use hicra_rl::events::{SilentObserver, TrainEvent, TrainObserver};
use hicra_rl::generator::Generator;
use hicra_rl::hicra::{HicraVariant, TokenAdvantages, high_entropy_mask};
use hicra_rl::metrics::WALL_CLOCK_METRICS;
use hicra_rl::metrics::{MetricsSink, Record};
use hicra_rl::run::{RunSetup, TrainerState, read_metrics};
use hicra_rl::trainer::Trainer;
use hicra_rl::update::GradientHook;
mod common;

use common::{DigitTask, tiny_model};

fn config(model: &Path, extra: &[&str]) -> TrainConfig {
    let mut sets: Vec<String> = vec![
        format!("model.path={}", model.display()),
        "rollout.batch_size=16".into(),
        "rollout.group_size=4".into(),
        "rollout.max_new_tokens=8".into(),
        "rollout.generation_batch=16".into(),
        "algorithm.micro_batch=8".into(),
        "algorithm.chunk_positions=8".into(),
        "optim.lr=0.01".into(),
        "optim.weight_decay=0".into(),
        "trainer.steps=2".into(),
        "trainer.val_every=0".into(),
        "trainer.val_size=4".into(),
        "trainer.ckpt_every=0".into(),
        "trainer.keep_checkpoints=0".into(),
        "trainer.seed=3".into(),
    ];
    sets.extend(extra.iter().map(|s| s.to_string()));
    TrainConfig::resolve(None, &sets).unwrap()
}

fn steps_only(metrics: &[serde_json::Value]) -> Vec<serde_json::Value> {
    metrics
        .iter()
        .filter(|m| m.get("reward_mean").is_some() || m.get("val_accuracy").is_some())
        .map(|m| {
            let mut m = m.clone();
            for k in WALL_CLOCK_METRICS {
                m.as_object_mut().unwrap().remove(*k);
            }
            m
        })
        .collect()
}

#[test]
fn steps_run_with_finite_losses_and_change_parameters() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let run = d.path().join("run");
    let cfg = config(
        &model,
        &[
            "algorithm.kl_coef=0.05",
            "algorithm.mini_batches=2",
            "algorithm.ppo_epochs=2",
        ],
    );
    let mut t = Trainer::create_with_task(cfg, Box::new(DigitTask::new()), &run).unwrap();
    let before: Vec<Vec<f32>> = t
        .policy()
        .model
        .parameters()
        .iter()
        .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    let summary = t.train(&mut SilentObserver).unwrap();
    assert_eq!(summary.steps, 2);
    let after: Vec<Vec<f32>> = t
        .policy()
        .model
        .parameters()
        .iter()
        .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert!(
        changed > before.len() / 2,
        "only {changed} of {} tensors changed",
        before.len()
    );
    let metrics = read_metrics(&run).unwrap();
    let steps: Vec<_> = metrics
        .iter()
        .filter(|m| m.get("reward_mean").is_some())
        .collect();
    assert_eq!(steps.len(), 2);
    for m in &steps {
        for k in [
            "loss",
            "grad_norm",
            "kl",
            "entropy_mean",
            "clip_frac",
            "adv_std",
            "lr",
        ] {
            let v = m[k]
                .as_f64()
                .unwrap_or_else(|| panic!("{k} missing in {m}"));
            assert!(v.is_finite(), "{k} = {v}");
        }
        assert!(m["grad_norm"].as_f64().unwrap() > 0.0);
    }
    // validation before and after, files of the run directory
    let vals: Vec<_> = metrics
        .iter()
        .filter(|m| m.get("val_accuracy").is_some())
        .collect();
    assert_eq!(
        vals.iter()
            .map(|m| m["step"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert!(run.join("config.toml").is_file());
    assert!(run.join("samples/step-1.jsonl").is_file());
    assert!(run.join("checkpoints/step-2/manifest.json").is_file());
    assert!(std::fs::read_dir(run.join("tb")).unwrap().count() == 1);
    let sample: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(run.join("samples/step-1.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    for k in [
        "step",
        "prompt",
        "response",
        "reward",
        "correct",
        "planning_spans",
    ] {
        assert!(sample.get(k).is_some(), "sample lacks {k}");
    }
}

#[test]
fn reward_rises_on_a_trivially_learnable_task() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let run = d.path().join("run");
    let cfg = config(
        &model,
        &[
            "trainer.steps=16",
            "algorithm.hicra.variant=none",
            "optim.lr=0.02",
        ],
    );
    let mut t = Trainer::create_with_task(cfg, Box::new(DigitTask::new()), &run).unwrap();
    t.train(&mut SilentObserver).unwrap();
    let rewards: Vec<f64> = read_metrics(&run)
        .unwrap()
        .iter()
        .filter_map(|m| m.get("reward_mean").and_then(|v| v.as_f64()))
        .collect();
    assert_eq!(rewards.len(), 16);
    let first: f64 = rewards[..4].iter().sum::<f64>() / 4.0;
    let last: f64 = rewards[12..].iter().sum::<f64>() / 4.0;
    assert!(last > first + 0.15, "reward did not rise: {rewards:?}");
}

#[test]
fn resume_reproduces_the_uninterrupted_run_exactly() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let full = d.path().join("full");
    let cfg = config(
        &model,
        &[
            "trainer.steps=4",
            "trainer.ckpt_every=2",
            "trainer.val_every=2",
        ],
    );
    Trainer::create_with_task(cfg, Box::new(DigitTask::new()), &full)
        .unwrap()
        .train(&mut SilentObserver)
        .unwrap();
    // An interrupted copy: the state after step 2, with metrics of steps 3-4 half written.
    let cut = d.path().join("cut");
    copy_dir(&full, &cut);
    std::fs::remove_dir_all(cut.join("checkpoints/step-4")).unwrap();
    let mut resumed = Trainer::resume_with_task(&cut, Box::new(DigitTask::new())).unwrap();
    assert_eq!(resumed.state().step, 2);
    resumed.train(&mut SilentObserver).unwrap();
    let a = steps_only(&read_metrics(&full).unwrap());
    let b = steps_only(&read_metrics(&cut).unwrap());
    assert_eq!(a.len(), 7); // val 0, 1, 2, val 2, 3, 4, val 4
    assert_eq!(a, b);
}

#[test]
fn damaged_checkpoints_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let run = d.path().join("run");
    let cfg = config(&model, &["trainer.steps=1"]);
    Trainer::create_with_task(cfg, Box::new(DigitTask::new()), &run)
        .unwrap()
        .train(&mut SilentObserver)
        .unwrap();
    let ck = run.join("checkpoints/step-1");
    // corrupted weights
    let weights = ck.join("hf/model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x55;
    std::fs::write(&weights, &bytes).unwrap();
    match Trainer::resume_with_task(&run, Box::new(DigitTask::new())) {
        Err(RlError::CheckpointCorrupted { file, .. }) => assert_eq!(file, "hf/model.safetensors"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a corrupted checkpoint was accepted"),
    }
    // half-written: no manifest
    std::fs::remove_file(ck.join("manifest.json")).unwrap();
    assert!(matches!(
        Trainer::resume_with_task(&run, Box::new(DigitTask::new())),
        Err(RlError::CheckpointIncomplete { .. })
    ));
}

#[test]
fn a_new_run_refuses_an_existing_run_directory() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let run = d.path().join("run");
    let cfg = config(&model, &["trainer.steps=1"]);
    Trainer::create_with_task(cfg.clone(), Box::new(DigitTask::new()), &run)
        .unwrap()
        .train(&mut SilentObserver)
        .unwrap();
    assert!(Trainer::create_with_task(cfg, Box::new(DigitTask::new()), &run).is_err());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn entropy_based_variants_with_recompute_and_dynamic_sampling_run() {
    for variant in ["released", "entropy", "placebo"] {
        let d = tempfile::tempdir().unwrap();
        let model = tiny_model(d.path());
        let run = d.path().join("run");
        let v = format!("algorithm.hicra.variant={variant}");
        let cfg = config(
            &model,
            &[
                &v,
                "algorithm.recompute_old_logprobs=true",
                "algorithm.dynamic_sampling=true",
                "algorithm.advantage=rloo",
                "algorithm.loss_agg=seq-mean-token-sum-norm",
                "trainer.steps=1",
            ],
        );
        let mut t = Trainer::create_with_task(cfg, Box::new(DigitTask::new()), &run).unwrap();
        t.train(&mut SilentObserver).unwrap();
        let m = read_metrics(&run).unwrap();
        let step = m.iter().find(|m| m.get("reward_mean").is_some()).unwrap();
        for k in ["loss", "grad_norm", "token_entropy_execution"] {
            assert!(
                step[k].as_f64().is_some_and(f64::is_finite),
                "{variant}: {k} in {step}"
            );
        }
    }
}

/// Answers row `i` of a call with `texts[(seed + i) % n]` and an EOS, so the responses hold
/// known Strategic Grams and their rewards differ within groups; counts weight syncs.
struct ScriptedGenerator {
    responses: Vec<Vec<u32>>,
    eos: u32,
    syncs: Arc<Mutex<Vec<u64>>>,
}

impl ScriptedGenerator {
    fn new(model: &Path, syncs: Arc<Mutex<Vec<u64>>>) -> Self {
        let tok = tiny::test_tokenizer();
        let texts = [
            "alright, let me check if 12 works",
            "but wait, 7 is wrong",
            "12 34 56 78 90 12 34 56 78 90 12 34",
            "hello there friend",
            "alternatively 345",
        ];
        let loaded = hicra_model::load_hf_dir(model, &hicra_model::LoadOptions::default()).unwrap();
        ScriptedGenerator {
            responses: texts
                .iter()
                .map(|t| tok.encode(t, false).unwrap())
                .collect(),
            eos: loaded.eos_token_ids[0],
            syncs,
        }
    }
}

impl Generator for ScriptedGenerator {
    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
    ) -> hicra_rl::Result<Vec<Generation>> {
        let n = self.responses.len();
        Ok((0..prompts.len())
            .map(|i| {
                let mut ids = self.responses[(params.seed as usize).wrapping_add(i) % n].clone();
                ids.push(self.eos);
                Generation {
                    logprobs: vec![-1.0; ids.len()],
                    token_ids: ids,
                    finish_reason: FinishReason::Stop,
                }
            })
            .collect())
    }

    fn sync_weights(&mut self, step: u64, _policy: &hicra_model::Model) -> hicra_rl::Result<()> {
        self.syncs.lock().unwrap().push(step);
        Ok(())
    }
}

/// Records the credit of every step.
#[derive(Default)]
struct CreditLog {
    steps: Vec<CreditRecord>,
}

struct CreditRecord {
    rewards: Vec<f32>,
    correct: Vec<bool>,
    lengths: Vec<usize>,
    planning: Vec<Vec<bool>>,
    entropies: Option<Vec<Vec<f32>>>,
    advantages: TokenAdvantages,
}

impl TrainObserver for CreditLog {
    fn event(&mut self, event: &TrainEvent<'_>) {
        if let TrainEvent::Credit {
            rollouts,
            planning,
            entropies,
            advantages,
            ..
        } = event
        {
            self.steps.push(CreditRecord {
                rewards: rollouts.iter().map(|r| r.reward).collect(),
                correct: rollouts.iter().map(|r| r.correct).collect(),
                lengths: rollouts.iter().map(|r| r.response_ids.len()).collect(),
                planning: planning.to_vec(),
                entropies: entropies.map(<[Vec<f32>]>::to_vec),
                advantages: (*advantages).clone(),
            });
        }
    }
}

fn count(flags: &[bool]) -> usize {
    flags.iter().filter(|&&f| f).count()
}

/// Checks one step's credit against the variant's rule, computed here from the rewards, the
/// planning masks and the entropies; returns the number of marked tokens.
fn check_credit(variant: HicraVariant, c: &CreditRecord, group: usize) -> usize {
    let alpha = 0.2f32;
    let outcome = compute_advantages(
        AdvantageEstimator::Grpo,
        &c.rewards,
        group,
        &AdvantageOptions::default(),
    )
    .unwrap();
    let mut marked_total = 0;
    for (i, &a) in outcome.iter().enumerate() {
        let marked = &c.advantages.marked[i];
        let planning = &c.planning[i];
        marked_total += count(marked);
        match variant {
            HicraVariant::None => assert_eq!(count(marked), 0),
            HicraVariant::Paper => assert_eq!(marked, planning, "response {i}"),
            HicraVariant::Placebo => assert_eq!(count(marked), count(planning), "response {i}"),
            HicraVariant::Entropy => {
                let e = &c.entropies.as_ref().expect("entropies were scored")[i];
                assert_eq!(marked, &high_entropy_mask(e, 0.7), "response {i}");
            }
            HicraVariant::Released => {
                let g0 = i / group * group;
                let mean_len =
                    c.lengths[g0..g0 + group].iter().sum::<usize>() as f64 / group as f64;
                let e = &c.entropies.as_ref().expect("entropies were scored")[i];
                let expect: Vec<bool> = if c.correct[i] && c.lengths[i] as f64 > mean_len {
                    let hi = high_entropy_mask(e, 0.7);
                    planning.iter().zip(hi).map(|(&p, h)| p || h).collect()
                } else {
                    vec![false; planning.len()]
                };
                assert_eq!(marked, &expect, "response {i}");
            }
        }
        for (t, &m) in marked.iter().enumerate() {
            let expect = match (m, variant) {
                (false, _) => a,
                (true, HicraVariant::Released) => a * (1.0 + alpha * a.signum()),
                (true, _) => a + alpha * a.abs(),
            };
            let got = c.advantages.advantages[i][t];
            assert!(
                (got - expect).abs() < 1e-6,
                "response {i} token {t}: {got} vs {expect}"
            );
        }
    }
    marked_total
}

#[test]
fn each_variant_marks_the_tokens_its_rule_names() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    for variant in [
        HicraVariant::None,
        HicraVariant::Paper,
        HicraVariant::Released,
        HicraVariant::Entropy,
        HicraVariant::Placebo,
    ] {
        let name = serde_json::to_value(variant).unwrap();
        let v = format!("algorithm.hicra.variant={}", name.as_str().unwrap());
        let cfg = config(&model, &[&v, "algorithm.recompute_old_logprobs=true"]);
        let run = d.path().join(format!("run-{}", name.as_str().unwrap()));
        let mut t = Trainer::create_with_task(cfg, Box::new(DigitTask::new()), &run).unwrap();
        let syncs = Arc::new(Mutex::new(Vec::new()));
        t.set_generator(Box::new(ScriptedGenerator::new(&model, syncs.clone())))
            .unwrap();
        let mut log = CreditLog::default();
        t.train(&mut log).unwrap();
        assert_eq!(log.steps.len(), 2);
        let planning: usize = log.steps[0].planning.iter().map(|p| count(p)).sum();
        assert!(planning > 0, "the scripted responses hold Strategic Grams");
        let marked: usize = log.steps.iter().map(|c| check_credit(variant, c, 4)).sum();
        if variant != HicraVariant::None {
            assert!(marked > 0, "{variant:?} marked no token");
        }
        // The generator is synced once when set, then after each optimiser step.
        assert_eq!(*syncs.lock().unwrap(), vec![0, 1, 2]);
    }
}

/// Collects the records a trainer logs.
struct Collect(Arc<Mutex<Vec<(u64, Record)>>>);

impl MetricsSink for Collect {
    fn log(&mut self, step: u64, values: &Record) -> hicra_rl::Result<()> {
        self.0.lock().unwrap().push((step, values.clone()));
        Ok(())
    }
    fn flush(&mut self) -> hicra_rl::Result<()> {
        Ok(())
    }
}

/// Zeroes every gradient, so nothing can change (weight decay is off).
struct ZeroGradients(Arc<Mutex<usize>>);

impl GradientHook for ZeroGradients {
    fn gradients_ready(
        &mut self,
        _params: &[(String, candle_core::Var)],
        grads: &mut [Option<candle_core::Tensor>],
    ) -> hicra_rl::Result<()> {
        *self.0.lock().unwrap() += 1;
        for g in grads.iter_mut().flatten() {
            *g = g.zeros_like()?;
        }
        Ok(())
    }
}

#[test]
fn an_in_memory_run_writes_no_files_and_the_hook_sees_every_step() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let cfg = config(&model, &["trainer.ckpt_every=1", "trainer.samples_every=1"]);
    let policy = hicra_model::load_hf_dir(&model, &hicra_model::LoadOptions::default()).unwrap();
    let records = Arc::new(Mutex::new(Vec::new()));
    let setup = RunSetup::in_memory(vec![Box::new(Collect(records.clone()))]);
    let mut t = Trainer::new(
        cfg,
        Box::new(DigitTask::new()),
        policy,
        None,
        TrainerState::fresh(),
        None,
        setup,
    )
    .unwrap();
    let hook_calls = Arc::new(Mutex::new(0));
    t.updater_mut()
        .set_hook(Box::new(ZeroGradients(hook_calls.clone())));
    let before = t.policy().model.named_tensors();
    let handle = std::thread::spawn(move || {
        let summary = t.train(&mut SilentObserver).unwrap();
        (summary, t)
    });
    let (summary, t) = handle.join().unwrap();
    assert_eq!(summary.run_dir, None);
    assert_eq!(summary.steps, 2);
    assert_eq!(*hook_calls.lock().unwrap(), 2);
    for ((name, a), (_, b)) in before.iter().zip(t.policy().model.named_tensors()) {
        let diff = (a - &b).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{name} changed");
    }
    let records = records.lock().unwrap();
    let steps: Vec<u64> = records
        .iter()
        .filter(|(_, r)| r.contains_key("reward_mean"))
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(steps, vec![1, 2]);
    assert!(records.iter().any(|(_, r)| r.contains_key("val_accuracy")));
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        1,
        "only the model dir"
    );
    assert!(t.run_dir().is_none());
}
