//! `hicra eval`: evaluates a model on a benchmark with the paper's protocol (K samples per
//! problem at temperature 0.6, strict `\boxed{}` matching, averaged pass@1 and pass@k), and
//! writes `summary.json` and `items.jsonl`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hicra_tasks::arith::{ArithConfig, ArithTask};
use hicra_tasks::lab::{LabConfig, LabTask};
use hicra_tasks::{
    AnswerKind, BOXED_INSTRUCTION, Dataset, FieldSpec, LoadOptions, MathTask, OnError, Problem,
    PromptFormat, PromptStyle, Task,
};
use hicra_verify::ExtractMode;

use crate::evaluation::{EvalSettings, EvalSummary, ItemRecord, evaluate_and_summarize};

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
    /// Output directory (default: eval/<dataset>).
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
}

fn parse_answer_kind(s: &str) -> Result<AnswerKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("`{s}` is not one of auto, value, after-hashes, boxed"))
}

fn parse_on_error(s: &str) -> Result<OnError, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("`{s}` is not one of skip, fail"))
}

/// The task and problems an evaluation runs on.
struct EvalData {
    name: String,
    task: Box<dyn Task>,
    problems: Vec<Problem>,
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
        for skipped in &loaded.skipped {
            eprintln!("warning: skipped {skipped}");
        }
        if !loaded.skipped.is_empty() {
            eprintln!(
                "warning: {} malformed records skipped",
                loaded.skipped.len()
            );
        }
        let dataset = loaded.dataset;
        let problems = dataset.problems.clone();
        let name = dataset.name.clone();
        let task = MathTask::new(dataset.clone(), dataset, prompt_format(args), args.seed)
            .with_verify(verify);
        EvalData {
            name,
            task: Box::new(task),
            problems,
        }
    } else if args.dataset == "lab" {
        let task = LabTask::new(LabConfig::default())?;
        EvalData {
            name: "lab".into(),
            problems: task.validation_problems().to_vec(),
            task: Box::new(task),
        }
    } else if args.dataset == "arith" {
        let mut task = ArithTask::new(ArithConfig::default())?;
        task.verify = verify;
        task.format = prompt_format(args);
        EvalData {
            name: "arith".into(),
            problems: task.validation_problems().to_vec(),
            task: Box::new(task),
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

/// Writes `contents` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

fn write_outputs(dir: &Path, summary: &EvalSummary, items: &[ItemRecord]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut lines = Vec::new();
    for item in items {
        serde_json::to_writer(&mut lines, item)?;
        lines.push(b'\n');
    }
    write_atomic(&dir.join("items.jsonl"), &lines)?;
    let mut json = serde_json::to_vec_pretty(summary)?;
    json.push(b'\n');
    write_atomic(&dir.join("summary.json"), &json)
}

/// Runs `hicra eval`.
pub fn run(args: Args) -> anyhow::Result<()> {
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
    let data = load_data(&args)?;
    anyhow::ensure!(
        !data.problems.is_empty(),
        "{}: no problems to evaluate",
        args.dataset
    );
    let model = hicra_model::load_model(&args.model, &hicra_model::LoadOptions::default())
        .with_context(|| format!("loading model {}", args.model))?;
    let settings = EvalSettings {
        samples: args.samples,
        temperature: args.temperature,
        top_p: args.top_p,
        max_new_tokens: args.max_new_tokens,
        batch_size: args.batch_size,
        seed: args.seed,
    };
    let rows = (data.problems.len() * args.samples) as u64;
    let bar = indicatif::ProgressBar::new(rows);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} responses, {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!("eval {}", data.name));
    let mode = serde_json::to_value(args.mode)?
        .as_str()
        .unwrap_or("strict-boxed")
        .to_string();
    let (summary, items) = evaluate_and_summarize(
        &model,
        data.task.as_ref(),
        &data.problems,
        &settings,
        (&data.name, &args.model, &mode),
        &mut |done| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("eval").join(&data.name));
    write_outputs(&out, &summary, &items)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    eprintln!(
        "wrote {} and {}",
        out.join("summary.json").display(),
        out.join("items.jsonl").display()
    );
    Ok(())
}
