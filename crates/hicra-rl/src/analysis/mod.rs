//! `hicra analyze`: the paper's hierarchy analysis of any RL run, from what the run left on
//! disk (verl dumps, TRL completion logs, a hicra run directory, or generic JSONL; see
//! [`input`]).
//!
//! Per step, for the training rollouts and for validation separately, from the text alone:
//! the logged reward, accuracy (the run's own verdict, or hicra's verifier with `regrade`),
//! response length, the planning-token share, semantic entropy of the Strategic Grams and the
//! conditional-entropy control, the share of groups whose rewards are all equal, pass@k, and
//! which grams rise and fall ([`movers`]). With checkpoints, the responses are rescored for
//! the paper's token panels ([`checkpoints`]). A [`reading`] says which phase the run looks to
//! be in.
//!
//! Files are streamed in chunks and each chunk's responses measured in parallel; a step's
//! tallies are finished when its file ends (generic JSONL: when the input ends), so memory
//! does not grow with the length of the run.

pub mod checkpoints;
pub mod error;
pub mod format;
pub mod input;
mod measure;
pub mod movers;
pub mod progress;
pub mod reading;
mod records;
mod rescore;
pub mod sample;
pub mod series;
mod step;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hicra_hier::GramSet;
use hicra_model::{LoadOptions, Tokenizer};

pub use error::AnalysisError;
pub use format::Format;
pub use progress::{Progress, Silent};
pub use series::{Analysis, Example, Row, RunAnalysis};

use checkpoints::{Checkpoint, CheckpointReport};
use input::Source;
use measure::{Measurer, Units};
use sample::Split;
use series::Units as UnitNames;
use step::{FinishedStep, StepTally};

/// Problems listed by name in a run's analysis (the rest are counted).
const PROBLEMS_LISTED: usize = 50;

/// How to analyse.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// The format (`None`: detect it).
    pub format: Option<Format>,
    /// Grade responses against their gold with hicra's verifier.
    pub regrade: bool,
    /// A model or tokenizer whose tokens lengths are counted in.
    pub tokenizer: Option<String>,
    /// A gram file (else the run's own list, else the paper's).
    pub grams: Option<PathBuf>,
    /// A folder of checkpoints to rescore with.
    pub checkpoints: Option<PathBuf>,
    /// Responses rescored per step at most.
    pub max_responses_per_step: usize,
    /// The model the run started from, rescored as step 0 (relative perplexities divide by
    /// its values); `None`: the model named in the run's own config, when found.
    pub base_model: Option<String>,
    /// Where and in which dtype checkpoints are loaded.
    pub load: LoadOptions,
    /// Stop at the first malformed record.
    pub strict: bool,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            format: None,
            regrade: false,
            tokenizer: None,
            grams: None,
            checkpoints: None,
            max_responses_per_step: 64,
            base_model: None,
            load: LoadOptions::default(),
            strict: false,
        }
    }
}

impl AnalyzeOptions {
    /// Load options for rescoring on `device` (`cpu`, `cuda`, `cuda:N`) in its default dtype
    /// (f32 on the CPU, bf16 on CUDA).
    pub fn on_device(mut self, device: &str) -> Result<AnalyzeOptions, AnalysisError> {
        let bad = |e: String| AnalysisError::Invalid(format!("device `{device}`: {e}"));
        let spec: hicra_model::DeviceSpec = device.parse().map_err(bad)?;
        let dtype = hicra_model::DTypeSpec::Auto
            .resolve(&spec)
            .map_err(|e| bad(e.to_string()))?;
        let device = spec.device().map_err(|e| bad(e.to_string()))?;
        self.load = LoadOptions { device, dtype };
        Ok(self)
    }
}

/// Analyses each path as one run.
pub fn analyze(
    paths: &[PathBuf],
    checkpoints: &[Option<PathBuf>],
    opts: &AnalyzeOptions,
    progress: &mut dyn Progress,
) -> Result<Analysis, AnalysisError> {
    let mut runs = Vec::with_capacity(paths.len());
    for (i, path) in paths.iter().enumerate() {
        let mut o = opts.clone();
        o.checkpoints = checkpoints.get(i).cloned().flatten().or(o.checkpoints);
        runs.push(analyze_run(path, &o, progress)?);
    }
    Ok(Analysis { runs })
}

