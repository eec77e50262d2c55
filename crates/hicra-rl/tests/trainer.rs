//! Trainer integration tests on tiny random models: steps run with finite losses and changing
//! parameters, the reward rises on a trivially learnable task, resuming reproduces the
//! uninterrupted run exactly, and damaged checkpoints are refused.

use std::path::{Path, PathBuf};

use hicra_model::{Arch, tiny};
use hicra_rl::RlError;
use hicra_rl::config::TrainConfig;
use hicra_rl::trainer::{SilentObserver, Trainer, WALL_CLOCK_METRICS, read_metrics};
use hicra_tasks::{FormattedPrompt, Problem, PromptSource, Score, Task};

/// Reward = share of the response's characters that are ASCII digits: continuous, so groups
/// almost always have reward variance, and learnable by shifting token probabilities.
struct DigitTask {
    validation: Vec<Problem>,
}

fn problem(i: u64) -> Problem {
    Problem {
        id: format!("p{i}"),
        prompt: PromptSource::Text(
            [
                "Hello, world!",
                "The answer is",
                "Alice has 5 apples",
                "If x = 3, then",
            ][i as usize % 4]
                .to_string(),
        ),
        gold: serde_json::json!(0),
        data_source: "digits".into(),
    }
}

impl DigitTask {
    fn new() -> Self {
        DigitTask {
            validation: (0..4).map(problem).collect(),
        }
    }
}

impl Task for DigitTask {
    fn name(&self) -> &str {
        "digits"
    }
    fn train_problem(&self, position: u64) -> Problem {
        problem(position)
    }
    fn validation_problems(&self) -> &[Problem] {
        &self.validation
    }
    fn prompt(&self, problem: &Problem) -> FormattedPrompt {
        FormattedPrompt::Raw(problem.prompt.problem_text().to_string())
    }
    fn score(&self, _problem: &Problem, response: &str) -> Score {
        let n = response.chars().count().max(1) as f32;
        let digits = response.chars().filter(|c| c.is_ascii_digit()).count() as f32;
        Score {
            reward: digits / n,
            correct: digits / n > 0.5,
            extracted: None,
        }
    }
}

fn tiny_model(dir: &Path) -> PathBuf {
    let tok = tiny::test_tokenizer();
    let cfg = tiny::tiny_config(Arch::Llama, tok.vocab_size());
    let path = dir.join("model");
    tiny::write_tiny_model(&path, &cfg, &tok, None, 7).unwrap();
    path
}

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
        for k in [
            "loss",
            "grad_norm",
            "token_entropy_execution",
            "hicra_marked_frac",
        ] {
            assert!(
                step[k].as_f64().is_some_and(f64::is_finite),
                "{variant}: {k} in {step}"
            );
        }
    }
}
