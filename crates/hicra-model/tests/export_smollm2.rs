//! SmolLM2-135M-Instruct GGUF → `save_hf` → load: identical logits, the same tokenizer and
//! chat template, a tied head written without `lm_head.weight`, as transformers writes it.

#[path = "smollm2_support/mod.rs"]
mod smollm2_support;

use candle_core::Device;
use hicra_model::{ChatMessage, LoadOptions, LoadedModel, Padding, TokenBatch, load_model};
use serde_json::Value;

fn logits(loaded: &LoadedModel, rows: &[Vec<u32>]) -> candle_core::Tensor {
    let batch =
        TokenBatch::from_rows(rows, loaded.pad_token_id, Padding::Left, &Device::Cpu).unwrap();
    loaded.model.forward_logits(&batch).unwrap()
}

#[test]
fn gguf_export_loads_back_with_identical_logits() {
    let Some(path) = smollm2_support::smollm2_gguf() else {
        return;
    };
    let gguf = load_model(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("smollm2-hf");
    gguf.save_hf(&out).unwrap();
    let hf = load_model(out.to_str().unwrap(), &LoadOptions::default()).unwrap();

    let template = gguf.chat_template.as_ref().unwrap();
    let chat = template
        .render(&[ChatMessage::new("user", "What is 7 * 8?")], true)
        .unwrap();
    assert_eq!(
        hf.chat_template
            .as_ref()
            .unwrap()
            .render(&[ChatMessage::new("user", "What is 7 * 8?")], true)
            .unwrap(),
        chat
    );
    let texts = [chat.as_str(), "def f(x):\n    return 12345 * x  # ünïcode"];
    let rows: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| {
            let ids = gguf.tokenizer.encode(t, false).unwrap();
            assert_eq!(
                hf.tokenizer.encode(t, false).unwrap(),
                ids,
                "tokenizer changed for {t:?}"
            );
            ids
        })
        .collect();
    let diff = (logits(&gguf, &rows) - logits(&hf, &rows))
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(diff, 0.0, "logits changed by export");
    assert_eq!(hf.eos_token_ids, vec![2]);
    assert_eq!(hf.pad_token_id, 2);

    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model_type"], "llama");
    assert_eq!(config["num_key_value_heads"], 3);
    assert_eq!(config["rope_theta"], 100000.0);
    assert_eq!(config["tie_word_embeddings"], true);
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert!(
        !meta.tensors().contains_key("lm_head.weight"),
        "tied head is not written"
    );
    assert_eq!(meta.tensors().len(), 2 + 30 * 9);
}
