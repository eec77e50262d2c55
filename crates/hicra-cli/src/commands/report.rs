//! `hicra report RUN [RUN…] [--out DIR]`: the two-phase dynamics report, for hicra run
//! directories and for any run `hicra analyze` reads (verl, TRL, generic JSONL).

use std::path::PathBuf;

use anyhow::Result;
use hicra_hier::GramSet;

/// Arguments of `hicra report`.
#[derive(clap::Args)]
pub struct Args {
    /// Runs: hicra run directories (metrics.jsonl; config.toml and samples/ optional), or
    /// anything `hicra analyze` reads (verl dumps, TRL output directories, generic JSONL).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Output folder for report.html and the charts [default: RUN_DIR/report of the first run].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Gram file used to highlight samples without planning_spans [default: the paper's list].
    #[arg(long)]
    pub grams: Option<PathBuf>,
}

/// Runs `hicra report`.
pub fn run(args: Args) -> Result<()> {
    let grams = match &args.grams {
        Some(path) => GramSet::from_file(path)?,
        None => GramSet::paper(),
    };
    let out = args.out.unwrap_or_else(|| args.runs[0].join("report"));
    let runs = crate::report::load_runs(&args.runs, args.grams.as_deref())?;
    let written = crate::report::write_report(runs, &out, &grams)?;
    println!("wrote {}", written.html.display());
    for chart in &written.charts {
        println!("wrote {}", chart.display());
    }
    Ok(())
}
