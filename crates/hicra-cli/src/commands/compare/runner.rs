//! Runs a comparison's training runs as separate `hicra train` processes, `jobs` at a time,
//! each with `RAYON_NUM_THREADS = threads_per_run`; finished runs are reused, unfinished
//! ones resume from their latest checkpoint, runs without one start over. Prints each
//! run's fate and the overall progress with an ETA.
//!
//! Child processes (rather than threads) give every run its own thread pool, so the thread
//! count of a run, and with it its arithmetic, does not depend on what runs beside it.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hicra_rl::checkpoint::{checkpoint_dir, verify_checkpoint};
use hicra_rl::config::TrainConfig;
use hicra_rl::run_dir::RunDir;
use hicra_rl::run_record::RunKind;

use super::progress::{Progress, format_duration, last_step};

/// One training run of the comparison.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// `method-seedN`.
    pub name: String,
    /// The method name.
    pub method: String,
    /// The trainer seed.
    pub seed: u64,
    /// The run directory.
    pub dir: PathBuf,
    /// The run's full configuration.
    pub config: TrainConfig,
}

impl RunPlan {
    fn steps(&self) -> u64 {
        self.config.trainer.steps as u64
    }
}

/// How the runs are executed.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Runs side by side.
    pub jobs: usize,
    /// `RAYON_NUM_THREADS` of each run.
    pub threads_per_run: usize,
    /// The `hicra` executable.
    pub exe: PathBuf,
    /// Where each run's config and log go (`<name>.toml`, `<name>.log`).
    pub work_dir: PathBuf,
    /// Seconds between progress lines (also printed when a run ends).
    pub progress_every: Duration,
}

/// What a run needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Nothing,
    Resume,
    Start,
}

/// What a run directory holds: a finished run, one to resume, or nothing reusable (then
/// `hicra train` starts it over). A run made with another configuration, or files no run
/// wrote, are an error naming the directory.
fn need_of(plan: &RunPlan) -> anyhow::Result<Need> {
    match RunDir::inspect(&plan.dir)? {
        RunDir::Vacant
        | RunDir::Run {
            kind: RunKind::Train,
            kept: None,
        } => return Ok(Need::Start),
        RunDir::Run {
            kind: RunKind::Train,
            kept: Some(_),
        } => {}
        RunDir::Run { .. } | RunDir::Foreign(_) => bail!(
            "{} holds files that are not a training run: choose another --out",
            plan.dir.display()
        ),
    }
    let checkpoints = plan.dir.join("checkpoints");
    let path = plan.dir.join("config.toml");
    let existing = TrainConfig::load(Some(&path), &[])
        .with_context(|| format!("reading the existing run's {}", path.display()))?;
    if existing != plan.config {
        bail!(
            "{} holds a run made with another configuration than this comparison's \
             (steps, seeds or settings changed): choose another --out or remove the directory",
            plan.dir.display()
        );
    }
    if verify_checkpoint(&checkpoint_dir(&checkpoints, plan.steps())).is_ok() {
        Ok(Need::Nothing)
    } else {
        Ok(Need::Resume)
    }
}

/// The `hicra train` invocation of a run: the only place the comparison starts training.
fn train_command(plan: &RunPlan, need: Need, opts: &RunnerOptions) -> anyhow::Result<Command> {
    let mut cmd = Command::new(&opts.exe);
    if need == Need::Resume {
        cmd.arg("train").arg("--resume").arg(&plan.dir);
    } else {
        let config = opts.work_dir.join(format!("{}.toml", plan.name));
        std::fs::write(&config, plan.config.to_toml())
            .with_context(|| format!("writing {}", config.display()))?;
        cmd.arg("train")
            .arg("--config")
            .arg(&config)
            .arg("--out")
            .arg(&plan.dir);
    }
    cmd.env("RAYON_NUM_THREADS", opts.threads_per_run.to_string());
    Ok(cmd)
}

fn log_file(path: &Path) -> anyhow::Result<(File, File)> {
    let open = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the log {}", path.display()))
    };
    Ok((open()?, open()?))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn done_steps(plan: &RunPlan) -> u64 {
    let text = std::fs::read_to_string(plan.dir.join("metrics.jsonl")).unwrap_or_default();
    last_step(&text, plan.steps())
}

