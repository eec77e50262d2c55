//! `LoadedModel::save_hf` on tiny models written by the test: the exported directory has the
//! files transformers expects, loads back with identical logits, keeps tied/untied heads
//! right, and replaces an existing export atomically.

use candle_core::{Device, Tensor};
use hicra_model::io::tiny::{test_tokenizer, tiny_config, write_tiny_model};
use hicra_model::{Arch, ChatMessage, LoadOptions, LoadedModel, Padding, TokenBatch, load_model};
use serde_json::Value;
use std::path::Path;

const TEMPLATE: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

fn load(path: &Path) -> LoadedModel {
    load_model(path.to_str().unwrap(), &LoadOptions::default()).unwrap()
}

fn logits(loaded: &LoadedModel) -> Tensor {
    let rows = vec![
        loaded
            .tokenizer
            .encode("Alice has 5 apples and buys 7 more.", false)
            .unwrap(),
        loaded
            .tokenizer
            .encode("<|im_start|>user\n2+2?<|im_end|>", false)
            .unwrap(),
    ];
    let batch =
        TokenBatch::from_rows(&rows, loaded.pad_token_id, Padding::Left, &Device::Cpu).unwrap();
    loaded.model.forward_logits(&batch).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn safetensors_names_and_format(path: &Path) -> (Vec<String>, Option<String>) {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut names: Vec<String> = meta.tensors().keys().cloned().collect();
    names.sort();
    let format = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("format").cloned());
    (names, format)
}

#[test]
fn export_round_trips_with_identical_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = test_tokenizer();
    for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3] {
        let config = tiny_config(arch, tok.vocab_size());
        let src = tmp.path().join(format!("{arch:?}-src"));
        write_tiny_model(&src, &config, &tok, Some(TEMPLATE), 3).unwrap();
        let original = load(&src);
        let out = tmp.path().join(format!("{arch:?}-export"));
        original.save_hf(&out).unwrap();
        for file in [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "generation_config.json",
            "special_tokens_map.json",
        ] {
            assert!(out.join(file).is_file(), "{arch:?}: {file} missing");
        }
        let back = load(&out);
        let diff = (logits(&original) - logits(&back))
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0, "{arch:?}: logits changed by export");
        assert_eq!(
            back.model.config(),
            original.model.config(),
            "{arch:?}: config"
        );
        assert_eq!(back.eos_token_ids, original.eos_token_ids);
        assert_eq!(back.pad_token_id, original.pad_token_id);

        let (names, format) = safetensors_names_and_format(&out.join("model.safetensors"));
        assert_eq!(
            format.as_deref(),
            Some("pt"),
            "transformers requires format=pt metadata"
        );
        assert_eq!(
            names.contains(&"lm_head.weight".to_string()),
            !config.tie_word_embeddings,
            "{arch:?}: lm_head present iff untied"
        );
        let cfg = read_json(&out.join("config.json"));
        assert_eq!(cfg["architectures"][0], arch_class(arch));
        assert_eq!(cfg["torch_dtype"], "float32");
        assert_eq!(cfg["tie_word_embeddings"], config.tie_word_embeddings);
        let tc = read_json(&out.join("tokenizer_config.json"));
        assert_eq!(tc["chat_template"], TEMPLATE);
        assert_eq!(tc["eos_token"], "<|im_end|>");
        assert_eq!(tc["added_tokens_decoder"]["1"]["content"], "<|im_start|>");
        assert_eq!(tc["added_tokens_decoder"]["1"]["special"], true);
        let chat = back
            .chat_template
            .as_ref()
            .unwrap()
            .render(&[ChatMessage::new("user", "hi")], true)
            .unwrap();
        assert_eq!(
            chat,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        let gc = read_json(&out.join("generation_config.json"));
        assert_eq!(
            gc["eos_token_id"],
            serde_json::json!(original.eos_token_ids[0])
        );
    }
}

fn arch_class(arch: Arch) -> &'static str {
    match arch {
        Arch::Llama => "LlamaForCausalLM",
        Arch::Qwen2 => "Qwen2ForCausalLM",
        Arch::Qwen3 => "Qwen3ForCausalLM",
    }
}

#[test]
fn export_replaces_a_previous_export_refuses_other_files_and_leaves_no_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = test_tokenizer();
    let src = tmp.path().join("src");
    write_tiny_model(
        &src,
        &tiny_config(Arch::Llama, tok.vocab_size()),
        &tok,
        None,
        1,
    )
    .unwrap();
    let loaded = load(&src);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let err = loaded.save_hf(&out).unwrap_err().to_string();
    assert!(err.contains("notes.txt"), "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    std::fs::remove_file(out.join("notes.txt")).unwrap();
    loaded.save_hf(&out).unwrap();
    // A previous export is replaced whole.
    std::fs::write(out.join("model.safetensors"), "truncated").unwrap();
    loaded.save_hf(&out).unwrap();
    assert_ne!(
        std::fs::metadata(out.join("model.safetensors"))
            .unwrap()
            .len(),
        9
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "src" && n != "out")
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    assert!(load(&out).chat_template.is_none());
}

#[test]
fn export_into_an_unwritable_place_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = test_tokenizer();
    let src = tmp.path().join("src");
    write_tiny_model(
        &src,
        &tiny_config(Arch::Llama, tok.vocab_size()),
        &tok,
        None,
        1,
    )
    .unwrap();
    let loaded = load(&src);
    // A regular file where the parent directory should be.
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let err = loaded.save_hf(&blocker.join("out")).unwrap_err();
    assert!(err.to_string().contains("file"), "{err}");
}
