//! `hicra compare` (work in progress).

/// Arguments of `hicra compare`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `hicra compare`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("hicra compare is not built yet")
}
