//! `hicra grams` subcommands: `stats` (gram occurrences and semantic entropy of a JSONL
//! corpus), `mark` (matches in one text, optionally with a model's planning tokens) and
//! `mine` (Strategic-Gram mining from correct solutions).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hicra_hier::mining::{HashingEncoder, MiningOptions, SentenceEncoder, mine, render_report};
use hicra_hier::{GramSet, HierError};
use hicra_model::encoder::BertSentenceEncoder;
use serde_json::{Value, json};

/// Grams shown by `stats`.
const TOP_GRAMS: usize = 20;

/// Subcommands of `hicra grams`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Gram occurrences, distinct grams and semantic entropy of a JSONL corpus.
    Stats(StatsArgs),
    /// Gram matches in a text (character offsets), optionally with a model's planning tokens.
    Mark(MarkArgs),
    /// Mine Strategic Grams from the correct solutions of a JSONL file.
    Mine(MineArgs),
}

/// Arguments of `hicra grams stats`.
#[derive(clap::Args)]
pub struct StatsArgs {
    /// Gram file, one gram per line [default: the paper's list].
    #[arg(long)]
    pub grams: Option<PathBuf>,
    /// JSONL file with one text per line.
    #[arg(long)]
    pub input: PathBuf,
    /// Field holding the text.
    #[arg(long, default_value = "response")]
    pub field: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `hicra grams mark`.
#[derive(clap::Args)]
pub struct MarkArgs {
    /// Gram file, one gram per line [default: the paper's list].
    #[arg(long)]
    pub grams: Option<PathBuf>,
    /// The text to mark.
    #[arg(long)]
    pub text: String,
    /// A model (directory, .gguf or fetched name) whose tokens get planning flags.
    #[arg(long)]
    pub model: Option<String>,
    /// Print JSON instead of readable lines.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `hicra grams mine`.
#[derive(clap::Args)]
pub struct MineArgs {
    /// JSONL file of solutions.
    #[arg(long)]
    pub input: PathBuf,
    /// Field holding the solution text.
    #[arg(long, default_value = "response")]
    pub text_field: String,
    /// Boolean field marking correct solutions (only those are mined).
    #[arg(long, default_value = "correct")]
    pub correct_field: String,
    /// Number of k-means clusters.
    #[arg(long, default_value_t = 100)]
    pub k: usize,
    /// Fraction of clusters kept by document frequency.
    #[arg(long, default_value_t = 0.2)]
    pub top_frac: f64,
    /// Seed of k-means++.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sentence encoder: a fetched model name, a model directory, or `hashing` (no model).
    #[arg(long, default_value = "all-minilm-l6-v2")]
    pub encoder: String,
    /// Most n-grams embedded (the most frequent).
    #[arg(long, default_value_t = 10_000)]
    pub max_ngrams: usize,
    /// Least number of solutions an n-gram must occur in.
    #[arg(long, default_value_t = 1)]
    pub min_df: usize,
    /// Texts per encoder batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Output folder for grams.txt, clusters.json and clusters.txt.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs a `hicra grams` subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Stats(args) => stats(args),
        Command::Mark(args) => mark(args),
        Command::Mine(args) => mine_command(args),
    }
}

fn load_grams(path: Option<&Path>) -> Result<GramSet> {
    Ok(match path {
        Some(path) => GramSet::from_file(path)?,
        None => GramSet::paper(),
    })
}

/// The JSON objects of a JSONL file with their 1-based line numbers (blank lines and a
/// leading byte order mark skipped).
fn read_jsonl(path: &Path) -> Result<Vec<(usize, serde_json::Map<String, Value>)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", path.display(), index + 1);
        let value: Value =
            serde_json::from_str(line).with_context(|| format!("{at}: malformed JSON line"))?;
        let Value::Object(object) = value else {
            bail!("{at}: line is not a JSON object");
        };
        rows.push((index + 1, object));
    }
    Ok(rows)
}

fn string_field(
    path: &Path,
    line: usize,
    row: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<String> {
    match row.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => bail!("{}:{line}: field {field:?} is not a string", path.display()),
        None => bail!("{}:{line}: no field {field:?}", path.display()),
    }
}

fn stats(args: StatsArgs) -> Result<()> {
    let grams = load_grams(args.grams.as_deref())?;
    let texts = read_jsonl(&args.input)?
        .iter()
        .map(|(line, row)| string_field(&args.input, *line, row, &args.field))
        .collect::<Result<Vec<_>>>()?;
    let counts = hicra_hier::metrics::gram_counts(&texts, &grams);
    let occurrences: usize = counts.iter().sum();
    let mut top: Vec<(&str, usize)> = grams
        .grams()
        .iter()
        .zip(&counts)
        .filter(|(_, c)| **c > 0)
        .map(|(g, c)| (g.as_str(), *c))
        .collect();
    let distinct = top.len();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    top.truncate(TOP_GRAMS);
    let entropy = hicra_hier::metrics::entropy_of_counts(counts.iter().copied());
    if args.json {
        let report = json!({
            "texts": texts.len(),
            "occurrences": occurrences,
            "distinct_grams": distinct,
            "semantic_entropy": entropy,
            "top": top.iter().map(|(g, c)| json!([g, c])).collect::<Vec<_>>(),
        });
        println!("{report}");
    } else {
        println!("texts             {}", texts.len());
        println!("occurrences       {occurrences}");
        println!("distinct grams    {distinct} of {}", grams.len());
        println!("semantic entropy  {entropy:.4} nats");
        println!("\n{:>8}  gram", "count");
        for (gram, count) in &top {
            println!("{count:>8}  {gram}");
        }
    }
    Ok(())
}

