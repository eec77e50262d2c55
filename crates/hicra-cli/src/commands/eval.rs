//! `hicra eval`: evaluates a model on a benchmark with the paper's protocol (K samples per
//! problem at temperature 0.6, strict `\boxed{}` matching, averaged pass@1 and pass@k), and
//! writes `items.jsonl` as problems finish, then `summary.json`. `--resume` continues a killed
//! run from its `items.jsonl` with the samples an uninterrupted run would have drawn
//! ([`out_dir`]: what a run checks before it continues or replaces one). Records that cannot
//! be evaluated (malformed, or a prompt too long for the model) are skipped and listed in the
//! summary, unless `--on-error fail`.

mod out_dir;
mod progress;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use hicra_tasks::arith::{ArithConfig, ArithTask};
use hicra_tasks::lab::{LabConfig, LabTask};
use hicra_tasks::{
    AnswerKind, BOXED_INSTRUCTION, Dataset, FieldSpec, LoadOptions, MathTask, OnError, Problem,
    PromptFormat, PromptStyle, Task,
};
use hicra_verify::ExtractMode;

use crate::evaluation::{EvalSettings, SkippedItem, evaluate, summarize};
use out_dir::{Existing, ItemWriter, RunIdentity, open_run};
use progress::Progress;

/// Arguments of `hicra eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model: a Hugging Face directory, a .gguf file or a fetched model's name.
    #[arg(long)]
    pub model: String,
    /// Data: a .jsonl/.json/.parquet file (the seven shared benchmarks are recognised by
    /// their folder name), or `lab` / `arith` for a built-in task's validation set.
    #[arg(long)]
    pub dataset: String,
    /// Field holding the problem (dotted path; default: prompt, problem or question).
    #[arg(long)]
    pub field_problem: Option<String>,
    /// Field holding the answer (dotted path; default: reward_model.ground_truth, answer,
    /// final_answer or solution).
    #[arg(long)]
    pub field_answer: Option<String>,
    /// How the gold is read from the answer field: auto, value, after-hashes, boxed.
    #[arg(long, default_value = "auto", value_parser = parse_answer_kind)]
    pub answer_kind: AnswerKind,
    /// Skip malformed records (reported by file and line) or stop at the first one.
    #[arg(long, default_value = "skip", value_parser = parse_on_error)]
    pub on_error: OnError,
    /// Samples per problem (K).
    #[arg(long, default_value_t = 1)]
    pub samples: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.6)]
    pub temperature: f64,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f64,
    /// Most new tokens per response.
    #[arg(long, default_value_t = 1024)]
    pub max_new_tokens: usize,
    /// Answer extraction: strict-boxed (the paper's protocol) or flexible.
    #[arg(long, default_value = "strict-boxed")]
    pub mode: ExtractMode,
    /// Evaluate only the first N problems.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Size of a built-in task's validation set (`lab`, `arith`; default: the task's own).
    #[arg(long)]
    pub task_size: Option<usize>,
    /// Output directory (default: eval/<dataset>-<model>-<hash of data, model and settings>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Rows (problem × sample) per generation batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// System prompt for chat prompts.
    #[arg(long)]
    pub system: Option<String>,
    /// Instruction appended to each problem (default: the boxed-answer instruction).
    #[arg(long)]
    pub instruction: Option<String>,
    /// Append no instruction to the problems.
    #[arg(long, conflicts_with = "instruction")]
    pub no_instruction: bool,
    /// Feed prompts as raw text, without the model's chat template.
    #[arg(long)]
    pub raw: bool,
    /// Continue the evaluation in `--out` from its `items.jsonl` (same data, model and
    /// settings required).
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Replace an earlier evaluation in `--out` (its three files; nothing else is touched).
    #[arg(long)]
    pub force: bool,
    /// Where the model runs and in which dtype.
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

fn parse_answer_kind(s: &str) -> Result<AnswerKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("`{s}` is not one of auto, value, after-hashes, boxed"))
}

fn parse_on_error(s: &str) -> Result<OnError, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("`{s}` is not one of skip, fail"))
}

/// The task and problems an evaluation runs on, with the records left out.
struct EvalData {
    name: String,
    task: Box<dyn Task>,
    problems: Vec<Problem>,
    /// The data file's sha256 (empty for a built-in task).
    data_sha256: String,
    skipped: Vec<SkippedItem>,
}

