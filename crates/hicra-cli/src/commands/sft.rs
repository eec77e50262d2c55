//! `hicra sft` (work in progress).

/// Arguments of `hicra sft`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `hicra sft`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("hicra sft is not built yet")
}
