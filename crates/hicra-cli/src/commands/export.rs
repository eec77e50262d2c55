//! `hicra export`: write a model (HF directory, GGUF file or fetched model name) as a Hugging
//! Face directory that transformers loads unchanged. A previous export at `--out` is replaced
//! atomically; a directory holding other files is refused unless `--force`, which writes the
//! export's files among them and leaves the others alone.

use anyhow::bail;
use hicra_model::io::export::{ExportTarget, export_target};
use hicra_model::{LoadOptions, load_model};
use std::path::PathBuf;

/// Arguments of `hicra export`.
#[derive(clap::Args)]
pub struct Args {
    /// Model: an HF directory, a .gguf file or a fetched model's name.
    #[arg(long)]
    pub model: String,
    /// Output directory: new, empty, or a previous export (replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Write into a directory that holds other files too: the export's six files are
    /// replaced, every other file is left alone.
    #[arg(long)]
    pub force: bool,
}

/// Runs `hicra export`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let target = export_target(&args.out)?;
    if let ExportTarget::Other(names) = &target
        && !args.force
    {
        bail!(
            "{} holds files an export does not write ({}): choose another --out, or add \
             --force to write the export's files among them (the others are left alone)",
            args.out.display(),
            names.join(", ")
        );
    }
    let loaded = load_model(&args.model, &LoadOptions::default())?;
    if args.force {
        loaded.save_hf_among(&args.out)?;
    } else {
        loaded.save_hf(&args.out)?;
    }
    println!("exported {} -> {}", loaded.source, args.out.display());
    Ok(())
}