fn prompt_format(args: &Args) -> PromptFormat {
    PromptFormat {
        style: if args.raw {
            PromptStyle::Raw
        } else {
            PromptStyle::Chat
        },
        system: args.system.clone(),
        instruction: if args.no_instruction {
            None
        } else {
            Some(
                args.instruction
                    .clone()
                    .unwrap_or_else(|| BOXED_INSTRUCTION.to_string()),
            )
        },
    }
}

fn load_data(args: &Args) -> anyhow::Result<EvalData> {
    let verify = hicra_verify::Config::with_mode(args.mode);
    let path = Path::new(&args.dataset);
    anyhow::ensure!(
        args.task_size.is_none() || !path.is_file(),
        "--task-size sets the size of a built-in task (`lab`, `arith`), not of a data file \
         (use --limit)"
    );
    let mut data = if path.is_file() {
        let options = LoadOptions {
            fields: FieldSpec {
                problem: args.field_problem.clone(),
                answer: args.field_answer.clone(),
                answer_kind: args.answer_kind,
                ..FieldSpec::default()
            },
            on_error: args.on_error,
            limit: args.limit,
            ..LoadOptions::default()
        };
        let loaded = Dataset::load(path, &options)?;
        let skipped = loaded
            .skipped
            .iter()
            .map(|s| SkippedItem {
                location: s.location.to_string(),
                reason: s.reason.clone(),
            })
            .collect();
        let dataset = loaded.dataset;
        let problems = dataset.problems.clone();
        let name = dataset.name.clone();
        let task = MathTask::new(dataset.clone(), dataset, prompt_format(args), args.seed)
            .with_verify(verify);
        EvalData {
            name,
            task: Box::new(task),
            problems,
            data_sha256: hicra_model::io::digest::sha256_file(path)?,
            skipped,
        }
    } else if args.dataset == "lab" {
        let mut config = LabConfig::default();
        if let Some(size) = args.task_size {
            config.validation_size = size;
        }
        let task = LabTask::new(config)?;
        EvalData {
            name: "lab".into(),
            problems: task.validation_problems().to_vec(),
            task: Box::new(task),
            data_sha256: String::new(),
            skipped: Vec::new(),
        }
    } else if args.dataset == "arith" {
        let mut config = ArithConfig::default();
        if let Some(size) = args.task_size {
            config.validation_size = size;
        }
        let mut task = ArithTask::new(config)?;
        task.verify = verify;
        task.format = prompt_format(args);
        EvalData {
            name: "arith".into(),
            problems: task.validation_problems().to_vec(),
            task: Box::new(task),
            data_sha256: String::new(),
            skipped: Vec::new(),
        }
    } else {
        bail!(
            "{}: no such data file (give a .jsonl/.json/.parquet file, or `lab` / `arith`)",
            args.dataset
        );
    };
    if let Some(limit) = args.limit {
        data.problems.truncate(limit);
    }
    Ok(data)
}

fn run_args(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.samples >= 1, "--samples must be at least 1");
    anyhow::ensure!(args.batch_size >= 1, "--batch-size must be at least 1");
    anyhow::ensure!(
        args.max_new_tokens >= 1,
        "--max-new-tokens must be at least 1"
    );
    anyhow::ensure!(
        args.temperature >= 0.0 && args.temperature.is_finite(),
        "--temperature must be a finite number >= 0"
    );
    anyhow::ensure!(
        args.top_p > 0.0 && args.top_p <= 1.0,
        "--top-p must be in (0, 1]"
    );
    Ok(())
}

/// Leaves out the problems whose prompt does not fit the model's context (recorded as
/// skipped), or fails on the first with `--on-error fail`.
fn drop_overlong(
    data: &mut EvalData,
    model: &hicra_model::LoadedModel,
    settings: &EvalSettings,
    on_error: OnError,
) -> anyhow::Result<()> {
    let plan = settings.plan();
    let misfits = hicra_rl::generation::overlong_prompts(
        model,
        data.task.as_ref(),
        &data.problems,
        &plan.prompts,
        settings.max_new_tokens,
    )?;
    if let (Some((_, first)), OnError::Fail) = (misfits.first(), on_error) {
        bail!("{first} (--on-error skip leaves such problems out)");
    }
    for (index, _) in misfits.iter().rev() {
        data.problems.remove(*index);
    }
    data.skipped.extend(misfits.iter().map(|(_, message)| {
        let (location, reason) = message.split_once(": ").unwrap_or(("", message));
        SkippedItem {
            location: location.to_string(),
            reason: reason.to_string(),
        }
    }));
    Ok(())
}

