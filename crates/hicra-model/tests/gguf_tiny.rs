//! GGUF loading on tiny llama models written by the test (random weights, the built-in test
//! tokenizer): logits equal to the same weights loaded directly, the tokenizer rebuilt from
//! GGUF metadata tokenises like the original, and bad files get named errors.

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use hicra_model::io::gguf::GgufError;
use hicra_model::io::gguf::writer::{GgufTokenizerInfo, write_llama_gguf};
use hicra_model::io::tiny::{random_tensors, test_tokenizer, tiny_config};
use hicra_model::{
    Arch, ChatMessage, LoadOptions, Model, ModelConfig, ModelError, Padding, TokenBatch, load_model,
};
use std::path::{Path, PathBuf};

const TEMPLATE: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

const TEXTS: &[&str] = &[
    "Alice has 5 apples and buys 7 more, so she has 12 apples.",
    "<|im_start|>user\nWhat is 0123456789 * 2?<|im_end|>\n",
    "  leading spaces, tabs\tand\nnewlines\n\n",
    "Unicode: héllo wörld, 日本語, emoji 🚀 — done.",
    "fn main() { let x = a[i] + b.c(3); }",
];

fn tiny(tied: bool) -> (ModelConfig, Vec<(String, Tensor)>) {
    let tok = test_tokenizer();
    let mut config = tiny_config(Arch::Llama, tok.vocab_size());
    config.tie_word_embeddings = tied;
    let mut tensors: Vec<(String, Tensor)> =
        random_tensors(&config, 7).unwrap().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    (config, tensors)
}

fn write_tiny_gguf(
    dir: &Path,
    tied: bool,
    dtype: GgmlDType,
) -> (PathBuf, ModelConfig, Vec<(String, Tensor)>) {
    let (config, tensors) = tiny(tied);
    let tok = test_tokenizer();
    let info = GgufTokenizerInfo {
        bos_token_id: tok.token_to_id("<|im_start|>"),
        eos_token_id: tok.token_to_id("<|im_end|>"),
        padding_token_id: tok.token_to_id("<|endoftext|>"),
        pre: "gpt-2".into(),
        chat_template: Some(TEMPLATE.into()),
    };
    let path = dir.join(format!("tiny-{tied}-{dtype:?}.gguf"));
    write_llama_gguf(&path, &config, &tensors, &tok, &info, dtype).unwrap();
    (path, config, tensors)
}