/// Analyses one run.
pub fn analyze_run(
    path: &Path,
    opts: &AnalyzeOptions,
    progress: &mut dyn Progress,
) -> Result<RunAnalysis, AnalysisError> {
    let source = input::detect(path, opts.format)?;
    let mut notes = Vec::new();
    let (grams, grams_name) = load_grams(opts, &source)?;
    let (tokenizer, tokenizer_name) = length_tokenizer(opts, &source, &mut notes)?;
    let units = match &tokenizer {
        Some(t) => Units::Tokens(t),
        None => Units::Words,
    };
    let measurer = Measurer {
        grams: &grams,
        units,
        regrade: opts.regrade.then(hicra_verify::Config::default),
    };
    let pass = text_pass(&source, &measurer, opts.strict, progress)?;
    let unit_name = match &tokenizer_name {
        Some(name) => format!("tokens of {name}"),
        None => "words".to_string(),
    };
    let units = if source.format == Format::Hicra {
        UnitNames {
            response_length: "tokens (the run's own count)".into(),
            planning_token_frac: if pass.missing_planning > 0 {
                format!("tokens (the run's own count; {unit_name} for responses logged without it)")
            } else {
                "tokens (the run's own count)".into()
            },
        }
    } else {
        UnitNames {
            response_length: unit_name.clone(),
            planning_token_frac: unit_name,
        }
    };
    if opts.regrade && pass.no_gold > 0 {
        notes.push(format!(
            "--regrade: {} responses have no gold answer; their own verdict (if any) is used",
            pass.no_gold
        ));
    }
    let accuracy_source = accuracy_source(source.format, opts.regrade, pass.no_gold, &pass);
    let (train, train_counts, examples) = split_rows(&pass.steps, Split::Train);
    let (val, val_counts, _) = split_rows(&pass.steps, Split::Val);
    let counts = if train_counts.is_empty() {
        &val_counts
    } else {
        &train_counts
    };
    let mut run = RunAnalysis {
        path: path.to_path_buf(),
        format: source.format,
        grams: grams_name,
        units,
        accuracy_source,
        gram_movers: movers::gram_movers(grams.grams(), counts),
        reading: reading::read_phase(&|_| Vec::new()),
        train,
        val,
        checkpoints: None,
        bad_records: pass.bad_records,
        problems: pass.problems,
        notes,
        examples,
    };
    if let Some(dir) = &opts.checkpoints {
        let report = rescore_run(&source, &grams, dir, opts, &mut run.train, progress)?;
        run.checkpoints = Some(report);
    }
    run.reading = reading::read_phase(&|name| metric_series(&run, name));
    Ok(run)
}

/// A run's series by its `metrics.jsonl` name (`val_accuracy` and `val_length` from the
/// validation rows).
pub fn metric_series(run: &RunAnalysis, name: &str) -> Vec<(f64, f64)> {
    match name {
        "val_length" => run.series(true, "response_length_mean"),
        "zero_var_group_frac" => run.series(false, "all_equal_group_frac"),
        other => match other.strip_prefix("val_") {
            Some(rest) => run.series(true, rest),
            None => run.series(false, other),
        },
    }
}

fn load_grams(opts: &AnalyzeOptions, source: &Source) -> Result<(GramSet, String), AnalysisError> {
    let file = opts.grams.clone().or_else(|| {
        source.hints.grams.as_ref().map(|g| {
            if g.is_relative() && !g.exists() {
                source.path.join(g)
            } else {
                g.clone()
            }
        })
    });
    Ok(match file {
        Some(f) => (GramSet::from_file(&f)?, f.display().to_string()),
        None => (GramSet::paper(), "the paper's list".to_string()),
    })
}

