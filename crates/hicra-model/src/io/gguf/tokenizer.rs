//! Rebuilds a Hugging Face `tokenizers::Tokenizer` from GGUF `tokenizer.ggml.*` metadata:
//! gpt2-style byte-level BPE (tokens + merges), the pre-tokenizer llama.cpp uses for the
//! file's `tokenizer.ggml.pre`, control / user-defined tokens as added tokens, BOS/EOS/PAD
//! ids, and a ByteLevel decoder.

use super::error::GgufError;
use super::metadata::Metadata;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

/// GGUF token type: a control token (special, e.g. `<|im_start|>`).
pub const TOKEN_TYPE_CONTROL: i64 = 3;
/// GGUF token type: a user-defined token (matched verbatim, not special).
pub const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// llama.cpp's LLAMA3 split regex (as in Llama 3's tokenizer.json).
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// llama.cpp's QWEN2 split regex (digits one by one).
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A tokenizer rebuilt from GGUF metadata, with its special-token ids and texts.
pub struct GgufTokenizer {
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_token_id: Option<u32>,
    /// Text of the BOS token.
    pub bos_token: Option<String>,
    /// EOS ids: `eos_token_id`, then `eot_token_id` / `eom_token_id` if different.
    pub eos_token_ids: Vec<u32>,
    /// Text of the (first) EOS token.
    pub eos_token: Option<String>,
    /// `tokenizer.ggml.padding_token_id`.
    pub pad_token_id: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unk_token_id: Option<u32>,
}

