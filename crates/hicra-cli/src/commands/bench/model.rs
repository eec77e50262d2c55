//! `hicra bench model`: generation throughput at batch 1, 8 and 32 (sampling at temperature 1
//! from ~40-token chat prompts), training throughput (forward + backward + AdamW step on
//! 8 × 256 tokens), peak RSS and achieved GFLOP/s. Prints figures; asserts nothing.

use anyhow::Context;
use candle_core::Device;
use hicra_model::{
    ChatMessage, LoadOptions, LoadedModel, Padding, SamplingParams, ScoreOptions, TokenBatch,
    load_model,
};
use hicra_rl::optim::{AdamW, AdamWConfig};
use std::time::Instant;

/// Arguments of `hicra bench model`.
#[derive(clap::Args)]
pub struct Args {
    /// Model: an HF directory, a .gguf file or a fetched model's name.
    #[arg(long)]
    pub model: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Generation batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 8, 32])]
    pub batch_sizes: Vec<usize>,
    /// New tokens per sequence in the generation runs.
    #[arg(long, default_value_t = 128)]
    pub new_tokens: usize,
    /// Sequences in the training step.
    #[arg(long, default_value_t = 8)]
    pub train_batch: usize,
    /// Tokens per sequence in the training step.
    #[arg(long, default_value_t = 256)]
    pub train_seq_len: usize,
    /// Timed training steps (after one warm-up step); 0 skips the training measurement.
    #[arg(long, default_value_t = 2)]
    pub train_steps: usize,
    /// Seed for sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Math questions used as chat prompts (each renders to roughly 40 tokens with a chat template).
const QUESTIONS: &[&str] = &[
    "A train travels 120 km in 1.5 hours. What is its average speed in km per hour? Explain briefly.",
    "Natalia sold clips to 48 friends in April and half as many in May. How many clips did she sell?",
    "What is the sum of the first twenty positive odd numbers? Show the key step of your reasoning.",
    "If 3x + 7 = 22, what is the value of x? Please check your answer by substituting it back in.",
    "A rectangle has a perimeter of 30 cm and a width of 5 cm. What is its area in square centimetres?",
    "How many ways can you choose 2 books from a shelf of 6 different books? Give a short answer.",
    "Tom has twice as many marbles as Ann. Together they have 36 marbles. How many does Tom have?",
    "What is the remainder when 2 to the power of 10 is divided by 7? Explain how you found it.",
];

fn chat_prompt(loaded: &LoadedModel, question: &str) -> anyhow::Result<Vec<u32>> {
    let text = match &loaded.chat_template {
        Some(template) => template.render(&[ChatMessage::new("user", question)], true)?,
        None => question.to_string(),
    };
    Ok(loaded.tokenizer.encode(&text, false)?)
}

/// Peak resident set size of this process in MiB (`VmHWM` in /proc/self/status).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// One generation measurement.
struct GenFigure {
    batch: usize,
    tokens: usize,
    seconds: f64,
}

fn bench_generation(loaded: &LoadedModel, args: &Args, batch: usize) -> anyhow::Result<GenFigure> {
    let prompts: Vec<Vec<u32>> = (0..batch)
        .map(|i| chat_prompt(loaded, QUESTIONS[i % QUESTIONS.len()]))
        .collect::<anyhow::Result<_>>()?;
    // Fixed length: no stop tokens, so every row produces exactly `new_tokens`.
    let params = SamplingParams {
        temperature: 1.0,
        top_p: 1.0,
        top_k: 0,
        max_new_tokens: args.new_tokens,
        seed: args.seed,
        stop_token_ids: Vec::new(),
        stop_strings: Vec::new(),
    };
    // A short untimed run first, as PyTorch benchmarks do: page-ins and allocator warm-up.
    let warm_up = SamplingParams {
        max_new_tokens: args.new_tokens.min(8),
        ..params.clone()
    };
    loaded.model.generate(&prompts, &warm_up, None)?;
    let start = Instant::now();
    let generations = loaded.model.generate(&prompts, &params, None)?;
    let seconds = start.elapsed().as_secs_f64();
    let tokens = generations.iter().map(|g| g.token_ids.len()).sum();
    Ok(GenFigure {
        batch,
        tokens,
        seconds,
    })
}

