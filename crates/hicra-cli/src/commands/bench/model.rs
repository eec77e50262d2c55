//! `hicra bench model`: generation throughput at batch 1 to 256 (sampling at temperature 1
//! from ~40-token chat prompts) in f32 and with bf16 decoding, training throughput (forward +
//! backward + AdamW step on 8 × 256 tokens), peak RSS, achieved GFLOP/s and the machine's
//! matmul rate at the time. With `--torch`, PyTorch + transformers runs the same measurements
//! in a Python process, each right after hicra's, and the ratios are printed. Prints figures;
//! asserts nothing.

use anyhow::Context;
use hicra_model::DeviceSpec;
use hicra_model::{
    ChatMessage, LoadedModel, Padding, Precision, SamplingParams, ScoreOptions, TokenBatch,
    load_model,
};
use hicra_rl::optim::{AdamW, AdamWConfig};
use std::path::PathBuf;
use std::time::Instant;

use super::torch_side::{TorchFigure, TorchSide};

/// Arguments of `hicra bench model`.
#[derive(clap::Args)]
pub struct Args {
    /// Model: an HF directory, a .gguf file or a fetched model's name.
    #[arg(long, required_unless_present = "random_shape")]
    pub model: Option<String>,
    /// Instead of `--model`, random f32 weights of a known shape: `qwen2.5-0.5b` (with the
    /// test tokenizer; for memory and speed figures only).
    #[arg(long, value_name = "SHAPE", conflicts_with = "model")]
    pub random_shape: Option<String>,
    /// Train with activation checkpointing (`algorithm.activation_checkpointing`).
    #[arg(long)]
    pub activation_checkpointing: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Generation batch sizes to measure (the flag alone, with no sizes: no generation runs).
    #[arg(long, value_delimiter = ',', num_args = 0.., default_values_t = vec![1usize, 8, 32, 64, 128, 256])]
    pub batch_sizes: Vec<usize>,
    /// Decoding precisions to measure generation in: `f32`, `bf16` (bf16 weights and f32
    /// accumulation; measured only where the CPU has AVX-512 BF16).
    #[arg(long, value_delimiter = ',', default_values = ["f32", "bf16"], value_parser = parse_precision)]
    pub decode_dtypes: Vec<Precision>,
    /// Precisions of the training products to measure: `f32`, `bf16` (operands rounded to
    /// bf16, f32 accumulation, on AMX or AVX-512 BF16; measured only where the CPU has AVX-512
    /// BF16). With `--torch`, PyTorch trains bf16 under `torch.autocast`.
    #[arg(long, value_delimiter = ',', default_values = ["f32"], value_parser = parse_precision)]
    pub train_matmul_dtypes: Vec<Precision>,
    /// Also run every measurement in PyTorch + transformers (f32, same threads, same prompts
    /// and shapes), right after hicra's, and print the ratios. Needs an HF directory model.
    #[arg(long)]
    pub torch: bool,
    /// The Python interpreter with torch and transformers, for `--torch`.
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
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
    /// Where the model runs and in which dtype.
    #[command(flatten)]
    pub device: crate::commands::device_args::DeviceArgs,
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

fn parse_precision(text: &str) -> Result<Precision, String> {
    Precision::parse(text).ok_or_else(|| format!("{text:?} is not f32 or bf16"))
}

/// One training measurement: hicra's rate and PyTorch's (same precision) beside it.
struct TrainFigure {
    precision: Precision,
    tok_s: f64,
    torch_tok_s: Option<f64>,
}

/// Whether bf16 training products run on this machine.
fn bf16_products_here() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        hicra_kernels::bf16_matmul::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// One generation measurement.
struct GenFigure {
    tokens: usize,
    seconds: f64,
}

/// `batch` chat prompts, cycling through [`QUESTIONS`].
fn prompts(loaded: &LoadedModel, batch: usize) -> anyhow::Result<Vec<Vec<u32>>> {
    (0..batch)
        .map(|i| chat_prompt(loaded, QUESTIONS[i % QUESTIONS.len()]))
        .collect()
}

fn bench_generation(
    loaded: &LoadedModel,
    args: &Args,
    prompts: &[Vec<u32>],
    precision: Precision,
) -> anyhow::Result<GenFigure> {
    let model = loaded.model.clone().with_decode_precision(precision);
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
    model.generate(prompts, &warm_up, None)?;
    let start = Instant::now();
    let generations = model.generate(prompts, &params, None)?;
    let seconds = start.elapsed().as_secs_f64();
    let tokens = generations.iter().map(|g| g.token_ids.len()).sum();
    Ok(GenFigure { tokens, seconds })
}

/// Deterministic pseudo-text for the training step: token ids from a simple LCG.
fn training_rows(loaded: &LoadedModel, args: &Args) -> Vec<Vec<u32>> {
    let vocab = loaded.model.config().vocab_size as u32;
    let mut state = args.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..args.train_batch)
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
        .collect()
}

