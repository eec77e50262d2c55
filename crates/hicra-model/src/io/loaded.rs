//! [`LoadedModel`]: a model with its tokenizer, chat template and special tokens, ready for
//! text in and text out.

use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};
use crate::generate::{Generation, SamplingParams, StopCheck};
use crate::io::chat::{ChatMessage, ChatTemplate};
use crate::io::export::{HfSource, save_hf, save_hf_among};
use crate::io::tokenizer::Tokenizer;
use crate::model::Model;

/// A model with everything needed to use it on text. A clone shares the weights (see
/// [`Model`]).
#[derive(Clone)]
pub struct LoadedModel {
    /// The transformer.
    pub model: Model,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Its chat template, if it ships one.
    pub chat_template: Option<ChatTemplate>,
    /// Tokens that end generation.
    pub eos_token_ids: Vec<u32>,
    /// Padding token for batches.
    pub pad_token_id: u32,
    /// Where it was loaded from.
    pub source: String,
}

/// Stops a row once its decoded tail contains one of the stop strings.
struct StopStrings<'a> {
    tokenizer: &'a Tokenizer,
    strings: &'a [String],
    window: usize,
}

impl StopCheck for StopStrings<'_> {
    fn should_stop(&self, _row: usize, generated: &[u32]) -> bool {
        let tail = &generated[generated.len().saturating_sub(self.window)..];
        match self.tokenizer.decode(tail, false) {
            Ok(text) => self.strings.iter().any(|s| text.contains(s.as_str())),
            Err(_) => false,
        }
    }
}

impl LoadedModel {
    /// Generates with the model's EOS ids added to the stop tokens and stop strings honoured.
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
    ) -> Result<Vec<Generation>> {
        self.generate_streaming(prompts, params, &mut |_, _| {})
    }

    /// As [`LoadedModel::generate`], calling `on_token(row, token)` for each sampled token.
    pub fn generate_streaming(
        &self,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
        on_token: &mut (dyn FnMut(usize, u32) + Send),
    ) -> Result<Vec<Generation>> {
        let mut p = params.clone();
        for &id in &self.eos_token_ids {
            if !p.stop_token_ids.contains(&id) {
                p.stop_token_ids.push(id);
            }
        }
        let strings: Vec<String> = params
            .stop_strings
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        let stop = StopStrings {
            tokenizer: &self.tokenizer,
            strings: &strings,
            window: strings.iter().map(String::len).max().unwrap_or(0) + 4,
        };
        let check: Option<&dyn StopCheck> = if strings.is_empty() {
            None
        } else {
            Some(&stop)
        };
        self.model.generate_streaming(prompts, &p, check, on_token)
    }

    /// Renders `user` as one user message with the generation prompt (errors without a template).
    pub fn chat_prompt(&self, user: &str) -> Result<String> {
        let tmpl = self.chat_template.as_ref().ok_or_else(|| {
            ModelError::Template(format!("model {} ships no chat template", self.source))
        })?;
        tmpl.render(&[ChatMessage::new("user", user)], true)
    }

    /// The directory the model came from, when it is a directory.
    pub fn source_path(&self) -> PathBuf {
        PathBuf::from(&self.source)
    }

    fn hf_source(&self) -> HfSource<'_> {
        HfSource {
            model: &self.model,
            tokenizer: &self.tokenizer,
            chat_template: self.chat_template.as_ref(),
            eos_token_ids: &self.eos_token_ids,
            pad_token_id: self.pad_token_id,
        }
    }

    /// Writes the model as a Hugging Face directory at `dir` (atomically; `dir` must be
    /// absent, empty or a previous export, see [`save_hf`]).
    pub fn save_hf(&self, dir: &Path) -> Result<()> {
        save_hf(&self.hf_source(), dir)
    }

    /// Writes the model's Hugging Face files into `dir` among other files, leaving those alone
    /// (see [`save_hf_among`]).
    pub fn save_hf_among(&self, dir: &Path) -> Result<()> {
        save_hf_among(&self.hf_source(), dir)
    }

    /// Checks that the tokenizer belongs to the model: every id it (or the special tokens)
    /// can produce is a row of the model's embedding, and the model has no more rows than the
    /// tokenizer's ids padded to a multiple of [`VOCAB_PADDING`] (else the model samples ids
    /// the tokenizer cannot decode). `tokenizer` names the tokenizer's file in the error.
    pub fn check_vocabulary(&self, tokenizer: &Path) -> Result<()> {
        let model_vocab = self.model.config().vocab_size;
        let tok_vocab = self.tokenizer.vocab_size();
        let misfit = |message: String| {
            Err(ModelError::Tokenizer {
                path: tokenizer.to_path_buf(),
                message,
            })
        };
        if tok_vocab > model_vocab {
            return misfit(format!(
                "the tokenizer has {tok_vocab} ids but the model's vocab_size is {model_vocab}: \
                 it is not this model's tokenizer"
            ));
        }
        if model_vocab > tok_vocab.next_multiple_of(VOCAB_PADDING) {
            return misfit(format!(
                "the model's vocab_size is {model_vocab} but the tokenizer has only {tok_vocab} \
                 ids: it is not this model's tokenizer (the model would produce ids it cannot \
                 decode)"
            ));
        }
        let specials = self.eos_token_ids.iter().chain([&self.pad_token_id]);
        if let Some(id) = specials.into_iter().find(|&&id| id as usize >= model_vocab) {
            return misfit(format!(
                "special token id {id} is outside the model's vocab_size of {model_vocab}"
            ));
        }
        Ok(())
    }
}

/// The embedding rows a model may have beyond its tokenizer's ids: vocabularies are padded up
/// to a round size (Qwen2.5's 151936 rows hold 151665 ids).
pub const VOCAB_PADDING: usize = 1024;
