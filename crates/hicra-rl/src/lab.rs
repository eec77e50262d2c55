//! The reasoning lab's model: its own byte-level BPE tokenizer (digits kept as single-digit
//! tokens) trained on the lab corpus, a tiny Llama-shaped model, and the SFT warm start,
//! cached under the hicra home directory
//! (`$HICRA_HOME/lab`, else `~/.cache/hicra/lab`) keyed by a hash of the settings.

use std::path::{Path, PathBuf};

use hicra_model::{Arch, Tokenizer};
use sha2::{Digest, Sha256};

use crate::config::TrainConfig;
use crate::error::{Result, RlError};
use crate::generator::LocalGenerator;
use crate::optim::AdamWConfig;
use crate::sft::{SftExample, SftOptions, run_sft};
use crate::validation::{Evaluation, evaluate, validation_plan};

/// The end-of-sequence token of the lab tokenizer.
pub const LAB_EOS: &str = "<|endoftext|>";

/// The lab cache directory.
pub fn lab_home() -> Result<PathBuf> {
    if let Some(h) = std::env::var_os("HICRA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(h).join("lab"));
    }
    let home = std::env::var_os("HOME")
        .ok_or_else(|| RlError::Invalid("neither HICRA_HOME nor HOME is set".into()))?;
    Ok(PathBuf::from(home).join(".cache/hicra/lab"))
}

/// Hash of everything that determines the warm start (model shape, SFT settings, lab task).
pub fn warmstart_key(config: &TrainConfig) -> String {
    #[derive(serde::Serialize)]
    struct Key<'a> {
        lab_model: &'a crate::config::LabModelSection,
        sft: &'a crate::config::SftSection,
        lab: &'a hicra_tasks::lab::LabConfig,
        micro_batch: usize,
        chunk_positions: usize,
    }
    let k = Key {
        lab_model: &config.lab_model,
        sft: &config.sft,
        lab: &config.task.lab,
        micro_batch: config.algorithm.micro_batch,
        chunk_positions: config.algorithm.chunk_positions,
    };
    let text = toml::to_string(&k).expect("key serialises");
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The cached warm-start directory for `config`.
pub fn warmstart_dir(config: &TrainConfig) -> Result<PathBuf> {
    Ok(lab_home()?.join(format!("warmstart-{}", warmstart_key(config))))
}

/// Writes the lab's randomly initialised model (tokenizer trained on the lab corpus) to `dir`.
pub fn write_initial_lab_model(config: &TrainConfig, dir: &Path) -> Result<()> {
    let lm = &config.lab_model;
    let corpus: Vec<String> = hicra_tasks::lab::tokenizer_corpus()
        .into_iter()
        .take(lm.corpus_size.max(1))
        .collect();
    let m = |e: hicra_model::ModelError| RlError::Model(format!("lab model: {e}"));
    let tokenizer =
        Tokenizer::train_bpe_split_digits(&corpus, lm.vocab_size, &[LAB_EOS]).map_err(m)?;
    let mut mc =
        hicra_model::io::tiny::tiny_config(Arch::Llama, tokenizer.vocab_size().max(lm.vocab_size));
    mc.hidden_size = lm.hidden_size;
    mc.intermediate_size = lm.intermediate_size;
    mc.num_hidden_layers = lm.layers;
    mc.num_attention_heads = lm.heads;
    mc.num_key_value_heads = lm.kv_heads;
    mc.head_dim = lm.hidden_size / lm.heads;
    mc.max_position_embeddings = 1024;
    // Seeded by the lab's seed (part of the cache key), not the RL seed, so every RL seed
    // shares one warm start.
    hicra_model::io::tiny::write_tiny_model(dir, &mc, &tokenizer, None, config.task.lab.seed)
        .map_err(m)
}

/// The lab's SFT examples from the task's trace generator.
pub fn lab_sft_examples(config: &TrainConfig) -> Vec<SftExample> {
    hicra_tasks::lab::sft_corpus(&config.task.lab, config.sft.examples)
        .into_iter()
        .map(|t| SftExample {
            prompt: t.prompt,
            completion: t.completion,
        })
        .collect()
}

/// SFT options from the config.
pub fn sft_options(config: &TrainConfig) -> SftOptions {
    SftOptions {
        steps: config.sft.steps,
        batch_size: config.sft.batch_size,
        micro_batch: config.algorithm.micro_batch,
        lr: config.sft.lr,
        warmup_steps: config.sft.warmup_steps,
        max_len: config.sft.max_len,
        seed: config.trainer.seed,
        chunk_positions: config.algorithm.chunk_positions,
        adamw: AdamWConfig {
            weight_decay: 0.0,
            ..config.optim.adamw()
        },
    }
}

/// Returns the cached warm-started lab model for `config`, building it (tokenizer, random
/// model, SFT) when missing. `log` receives progress lines; `on_step(step, loss)` SFT steps.
pub fn prepare_lab_model(
    config: &TrainConfig,
    log: &mut dyn FnMut(&str),
    on_step: &mut dyn FnMut(usize, f64),
) -> Result<(PathBuf, Option<Evaluation>)> {
    let dir = warmstart_dir(config)?;
    if dir.join("config.json").is_file() {
        log(&format!("using cached warm start {}", dir.display()));
        return Ok((dir, None));
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| RlError::io(parent, e))?;
    let init = parent.join(format!(".init-{}", std::process::id()));
    log("training the lab tokenizer and writing the initial tiny model");
    write_initial_lab_model(config, &init)?;
    let policy = hicra_model::load_hf_dir(&init, &config.model.load_options()?)
        .map_err(|e| RlError::model(&init.display().to_string(), e))?;
    let _ = std::fs::remove_dir_all(&init);
    let examples = lab_sft_examples(config);
    log(&format!(
        "SFT warm start: {} steps × {} examples",
        config.sft.steps, config.sft.batch_size
    ));
    let t0 = std::time::Instant::now();
    let opts = SftOptions {
        seed: config.task.lab.seed,
        ..sft_options(config)
    };
    let loss = run_sft(&policy, &examples, &opts, &mut |s, l, _| {
        on_step(s, l);
        Ok(())
    })?;
    log(&format!(
        "SFT done in {:.1}s (final loss {loss:.4}); validating",
        t0.elapsed().as_secs_f64()
    ));
    let t1 = std::time::Instant::now();
    let task = hicra_tasks::lab::LabTask::new(config.task.lab.clone())
        .map_err(|e| RlError::Task(e.to_string()))?;
    let problems: Vec<_> = hicra_tasks::Task::validation_problems(&task)
        .iter()
        .take(config.trainer.val_size)
        .cloned()
        .collect();
    // Greedy, on the prompts' plain text (the lab model has no chat template).
    let mut plan = validation_plan(config);
    plan.sampling.temperature = 0.0;
    plan.sampling.top_p = 1.0;
    plan.prompts.use_chat_template = false;
    let (ev, _, _) = evaluate(
        &mut LocalGenerator::new(&policy),
        &policy,
        &task,
        &problems,
        &plan,
    )?;
    log(&format!(
        "validation took {:.1}s",
        t1.elapsed().as_secs_f64()
    ));
    policy
        .save_hf(&dir)
        .map_err(|e| RlError::Model(format!("saving the warm start to {}: {e}", dir.display())))?;
    Ok((dir, Some(ev)))
}
