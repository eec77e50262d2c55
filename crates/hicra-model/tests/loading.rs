//! Loading HF directories: sharded weights, 4.x/5.x configs, chat templates in both places,
//! and bad inputs that must give errors naming the file and the problem.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::tiny_model;
use hicra_model::io::hf_files::write_safetensors;
use hicra_model::io::loader::read_safetensors;
use hicra_model::io::tiny::{CHATML_TEMPLATE, test_tokenizer, tiny_config, write_tiny_model};
use hicra_model::{
    Arch, ChatMessage, LoadOptions, ModelConfig, Padding, ScoreOptions, TokenBatch, load_model,
};
use serde_json::{Value, json};

fn write_model(arch: Arch) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let tok = test_tokenizer();
    write_tiny_model(
        dir.path(),
        &tiny_config(arch, tok.vocab_size()),
        &tok,
        Some(CHATML_TEMPLATE),
        1,
    )
    .unwrap();
    dir
}

fn load_err(dir: &Path) -> String {
    match load_model(dir.to_str().unwrap(), &LoadOptions::default()) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string(&v).unwrap()).unwrap();
}

fn scores(dir: &Path) -> Vec<f32> {
    let loaded = load_model(dir.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let ids = loaded
        .tokenizer
        .encode("We can use the fact that 2 + 2 = 4.", false)
        .unwrap();
    let batch =
        TokenBatch::from_rows(&[ids], 0, Padding::Right, &candle_core::Device::Cpu).unwrap();
    loaded
        .model
        .score_tokens(&batch, &ScoreOptions::default())
        .unwrap()
        .logprobs
        .remove(0)
}

#[test]
fn loaded_model_has_tokenizer_template_and_eos() {
    let (_d, loaded) = tiny_model(Arch::Qwen3, 1);
    let im_end = loaded.tokenizer.token_to_id("<|im_end|>").unwrap();
    assert_eq!(loaded.eos_token_ids, vec![im_end]);
    assert_eq!(
        loaded.pad_token_id,
        loaded.tokenizer.token_to_id("<|endoftext|>").unwrap()
    );
    let text = loaded.chat_prompt("hi").unwrap();
    assert_eq!(
        text,
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
    let ids = loaded.tokenizer.encode(&text, false).unwrap();
    assert_eq!(
        ids[0],
        loaded.tokenizer.token_to_id("<|im_start|>").unwrap()
    );
}

#[test]
fn sharded_weights_load_identically() {
    let dir = write_model(Arch::Qwen2);
    let before = scores(dir.path());
    let all = read_safetensors(&dir.path().join("model.safetensors")).unwrap();
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", a),
        ("model-00002-of-00002.safetensors", b),
    ] {
        let shard: HashMap<String, candle_core::Tensor> = part
            .iter()
            .map(|n| ((*n).clone(), all[*n].clone()))
            .collect();
        write_safetensors(&dir.path().join(file), &shard).unwrap();
        for n in part {
            weight_map.insert((*n).clone(), json!(file));
        }
    }
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        serde_json::to_string(&json!({"metadata": {}, "weight_map": weight_map})).unwrap(),
    )
    .unwrap();
    assert_eq!(scores(dir.path()), before);
}