fn bench_training(
    loaded: &LoadedModel,
    args: &Args,
    rows: &[Vec<u32>],
    precision: Precision,
) -> anyhow::Result<(usize, f64)> {
    let model = &loaded.model.clone().with_matmul_precision(precision);
    let batch = TokenBatch::from_rows(rows, loaded.pad_token_id, Padding::Right, model.device())?;
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
    model.device().synchronize()?;
    let start = Instant::now();
    for _ in 0..args.train_steps {
        step(&mut optimizer)?;
    }
    // A GPU runs the steps asynchronously: wait for the last one before reading the clock.
    model.device().synchronize()?;
    let seconds = start.elapsed().as_secs_f64();
    Ok((
        args.train_steps * args.train_batch * args.train_seq_len,
        seconds,
    ))
}

/// Runs `hicra bench model`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let load_start = Instant::now();
    let mut loaded = match (&args.model, &args.random_shape) {
        (Some(spec), _) => load_model(spec, &args.device.load_options()?)?,
        (None, Some(shape)) => random_model(shape, &args.device.load_options()?)?,
        (None, None) => anyhow::bail!("--model or --random-shape is needed"),
    };
    loaded.model = loaded
        .model
        .clone()
        .with_activation_checkpointing(args.activation_checkpointing);
    // On a GPU: the peak device memory above what was in use once the weights were loaded.
    let gpu_memory = hicra_model::device::PeakMemory::start(loaded.model.device())?;
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
    // A GGUF model is exported (its f32 weights, as hicra runs them) for PyTorch to load.
    let mut export_dir: Option<RemovedOnDrop> = None;
    let mut torch = if args.torch {
        let path = match &args.model {
            Some(spec) => hicra_model::io::registry::resolve_model_path(spec)?,
            None => PathBuf::new(),
        };
        let dir = if path.is_dir() {
            path
        } else {
            let tmp = RemovedOnDrop(
                std::env::temp_dir().join(format!("hicra-bench-torch-{}", std::process::id())),
            );
            let dir = tmp.0.join("hf");
            loaded
                .save_hf(&dir)
                .context("exporting the model as a Hugging Face directory for PyTorch")?;
            export_dir = Some(tmp);
            dir
        };
        let side = TorchSide::start(&args.python, &dir, threads, loaded.pad_token_id)?;
        if !args.json {
            eprintln!(
                "PyTorch side: {} ({}){}",
                side.versions,
                args.python.display(),
                if export_dir.is_some() {
                    ", on the same f32 weights exported as a Hugging Face directory"
                } else {
                    ""
                }
            );
        }
        Some(side)
    } else {
        None
    };
    let mut out = serde_json::Map::new();
    let rates = machine_rates()?;
    if !args.json {
        eprintln!(
            "machine matmul rate now: {:.0} GFLOP/s f32 (candle, 1024^3){}",
            rates.f32_gflop_s,
            rates.bf16_gflop_s.map_or(String::new(), |r| format!(
                ", {r:.0} GFLOP/s bf16 (packed kernel)"
            ))
        );
    }
    out.insert(
        "matmul_f32_gflop_s".into(),
        serde_json::json!(rates.f32_gflop_s),
    );
    out.insert(
        "matmul_bf16_gflop_s".into(),
        serde_json::json!(rates.bf16_gflop_s),
    );
    let tok_s = |tokens: usize, seconds: f64| tokens as f64 / seconds;
    for &batch in &args.batch_sizes {
        let prompts = prompts(&loaded, batch)?;
        let mut figures: Vec<(Precision, GenFigure)> = Vec::new();
        for &precision in &args.decode_dtypes {
            if precision != Precision::F32 && !precision.fast_on_this_cpu() {
                if !args.json && batch == args.batch_sizes[0] {
                    eprintln!(
                        "{}: this CPU lacks its instructions; skipped",
                        precision.name()
                    );
                }
                continue;
            }
            figures.push((
                precision,
                bench_generation(&loaded, &args, &prompts, precision)?,
            ));
        }
        let reference: Option<TorchFigure> = match torch.as_mut() {
            Some(side) => Some(side.generate(&prompts, args.new_tokens, args.seed)?),
            None => None,
        };
        let torch_rate = reference.as_ref().map(|r| tok_s(r.tokens, r.seconds));
        for (precision, fig) in &figures {
            let rate = tok_s(fig.tokens, fig.seconds);
            let gflops = 2.0 * params * rate / 1e9;
            let key = match precision {
                Precision::F32 => format!("gen_b{batch}"),
                other => format!("gen_{}_b{batch}", other.name()),
            };
            out.insert(format!("{key}_tok_s"), serde_json::json!(rate));
            out.insert(format!("{key}_gflop_s"), serde_json::json!(gflops));
            if let Some(t) = torch_rate {
                out.insert(format!("{key}_vs_torch"), serde_json::json!(rate / t));
            }
            if !args.json {
                let versus = torch_rate.map_or(String::new(), |t| {
                    format!("  | PyTorch f32 {t:>6.1} tok/s, ratio {:.2}x", rate / t)
                });
                eprintln!(
                    "generation {:>4} batch {batch:>3}: {rate:>7.1} tok/s ({} tokens in {:.2}s, \
                     {gflops:.1} GFLOP/s){versus}",
                    precision.name(),
                    fig.tokens,
                    fig.seconds,
                );
            }
        }
        if let Some(t) = torch_rate {
            out.insert(format!("torch_gen_b{batch}_tok_s"), serde_json::json!(t));
        }
    }
    let mut training: Vec<TrainFigure> = Vec::new();
    if args.train_steps > 0 {
        let rows = training_rows(&loaded, &args);
        for &precision in &args.train_matmul_dtypes {
            let bf16 = precision == Precision::Bf16;
            if bf16 && !bf16_products_here() {
                if !args.json {
                    eprintln!("training bf16: this CPU has no AVX-512 BF16; skipped");
                }
                continue;
            }
            let (train_tokens, train_s) = bench_training(&loaded, &args, &rows, precision)?;
            let torch_tok_s = match torch.as_mut() {
                Some(side) => {
                    let fig = side.train(&rows, args.train_steps, bf16)?;
                    Some(fig.tokens as f64 / fig.seconds)
                }
                None => None,
            };
            training.push(TrainFigure {
                precision,
                tok_s: train_tokens as f64 / train_s,
                torch_tok_s,
            });
        }
    }
    let rss = hicra_rl::run::peak_rss_mib();
    out.insert("model".into(), serde_json::json!(loaded.source));
    out.insert("parameters".into(), serde_json::json!(params as u64));
    out.insert("threads".into(), serde_json::json!(threads));
    for fig in &training {
        let key = match fig.precision {
            Precision::F32 => "train".to_string(),
            other => format!("train_{}", other.name()),
        };
        out.insert(format!("{key}_tok_s"), serde_json::json!(fig.tok_s));
        out.insert(
            format!("{key}_gflop_s"),
            serde_json::json!(6.0 * params * fig.tok_s / 1e9),
        );
        if let Some(t) = fig.torch_tok_s {
            out.insert(format!("torch_{key}_tok_s"), serde_json::json!(t));
            out.insert(format!("{key}_vs_torch"), serde_json::json!(fig.tok_s / t));
        }
    }
    out.insert("peak_rss_mb".into(), serde_json::json!(rss));
    if let Some(side) = &torch {
        out.insert("torch_versions".into(), serde_json::json!(side.versions));
        out.insert(
            "torch_peak_rss_mb".into(),
            serde_json::json!(side.peak_rss_mb),
        );
    }
    let mib = |bytes: u64| bytes as f64 / (1u64 << 20) as f64;
    out.insert(
        "device".into(),
        serde_json::json!(DeviceSpec::of(loaded.model.device()).to_string()),
    );
    out.insert(
        "dtype".into(),
        serde_json::json!(format!("{:?}", loaded.model.dtype()).to_lowercase()),
    );
    if let Some(watch) = &gpu_memory {
        out.insert(
            "gpu_after_load_mb".into(),
            serde_json::json!(mib(watch.at_start())),
        );
        out.insert(
            "gpu_peak_mb".into(),
            serde_json::json!(mib(watch.at_start() + watch.peak_above_start())),
        );
    }
    if args.json {
        println!("{}", serde_json::Value::Object(out));
    } else {
        // With bf16 products the PyTorch side runs under bf16 autocast; its f32 figure stays
        // beside it for the ratio against the f32 baseline.
        let torch_f32 = training
            .iter()
            .find(|f| f.precision == Precision::F32)
            .and_then(|f| f.torch_tok_s);
        for fig in &training {
            let tok_s = fig.tok_s;
            let versus = match (fig.torch_tok_s, fig.precision) {
                (None, _) => String::new(),
                (Some(t), Precision::F32) => {
                    format!("  | PyTorch f32 {t:.1} tok/s, ratio {:.2}x", tok_s / t)
                }
                (Some(t), _) => format!(
                    "  | PyTorch bf16 autocast {t:.1} tok/s, ratio {:.2}x{}",
                    tok_s / t,
                    torch_f32.map_or(String::new(), |f| format!(
                        "; against PyTorch f32 {:.2}x",
                        tok_s / f
                    ))
                ),
            };
            eprintln!(
                "training {:>4} {}x{}: {tok_s:.1} tok/s ({:.1} GFLOP/s){versus}",
                fig.precision.name(),
                args.train_batch,
                args.train_seq_len,
                6.0 * params * tok_s / 1e9,
            );
        }
        if let Some(side) = &torch {
            eprintln!("PyTorch process peak RSS: {:.0} MiB", side.peak_rss_mb);
        }
        match rss {
            Some(mb) => eprintln!("peak RSS: {mb:.0} MiB"),
            None => eprintln!("peak RSS: unavailable (no /proc/self/status)"),
        }
        if let Some(watch) = &gpu_memory {
            eprintln!(
                "peak GPU memory: {:.0} MiB ({:.0} MiB in use after loading)",
                mib(watch.at_start() + watch.peak_above_start()),
                mib(watch.at_start())
            );
        }
    }
    Ok(())
}

