//! The `hicra` command-line tool: one module per subcommand under `commands/`.

mod commands;
mod evaluation;
mod report;
mod stats;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// RL fine-tuning of language models with Hierarchy-Aware Credit Assignment.
#[derive(Parser)]
#[command(name = "hicra", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a continuation of a prompt with a model.
    Generate(commands::generate::Args),
    /// Teacher-forced log-probabilities of a continuation.
    Score(commands::score::Args),
    /// Fetch and list offline real models.
    #[command(subcommand)]
    Models(commands::models::Command),
    /// Export a model as a Hugging Face directory.
    Export(commands::export::Args),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(commands::bench::Command),
    /// Grade responses against gold answers (JSONL in, JSONL out).
    Grade(commands::grade::Args),
    /// Strategic Grams: statistics, marking and mining.
    #[command(subcommand)]
    Grams(commands::grams::Command),
    /// Supervised warm start (e.g. the reasoning lab's tiny model).
    Sft(commands::sft::Args),
    /// RL training (GRPO family or HICRA); with no arguments, the reasoning lab.
    Train(commands::train::Args),
    /// Evaluate a model on a benchmark with the paper's protocol.
    Eval(commands::eval::Args),
    /// Run several methods over several seeds and compare them.
    Compare(commands::compare::Args),
    /// Write the two-phase dynamics report for run directories.
    Report(commands::report::Args),
    /// The paper's hierarchy analysis of any RL run (verl, TRL, hicra, generic JSONL).
    Analyze(commands::analyze::Args),
}

/// mimalloc, never handing freed memory back to the OS: every candle op allocates its output,
/// and with the system allocator (or mimalloc's default 10 ms purge) a training step spent a
/// fifth of its time faulting in and zeroing fresh pages. Peak RSS is unchanged; RSS no
/// longer falls after the peak.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3): milliseconds before freed memory is
/// purged; -1 = never. The Rust bindings have no constant for it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // SAFETY: called first thing in `main`, before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    pin_thread_count();
    quiet_on_closed_pipe();
    let matches = with_negative_numbers(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Generate(args) => commands::generate::run(args),
        Command::Score(args) => commands::score::run(args),
        Command::Models(cmd) => commands::models::run(cmd),
        Command::Export(args) => commands::export::run(args),
        Command::Bench(cmd) => commands::bench::run(cmd),
        Command::Grade(args) => commands::grade::run(args),
        Command::Grams(cmd) => commands::grams::run(cmd),
        Command::Sft(args) => commands::sft::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Analyze(args) => commands::analyze::run(args),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

/// Lets every subcommand take negative numbers as values (`--temperature -1` is a value,
/// refused by the command's own check, not an unknown flag).
fn with_negative_numbers(cmd: clap::Command) -> clap::Command {
    cmd.allow_negative_numbers(true)
        .mut_subcommands(with_negative_numbers)
}

/// Ends the process quietly, as Unix tools do, when the reader of its output goes away
/// (`hicra generate … | head`): Rust ignores SIGPIPE, so a print to a closed pipe would panic.
/// Every file hicra writes survives a sudden end (atomic writes, resumable logs).
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Fixes `RAYON_NUM_THREADS` (when the user has not) to the count candle would pick. candle
/// asks for its thread count on every matmul, and without the variable that means parsing
/// `/proc/cpuinfo` each time: a measurable share of a decoding step.
fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let threads = candle_core::utils::get_num_threads();
        // SAFETY: called first thing in `main`, before any other thread exists.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
}
