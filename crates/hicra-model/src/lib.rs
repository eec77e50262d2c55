//! Llama/Qwen-family transformer on candle: our own differentiable model code (training path
//! with chunked log-probs and backward), fast batched generation with a KV cache, loading from
//! Hugging Face directories and GGUF files, tokenizer and chat templates, tiny test models.
//!
//! - [`model`]: [`Model`], its forward and backward passes, scoring, the KV cache;
//! - [`generate`]: what generation is asked and returns, sampling, packed decoding weights;
//! - [`io`]: loading (HF directories, GGUF files, fetched models), [`LoadedModel`], saving,
//!   the tokenizer and chat templates, the model registry, tiny test models;
//! - [`device`]: devices, dtypes and load options; [`config`]: the hyper-parameters;
//!   [`batch`]: padded token batches; [`encoder`]: the sentence encoder (BERT) for gram mining.
//!
//! The CPU kernels the model runs on are the `hicra-kernels` crate.

pub mod batch;
pub mod config;
pub mod device;
pub mod encoder;
pub mod error;
pub mod generate;
pub mod io;
pub mod model;

pub use batch::{Padding, TokenBatch};
pub use config::{Arch, ModelConfig, RopeScaling};
pub use device::{DTypeSpec, DeviceSpec, LoadOptions};
pub use error::{ModelError, Result};
pub use generate::{FinishReason, Generation, SamplingParams, StopCheck};
pub use hicra_kernels::Precision;
pub use io::chat::{ChatMessage, ChatTemplate};
pub use io::loaded::LoadedModel;
pub use io::loader::{load_hf_dir, load_model};
pub use io::tokenizer::Tokenizer;
pub use model::Model;
pub use model::score::{BackwardOutput, ScoreOptions, TokenChunk, TokenScores};
