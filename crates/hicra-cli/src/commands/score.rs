//! `hicra score`: teacher-forced log-probabilities of a continuation given a prompt.

use anyhow::Context;
use hicra_model::{Padding, ScoreOptions, TokenBatch, load_model};

use super::generate::prompt_ids;

/// Arguments of `hicra score`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model: a Hugging Face directory, a .gguf file, or a fetched model's name.
    #[arg(long)]
    pub model: String,
    /// The prompt (context) text.
    #[arg(long)]
    pub prompt: String,
    /// The continuation whose tokens are scored.
    #[arg(long)]
    pub continuation: String,
    /// Render the model's chat template with the prompt as one user message.
    #[arg(long)]
    pub chat: bool,
    /// Print one JSON object {"tokens", "token_ids", "logprobs"} (otherwise a table).
    #[arg(long)]
    pub json: bool,
    /// Where the model runs and in which dtype.
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

/// Runs `hicra score`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let loaded = load_model(&args.model, &args.device.load_options()?)
        .with_context(|| format!("loading model {}", args.model))?;
    let prompt = prompt_ids(&loaded, &args.prompt, args.chat)?;
    if prompt.is_empty() {
        anyhow::bail!(
            "the prompt encodes to no tokens; a continuation needs a context to be scored"
        );
    }
    let continuation = loaded.tokenizer.encode(&args.continuation, false)?;
    if continuation.is_empty() {
        anyhow::bail!("the continuation encodes to no tokens");
    }
    let row = [prompt.clone(), continuation.clone()].concat();
    let context = loaded.model.config().max_position_embeddings;
    if row.len() > context {
        anyhow::bail!(
            "prompt + continuation are {} tokens, longer than the context of {context}",
            row.len()
        );
    }
    let batch = TokenBatch::from_rows(
        &[row],
        loaded.pad_token_id,
        Padding::Right,
        loaded.model.device(),
    )?;
    let scores = loaded.model.score_tokens(
        &batch,
        &ScoreOptions {
            chunk_positions: 64,
            with_entropy: false,
        },
    )?;
    let logprobs: Vec<f32> = scores.logprobs[0][prompt.len()..].to_vec();
    let tokens = continuation
        .iter()
        .map(|&id| loaded.tokenizer.decode(&[id], false))
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        let out = serde_json::json!({ "tokens": tokens, "token_ids": continuation, "logprobs": logprobs });
        println!("{}", serde_json::to_string(&out)?);
    } else {
        for ((t, id), lp) in tokens.iter().zip(&continuation).zip(&logprobs) {
            println!("{id:>8}  {lp:>10.4}  {t:?}");
        }
        println!(
            "total log-prob: {:.4}",
            logprobs.iter().map(|&x| x as f64).sum::<f64>()
        );
    }
    Ok(())
}