/// The tokenizer lengths are counted in: `--tokenizer`, else the run's own model (hicra) or
/// the first checkpoint's; `None` (words) when there is none.
fn length_tokenizer(
    opts: &AnalyzeOptions,
    source: &Source,
    notes: &mut Vec<String>,
) -> Result<(Option<Tokenizer>, Option<String>), AnalysisError> {
    if let Some(spec) = &opts.tokenizer {
        let t = load_tokenizer(spec).map_err(|message| AnalysisError::Tokenizer {
            spec: spec.clone(),
            message,
        })?;
        return Ok((Some(t), Some(spec.clone())));
    }
    let mut candidates: Vec<String> = source.hints.model.iter().cloned().collect();
    for dir in opts.checkpoints.iter().chain(&source.hints.checkpoints) {
        if let Ok(found) = checkpoints::discover(dir) {
            candidates.extend(found.into_iter().map(|c| c.model));
        }
    }
    for spec in candidates {
        match load_tokenizer(&spec) {
            Ok(t) => return Ok((Some(t), Some(spec))),
            Err(e) => notes.push(format!("tokenizer of {spec} not used: {e}")),
        }
    }
    Ok((None, None))
}

/// The tokenizer of a model directory, a fetched model's name, or a `tokenizer.json`.
fn load_tokenizer(spec: &str) -> Result<Tokenizer, String> {
    let path = PathBuf::from(spec);
    let file = if path.is_file() {
        path
    } else {
        hicra_model::io::registry::resolve_model_path(spec)
            .map_err(|e| e.to_string())?
            .join("tokenizer.json")
    };
    Tokenizer::from_file(&file).map_err(|e| e.to_string())
}

/// Where `accuracy` comes from, in words.
fn accuracy_source(
    format: Format,
    regrade: bool,
    no_gold: usize,
    pass: &TextPass,
) -> Option<String> {
    if !pass.any_verdict {
        return None;
    }
    let own = match format {
        Format::Hicra => "the run's `correct`",
        Format::Verl => "the dump's `acc`",
        Format::Trl => "a logged verdict column",
        Format::Jsonl => "the records' `correct`",
    };
    Some(match (regrade, no_gold) {
        (true, 0) => "hicra's verifier against the logged gold (--regrade)".into(),
        (true, _) => format!("hicra's verifier against the logged gold (--regrade), else {own}"),
        (false, _) => own.into(),
    })
}

/// What the text pass gathered.
struct TextPass {
    steps: BTreeMap<(Split, u64), FinishedStep>,
    bad_records: usize,
    problems: Vec<String>,
    no_gold: usize,
    missing_planning: usize,
    any_verdict: bool,
}

/// Reads every file once, tallying each step.
fn text_pass(
    source: &Source,
    measurer: &Measurer<'_>,
    strict: bool,
    progress: &mut dyn Progress,
) -> Result<TextPass, AnalysisError> {
    let total: u64 = source
        .units
        .iter()
        .map(|u| std::fs::metadata(&u.path).map_or(0, |m| m.len()))
        .sum();
    progress.begin(&format!("reading {}", source.path.display()), total);
    let mut pass = TextPass {
        steps: BTreeMap::new(),
        bad_records: 0,
        problems: Vec::new(),
        no_gold: 0,
        missing_planning: 0,
        any_verdict: false,
    };
    let measure = |s: sample::Sample| {
        let missing = s.planning_tokens.is_none();
        measurer.measure(s).map(|m| (m, missing))
    };
    for unit in &source.units {
        let mut open: BTreeMap<(Split, u64), StepTally> = BTreeMap::new();
        let mut done = 0u64;
        records::for_each_chunk(source, unit, &measure, &mut |records, read| {
            for r in records {
                match r.outcome {
                    Ok((m, missing)) => {
                        pass.no_gold += usize::from(m.no_gold);
                        pass.missing_planning += usize::from(missing);
                        pass.any_verdict |= m.correct.is_some();
                        open.entry((m.split, m.step))
                            .or_insert_with(|| StepTally::new(measurer.grams))
                            .add(m);
                    }
                    Err(message) if strict => {
                        return Err(AnalysisError::BadRecord {
                            location: r.location,
                            message,
                        });
                    }
                    Err(message) => {
                        pass.bad_records += 1;
                        let line = format!("{}: {message}", r.location);
                        if pass.problems.len() < PROBLEMS_LISTED {
                            progress.note(&line);
                            pass.problems.push(line);
                        }
                    }
                }
            }
            progress.advance(read.saturating_sub(done));
            done = done.max(read);
            Ok(())
        })?;
        // A file holds whole steps, except generic JSONL, which is one file.
        for ((split, step), tally) in open {
            if pass.steps.contains_key(&(split, step)) {
                pass.problems.push(format!(
                    "{}: step {step} also appears in another file; only the first file's responses are counted",
                    unit.path.display()
                ));
                continue;
            }
            pass.steps.insert((split, step), tally.finish(step));
        }
    }
    progress.end();
    Ok(pass)
}

