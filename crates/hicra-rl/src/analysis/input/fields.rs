//! Typed reads of a record's fields, each failure naming the field and what it holds.

use serde_json::{Map, Value};

use crate::analysis::sample::{Prompt, Turn};

/// Why a record cannot be read: the field at fault and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The field, when one is at fault.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn field(field: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: Some(field.to_string()),
            message: format!("field `{field}`: {}", message.into()),
        }
    }

    /// A problem with the whole record.
    pub fn record(message: impl Into<String>) -> FieldError {
        FieldError {
            field: None,
            message: message.into(),
        }
    }
}

/// The record as a JSON object.
pub fn object(value: Value) -> Result<Map<String, Value>, FieldError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(FieldError::record(format!(
            "expected a JSON object, got {}",
            hicra_tasks::json_type_name(&other)
        ))),
    }
}

fn wrong(field: &str, expected: &str, got: &Value) -> FieldError {
    FieldError::field(
        field,
        format!(
            "expected {expected}, got {}",
            hicra_tasks::json_type_name(got)
        ),
    )
}

/// A required string field (taken out of the record).
pub fn take_str(map: &mut Map<String, Value>, field: &str) -> Result<String, FieldError> {
    match map.remove(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(wrong(field, "a string", &other)),
        None => Err(FieldError::field(field, "missing")),
    }
}

/// An optional number (`null` and absent are `None`).
pub fn opt_f64(map: &Map<String, Value>, field: &str) -> Result<Option<f64>, FieldError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(wrong(field, "a number", other)),
    }
}

/// An optional non-negative integer.
pub fn opt_u64(map: &Map<String, Value>, field: &str) -> Result<Option<u64>, FieldError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => Ok(Some(v)),
            // Parquet and pandas may hand integers over as floats.
            None => match n.as_f64() {
                Some(f) if f >= 0.0 && f.fract() == 0.0 => Ok(Some(f as u64)),
                _ => Err(FieldError::field(
                    field,
                    format!("expected a non-negative integer, got {n}"),
                )),
            },
        },
        Some(other) => Err(wrong(field, "a non-negative integer", other)),
    }
}

/// An optional verdict: a boolean, or a number (1 = correct, 0 = wrong, as verl's `acc`).
pub fn opt_verdict(map: &Map<String, Value>, field: &str) -> Result<Option<bool>, FieldError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Number(n)) => Ok(n.as_f64().map(|x| x > 0.5)),
        Some(other) => Err(wrong(field, "a boolean or a number", other)),
    }
}

/// An optional string.
pub fn opt_str(map: &Map<String, Value>, field: &str) -> Result<Option<String>, FieldError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong(field, "a string", other)),
    }
}

/// The step of a record: its `step` field, else the step in its file's name.
pub fn step(map: &Map<String, Value>, from_file: Option<u64>) -> Result<u64, FieldError> {
    match (opt_u64(map, "step")?, from_file) {
        (Some(s), _) | (None, Some(s)) => Ok(s),
        (None, None) => Err(FieldError::field("step", "missing")),
    }
}

/// A prompt or completion: text, or a list of chat messages `{"role", "content"}`.
pub fn take_chat_or_text(map: &mut Map<String, Value>, field: &str) -> Result<Prompt, FieldError> {
    match map.remove(field) {
        Some(Value::String(s)) => Ok(Prompt::Text(s)),
        Some(Value::Array(items)) => {
            let mut turns = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let mut m = match item {
                    Value::Object(m) => m,
                    other => return Err(wrong(&format!("{field}[{i}]"), "a message", &other)),
                };
                let at = |key: &str| format!("{field}[{i}].{key}");
                let role = take_str(&mut m, "role")
                    .map_err(|_| FieldError::field(&at("role"), "missing or not a string"))?;
                let content = match m.remove("content") {
                    Some(Value::String(s)) => s,
                    Some(Value::Null) | None => String::new(),
                    Some(other) => return Err(wrong(&at("content"), "a string", &other)),
                };
                turns.push(Turn { role, content });
            }
            Ok(Prompt::Chat(turns))
        }
        Some(other) => Err(wrong(field, "a string or a list of messages", &other)),
        None => Err(FieldError::field(field, "missing")),
    }
}

/// The response text of a completion: the text, or its messages' contents joined.
pub fn response_text(completion: Prompt) -> String {
    match completion {
        Prompt::Text(t) => t,
        Prompt::Chat(turns) => turns
            .into_iter()
            .map(|t| t.content)
            .collect::<Vec<_>>()
            .join("\n"),
        Prompt::Missing => String::new(),
    }
}

/// An optional array of token ids.
pub fn opt_ids(map: &Map<String, Value>, field: &str) -> Result<Option<Vec<u32>>, FieldError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_u64()
                    .and_then(|id| u32::try_from(id).ok())
                    .ok_or_else(|| wrong(field, "token ids (whole numbers)", v))
            })
            .collect::<Result<Vec<u32>, _>>()
            .map(Some),
        Some(other) => Err(wrong(field, "an array of token ids", other)),
    }
}
