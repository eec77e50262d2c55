//! `hicra generate` (work in progress).

/// Arguments of `hicra generate`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `hicra generate`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("hicra generate is not built yet")
}