#[test]
fn transformers_5_config_and_separate_template_file_load() {
    let dir = write_model(Arch::Llama);
    let before = scores(dir.path());
    edit_json(&dir.path().join("config.json"), |v| {
        let theta = v["rope_theta"].clone();
        let o = v.as_object_mut().unwrap();
        o.remove("rope_theta");
        o.remove("rope_scaling");
        o.remove("torch_dtype");
        o.insert("dtype".into(), json!("bfloat16"));
        o.insert(
            "rope_parameters".into(),
            json!({"rope_type": "default", "rope_theta": theta}),
        );
        o.insert("some_unknown_field".into(), json!({"nested": [1, 2]}));
    });
    edit_json(&dir.path().join("tokenizer_config.json"), |v| {
        v.as_object_mut().unwrap().remove("chat_template");
    });
    std::fs::write(
        dir.path().join("chat_template.jinja"),
        "{% for m in messages %}[{{ m.role | upper }}]{{ m.content }}{% endfor %}",
    )
    .unwrap();
    let loaded = load_model(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
    assert_eq!(
        loaded.model.config().torch_dtype.as_deref(),
        Some("bfloat16")
    );
    assert_eq!(loaded.chat_prompt("hey").unwrap(), "[USER]hey");
    drop(loaded);
    assert_eq!(scores(dir.path()), before);
}

#[test]
fn config_round_trips_through_hf_json() {
    for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3] {
        let mut cfg = tiny_config(arch, 300);
        cfg.eos_token_ids = vec![2, 5];
        if arch == Arch::Llama {
            cfg.rope_scaling = Some(hicra_model::RopeScaling::Llama3 {
                factor: 32.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 8192,
            });
        }
        let back = ModelConfig::from_json(&cfg.to_hf_json(), Path::new("config.json")).unwrap();
        assert_eq!(back, cfg);
    }
}

#[test]
fn llama3_rope_scaling_changes_only_low_frequencies() {
    let mut cfg = tiny_config(Arch::Llama, 300);
    cfg.head_dim = 64;
    cfg.rope_theta = 500000.0;
    let plain = hicra_model::config::rope_inv_freq(&cfg);
    cfg.rope_scaling = Some(hicra_model::RopeScaling::Llama3 {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192,
    });
    let scaled = hicra_model::config::rope_inv_freq(&cfg);
    assert_eq!(scaled[0], plain[0], "highest frequency unchanged");
    let last = plain.len() - 1;
    assert!(
        (scaled[last] - plain[last] / 8.0).abs() < 1e-15,
        "lowest frequency divided by the factor"
    );
}

#[test]
fn missing_required_field_is_named() {
    let dir = write_model(Arch::Llama);
    edit_json(&dir.path().join("config.json"), |v| {
        v.as_object_mut().unwrap().remove("hidden_size");
    });
    let e = load_err(dir.path());
    assert!(
        e.contains("config.json") && e.contains("hidden_size"),
        "{e}"
    );
}

#[test]
fn unknown_architecture_is_named() {
    let dir = write_model(Arch::Llama);
    edit_json(&dir.path().join("config.json"), |v| {
        v["model_type"] = json!("mamba");
        v["architectures"] = json!(["MambaForCausalLM"]);
    });
    let e = load_err(dir.path());
    assert!(
        e.contains("config.json") && e.contains("unknown architecture") && e.contains("mamba"),
        "{e}"
    );
}

#[test]
fn missing_tensor_is_named() {
    let dir = write_model(Arch::Qwen2);
    let path = dir.path().join("model.safetensors");
    let mut all = read_safetensors(&path).unwrap();
    all.remove("model.layers.1.self_attn.k_proj.bias");
    write_safetensors(&path, &all).unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("model.safetensors")
            && e.contains("missing tensor model.layers.1.self_attn.k_proj.bias"),
        "{e}"
    );
}

#[test]
fn wrong_shape_is_named() {
    let dir = write_model(Arch::Llama);
    let path = dir.path().join("model.safetensors");
    let mut all = read_safetensors(&path).unwrap();
    all.insert(
        "model.norm.weight".into(),
        candle_core::Tensor::ones(63, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap(),
    );
    write_safetensors(&path, &all).unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("model.safetensors")
            && e.contains("model.norm.weight")
            && e.contains("[63]")
            && e.contains("[64]"),
        "{e}"
    );
}