/// Prints the skipped records.
fn report_skipped(skipped: &[SkippedItem]) {
    for s in skipped {
        eprintln!("warning: skipped {}: {}", s.location, s.reason);
    }
    if !skipped.is_empty() {
        eprintln!(
            "warning: {} records skipped (listed in summary.json under \"skipped\")",
            skipped.len()
        );
    }
}

/// Runs `hicra eval`.
pub fn run(args: Args) -> anyhow::Result<()> {
    run_args(&args)?;
    let mut data = load_data(&args)?;
    let settings = EvalSettings {
        samples: args.samples,
        temperature: args.temperature,
        top_p: args.top_p,
        max_new_tokens: args.max_new_tokens,
        batch_size: args.batch_size,
        seed: args.seed,
        use_chat_template: !args.raw,
    };
    let model = hicra_model::load_model(&args.model, &args.device.load_options()?)
        .with_context(|| format!("loading model {}", args.model))?;
    drop_overlong(&mut data, &model, &settings, args.on_error)?;
    report_skipped(&data.skipped);
    anyhow::ensure!(
        !data.problems.is_empty(),
        "{}: no problems to evaluate",
        args.dataset
    );
    let mode = serde_json::to_value(args.mode)?
        .as_str()
        .unwrap_or("strict-boxed")
        .to_string();
    let identity = RunIdentity {
        dataset: data.name.clone(),
        data_sha256: data.data_sha256.clone(),
        model: args.model.clone(),
        model_sha256: hicra_model::io::digest::sha256_model_spec(&args.model)?,
        mode: mode.clone(),
        problems: data.problems.len(),
        prompts_sha256: prompts_digest(&model, &data, &settings)?,
        settings: settings.clone(),
    };
    let out = match &args.out {
        Some(out) => out.clone(),
        None => identity.default_dir()?,
    };
    let existing = match (args.resume, args.force) {
        (true, _) => Existing::Resume,
        (false, true) => Existing::Replace,
        (false, false) => Existing::Refuse,
    };
    let mut items = open_run(&out, &identity, &data.problems, existing)?;
    let done = items.len();
    if done > 0 {
        eprintln!(
            "resuming {}: {done} of {} problems already evaluated",
            out.display(),
            data.problems.len()
        );
    }
    let mut writer = ItemWriter::append(&out.join("items.jsonl"))?;
    let progress = RefCell::new(Progress::new(&data.name, data.problems.len(), done));
    let start = Instant::now();
    evaluate(
        &model,
        data.task.as_ref(),
        &data.problems,
        &settings,
        done,
        &mut |item| {
            writer.write(&item)?;
            items.push(item);
            progress.borrow_mut().item_done();
            Ok(())
        },
        &mut |_| progress.borrow_mut().tick(),
    )?;
    progress.borrow().finish();
    let summary = summarize(
        &data.name,
        &args.model,
        &mode,
        &items,
        &settings,
        &data.skipped,
        start.elapsed().as_secs_f64(),
    );
    let mut json = serde_json::to_vec_pretty(&summary)?;
    json.push(b'\n');
    hicra_model::io::atomic::write_atomic(&out.join("summary.json"), &json)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    eprintln!(
        "wrote {} and {}",
        out.join("summary.json").display(),
        out.join("items.jsonl").display()
    );
    Ok(())
}

/// The sha256 of every rendered prompt and gold answer, in order.
fn prompts_digest(
    model: &hicra_model::LoadedModel,
    data: &EvalData,
    settings: &EvalSettings,
) -> anyhow::Result<String> {
    let prompts = hicra_rl::generation::render_prompts(
        model,
        data.task.as_ref(),
        &data.problems,
        &settings.plan().prompts,
    )?;
    let mut all = Vec::new();
    for (prompt, problem) in prompts.iter().zip(&data.problems) {
        all.extend_from_slice(prompt.text.as_bytes());
        all.push(0);
        all.extend_from_slice(problem.gold.to_string().as_bytes());
        all.push(0);
    }
    Ok(hicra_model::io::digest::sha256_bytes(&all))
}
