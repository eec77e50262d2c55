//! `hicra grams` subcommands (work in progress).

/// Subcommands of `hicra grams`.
#[derive(clap::Subcommand)]
pub enum Command {}

/// Runs a `hicra grams` subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {}
}