fn pre_tokenizer_for(
    meta: &Metadata<'_>,
    pre: &str,
) -> Result<(PreTokenizerWrapper, bool), GgufError> {
    let split = |regex: &str| -> Result<PreTokenizerWrapper, GgufError> {
        Split::new(
            SplitPattern::Regex(regex.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map(PreTokenizerWrapper::from)
        .map_err(|e| GgufError::Tokenizer {
            path: meta.path().to_path_buf(),
            message: format!("pre-tokenizer regex: {e}"),
        })
    };
    let byte_level_regex = ByteLevel::new(false, true, true);
    let byte_level_plain = ByteLevel::new(false, true, false);
    // (pre-tokenizer, ignore_merges)
    let out = match pre {
        // Digits one by one, then the GPT-2 regex (llama.cpp's STARCODER group).
        "smollm" | "starcoder" | "refact" | "codeshell" | "command-r" | "exaone" | "minerva-7b" => {
            (
                PreTokenizerWrapper::Sequence(Sequence::new(vec![
                    Digits::new(true).into(),
                    byte_level_regex.into(),
                ])),
                false,
            )
        }
        "gpt-2" | "gpt2" | "default" | "phi-2" | "jina-es" | "jina-de" | "olmo" | "jais" => {
            (byte_level_regex.into(), false)
        }
        "llama-bpe" | "llama3" | "falcon3" | "pixtral" => (
            PreTokenizerWrapper::Sequence(Sequence::new(vec![
                split(LLAMA3_REGEX)?,
                byte_level_plain.into(),
            ])),
            true,
        ),
        "qwen2" | "deepseek-r1-qwen" => (
            PreTokenizerWrapper::Sequence(Sequence::new(vec![
                split(QWEN2_REGEX)?,
                byte_level_plain.into(),
            ])),
            false,
        ),
        other => {
            return Err(GgufError::Tokenizer {
                path: meta.path().to_path_buf(),
                message: format!("unsupported tokenizer.ggml.pre {other:?}"),
            });
        }
    };
    Ok(out)
}

/// Builds the tokenizer described by `tokenizer.ggml.*` (model `gpt2` only).
pub fn build_tokenizer(meta: &Metadata<'_>) -> Result<GgufTokenizer, GgufError> {
    let tok_err = |message: String| GgufError::Tokenizer {
        path: meta.path().to_path_buf(),
        message,
    };
    let model = meta.string("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(tok_err(format!(
            "tokenizer.ggml.model {model:?} is not supported (only gpt2-style byte-level BPE)"
        )));
    }
    let pre = meta.opt_string("tokenizer.ggml.pre").unwrap_or("default");
    let tokens = meta.string_array("tokenizer.ggml.tokens")?;
    let merges = meta.string_array("tokenizer.ggml.merges")?;
    let types = meta
        .opt_int_array("tokenizer.ggml.token_type")?
        .unwrap_or_default();
    if !types.is_empty() && types.len() != tokens.len() {
        return Err(tok_err(format!(
            "{} token types for {} tokens",
            types.len(),
            tokens.len()
        )));
    }
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), i as u32))
        .collect();
    let merges: Vec<(String, String)> = merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| tok_err(format!("merge {i} {m:?} has no space")))
        })
        .collect::<Result<_, _>>()?;
    let id = |key: &str| -> Result<Option<u32>, GgufError> {
        let v = meta.opt_u64(key)?;
        match v {
            Some(v) if (v as usize) < tokens.len() => Ok(Some(v as u32)),
            Some(v) => Err(tok_err(format!(
                "{key} = {v} is outside the vocabulary of {}",
                tokens.len()
            ))),
            None => Ok(None),
        }
    };
    let bos_token_id = id("tokenizer.ggml.bos_token_id")?;
    let eos_id = id("tokenizer.ggml.eos_token_id")?;
    let pad_token_id = id("tokenizer.ggml.padding_token_id")?;
    let unk_token_id = id("tokenizer.ggml.unknown_token_id")?;
    let mut eos_token_ids: Vec<u32> = eos_id.into_iter().collect();
    for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
        if let Some(extra) = id(key)?.filter(|e| !eos_token_ids.contains(e)) {
            eos_token_ids.push(extra);
        }
    }

    let (pre_tokenizer, ignore_merges) = pre_tokenizer_for(meta, pre)?;
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(ignore_merges);
    if let Some(unk) = unk_token_id {
        builder = builder.unk_token(tokens[unk as usize].to_string());
    }
    let bpe = builder
        .build()
        .map_err(|e| tok_err(format!("BPE model: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let add_bos = meta
        .opt_bool("tokenizer.ggml.add_bos_token")?
        .unwrap_or(false);
    match (add_bos, bos_token_id) {
        (true, Some(bos)) => {
            let bos_text = tokens[bos as usize].to_string();
            let template = TemplateProcessing::builder()
                .try_single(format!("{bos_text} $A"))
                .and_then(|b| b.try_pair(format!("{bos_text} $A {bos_text} $B")))
                .map_err(|e| tok_err(format!("bos template: {e}")))?
                .special_tokens(vec![(bos_text, bos)])
                .build()
                .map_err(|e| tok_err(format!("bos template: {e}")))?;
            tokenizer.with_post_processor(Some(template));
        }
        _ => {
            tokenizer.with_post_processor(Some(ByteLevel::new(true, false, true)));
        }
    }

    let added: Vec<AddedToken> = types
        .iter()
        .enumerate()
        .filter_map(|(i, &t)| match t {
            TOKEN_TYPE_CONTROL => Some(AddedToken::from(tokens[i].to_string(), true)),
            TOKEN_TYPE_USER_DEFINED => {
                Some(AddedToken::from(tokens[i].to_string(), false).normalized(false))
            }
            _ => None,
        })
        .collect();
    let (special, plain): (Vec<AddedToken>, Vec<AddedToken>) =
        added.into_iter().partition(|t| t.special);
    tokenizer.add_special_tokens(&special);
    tokenizer.add_tokens(&plain);

    let text = |id: Option<u32>| id.map(|i| tokens[i as usize].to_string());
    Ok(GgufTokenizer {
        tokenizer,
        bos_token: text(bos_token_id),
        eos_token: text(eos_token_ids.first().copied()),
        bos_token_id,
        eos_token_ids,
        pad_token_id,
        unk_token_id,
    })
}
