//! `hicra analyze PATH… --out DIR`: the paper's hierarchy analysis of RL runs made with verl,
//! TRL, hicra or anything that writes generic JSONL: `DIR/analysis.json` (one row per step,
//! training and validation apart) and the report (`report.html` and its charts). Bad records
//! are named `FILE:LINE` and skipped (`--strict` stops at the first); checkpoints that match
//! no step or cannot be loaded are named and the text analysis is written all the same.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hicra_hier::GramSet;
use hicra_rl::analysis::{AnalyzeOptions, Format, Progress, RunAnalysis, analyze};
use indicatif::{ProgressBar, ProgressStyle};

use super::device_args::DeviceArgs;
use crate::report::run_data::RunData;

/// Arguments of `hicra analyze`.
#[derive(clap::Args)]
pub struct Args {
    /// Runs: verl dump folders (rollout and/or validation), TRL output directories, hicra run
    /// directories, or generic JSONL files; several are overlaid in one report.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output folder for analysis.json, report.html and the charts.
    #[arg(long)]
    pub out: PathBuf,
    /// Input format: auto, verl, trl, hicra or jsonl.
    #[arg(long, default_value = "auto", value_parser = parse_format)]
    pub format: FormatArg,
    /// Grade responses against their logged gold with hicra's verifier.
    #[arg(long)]
    pub regrade: bool,
    /// Count lengths in tokens of this model's tokenizer (a model directory, a fetched model's
    /// name, or a tokenizer.json) [default: the run's own model when found, else words].
    #[arg(long, value_name = "MODEL")]
    pub tokenizer: Option<String>,
    /// Strategic-Gram file [default: the run's own list, else the paper's].
    #[arg(long)]
    pub grams: Option<PathBuf>,
    /// Checkpoints to rescore responses with (verl's global_step_N, TRL's checkpoint-N,
    /// hicra's checkpoints/step-N): one folder per PATH, in order.
    #[arg(long, value_name = "DIR")]
    pub checkpoints: Vec<PathBuf>,
    /// Responses rescored per step at most (evenly spread over the step).
    #[arg(long, default_value_t = 64)]
    pub max_responses_per_step: usize,
    /// The model the runs started from (a model directory or a fetched model's name), rescored
    /// as step 0 for the relative perplexities [default: the run's own config's model, when
    /// found].
    #[arg(long, value_name = "MODEL")]
    pub base_model: Option<String>,
    /// Where checkpoints are loaded for rescoring.
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Stop at the first malformed record instead of naming it and going on.
    #[arg(long)]
    pub strict: bool,
    /// Replace an analysis or report already in the output folder.
    #[arg(long)]
    pub force: bool,
}

/// A parsed `--format`.
#[derive(Clone, Copy, Debug)]
pub struct FormatArg(Option<Format>);

fn parse_format(name: &str) -> Result<FormatArg, String> {
    Format::parse(name).map(FormatArg)
}

/// A progress bar per stage (bytes read, responses rescored), with its ETA.
struct Bar {
    bar: ProgressBar,
}

impl Progress for Bar {
    fn begin(&mut self, stage: &str, total: u64) {
        self.bar = ProgressBar::new(total);
        let template = if stage == "rescoring" {
            "{msg} [{bar:30}] {pos}/{len} responses, ETA {eta}"
        } else {
            "{msg} [{bar:30}] {bytes}/{total_bytes}, ETA {eta}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_message(stage.to_string());
    }
    fn advance(&mut self, n: u64) {
        self.bar.inc(n);
    }
    fn end(&mut self) {
        self.bar.finish_and_clear();
    }
    fn note(&mut self, message: &str) {
        self.bar.suspend(|| eprintln!("warning: {message}"));
    }
}

/// Writes `bytes` to `path` through a temporary file beside it.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

fn summary(run: &RunAnalysis) -> String {
    let rescored = run.checkpoints.as_ref().map_or(String::new(), |c| {
        format!(", {} steps rescored", c.rescored.len())
    });
    format!(
        "{} ({}): {} training steps, {} validation steps, {} unreadable records{rescored}\n  {}",
        run.path.display(),
        run.format.name(),
        run.train.len(),
        run.val.len(),
        run.bad_records,
        run.reading.text
    )
}

/// Runs `hicra analyze`.
pub fn run(args: Args) -> Result<()> {
    if !args.checkpoints.is_empty() && args.checkpoints.len() != args.paths.len() {
        bail!(
            "--checkpoints: give one folder per run ({} given for {} runs)",
            args.checkpoints.len(),
            args.paths.len()
        );
    }
    if !args.force {
        for name in ["analysis.json", "report.html"] {
            let existing = args.out.join(name);
            if existing.exists() {
                bail!(
                    "{} already exists: pass --force to replace it, or choose another --out",
                    existing.display()
                );
            }
        }
    }
    let opts = AnalyzeOptions {
        format: args.format.0,
        regrade: args.regrade,
        tokenizer: args.tokenizer.clone(),
        grams: args.grams.clone(),
        checkpoints: None,
        max_responses_per_step: args.max_responses_per_step,
        base_model: args.base_model.clone(),
        load: args.device.load_options()?,
        strict: args.strict,
    };
    let checkpoints: Vec<Option<PathBuf>> = args.checkpoints.iter().cloned().map(Some).collect();
    let mut bar = Bar {
        bar: ProgressBar::hidden(),
    };
    let analysis = analyze(&args.paths, &checkpoints, &opts, &mut bar)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let json_path = args.out.join("analysis.json");
    write_atomic(
        &json_path,
        serde_json::to_string_pretty(&analysis)?.as_bytes(),
    )?;
    for run in &analysis.runs {
        println!("{}", summary(run));
    }
    let grams = match &args.grams {
        Some(path) => GramSet::from_file(path)?,
        None => GramSet::paper(),
    };
    let runs: Vec<RunData> = analysis
        .runs
        .into_iter()
        .map(RunData::from_analysis)
        .collect();
    let written = crate::report::write_report(runs, &args.out, &grams)?;
    println!("wrote {}", json_path.display());
    println!("wrote {}", written.html.display());
    Ok(())
}
