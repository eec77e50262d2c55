//! The problem type every task yields: an id, a prompt (text or chat messages), a gold answer.

use serde::{Deserialize, Serialize};

/// One chat message (`{"role": "user", "content": "..."}`), as in verl's `prompt` column.
///
/// Deliberately independent of `hicra_model::ChatMessage`; convert field by field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

impl Message {
    /// A message with the given role and content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
}

/// How a problem is posed: bare problem text, or a ready-made chat conversation (verl layout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PromptSource {
    /// The problem statement as plain text (formatted later by a [`crate::PromptFormat`]).
    Text(String),
    /// A conversation given by the data set, used as is.
    Messages(Vec<Message>),
}

impl PromptSource {
    /// The problem text: the text itself, or the last user message's content.
    pub fn problem_text(&self) -> &str {
        match self {
            PromptSource::Text(text) => text,
            PromptSource::Messages(messages) => messages
                .iter()
                .rev()
                .find(|m| m.role == "user")
                .or(messages.last())
                .map(|m| m.content.as_str())
                .unwrap_or(""),
        }
    }
}

/// One problem with its reference answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// A stable identifier (the record's `id`/`idx`/`unique_id`, or `<dataset>-<record>`).
    pub id: String,
    /// The problem statement or conversation.
    pub prompt: PromptSource,
    /// The gold answer as JSON: a string, a number, or a list (several answers).
    /// Convert with [`Problem::gold`] for grading.
    pub gold: serde_json::Value,
    /// Where the problem comes from (verl's `data_source`, else the data set's name).
    pub data_source: String,
}

impl Problem {
    /// The gold answer as the verifier's type.
    pub fn gold(&self) -> Result<hicra_verify::Gold, hicra_verify::VerifyError> {
        hicra_verify::Gold::from_json(&self.gold)
    }

    /// The gold answer as display text: strings as is, integral numbers without `.0`,
    /// lists joined with `, `.
    pub fn gold_text(&self) -> String {
        gold_value_text(&self.gold)
    }
}

/// Renders a gold JSON value as answer text (see [`Problem::gold_text`]).
pub fn gold_value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 && n.as_i64().is_none() => {
                format!("{}", f as i64)
            }
            _ => n.to_string(),
        },
        serde_json::Value::Array(items) => items
            .iter()
            .map(gold_value_text)
            .collect::<Vec<_>>()
            .join(", "),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
