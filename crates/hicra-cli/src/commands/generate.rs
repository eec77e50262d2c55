//! `hicra generate`: continue a prompt (optionally through the chat template) with a model,
//! streaming the text or printing one JSON object.

use std::io::Write;

use anyhow::Context;
use hicra_model::{SamplingParams, load_model};

/// Arguments of `hicra generate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model: a Hugging Face directory, a .gguf file, or a fetched model's name.
    #[arg(long)]
    pub model: String,
    /// The prompt text.
    #[arg(long)]
    pub prompt: String,
    /// Render the model's chat template with the prompt as one user message.
    #[arg(long)]
    pub chat: bool,
    /// Most new tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Nucleus sampling mass (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Top-k sampling (0 = off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object {"text", "token_ids", "logprobs", "finish_reason"} instead of streaming.
    #[arg(long)]
    pub json: bool,
    /// Where the model runs and in which dtype.
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

/// Prompt token ids: through the chat template with `chat`, else the raw text with the
/// tokenizer's special tokens (e.g. BOS).
pub fn prompt_ids(
    loaded: &hicra_model::LoadedModel,
    prompt: &str,
    chat: bool,
) -> anyhow::Result<Vec<u32>> {
    if chat {
        let text = loaded.chat_prompt(prompt)?;
        Ok(loaded.tokenizer.encode(&text, false)?)
    } else {
        Ok(loaded.tokenizer.encode(prompt, true)?)
    }
}

/// Runs `hicra generate`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let loaded = load_model(&args.model, &args.device.load_options()?)
        .with_context(|| format!("loading model {}", args.model))?;
    let ids = prompt_ids(&loaded, &args.prompt, args.chat)?;
    if ids.is_empty() {
        anyhow::bail!("the prompt encodes to no tokens");
    }
    let params = SamplingParams {
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
        ..SamplingParams::default()
    };
    let generation = if args.json {
        loaded.generate(&[ids], &params)?.remove(0)
    } else {
        let mut so_far: Vec<u32> = Vec::new();
        let mut printed = 0usize;
        let mut stdout = std::io::stdout();
        let mut on_token = |_row: usize, tok: u32| {
            so_far.push(tok);
            if let Ok(text) = loaded.tokenizer.decode(&so_far, true)
                && text.len() > printed
                && text.is_char_boundary(printed)
                && !text.ends_with('\u{FFFD}')
            {
                let _ = stdout.write_all(&text.as_bytes()[printed..]);
                let _ = stdout.flush();
                printed = text.len();
            }
        };
        let g = loaded
            .generate_streaming(&[ids], &params, &mut on_token)?
            .remove(0);
        let text = loaded.tokenizer.decode(&g.token_ids, true)?;
        if text.len() > printed && text.is_char_boundary(printed) {
            print!("{}", &text[printed..]);
        }
        println!();
        return Ok(());
    };
    let text = loaded.tokenizer.decode(&generation.token_ids, true)?;
    let out = serde_json::json!({
        "text": text,
        "token_ids": generation.token_ids,
        "logprobs": generation.logprobs,
        "finish_reason": generation.finish_reason,
    });
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
