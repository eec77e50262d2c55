//! SmolLM2-135M-Instruct (the fetched Q4_1 GGUF) against an independent implementation,
//! candle-transformers' `quantized_llama`: greedy 32-token continuations of chat prompts agree
//! token for token and the log-probs agree within 0.05.
//!
//! The reference runs on the same dequantised weights (the GGUF re-written as F32 in memory),
//! so the comparison isolates the architecture (tensor mapping, Q/K permutation, rotary
//! layout, GQA, norms, tied head) from candle's Q8 activation quantisation in quantised matmuls.

#[path = "smollm2_support/mod.rs"]
mod smollm2_support;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{D, Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use hicra_model::{ChatMessage, LoadOptions, SamplingParams, load_model};
use std::io::Cursor;
use std::path::Path;

const QUESTIONS: &[&str] = &[
    "What is 15 + 27?",
    "Write a haiku about the sea.",
    "Explain in one sentence why the sky is blue.",
];
const NEW_TOKENS: usize = 32;

/// The GGUF with every tensor dequantised to F32, as an in-memory file for `quantized_llama`.
fn f32_reference(path: &Path) -> ModelWeights {
    let mut file = std::fs::File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let q = content.tensor(&mut file, name, &Device::Cpu).unwrap();
        let t = q.dequantize(&Device::Cpu).unwrap();
        tensors.push((name.clone(), QTensor::quantize(&t, GgmlDType::F32).unwrap()));
    }
    let metadata: Vec<(&str, &Value)> = content
        .metadata
        .iter()
        .filter(|(k, _)| k.starts_with("llama.") || k.as_str() == "general.architecture")
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut buf = Cursor::new(Vec::new());
    gguf_file::write(&mut buf, &metadata, &tensor_refs).unwrap();
    buf.set_position(0);
    let content = gguf_file::Content::read(&mut buf).unwrap();
    ModelWeights::from_gguf(content, &mut buf, &Device::Cpu).unwrap()
}

fn log_softmax_at(logits: &Tensor, id: u32) -> f32 {
    let ls = candle_nn::ops::log_softmax(logits, D::Minus1).unwrap();
    ls.get(id as usize).unwrap().to_scalar::<f32>().unwrap()
}

/// Greedy decoding with the reference: returns (tokens, log-prob of each token).
fn reference_greedy(model: &mut ModelWeights, prompt: &[u32]) -> (Vec<u32>, Vec<f32>) {
    model.clear_kv_cache();
    let input = Tensor::new(prompt, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let mut logits = model.forward(&input, 0).unwrap().squeeze(0).unwrap();
    let mut tokens = Vec::new();
    let mut logprobs = Vec::new();
    for step in 0..NEW_TOKENS {
        let next = logits
            .argmax(D::Minus1)
            .unwrap()
            .to_scalar::<u32>()
            .unwrap();
        logprobs.push(log_softmax_at(&logits, next));
        tokens.push(next);
        if step + 1 == NEW_TOKENS {
            break;
        }
        let input = Tensor::new(&[next], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        logits = model
            .forward(&input, prompt.len() + step)
            .unwrap()
            .squeeze(0)
            .unwrap();
    }
    (tokens, logprobs)
}

#[test]
fn greedy_continuations_match_quantized_llama() {
    let Some(path) = smollm2_support::smollm2_gguf() else {
        return;
    };
    let loaded = load_model(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let template = loaded
        .chat_template
        .as_ref()
        .expect("SmolLM2 ships a chat template");
    let prompts: Vec<Vec<u32>> = QUESTIONS
        .iter()
        .map(|q| {
            let text = template
                .render(&[ChatMessage::new("user", q)], true)
                .unwrap();
            loaded.tokenizer.encode(&text, false).unwrap()
        })
        .collect();
    // The prompts have different lengths, so the batch exercises left padding too.
    assert!(prompts.iter().any(|p| p.len() != prompts[0].len()));
    let params = SamplingParams {
        temperature: 0.0,
        top_p: 1.0,
        top_k: 0,
        max_new_tokens: NEW_TOKENS,
        seed: 0,
        stop_token_ids: Vec::new(),
        stop_strings: Vec::new(),
    };
    let ours = loaded.model.generate(&prompts, &params, None).unwrap();
    let mut reference = f32_reference(&path);
    for (i, prompt) in prompts.iter().enumerate() {
        let (ref_tokens, ref_logprobs) = reference_greedy(&mut reference, prompt);
        let text = loaded.tokenizer.decode(&ours[i].token_ids, false).unwrap();
        assert_eq!(
            ours[i].token_ids, ref_tokens,
            "prompt {i} ({:?}): our continuation {text:?}",
            QUESTIONS[i]
        );
        assert_eq!(ours[i].logprobs.len(), NEW_TOKENS);
        for (t, (a, b)) in ours[i].logprobs.iter().zip(&ref_logprobs).enumerate() {
            assert!(
                (a - b).abs() < 0.05,
                "prompt {i} token {t}: log-prob {a} vs reference {b}"
            );
        }
        eprintln!("prompt {i}: {text:?}");
    }
    // On topic (a wrong Q/K layout in both implementations would give gibberish).
    let answer = loaded.tokenizer.decode(&ours[2].token_ids, true).unwrap();
    assert!(
        answer.contains("blue"),
        "sky question answered as {answer:?}"
    );
}
