//! `hicra bench verify` (work in progress).

/// Arguments of `hicra bench verify`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `hicra bench verify`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("hicra bench verify is not built yet")
}
