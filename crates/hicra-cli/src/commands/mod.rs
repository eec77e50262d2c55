//! One module per `hicra` subcommand.

pub mod analyze;
pub mod bench;
pub mod compare;
pub mod device_args;
pub mod eval;
pub mod export;
pub mod generate;
pub mod grade;
pub mod grams;
pub mod models;
pub mod report;
pub mod score;
pub mod sft;
pub mod train;
