//! `hicra eval` (work in progress).

/// Arguments of `hicra eval`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `hicra eval`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("hicra eval is not built yet")
}