fn bench_training(loaded: &LoadedModel, args: &Args) -> anyhow::Result<(usize, f64)> {
    let model = &loaded.model;
    let vocab = model.config().vocab_size as u32;
    // Deterministic pseudo-text: token ids from a simple LCG over the vocabulary.
    let mut state = args.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let rows: Vec<Vec<u32>> = (0..args.train_batch)
        .map(|_| {
            (0..args.train_seq_len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) % vocab as u64) as u32
                })
                .collect()
        })
        .collect();
    let batch = TokenBatch::from_rows(&rows, loaded.pad_token_id, Padding::Right, &Device::Cpu)?;
    // The trainer's optimiser (AdamW with global-norm clipping), as `hicra train` runs it.
    let params = model.parameters();
    let mut optimizer = AdamW::new(params.clone(), AdamWConfig::default())?;
    let opts = ScoreOptions {
        chunk_positions: 64,
        with_entropy: false,
    };
    let step = |optimizer: &mut AdamW| -> anyhow::Result<()> {
        let out = model
            .backward_token_loss(&batch, &opts, &mut |chunk| chunk.logprobs.sum_all()?.neg())?;
        let grads: Vec<Option<candle_core::Tensor>> = params
            .iter()
            .map(|(_, var)| out.grads.get(var.as_tensor()).cloned())
            .collect();
        optimizer.step(&grads, 1e-6)?;
        Ok(())
    };
    step(&mut optimizer).context("training warm-up step")?;
    let start = Instant::now();
    for _ in 0..args.train_steps {
        step(&mut optimizer)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok((
        args.train_steps * args.train_batch * args.train_seq_len,
        seconds,
    ))
}

/// Runs `hicra bench model`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let load_start = Instant::now();
    let loaded = load_model(&args.model, &LoadOptions::default())?;
    let load_s = load_start.elapsed().as_secs_f64();
    let params = loaded
        .model
        .parameters()
        .iter()
        .map(|(_, v)| v.as_tensor().elem_count())
        .sum::<usize>() as f64;
    let threads = candle_core::utils::get_num_threads();
    if !args.json {
        eprintln!(
            "model {} ({:.1}M parameters, loaded in {load_s:.1}s, {threads} threads)",
            loaded.source,
            params / 1e6
        );
    }
    let mut gen_figures = Vec::new();
    for &batch in &args.batch_sizes {
        let fig = bench_generation(&loaded, &args, batch)?;
        if !args.json {
            eprintln!(
                "generation batch {:>3}: {:>7.1} tok/s ({} tokens in {:.2}s, {:.1} GFLOP/s)",
                fig.batch,
                fig.tokens as f64 / fig.seconds,
                fig.tokens,
                fig.seconds,
                2.0 * params * fig.tokens as f64 / fig.seconds / 1e9
            );
        }
        gen_figures.push(fig);
    }
    let (train_tok_s, train_gflops) = if args.train_steps == 0 {
        (None, None)
    } else {
        let (train_tokens, train_s) = bench_training(&loaded, &args)?;
        let tok_s = train_tokens as f64 / train_s;
        (Some(tok_s), Some(6.0 * params * tok_s / 1e9))
    };
    let rss = peak_rss_mb();
    let mut out = serde_json::Map::new();
    out.insert("model".into(), serde_json::json!(loaded.source));
    out.insert("parameters".into(), serde_json::json!(params as u64));
    out.insert("threads".into(), serde_json::json!(threads));
    for fig in &gen_figures {
        let tok_s = fig.tokens as f64 / fig.seconds;
        out.insert(
            format!("gen_b{}_tok_s", fig.batch),
            serde_json::json!(tok_s),
        );
        out.insert(
            format!("gen_b{}_gflop_s", fig.batch),
            serde_json::json!(2.0 * params * tok_s / 1e9),
        );
    }
    out.insert("train_tok_s".into(), serde_json::json!(train_tok_s));
    out.insert("train_gflop_s".into(), serde_json::json!(train_gflops));
    out.insert("peak_rss_mb".into(), serde_json::json!(rss));
    if args.json {
        println!("{}", serde_json::Value::Object(out));
    } else {
        if let (Some(tok_s), Some(gflops)) = (train_tok_s, train_gflops) {
            eprintln!(
                "training {}x{}: {tok_s:.1} tok/s ({gflops:.1} GFLOP/s)",
                args.train_batch, args.train_seq_len
            );
        }
        match rss {
            Some(mb) => eprintln!("peak RSS: {mb:.0} MiB"),
            None => eprintln!("peak RSS: unavailable (no /proc/self/status)"),
        }
    }
    Ok(())
}
