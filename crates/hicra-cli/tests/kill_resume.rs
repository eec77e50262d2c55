//! `kill -9` at seeded random moments of `train`, `sft`, `eval` and `export`, each followed by
//! what a user does next (`--resume` where the output says a run is there, else the command
//! again), until the job finishes: the outputs are byte for byte those of an uninterrupted
//! run (wall-clock metrics aside), and no temporary is left.
//!
//! Each command is killed [`KILLS`] times, in one or more chains (a chain ends when a run
//! finishes before its kill). The moments are drawn from [`SEED`] (`HICRA_KILL_SEED`
//! overrides it) as fractions of the uninterrupted run's duration; where a kill lands varies
//! with the machine, and the outputs must not.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{s, temporaries, tree};
use hicra_model::Arch;
use hicra_model::io::tiny::{CHATML_TEMPLATE, test_tokenizer, tiny_config, write_tiny_model};
use serde_json::Value;

/// Kills per command.
const KILLS: usize = 6;
/// The seed of the kill moments.
const SEED: u64 = 20_261_207;

/// SplitMix64: the kill moments' random stream.
struct Moments(u64);

impl Moments {
    fn next_fraction(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A command line for an output directory.
type CommandLine = Box<dyn Fn(&Path) -> Vec<String>>;
/// A command line continuing an output directory, when it shows a run to continue.
type ResumeLine = Box<dyn Fn(&Path) -> Option<Vec<String>>>;

/// One command under test: how to start it into an output, how a user goes on after a kill,
/// and what of its output must equal the uninterrupted run's.
struct Job {
    name: &'static str,
    /// The command line writing into `out`.
    start: CommandLine,
    /// The command line continuing `out`, when `out` shows a run to continue.
    resume: ResumeLine,
    /// The comparable outputs of a finished `out`.
    outputs: fn(&Path) -> BTreeMap<PathBuf, Vec<u8>>,
}

fn spawn(args: &[String]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_hicra"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs `job` uninterrupted into `dir/reference`; returns its outputs and duration.
fn reference(job: &Job, dir: &Path) -> (BTreeMap<PathBuf, Vec<u8>>, Duration) {
    let out = dir.join("reference");
    let t0 = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_hicra"))
        .args((job.start)(&out))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}: {}",
        job.name,
        String::from_utf8_lossy(&o.stderr)
    );
    ((job.outputs)(&out), t0.elapsed())
}

/// Kills `job` [`KILLS`] times at moments from `moments`, resuming after each, and checks
/// every finished chain against the reference.
fn kill_and_resume(job: &Job, dir: &Path, moments: &mut Moments) -> usize {
    let (expected, duration) = reference(job, dir);
    let mut landed = 0;
    let mut chain = 0;
    while landed < KILLS {
        let out = dir.join(format!("chain-{chain}"));
        loop {
            let args = (job.resume)(&out).unwrap_or_else(|| (job.start)(&out));
            let mut child = spawn(&args);
            if landed < KILLS {
                let at = duration.mul_f64(0.05 + 0.8 * moments.next_fraction());
                std::thread::sleep(at);
                if child.try_wait().unwrap().is_none() {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    landed += 1;
                    eprintln!("{}: chain {chain}: killed after {at:?}", job.name);
                    continue;
                }
            }
            let status = child.wait().unwrap();
            if !status.success() {
                // Once more, to show why (the output as the failed run left it).
                let again = Command::new(env!("CARGO_BIN_EXE_hicra"))
                    .args(&args)
                    .output()
                    .unwrap();
                panic!(
                    "{}: chain {chain}: {args:?} failed; again: {}",
                    job.name,
                    String::from_utf8_lossy(&again.stderr)
                );
            }
            break;
        }
        assert_eq!(
            (job.outputs)(&out),
            expected,
            "{}: chain {chain} differs from the uninterrupted run",
            job.name
        );
        let left = temporaries(dir);
        assert!(left.is_empty(), "{}: temporaries left: {left:?}", job.name);
        chain += 1;
    }
    landed
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

/// `metrics.jsonl` without the wall-clock metrics, as bytes.
fn metrics_without_clock(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        for key in hicra_rl::metrics::WALL_CLOCK_METRICS {
            v.as_object_mut().unwrap().remove(*key);
        }
        out.extend(v.to_string().bytes());
        out.push(b'\n');
    }
    out
}

fn train_outputs(out: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = tree(out);
    files.retain(|p, _| !p.starts_with("tb"));
    files.insert(
        "metrics.jsonl".into(),
        metrics_without_clock(&out.join("metrics.jsonl")),
    );
    files
}

fn eval_outputs(out: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = tree(out);
    let mut summary: Value = serde_json::from_slice(&files[Path::new("summary.json")]).unwrap();
    summary.as_object_mut().unwrap().remove("time_s");
    files.insert("summary.json".into(), summary.to_string().into_bytes());
    files
}

fn eval_args(model: &str, data: &str, out: &Path) -> Vec<String> {
    args(&[
        "eval",
        "--model",
        model,
        "--dataset",
        data,
        "--samples",
        "2",
        "--max-new-tokens",
        "12",
        "--batch-size",
        "3",
        "--seed",
        "5",
        "--out",
        s(out),
    ])
}

fn jobs(dir: &Path) -> Vec<Job> {
    let tok = test_tokenizer();
    let model = dir.join("model");
    write_tiny_model(
        &model,
        &tiny_config(Arch::Llama, tok.vocab_size()),
        &tok,
        Some(CHATML_TEMPLATE),
        8,
    )
    .unwrap();
    let model = s(&model).to_string();
    let train_cfg = common::tiny_arith_config(
        dir,
        &model,
        6,
        8,
        "steps = 4\nval_every = 2\nval_size = 2\nckpt_every = 1\nkeep_checkpoints = 0\nseed = 3",
    );
    let data = dir.join("bench.jsonl");
    common::write_problems(&data, 8);
    let sft_data = dir.join("sft.jsonl");
    std::fs::write(
        &sft_data,
        "{\"prompt\": \"The answer is\", \"completion\": \" 7. So the final answer is 7.\"}\n\
         {\"prompt\": \"Hello,\", \"completion\": \" world! The quick brown fox.\"}\n",
    )
    .unwrap();
    let sft_cfg = dir.join("sft.toml");
    std::fs::write(
        &sft_cfg,
        format!(
            "[model]\npath = \"{model}\"\n[sft]\ndata = \"{}\"\nsteps = 12\nbatch_size = 2\n\
             lr = 0.01\nwarmup_steps = 0\nlog_every = 1\n",
            s(&sft_data)
        ),
    )
    .unwrap();
    let (m1, m2, m3) = (model.clone(), model.clone(), model);
    let cfg = s(&train_cfg).to_string();
    let sft = s(&sft_cfg).to_string();
    let (d1, d2) = (s(&data).to_string(), s(&data).to_string());
    vec![
        Job {
            name: "train",
            start: Box::new(move |out| args(&["train", "--config", &cfg, "--out", s(out)])),
            resume: Box::new(|out| {
                out.join("config.toml")
                    .is_file()
                    .then(|| args(&["train", "--resume", s(out)]))
            }),
            outputs: train_outputs,
        },
        Job {
            name: "sft",
            start: Box::new(move |out| args(&["sft", "--config", &sft, "--out", s(out)])),
            resume: Box::new(|out| {
                out.join("config.toml")
                    .is_file()
                    .then(|| args(&["sft", "--resume", s(out)]))
            }),
            outputs: tree,
        },
        Job {
            name: "eval",
            start: Box::new(move |out| eval_args(&m1, &d1, out)),
            resume: Box::new(move |out| {
                out.join("eval_run.json").is_file().then(|| {
                    let mut a = eval_args(&m2, &d2, out);
                    a.push("--resume".into());
                    a
                })
            }),
            outputs: eval_outputs,
        },
        Job {
            name: "export",
            start: Box::new(move |out| args(&["export", "--model", &m3, "--out", s(out)])),
            resume: Box::new(|_| None),
            outputs: tree,
        },
    ]
}

#[test]
fn killed_commands_resume_to_the_uninterrupted_result() {
    let seed = std::env::var("HICRA_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SEED);
    eprintln!("kill moments from seed {seed}");
    let mut moments = Moments(seed);
    let d = tempfile::tempdir().unwrap();
    let mut total = 0;
    for job in jobs(d.path()) {
        let dir = d.path().join(job.name);
        std::fs::create_dir_all(&dir).unwrap();
        total += kill_and_resume(&job, &dir, &mut moments);
    }
    assert!(total >= 20, "{total} kills");
}
