//! `hicra bench`: benchmarks that print figures (never tests with thresholds).

mod math_verify;
pub mod model;
mod torch_side;
pub mod verify;

/// Subcommands of `hicra bench`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Generation and training throughput of a model.
    Model(model::Args),
    /// Verifier throughput (pairs per second).
    Verify(verify::Args),
}

/// Runs a `hicra bench` subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Model(args) => model::run(args),
        Command::Verify(args) => verify::run(args),
    }
}
