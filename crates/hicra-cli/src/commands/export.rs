//! `hicra export`: write a model (HF directory, GGUF file or fetched model name) as a Hugging
//! Face directory that transformers loads unchanged.

use hicra_model::{LoadOptions, load_model};
use std::path::PathBuf;

/// Arguments of `hicra export`.
#[derive(clap::Args)]
pub struct Args {
    /// Model: an HF directory, a .gguf file or a fetched model's name.
    #[arg(long)]
    pub model: String,
    /// Output directory (replaced atomically if it exists).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `hicra export`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let loaded = load_model(&args.model, &LoadOptions::default())?;
    loaded.save_hf(&args.out)?;
    println!("exported {} -> {}", loaded.source, args.out.display());
    Ok(())
}
