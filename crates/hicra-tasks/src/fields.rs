//! Which record fields hold the problem, the answer, the id and the data source, and the
//! built-in layouts of the seven shared math benchmarks.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Field paths are dotted (`reward_model.ground_truth`); `None` means "detect".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldSpec {
    /// The problem: a string or a list of `{role, content}` messages.
    /// Detected: `prompt`, then `problem`, then `question`.
    pub problem: Option<String>,
    /// The answer. Detected: `reward_model.ground_truth`, `answer`, `final_answer`, `solution`.
    pub answer: Option<String>,
    /// How the gold is read out of the answer field.
    pub answer_kind: AnswerKind,
    /// The id. Detected: `id`, `idx`, `unique_id`, `extra_info.index`; else `<dataset>-<record>`.
    pub id: Option<String>,
    /// The data source. Detected: `data_source`; else the data set's name.
    pub data_source: Option<String>,
}

/// How the gold answer is read out of the answer field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerKind {
    /// `after-hashes` for strings holding `#### `, `boxed` for a field named `solution`,
    /// else `value`.
    #[default]
    Auto,
    /// The field's value as is (string, number or list; a one-element list is unwrapped).
    Value,
    /// The text after the last `####` (GSM8K), with thousands separators removed.
    AfterHashes,
    /// The content of the last `\boxed{}` in the field (a worked solution).
    Boxed,
}

/// A benchmark layout recognised by the data set's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownLayout {
    /// The data set's name (its folder under `shared/data/math`).
    pub name: &'static str,
    /// The problem field.
    pub problem: &'static str,
    /// The answer field.
    pub answer: &'static str,
    /// How the gold is read.
    pub answer_kind: AnswerKind,
}

/// The seven benchmarks of `shared/data/math` (field names differ per set).
pub const KNOWN_LAYOUTS: &[KnownLayout] = &[
    KnownLayout {
        name: "gsm8k",
        problem: "question",
        answer: "answer",
        answer_kind: AnswerKind::AfterHashes,
    },
    KnownLayout {
        name: "math500",
        problem: "problem",
        answer: "answer",
        answer_kind: AnswerKind::Value,
    },
    KnownLayout {
        name: "aime24",
        problem: "problem",
        answer: "answer",
        answer_kind: AnswerKind::Value,
    },
    KnownLayout {
        name: "aime25",
        problem: "problem",
        answer: "answer",
        answer_kind: AnswerKind::Value,
    },
    KnownLayout {
        name: "amc23",
        problem: "problem",
        answer: "answer",
        answer_kind: AnswerKind::Value,
    },
    KnownLayout {
        name: "minerva_math",
        problem: "problem",
        answer: "solution",
        answer_kind: AnswerKind::Boxed,
    },
    KnownLayout {
        name: "olympiadbench",
        problem: "question",
        answer: "final_answer",
        answer_kind: AnswerKind::Value,
    },
];

/// The known layout for a data set name (case-insensitive), if any.
pub fn known_layout(name: &str) -> Option<&'static KnownLayout> {
    KNOWN_LAYOUTS
        .iter()
        .find(|layout| layout.name.eq_ignore_ascii_case(name))
}

impl FieldSpec {
    /// The spec a known layout implies; fields the user set win.
    pub fn with_layout(&self, layout: &KnownLayout) -> FieldSpec {
        FieldSpec {
            problem: self
                .problem
                .clone()
                .or_else(|| Some(layout.problem.to_string())),
            answer: self
                .answer
                .clone()
                .or_else(|| Some(layout.answer.to_string())),
            answer_kind: if self.answer.is_none() && self.answer_kind == AnswerKind::Auto {
                layout.answer_kind
            } else {
                self.answer_kind
            },
            id: self.id.clone(),
            data_source: self.data_source.clone(),
        }
    }
}

/// Candidate problem fields, in detection order.
pub(crate) const PROBLEM_FIELDS: &[&str] = &["prompt", "problem", "question"];
/// Candidate answer fields, in detection order.
pub(crate) const ANSWER_FIELDS: &[&str] = &[
    "reward_model.ground_truth",
    "answer",
    "final_answer",
    "solution",
];
/// Candidate id fields, in detection order.
pub(crate) const ID_FIELDS: &[&str] = &["id", "idx", "unique_id", "extra_info.index"];

/// Looks up a dotted path (`a.b.c`; numeric segments index lists) in a JSON value.
/// A `null` at the end counts as absent.
pub fn get_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = value;
    for segment in path.split('.') {
        current = match current {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    (!current.is_null()).then_some(current)
}

/// The first of `candidates` present in `value`, with its path.
pub(crate) fn first_present<'a>(
    value: &'a Value,
    candidates: &[&'static str],
) -> Option<(&'static str, &'a Value)> {
    candidates
        .iter()
        .find_map(|path| get_path(value, path).map(|v| (*path, v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_reach_nested_fields_and_list_items() {
        let v = json!({"reward_model": {"ground_truth": "42"}, "xs": [1, {"y": 2}], "n": null});
        assert_eq!(
            get_path(&v, "reward_model.ground_truth"),
            Some(&json!("42"))
        );
        assert_eq!(get_path(&v, "xs.1.y"), Some(&json!(2)));
        assert_eq!(get_path(&v, "xs.7"), None);
        assert_eq!(get_path(&v, "n"), None);
        assert_eq!(get_path(&v, "reward_model.missing"), None);
    }

    #[test]
    fn user_fields_override_a_known_layout() {
        let layout = known_layout("GSM8K").unwrap();
        let spec = FieldSpec {
            answer: Some("gold".into()),
            ..FieldSpec::default()
        }
        .with_layout(layout);
        assert_eq!(spec.problem.as_deref(), Some("question"));
        assert_eq!(spec.answer.as_deref(), Some("gold"));
        assert_eq!(spec.answer_kind, AnswerKind::Auto);
    }
}