/// The machine's matmul rates at the time of the run.
struct MachineRates {
    f32_gflop_s: f64,
    bf16_gflop_s: Option<f64>,
}

/// Best of three 1024³ f32 matmuls through candle (gemm, all threads), and where the CPU has
/// AVX-512 BF16 the packed bf16 kernel on 256 rows against a 4096 × 1024 weight (all threads).
fn machine_rates() -> anyhow::Result<MachineRates> {
    let dev = candle_core::Device::Cpu;
    let n = 1024usize;
    let a = candle_core::Tensor::randn(0f32, 1.0, (n, n), &dev)?;
    let b = candle_core::Tensor::randn(0f32, 1.0, (n, n), &dev)?;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        a.matmul(&b)?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    let f32_gflop_s = 2.0 * (n * n * n) as f64 / best / 1e9;
    let bf16_gflop_s = if Precision::Bf16.fast_on_this_cpu() {
        let (m, k, cols) = (256usize, 1024usize, 4096usize);
        let w: Vec<f32> = (0..cols * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let x: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 * 0.1).collect();
        let packed = hicra_kernels::packed::PackedMatrix::pack(&w, cols, k, Precision::Bf16);
        let mut y = vec![0f32; m * cols];
        let threads = candle_core::utils::get_num_threads();
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let start = Instant::now();
            packed.matmul(&x, m, &mut y, threads);
            best = best.min(start.elapsed().as_secs_f64());
        }
        Some(2.0 * (m * k * cols) as f64 / best / 1e9)
    } else {
        None
    };
    Ok(MachineRates {
        f32_gflop_s,
        bf16_gflop_s,
    })
}

