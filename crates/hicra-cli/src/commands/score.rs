//! `hicra score` (work in progress).

/// Arguments of `hicra score`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `hicra score`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("hicra score is not built yet")
}
