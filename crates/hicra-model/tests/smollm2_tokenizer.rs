//! The tokenizer rebuilt from SmolLM2's GGUF metadata against an independent reference
//! written here from llama.cpp's documented semantics for `tokenizer.ggml.pre = "smollm"`:
//! control tokens (type 3) are matched verbatim first; the rest is split into single digits
//! (`\p{N}`), then by the GPT-2 regex; each piece is mapped byte → unicode (GPT-2 byte
//! table) and merged greedily by merge rank. No HF `tokenizer.json` for SmolLM2 is available
//! offline, so this is the reference; it shares no code with the `tokenizers` crate.

#[path = "smollm2_support/mod.rs"]
mod smollm2_support;

use candle_core::quantized::gguf_file::{Content, Value};
use hicra_model::{ChatMessage, LoadOptions, load_model};
use std::collections::HashMap;

const GPT2_REGEX: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

const TEXTS: &[&str] = &[
    "What is 12345 + 678? The answer is 13023.",
    "x = 3.14159; y = -2e10 // 0x1F",
    "def add(a, b):\n    return a + b  # sum\n\n\tprint(add(1, 2))",
    "Ünïcödé: naïve café, 日本語のテキスト, Ελληνικά, emoji 🚀🎉 and ½ ² ٣",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n",
    "It's we'll they've I'd   many    spaces   \n\n\n trailing ",
    "<|endoftext|>text right after<|im_end|>and<|im_start|>",
    "\\boxed{\\frac{1}{2}} and $x^2 + y^2 = z^2$",
];

/// GPT-2's reversible byte → printable character table.
fn byte_to_char() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut table = vec!['\0'; 256];
    let mut extra = 0;
    for b in 0..256u32 {
        table[b as usize] = if printable.contains(&b) {
            char::from_u32(b).unwrap()
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap()
        };
    }
    table
}

struct Reference {
    vocab: HashMap<String, u32>,
    ranks: HashMap<(String, String), usize>,
    specials: Vec<(String, u32)>,
    bytes: Vec<char>,
    regex: fancy_regex::Regex,
}

impl Reference {
    fn from_gguf(content: &Content) -> Reference {
        let strings = |key: &str| -> Vec<String> {
            match &content.metadata[key] {
                Value::Array(a) => a.iter().map(|v| v.to_string().unwrap().clone()).collect(),
                _ => panic!("{key} is not an array"),
            }
        };
        let tokens = strings("tokenizer.ggml.tokens");
        let types: Vec<i32> = match &content.metadata["tokenizer.ggml.token_type"] {
            Value::Array(a) => a.iter().map(|v| v.to_i32().unwrap()).collect(),
            _ => panic!("token types"),
        };
        let ranks = strings("tokenizer.ggml.merges")
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let (a, b) = m.split_once(' ').unwrap();
                ((a.to_string(), b.to_string()), i)
            })
            .collect();
        let mut specials: Vec<(String, u32)> = tokens
            .iter()
            .zip(&types)
            .enumerate()
            .filter(|(_, (_, t))| **t == 3)
            .map(|(i, (s, _))| (s.clone(), i as u32))
            .collect();
        // Longest first, so a longer control token wins over its prefix.
        specials.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Reference {
            vocab: tokens
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), i as u32))
                .collect(),
            ranks,
            specials,
            bytes: byte_to_char(),
            regex: fancy_regex::Regex::new(GPT2_REGEX).unwrap(),
        }
    }

    fn bpe(&self, piece: &str, out: &mut Vec<u32>) {
        let mut parts: Vec<String> = piece
            .bytes()
            .map(|b| self.bytes[b as usize].to_string())
            .collect();
        loop {
            let best = (0..parts.len().saturating_sub(1))
                .filter_map(|i| {
                    self.ranks
                        .get(&(parts[i].clone(), parts[i + 1].clone()))
                        .map(|r| (*r, i))
                })
                .min();
            let Some((_, i)) = best else { break };
            let merged = format!("{}{}", parts[i], parts[i + 1]);
            parts.splice(i..i + 2, [merged]);
        }
        out.extend(parts.iter().map(|p| self.vocab[p]));
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) {
        // 1. every \p{N} character on its own; 2. the GPT-2 regex within the rest.
        let mut chunks: Vec<String> = Vec::new();
        let mut current = String::new();
        for c in text.chars() {
            if c.is_numeric() {
                if !current.is_empty() {
                    chunks.push(std::mem::take(&mut current));
                }
                chunks.push(c.to_string());
            } else {
                current.push(c);
            }
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        for chunk in chunks {
            for m in self.regex.find_iter(&chunk) {
                self.bpe(m.unwrap().as_str(), out);
            }
        }
    }

    fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let next = self
                .specials
                .iter()
                .filter_map(|(s, id)| {
                    rest.find(s.as_str())
                        .map(|at| (at, std::cmp::Reverse(s.len()), *id))
                })
                .min();
            match next {
                Some((at, std::cmp::Reverse(len), id)) => {
                    self.encode_plain(&rest[..at], &mut out);
                    out.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    self.encode_plain(rest, &mut out);
                    rest = "";
                }
            }
        }
        out
    }
}

#[test]
fn gguf_tokenizer_matches_the_reference_tokenisation() {
    let Some(path) = smollm2_support::smollm2_gguf() else {
        return;
    };
    let mut file = std::fs::File::open(&path).unwrap();
    let content = Content::read(&mut file).unwrap();
    let reference = Reference::from_gguf(&content);
    let loaded = load_model(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let mut texts: Vec<String> = TEXTS.iter().map(|s| s.to_string()).collect();
    let template = loaded.chat_template.as_ref().unwrap();
    texts.push(
        template
            .render(&[ChatMessage::new("user", "Solve 2x + 3 = 11.")], true)
            .unwrap(),
    );
    for text in &texts {
        let want = reference.encode(text);
        let got = loaded.tokenizer.encode(text, false).unwrap();
        assert_eq!(got, want, "tokenisation of {text:?}");
        assert_eq!(
            &loaded.tokenizer.decode(&got, false).unwrap(),
            text,
            "round trip"
        );
    }
    // Anchors checked by hand against the vocabulary: the chat header and single digits.
    let header = loaded
        .tokenizer
        .encode("<|im_start|>user\n", false)
        .unwrap();
    assert_eq!(header, vec![1, 4093, 198]);
    let digits = loaded.tokenizer.encode("2024", false).unwrap();
    assert_eq!(digits.len(), 4, "digits are split one by one: {digits:?}");
    assert_eq!(loaded.eos_token_ids, vec![2]);
    assert_eq!(loaded.pad_token_id, 2);
    assert_eq!(loaded.tokenizer.token_to_id("<|im_end|>"), Some(2));
}