/// A temporary directory, removed with everything in it when dropped.
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A model of a known shape with random f32 weights and the test tokenizer.
fn random_model(shape: &str, opts: &hicra_model::LoadOptions) -> anyhow::Result<LoadedModel> {
    use hicra_model::io::tiny;
    use hicra_model::{Arch, Model, ModelConfig};
    let config = match shape {
        "qwen2.5-0.5b" => ModelConfig {
            arch: Arch::Qwen2,
            vocab_size: 151_936,
            hidden_size: 896,
            intermediate_size: 4864,
            num_hidden_layers: 24,
            num_attention_heads: 14,
            num_key_value_heads: 2,
            head_dim: 64,
            rms_norm_eps: 1e-6,
            rope_theta: 1_000_000.0,
            rope_scaling: None,
            max_position_embeddings: 32_768,
            tie_word_embeddings: true,
            attention_bias: true,
            mlp_bias: false,
            bos_token_id: None,
            eos_token_ids: vec![],
            torch_dtype: Some("float32".into()),
        },
        other => anyhow::bail!("--random-shape: unknown shape {other:?} (known: qwen2.5-0.5b)"),
    };
    let tensors = tiny::random_tensors(&config, 0)?;
    let model = Model::from_tensors_named(config, tensors, opts, "random weights")?;
    Ok(LoadedModel {
        model,
        tokenizer: tiny::test_tokenizer(),
        chat_template: None,
        eos_token_ids: vec![],
        pad_token_id: 0,
        source: format!("random {shape} weights"),
    })
}
