//! `hicra grade` (work in progress).

/// Arguments of `hicra grade`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `hicra grade`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("hicra grade is not built yet")
}