struct Running {
    index: usize,
    child: Child,
    log: PathBuf,
}

/// Starts a run's `hicra train` process, its output appended to `<work_dir>/<name>.log`.
fn launch(
    plan: &RunPlan,
    index: usize,
    need: Need,
    opts: &RunnerOptions,
) -> anyhow::Result<Running> {
    let log = opts.work_dir.join(format!("{}.log", plan.name));
    let (out, err) = log_file(&log)?;
    let child = train_command(plan, need, opts)?
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .with_context(|| format!("starting {}", opts.exe.display()))?;
    match need {
        Need::Resume => println!("{}: resuming after step {}", plan.name, done_steps(plan)),
        _ => println!("{}: starting", plan.name),
    }
    Ok(Running { index, child, log })
}

/// Brings every run to its last step. Runs that fail are reported with the end of their
/// log; the others still run, and the call then fails naming the failed runs.
pub fn run_all(plans: &[RunPlan], opts: &RunnerOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.work_dir)
        .with_context(|| format!("creating {}", opts.work_dir.display()))?;
    let mut queue = VecDeque::new();
    let mut finished = vec![false; plans.len()];
    for (index, plan) in plans.iter().enumerate() {
        match need_of(plan)? {
            Need::Nothing => {
                println!("{}: finished, skipped", plan.name);
                finished[index] = true;
            }
            need => queue.push_back((index, need)),
        }
    }
    let total: u64 = plans.iter().map(RunPlan::steps).sum();
    let done = |finished: &[bool]| -> u64 {
        plans
            .iter()
            .zip(finished)
            .map(|(p, &f)| if f { p.steps() } else { done_steps(p) })
            .sum()
    };
    let done_at_start = done(&finished);
    if !queue.is_empty() {
        println!(
            "{} of {} runs to train, {} side by side ({} thread{} each); logs in {}",
            queue.len(),
            plans.len(),
            opts.jobs,
            opts.threads_per_run,
            if opts.threads_per_run == 1 { "" } else { "s" },
            opts.work_dir.display()
        );
    }
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut report_due = false;
    let mut running: Vec<Running> = Vec::new();
    let mut failures = Vec::new();
    let report = |finished: &[bool], running: usize| {
        let progress = Progress {
            total,
            done: done(finished),
            done_at_start,
        };
        let eta = progress
            .eta(start.elapsed())
            .map_or_else(|| "estimating".to_string(), format_duration);
        println!(
            "progress: {}/{} steps, {}/{} runs done, {running} running, elapsed {}, ETA {eta}",
            progress.done,
            progress.total,
            finished.iter().filter(|f| **f).count(),
            plans.len(),
            format_duration(start.elapsed()),
        );
    };
    while !queue.is_empty() || !running.is_empty() {
        while running.len() < opts.jobs.max(1) {
            let Some((index, need)) = queue.pop_front() else {
                break;
            };
            running.push(launch(&plans[index], index, need, opts)?);
        }
        if report_due {
            report(&finished, running.len());
            report_due = false;
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut still = Vec::new();
        for mut r in running.drain(..) {
            match r.child.try_wait().context("waiting for a training run")? {
                None => still.push(r),
                Some(status) => {
                    report_due = true;
                    let plan = &plans[r.index];
                    if status.success() {
                        finished[r.index] = true;
                        println!("{}: done", plan.name);
                    } else {
                        eprintln!(
                            "{}: failed ({status}); end of {}:\n{}",
                            plan.name,
                            r.log.display(),
                            tail(&r.log, 15)
                        );
                        failures.push(plan.name.clone());
                    }
                }
            }
        }
        running = still;
        report_due |= last_report.elapsed() >= opts.progress_every;
    }
    if report_due {
        report(&finished, 0);
    }
    if !failures.is_empty() {
        bail!(
            "{} run(s) failed: {} (rerun the same command to resume them)",
            failures.len(),
            failures.join(", ")
        );
    }
    Ok(())
}
