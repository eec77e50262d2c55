//! `Tokenizer`: a thin wrapper over the `tokenizers` crate with the operations hicra needs
//! (encode with byte offsets, decode, per-token byte spans, byte-level BPE training).

use std::path::Path;

use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, TokenizerImpl};

use crate::error::{ModelError, Result};

/// A token's `(start, end)` byte range in a text.
pub type ByteSpan = (usize, usize);

/// A text tokenizer (Hugging Face `tokenizer.json` semantics).
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

fn tok_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer {
        path: "<tokenizer>".into(),
        message: e.to_string(),
    }
}

impl Tokenizer {
    /// Wraps an existing `tokenizers::Tokenizer`.
    pub fn from_inner(inner: tokenizers::Tokenizer) -> Tokenizer {
        Tokenizer { inner }
    }

    /// The wrapped tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Reads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Tokenizer> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::Tokenizer {
                path: path.into(),
                message: "tokenizer.json not found".into(),
            },
            _ => ModelError::io(path, e),
        })?;
        let inner =
            tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| ModelError::Tokenizer {
                path: path.into(),
                message: format!("cannot parse: {e}"),
            })?;
        Ok(Tokenizer { inner })
    }

    /// Token ids of `text`; `add_special_tokens` applies the post-processor (e.g. BOS).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(tok_err)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of `text` (no special tokens added) with each token's byte span in `text`.
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<u32>, Vec<ByteSpan>)> {
        let enc = self.inner.encode(text, false).map_err(tok_err)?;
        Ok((enc.get_ids().to_vec(), enc.get_offsets().to_vec()))
    }

    /// Text of `ids`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(tok_err)
    }

    /// Byte span of each token within `decode(ids, false)`. A character split across tokens
    /// is attributed to the token that completes it (earlier ones get an empty span).
    pub fn token_byte_spans(&self, ids: &[u32]) -> Result<Vec<ByteSpan>> {
        let full = self.decode(ids, false)?;
        let mut spans = Vec::with_capacity(ids.len());
        let mut pos = 0usize;
        let mut stream = self.inner.decode_stream(false);
        let mut consistent = true;
        for &id in ids {
            let piece = stream.step(id).map_err(tok_err)?.unwrap_or_default();
            if !full[pos.min(full.len())..].starts_with(&piece) {
                consistent = false;
                break;
            }
            spans.push((pos, pos + piece.len()));
            pos += piece.len();
        }
        if consistent && pos == full.len() {
            return Ok(spans);
        }
        // Fallback for decoders whose pieces do not concatenate to the full text: prefix decodes.
        let mut spans = Vec::with_capacity(ids.len());
        let mut prev = 0usize;
        for i in 0..ids.len() {
            let prefix = self.decode(&ids[..=i], false)?;
            let common = common_prefix_len(&prefix, &full).max(prev);
            let end = if i + 1 == ids.len() {
                full.len()
            } else {
                common
            };
            spans.push((prev, end));
            prev = end;
        }
        Ok(spans)
    }

    /// Id of a token string (including added/special tokens).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// String of a token id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Trains a byte-level BPE tokenizer (GPT-2 style, no prefix space) on `corpus`;
    /// `special_tokens` get the first ids.
    pub fn train_bpe(
        corpus: &[String],
        vocab_size: usize,
        special_tokens: &[&str],
    ) -> Result<Tokenizer> {
        Self::train_byte_level_bpe(corpus, vocab_size, special_tokens, false)
    }

    /// Like [`Tokenizer::train_bpe`], but digits are pre-split into single-digit tokens (as
    /// Llama 3 and Qwen do), so numbers never merge into uneven multi-digit chunks: what a
    /// tiny model doing digit-level arithmetic needs.
    pub fn train_bpe_split_digits(
        corpus: &[String],
        vocab_size: usize,
        special_tokens: &[&str],
    ) -> Result<Tokenizer> {
        Self::train_byte_level_bpe(corpus, vocab_size, special_tokens, true)
    }

    fn train_byte_level_bpe(
        corpus: &[String],
        vocab_size: usize,
        special_tokens: &[&str],
        split_digits: bool,
    ) -> Result<Tokenizer> {
        let specials: Vec<AddedToken> = special_tokens
            .iter()
            .map(|s| AddedToken::from(s.to_string(), true))
            .collect();
        let mut trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(0)
            .show_progress(false)
            .special_tokens(specials.clone())
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let byte_level = ByteLevel::new(false, true, true);
        let pre_tokenizer = if split_digits {
            PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                PreTokenizerWrapper::ByteLevel(byte_level),
            ]))
        } else {
            PreTokenizerWrapper::ByteLevel(byte_level)
        };
        let mut tok: TokenizerImpl<
            BPE,
            NormalizerWrapper,
            PreTokenizerWrapper,
            ByteLevel,
            ByteLevel,
        > = TokenizerImpl::new(BPE::default());
        tok.with_pre_tokenizer(Some(pre_tokenizer))
            .with_post_processor(Some(byte_level))
            .with_decoder(Some(byte_level));
        tok.train(&mut trainer, corpus.iter()).map_err(tok_err)?;
        let mut inner = tokenizers::Tokenizer::from(tok);
        inner.add_special_tokens(&specials);
        Ok(Tokenizer { inner })
    }

    /// The `tokenizer.json` text.
    pub fn to_json(&self) -> Result<String> {
        self.inner.to_string(false).map_err(tok_err)
    }
}

fn common_prefix_len(a: &str, b: &str) -> usize {
    let mut n = 0;
    for ((i, ca), cb) in a.char_indices().zip(b.chars()) {
        if ca != cb {
            return i;
        }
        n = i + ca.len_utf8();
    }
    n
}
