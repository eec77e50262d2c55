//! The run formats `hicra analyze` reads, by name.

use serde::Serialize;

/// A run format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A hicra run directory.
    Hicra,
    /// verl rollout / validation dumps.
    Verl,
    /// TRL completion logs.
    Trl,
    /// Generic JSONL.
    Jsonl,
}

impl Format {
    /// Every format, in the order automatic detection tries them.
    pub const ALL: [Format; 4] = [Format::Hicra, Format::Verl, Format::Trl, Format::Jsonl];

    /// The name used by `--format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Hicra => "hicra",
            Format::Verl => "verl",
            Format::Trl => "trl",
            Format::Jsonl => "jsonl",
        }
    }

    /// The format of a `--format` name (`auto` is `None`).
    pub fn parse(name: &str) -> Result<Option<Format>, String> {
        if name == "auto" {
            return Ok(None);
        }
        Format::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .map(Some)
            .ok_or_else(|| format!("unknown format `{name}` (auto, hicra, verl, trl or jsonl)"))
    }
}
