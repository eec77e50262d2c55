//! `hicra train` (work in progress).

/// Arguments of `hicra train`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `hicra train`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("hicra train is not built yet")
}