#[test]
fn truncated_and_corrupt_safetensors_are_named() {
    let dir = write_model(Arch::Qwen3);
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("model.safetensors") && e.contains("corrupt or truncated"),
        "{e}"
    );
    std::fs::write(&path, b"this is not a safetensors file at all").unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("model.safetensors") && e.contains("corrupt or truncated"),
        "{e}"
    );
    std::fs::remove_file(&path).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn missing_or_broken_tokenizer_is_named() {
    let dir = write_model(Arch::Llama);
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, "{ not json").unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("tokenizer.json") && e.contains("tokenizer"),
        "{e}"
    );
    std::fs::remove_file(&path).unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("tokenizer.json") && e.contains("not found"),
        "{e}"
    );
}

#[test]
fn missing_directory_and_config_are_named() {
    let dir = write_model(Arch::Llama);
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("config.json") && e.contains("not found"), "{e}");
    let e = load_err(&dir.path().join("does-not-exist"));
    assert!(e.contains("does-not-exist"), "{e}");
}

#[test]
fn deep_clone_is_independent() {
    let (_d, loaded) = tiny_model(Arch::Llama, 3);
    let copy = loaded.model.deep_clone().unwrap();
    let (name, var) = &loaded.model.parameters()[0];
    var.set(&var.as_tensor().zeros_like().unwrap()).unwrap();
    let other = copy
        .parameters()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap()
        .1;
    let s = other
        .as_tensor()
        .abs()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(s > 0.0);
}

#[test]
fn parameters_are_sorted_and_tied_weights_listed_once() {
    let (_d, loaded) = tiny_model(Arch::Llama, 3);
    let names: Vec<String> = loaded
        .model
        .parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(!names.contains(&"lm_head.weight".to_string()));
    let count: usize = loaded
        .model
        .parameters()
        .iter()
        .map(|(_, v)| v.elem_count())
        .sum();
    assert_eq!(count, loaded.model.config().num_parameters());
    let (_d2, qwen2) = tiny_model(Arch::Qwen2, 3);
    assert!(
        qwen2
            .model
            .parameters()
            .iter()
            .any(|(n, _)| n == "lm_head.weight")
    );
}

#[test]
fn chat_messages_render_with_system_prompt() {
    let (_d, loaded) = tiny_model(Arch::Qwen2, 1);
    let t = loaded.chat_template.as_ref().unwrap();
    let s = t
        .render(
            &[
                ChatMessage::new("system", "Be brief."),
                ChatMessage::new("user", "2+2?"),
                ChatMessage::new("assistant", "4"),
            ],
            false,
        )
        .unwrap();
    assert_eq!(
        s,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
    );
}

#[test]
fn bf16_and_f16_checkpoints_load_as_f32() {
    for dtype in [candle_core::DType::BF16, candle_core::DType::F16] {
        let dir = write_model(Arch::Llama);
        let path = dir.path().join("model.safetensors");
        let f32_scores = scores(dir.path());
        let all = read_safetensors(&path).unwrap();
        let half: HashMap<String, candle_core::Tensor> = all
            .into_iter()
            .map(|(n, t)| (n, t.to_dtype(dtype).unwrap()))
            .collect();
        write_safetensors(&path, &half).unwrap();
        let loaded = load_model(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
        assert_eq!(loaded.model.dtype(), candle_core::DType::F32);
        drop(loaded);
        let half_scores = scores(dir.path());
        // Rounded weights: close to, but not exactly, the f32 scores.
        let max_diff = f32_scores
            .iter()
            .zip(&half_scores)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            max_diff > 0.0 && max_diff < 0.5,
            "{dtype:?}: max difference {max_diff}"
        );
    }
}

#[test]
fn bf16_on_cpu_is_refused_with_a_reason() {
    let dir = write_model(Arch::Llama);
    let opts = LoadOptions {
        dtype: candle_core::DType::BF16,
        ..LoadOptions::default()
    };
    let err = load_model(dir.path().to_str().unwrap(), &opts)
        .err()
        .expect("bf16 on CPU fails")
        .to_string();
    assert!(err.contains("bf16") && err.contains("f32"), "{err}");
}