/// One step and the occurrences of each gram in it.
type StepGramCounts = (u64, Vec<usize>);

/// The rows of one split, its per-step gram counts, and the examples of its first and last
/// step.
fn split_rows(
    steps: &BTreeMap<(Split, u64), FinishedStep>,
    split: Split,
) -> (Vec<Row>, Vec<StepGramCounts>, Vec<Example>) {
    let mine: Vec<&FinishedStep> = steps
        .iter()
        .filter(|((s, _), _)| *s == split)
        .map(|(_, f)| f)
        .collect();
    let rows = mine.iter().map(|f| f.row.clone()).collect();
    let counts = mine
        .iter()
        .map(|f| (f.row.step, f.gram_counts.clone()))
        .collect();
    let mut examples = Vec::new();
    if let Some(first) = mine.first() {
        examples.extend(first.examples.iter().cloned());
    }
    if mine.len() > 1 {
        examples.extend(mine[mine.len() - 1].examples.iter().cloned());
    }
    (rows, counts, examples)
}

/// Finds the checkpoints (and the run's starting model as step 0), pairs them with the
/// logged training steps and rescores.
fn rescore_run(
    source: &Source,
    grams: &GramSet,
    dir: &Path,
    opts: &AnalyzeOptions,
    train: &mut [Row],
    progress: &mut dyn Progress,
) -> Result<CheckpointReport, AnalysisError> {
    let mut found = checkpoints::discover(dir).map_err(AnalysisError::Invalid)?;
    // The starting model given is step 0; else the run's own, unless a step-0 checkpoint was saved.
    let start = match (&opts.base_model, &source.hints.model) {
        (Some(given), _) => {
            found.retain(|c| c.step != 0);
            Some(given)
        }
        (None, Some(own)) if !found.iter().any(|c| c.step == 0) => Some(own),
        _ => None,
    };
    if let Some(model) = start {
        found.insert(
            0,
            Checkpoint {
                name: format!("the starting model {model}"),
                step: 0,
                model: model.clone(),
            },
        );
    }
    let steps: BTreeSet<u64> = train.iter().map(|r| r.step).collect();
    let (pairs, unmatched) = checkpoints::pair(&found, &steps);
    for u in &unmatched {
        progress.note(&format!("checkpoint {u}"));
    }
    let mut report = CheckpointReport {
        dir: dir.to_path_buf(),
        found: found.iter().map(|c| c.name.clone()).collect(),
        unmatched,
        max_responses_per_step: opts.max_responses_per_step,
        ..CheckpointReport::default()
    };
    let job = rescore::Job {
        source,
        grams,
        checkpoints: &found,
        load: &opts.load,
    };
    rescore::rescore_pairs(&job, &pairs, train, &mut report, progress)?;
    for e in &report.errors {
        progress.note(&format!("checkpoint {e}"));
    }
    if let Some(base) = report.rescored.first()
        && base.checkpoint_step != 0
    {
        progress.note(&format!(
            "relative perplexities divide by {} (step {}), not by step 0: the run's starting \
             model was not found (name it with --base-model)",
            base.checkpoint, base.checkpoint_step
        ));
    }
    Ok(report)
}