fn logits(model: &Model, rows: &[Vec<u32>]) -> Tensor {
    let batch = TokenBatch::from_rows(rows, 0, Padding::Right, &Device::Cpu).unwrap();
    model.forward_logits(&batch).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn rows() -> Vec<Vec<u32>> {
    let tok = test_tokenizer();
    vec![
        tok.encode(TEXTS[0], false).unwrap(),
        tok.encode(TEXTS[1], false).unwrap(),
    ]
}

#[test]
fn f32_gguf_gives_the_same_logits_as_the_hf_weights() {
    let dir = tempfile::tempdir().unwrap();
    for tied in [true, false] {
        let (path, config, tensors) = write_tiny_gguf(dir.path(), tied, GgmlDType::F32);
        let loaded = load_model(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
        assert_eq!(loaded.model.config().tie_word_embeddings, tied);
        assert_eq!(
            loaded.model.config().num_key_value_heads,
            config.num_key_value_heads
        );
        assert_eq!(loaded.model.config().head_dim, config.head_dim);
        let names: Vec<String> = loaded
            .model
            .parameters()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names.contains(&"lm_head.weight".to_string()), !tied);
        let direct = Model::from_tensors(
            config,
            tensors.into_iter().collect(),
            &LoadOptions::default(),
        )
        .unwrap();
        let rows = rows();
        let diff = max_abs_diff(&logits(&loaded.model, &rows), &logits(&direct, &rows));
        assert!(diff < 1e-5, "tied={tied}: logits differ by {diff}");
    }
}

#[test]
fn quantised_gguf_weights_are_close_to_the_originals() {
    let dir = tempfile::tempdir().unwrap();
    // Q8_0 needs rows that are multiples of 32: the tiny model's width is 64.
    for (dtype, tol) in [(GgmlDType::F16, 2e-3f32), (GgmlDType::Q8_0, 2e-2)] {
        let (path, _config, tensors) = write_tiny_gguf(dir.path(), false, dtype);
        let loaded = load_model(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
        assert_eq!(loaded.model.dtype(), DType::F32);
        let params: std::collections::HashMap<String, Tensor> = loaded
            .model
            .parameters()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect();
        for (name, original) in &tensors {
            let got = &params[name];
            let scale = original
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let diff = max_abs_diff(got, original);
            assert!(
                diff <= tol * scale,
                "{dtype:?} {name}: error {diff} vs scale {scale}"
            );
        }
    }
}

#[test]
fn gguf_tokenizer_and_chat_template_match_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = write_tiny_gguf(dir.path(), true, GgmlDType::F32);
    let loaded = load_model(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let original = test_tokenizer();
    for text in TEXTS {
        let want = original.encode(text, false).unwrap();
        let got = loaded.tokenizer.encode(text, false).unwrap();
        assert_eq!(got, want, "tokenisation of {text:?}");
        assert_eq!(loaded.tokenizer.decode(&got, false).unwrap(), *text);
    }
    // Special tokens are single ids and are skipped on request.
    let ids = loaded
        .tokenizer
        .encode("<|im_start|>user\nhi<|im_end|>", false)
        .unwrap();
    assert_eq!(ids[0], original.token_to_id("<|im_start|>").unwrap());
    assert_eq!(
        *ids.last().unwrap(),
        original.token_to_id("<|im_end|>").unwrap()
    );
    assert_eq!(loaded.tokenizer.decode(&ids, true).unwrap(), "user\nhi");
    assert_eq!(
        loaded.eos_token_ids,
        vec![original.token_to_id("<|im_end|>").unwrap()]
    );
    assert_eq!(
        loaded.pad_token_id,
        original.token_to_id("<|endoftext|>").unwrap()
    );
    let template = loaded
        .chat_template
        .as_ref()
        .expect("chat template from GGUF");
    let rendered = template
        .render(&[ChatMessage::new("user", "2+2?")], true)
        .unwrap();
    assert_eq!(
        rendered,
        "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    );
}

fn gguf_err(err: &ModelError) -> &GgufError {
    match err {
        ModelError::Gguf(e) => e,
        other => panic!("expected a GGUF error, got {other}"),
    }
}

fn load_err(path: &Path) -> ModelError {
    match load_model(path.to_str().unwrap(), &LoadOptions::default()) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(e) => e,
    }
}

#[test]
fn truncated_gguf_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = write_tiny_gguf(dir.path(), true, GgmlDType::F32);
    let bytes = std::fs::read(&path).unwrap();
    // Cut in the tensor data, and cut inside the header.
    for keep in [bytes.len() - 1000, 200] {
        let cut = dir.path().join(format!("cut-{keep}.gguf"));
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        let err = load_err(&cut);
        assert!(
            matches!(gguf_err(&err), GgufError::Truncated { path, .. } if path == &cut),
            "keep {keep}: {err}"
        );
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}

#[test]
fn corrupt_gguf_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = write_tiny_gguf(dir.path(), true, GgmlDType::F32);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0..4].copy_from_slice(b"GGXX");
    let bad = dir.path().join("bad-magic.gguf");
    std::fs::write(&bad, &bytes).unwrap();
    let err = load_err(&bad);
    assert!(matches!(gguf_err(&err), GgufError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("bad-magic.gguf"), "{err}");
}

/// Byte offset of the ggml type field of tensor `name` in a GGUF v2/v3 tensor directory.
fn dtype_field_offset(bytes: &[u8], name: &str) -> usize {
    let mut needle = (name.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(name.as_bytes());
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .unwrap();
    let dims_at = at + needle.len();
    let n_dims = u32::from_le_bytes(bytes[dims_at..dims_at + 4].try_into().unwrap()) as usize;
    dims_at + 4 + 8 * n_dims
}

#[test]
fn unknown_quant_type_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = write_tiny_gguf(dir.path(), true, GgmlDType::F32);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = dtype_field_offset(&bytes, "blk.0.attn_q.weight");
    assert_eq!(
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()),
        0,
        "F32 type id"
    );
    bytes[at..at + 4].copy_from_slice(&77u32.to_le_bytes());
    let bad = dir.path().join("unknown-type.gguf");
    std::fs::write(&bad, &bytes).unwrap();
    let err = load_err(&bad);
    assert!(
        matches!(
            gguf_err(&err),
            GgufError::UnknownQuantType { type_id: 77, .. }
        ),
        "{err}"
    );
}

#[test]
fn non_llama_architecture_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = write_tiny_gguf(dir.path(), true, GgmlDType::F32);
    let bytes = std::fs::read(&path).unwrap();
    // Same length keeps every offset valid: "llama" -> "gemma".
    let mut needle = 5u64.to_le_bytes().to_vec();
    needle.extend_from_slice(b"llama");
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .unwrap();
    let mut patched = bytes.clone();
    patched[at + 8..at + 13].copy_from_slice(b"gemma");
    let bad = dir.path().join("gemma.gguf");
    std::fs::write(&bad, &patched).unwrap();
    let err = load_err(&bad);
    assert!(
        matches!(gguf_err(&err), GgufError::UnsupportedArchitecture { arch, .. } if arch == "gemma"),
        "{err}"
    );
}

#[test]
fn missing_gguf_file_names_the_path() {
    let err = load_err(Path::new("/nonexistent/dir/model.gguf"));
    assert!(
        err.to_string().contains("/nonexistent/dir/model.gguf"),
        "{err}"
    );
}