/// Character offset of each byte offset in `text` (byte offsets on char boundaries).
fn char_offset(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

fn mark(args: MarkArgs) -> Result<()> {
    let grams = load_grams(args.grams.as_deref())?;
    let text = &args.text;
    let matches: Vec<(usize, usize, &str)> = grams
        .find(text)
        .iter()
        .map(|m| {
            (
                char_offset(text, m.start),
                char_offset(text, m.end),
                grams.grams()[m.gram].as_str(),
            )
        })
        .collect();
    let tokens = match &args.model {
        Some(spec) => Some(planning_tokens(spec, text, &grams)?),
        None => None,
    };
    if args.json {
        let mut out = json!({
            "matches": matches.iter().map(|(s, e, g)| json!([s, e, g])).collect::<Vec<_>>(),
        });
        if let Some(tokens) = &tokens {
            out["tokens"] = tokens.iter().map(|(t, p)| json!([t, p])).collect();
        }
        println!("{out}");
    } else {
        for (start, end, gram) in &matches {
            let matched: String = text.chars().skip(*start).take(end - start).collect();
            println!("{start:>6}..{end:<6} {matched:?}  (gram {gram:?})");
        }
        if let Some(tokens) = &tokens {
            let line: Vec<String> = tokens
                .iter()
                .map(|(t, p)| if *p { format!("[{t}]") } else { t.clone() })
                .collect();
            println!("tokens (planning in brackets): {}", line.join("|"));
        }
    }
    Ok(())
}

/// The model's tokens of `text` with planning flags (spans in the decoded text).
fn planning_tokens(spec: &str, text: &str, grams: &GramSet) -> Result<Vec<(String, bool)>> {
    let loaded = hicra_model::load_model(spec, &hicra_model::LoadOptions::default())
        .with_context(|| format!("loading model {spec}"))?;
    let ids = loaded.tokenizer.encode(text, false)?;
    let decoded = loaded.tokenizer.decode(&ids, false)?;
    let spans = loaded.tokenizer.token_byte_spans(&ids)?;
    let mask = grams.planning_mask(&decoded, &spans);
    Ok(spans
        .iter()
        .zip(mask)
        .map(|(&(s, e), planning)| {
            let piece = decoded
                .as_bytes()
                .get(s..e)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            (piece, planning)
        })
        .collect())
}

/// all-MiniLM-L6-v2 (or another BERT sentence encoder) as a mining encoder.
struct BertEncoder(BertSentenceEncoder);

impl SentenceEncoder for BertEncoder {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, HierError> {
        self.0
            .embed_batch(texts)
            .map_err(|e| HierError::Encoder(e.to_string()))
    }
}

/// The encoder named by `--encoder`.
fn load_encoder(spec: &str) -> Result<Box<dyn SentenceEncoder>> {
    if spec == "hashing" {
        return Ok(Box::new(HashingEncoder::default()));
    }
    let dir = hicra_model::io::registry::resolve_model_path(spec)
        .with_context(|| format!("sentence encoder {spec:?} (run `hicra models fetch all-minilm-l6-v2`, or use --encoder hashing)"))?;
    Ok(Box::new(BertEncoder(BertSentenceEncoder::load(&dir)?)))
}

fn is_correct(
    path: &Path,
    line: usize,
    row: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<bool> {
    match row.get(field) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) => Ok(n.as_f64().is_some_and(|v| v > 0.0)),
        Some(_) => bail!(
            "{}:{line}: field {field:?} is not a boolean",
            path.display()
        ),
        None => bail!("{}:{line}: no field {field:?}", path.display()),
    }
}

fn mine_command(args: MineArgs) -> Result<()> {
    let rows = read_jsonl(&args.input)?;
    let mut solutions = Vec::new();
    for (line, row) in &rows {
        if is_correct(&args.input, *line, row, &args.correct_field)? {
            solutions.push(string_field(&args.input, *line, row, &args.text_field)?);
        }
    }
    if solutions.is_empty() {
        bail!(
            "{}: no correct solutions to mine ({} lines)",
            args.input.display(),
            rows.len()
        );
    }
    let options = MiningOptions {
        k: args.k,
        top_frac: args.top_frac,
        seed: args.seed,
        max_ngrams: args.max_ngrams,
        min_df: args.min_df,
        batch_size: args.batch_size,
        ..MiningOptions::default()
    };
    let encoder = load_encoder(&args.encoder)?;
    eprintln!(
        "mining {} correct solutions of {} lines with encoder {}",
        solutions.len(),
        rows.len(),
        args.encoder
    );
    let result = mine(&solutions, encoder.as_ref(), &options)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let write = |name: &str, body: String| -> Result<()> {
        let path = args.out.join(name);
        std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))
    };
    write(
        "grams.txt",
        result.grams.iter().map(|g| format!("{g}\n")).collect(),
    )?;
    let clusters = json!({
        "input": args.input.display().to_string(),
        "encoder": args.encoder,
        "options": options,
        "result": result,
    });
    write("clusters.json", serde_json::to_string_pretty(&clusters)?)?;
    write("clusters.txt", render_report(&result, 15))?;
    println!(
        "{} grams from {} clusters ({} n-grams embedded of {}); wrote {}/grams.txt, clusters.json, clusters.txt",
        result.grams.len(),
        result.clusters.len(),
        result.embedded_ngrams,
        result.candidate_ngrams,
        args.out.display()
    );
    Ok(())
}
