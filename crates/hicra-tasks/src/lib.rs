//! Datasets, prompt formats and built-in generated tasks.
//!
//! * [`Dataset`]: problems from JSONL / JSON / Parquet (verl layout, plain
//!   `{question|problem, answer}` layouts, configurable dotted field paths, the seven shared
//!   math benchmarks recognised by name), malformed records skipped with file:line or fatal.
//! * [`PromptFormat`]: problem → chat [`Message`]s (system prompt, instruction suffix) or raw text.
//! * [`Task`]: what the trainer talks to — training stream by position, validation set,
//!   prompts, scoring ([`MathTask`] over data sets with `hicra-verify`), and optionally
//!   the failure anatomy of a response ([`anatomy`]: planning, execution, format).
//! * [`lab`]: the reasoning lab (hierarchical additions with planted planning phrases).
//! * [`arith`]: templated arithmetic word problems with `\boxed{}` answers.

pub mod anatomy;
pub mod arith;
mod dataset;
mod error;
pub mod fields;
mod hash;
pub mod lab;
mod problem;
mod prompt;
mod record;
pub mod repair;
mod source;
mod task;

pub use anatomy::{ANATOMY_KEYS, Anatomy, Diagnosis, Outcome};
pub use dataset::{Cursor, Dataset, LoadOptions, Loaded, OnError, SkippedRecord, dataset_name};
pub use error::TaskError;
pub use fields::{AnswerKind, FieldSpec, KNOWN_LAYOUTS, KnownLayout, known_layout};
pub use hash::{VALIDATION_PER_MILLE, split_of, stable_hash};
pub use problem::{Message, Problem, PromptSource, gold_value_text};
pub use prompt::{BOXED_INSTRUCTION, FormattedPrompt, PromptFormat, PromptStyle};
pub use record::json_type_name;
pub use source::{FileFormat, RecordLocation, RecordUnit, parquet_rows, strip_bom};
pub use task::{MathTask, Score, Split, Task, score_math, task_anatomy};
