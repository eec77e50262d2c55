//! `hicra eval`: evaluates a model on a benchmark with the paper's protocol (K samples per
//! problem at temperature 0.6, strict `\boxed{}` matching, averaged pass@1 and pass@k), and
//! writes `items.jsonl` as problems finish, then `summary.json`. `--resume` continues a killed
//! run from its `items.jsonl` with the samples an uninterrupted run would have drawn.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hicra_tasks::arith::{ArithConfig, ArithTask};
use hicra_tasks::lab::{LabConfig, LabTask};
use hicra_tasks::{
    AnswerKind, BOXED_INSTRUCTION, Dataset, FieldSpec, LoadOptions, MathTask, OnError, Problem,
    PromptFormat, PromptStyle, Task,
};
use hicra_verify::ExtractMode;

use serde::{Deserialize, Serialize};

use crate::evaluation::{EvalSettings, ItemRecord, evaluate, summarize};

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
    /// Continue the evaluation in `--out` from its `items.jsonl` (same settings required).
    #[arg(long)]
    pub resume: bool,
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
        let mut config = LabConfig::default();
        if let Some(size) = args.task_size {
            config.validation_size = size;
        }
        let task = LabTask::new(config)?;
        EvalData {
            name: "lab".into(),
            problems: task.validation_problems().to_vec(),
            task: Box::new(task),
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

/// What an evaluation's results depend on, kept beside them so `--resume` can check it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunIdentity {
    dataset: String,
    model: String,
    mode: String,
    problems: usize,
    settings: EvalSettings,
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

/// Runs `hicra eval`.
pub fn run(args: Args) -> anyhow::Result<()> {
    run_args(&args)?;
    let data = load_data(&args)?;
    anyhow::ensure!(
        !data.problems.is_empty(),
        "{}: no problems to evaluate",
        args.dataset
    );
    let settings = EvalSettings {
        samples: args.samples,
        temperature: args.temperature,
        top_p: args.top_p,
        max_new_tokens: args.max_new_tokens,
        batch_size: args.batch_size,
        seed: args.seed,
        use_chat_template: !args.raw,
    };
    let mode = serde_json::to_value(args.mode)?
        .as_str()
        .unwrap_or("strict-boxed")
        .to_string();
    let identity = RunIdentity {
        dataset: data.name.clone(),
        model: args.model.clone(),
        mode: mode.clone(),
        problems: data.problems.len(),
        settings: settings.clone(),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("eval").join(&data.name));
    let model = hicra_model::load_model(&args.model, &args.device.load_options()?)
        .with_context(|| format!("loading model {}", args.model))?;
    let mut items = open_run(&out, &identity, &data.problems, args.resume)?;
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
        start.elapsed().as_secs_f64(),
    );
    let mut json = serde_json::to_vec_pretty(&summary)?;
    json.push(b'\n');
    write_atomic(&out.join("summary.json"), &json)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    eprintln!(
        "wrote {} and {}",
        out.join("summary.json").display(),
        out.join("items.jsonl").display()
    );
    Ok(())
}

/// Prepares `out` for a run: a fresh one must not overwrite results; a resumed one must have
/// been started with the same identity. Returns the items already done.
fn open_run(
    out: &Path,
    identity: &RunIdentity,
    problems: &[Problem],
    resume: bool,
) -> anyhow::Result<Vec<ItemRecord>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let id_path = out.join("eval_run.json");
    let items_path = out.join("items.jsonl");
    if !resume {
        if items_path.exists() {
            std::fs::remove_file(&items_path)
                .with_context(|| format!("removing the old {}", items_path.display()))?;
        }
        let _ = std::fs::remove_file(out.join("summary.json"));
        let mut json = serde_json::to_vec_pretty(identity)?;
        json.push(b'\n');
        write_atomic(&id_path, &json)?;
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&id_path).with_context(|| {
        format!(
            "--resume: {} has no evaluation to continue ({} is missing)",
            out.display(),
            id_path.display()
        )
    })?;
    let before: RunIdentity =
        serde_json::from_str(&text).with_context(|| format!("reading {}", id_path.display()))?;
    if &before != identity {
        bail!(
            "--resume: {} was started with other settings ({}); give the same flags, or \
             start afresh without --resume",
            out.display(),
            serde_json::to_string(&before)?
        );
    }
    read_done_items(&items_path, problems)
}

/// Reads the complete lines of an interrupted run's `items.jsonl`, in problem order. A last
/// line cut short by the kill is dropped (and truncated away); any other bad line is an error
/// naming it.
fn read_done_items(path: &Path, problems: &[Problem]) -> anyhow::Result<Vec<ItemRecord>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut items = Vec::new();
    for (n, line) in text[..complete].split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let item: ItemRecord = serde_json::from_slice(line)
            .with_context(|| format!("{} line {}: not an item record", path.display(), n + 1))?;
        let expected = problems.get(items.len()).map(|p| p.id.as_str());
        anyhow::ensure!(
            expected == Some(item.id.as_str()),
            "{} line {}: item `{}` where problem `{}` was expected",
            path.display(),
            n + 1,
            item.id,
            expected.unwrap_or("(none: more items than problems)")
        );
        items.push(item);
    }
    if complete < text.len() {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.set_len(complete as u64)
            .with_context(|| format!("truncating the cut-off last line of {}", path.display()))?;
    }
    Ok(items)
}

/// Appends item records to `items.jsonl`, one synced line each.
struct ItemWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl ItemWriter {
    fn append(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(ItemWriter {
            path: path.to_path_buf(),
            file,
        })
    }

    fn write(&mut self, item: &ItemRecord) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(item)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// Progress of an evaluation: a bar on a terminal; otherwise a line every 30 s with the items
/// done, the rate and the time left.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    name: String,
    total: usize,
    done: usize,
    resumed_at: usize,
    start: Instant,
    last_line: Instant,
}

const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(30);

impl Progress {
    fn new(name: &str, total: usize, done: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {pos}/{len} problems, {elapsed} (eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(format!("eval {name}"));
            bar.set_position(done as u64);
            bar
        });
        Progress {
            bar,
            name: name.to_string(),
            total,
            done,
            resumed_at: done,
            start: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn item_done(&mut self) {
        self.done += 1;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done as u64);
        }
        self.tick();
    }

    fn tick(&mut self) {
        if self.bar.is_none() && self.last_line.elapsed() >= PROGRESS_LINE_EVERY {
            self.last_line = Instant::now();
            eprintln!("{}", self.line());
        }
    }

    fn line(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = (self.done - self.resumed_at) as f64 / secs;
        let left = self.total - self.done;
        let eta = if rate > 0.0 {
            format!("{:.0} s", left as f64 / rate)
        } else {
            "unknown".to_string()
        };
        format!(
            "eval {}: {}/{} problems, {:.3} problems/s, ETA {eta}",
            self.name, self.done, self.total, rate
        )
    }

    fn finish(&self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!("{}", self.line()),
        }
    }
}
