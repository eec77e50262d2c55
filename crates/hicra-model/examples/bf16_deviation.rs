//! Log-prob deviation of bf16 decoding from the model's f32 scores on a real model: samples
//! continuations with bf16 decoding (and, for reference, f32 decoding), rescores them in f32
//! with `score_tokens`, and prints mean and max |Δ| per token; then the same for scoring with
//! bf16 products (`Model::with_matmul_precision`, the training forward's numerics) on the f32
//! continuations. Asserts nothing.
//!
//! `cargo run --release -p hicra-model --example bf16_deviation [MODEL] [BATCH] [TOKENS]`
//! (default: smollm2-135m-instruct, 16 rows, 64 new tokens).

use hicra_model::{
    ChatMessage, LoadOptions, Padding, Precision, SamplingParams, ScoreOptions, TokenBatch,
    load_model,
};

const QUESTIONS: &[&str] = &[
    "A train travels 120 km in 1.5 hours. What is its average speed in km per hour?",
    "What is the sum of the first twenty positive odd numbers?",
    "If 3x + 7 = 22, what is the value of x?",
    "How many ways can you choose 2 books from a shelf of 6 different books?",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let spec = args.get(1).map_or("smollm2-135m-instruct", String::as_str);
    let batch: usize = args.get(2).map_or(Ok(16), |a| a.parse())?;
    let tokens: usize = args.get(3).map_or(Ok(64), |a| a.parse())?;
    let loaded = load_model(spec, &LoadOptions::default())?;
    let prompts: Vec<Vec<u32>> = (0..batch)
        .map(|i| {
            let q = QUESTIONS[i % QUESTIONS.len()];
            let text = match &loaded.chat_template {
                Some(t) => t.render(&[ChatMessage::new("user", q)], true)?,
                None => q.to_string(),
            };
            Ok(loaded.tokenizer.encode(&text, false)?)
        })
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;
    let params = SamplingParams {
        temperature: 1.0,
        max_new_tokens: tokens,
        seed: 0,
        ..SamplingParams::default()
    };
    println!(
        "{spec}: {batch} rows x {tokens} tokens, packed bf16 kernel: {}",
        Precision::Bf16.fast_on_this_cpu()
    );
    // The f32 continuations and their f32 scores, kept for the bf16-product scoring below.
    let mut f32_pass = None;
    for precision in [Precision::F32, Precision::Bf16] {
        let model = loaded.model.clone().with_decode_precision(precision);
        let gens = model.generate(&prompts, &params, None)?;
        let rows: Vec<Vec<u32>> = prompts
            .iter()
            .zip(&gens)
            .map(|(p, g)| p.iter().chain(&g.token_ids).copied().collect())
            .collect();
        let tb = TokenBatch::from_rows(&rows, loaded.pad_token_id, Padding::Right, model.device())?;
        let scores = loaded.model.score_tokens(&tb, &ScoreOptions::default())?;
        let pairs = prompts
            .iter()
            .zip(&gens)
            .enumerate()
            .flat_map(|(i, (p, g))| {
                let scored = &scores.logprobs[i][p.len()..];
                g.logprobs.iter().copied().zip(scored.iter().copied())
            });
        report(&format!("{} decoding", precision.name()), pairs);
        if precision == Precision::F32 {
            f32_pass = Some((tb, rows, scores));
        }
    }
    // Scoring (the training forward) with bf16 products against f32 scoring, on the f32
    // continuations' generated tokens.
    let Some((tb, rows, exact)) = f32_pass else {
        return Err("the f32 pass did not run".into());
    };
    let bf16 = loaded
        .model
        .clone()
        .with_matmul_precision(Precision::Bf16)
        .score_tokens(&tb, &ScoreOptions::default())?;
    let (exact, bf16) = (&exact.logprobs, &bf16.logprobs);
    let pairs = prompts
        .iter()
        .enumerate()
        .flat_map(|(i, p)| (p.len()..rows[i].len()).map(move |k| (exact[i][k], bf16[i][k])));
    report("bf16-product scoring", pairs);
    Ok(())
}

/// Prints the mean and max |a − b| over the (tested, f32-scored) log-prob pairs.
fn report(what: &str, pairs: impl Iterator<Item = (f32, f32)>) {
    let (mut sum, mut max, mut n) = (0f64, 0f64, 0usize);
    for (a, b) in pairs {
        let d = (a - b).abs() as f64;
        sum += d;
        max = max.max(d);
        n += 1;
    }
    println!(
        "{what} vs f32 scoring: mean |Δ| {:.3e}, max |Δ| {:.3e} over {n} tokens",
        sum / n as f64,
        max
    );
}
