//! Turns one JSON record (a JSONL line or a Parquet row) into a [`Problem`].

use serde_json::Value;

use crate::fields::{
    ANSWER_FIELDS, AnswerKind, FieldSpec, ID_FIELDS, PROBLEM_FIELDS, first_present, get_path,
};
use crate::problem::{Message, Problem, PromptSource};
use crate::repair::repair_lost_backslashes;

/// What the record converter needs besides the record.
pub(crate) struct RecordContext<'a> {
    /// Resolved field spec (user fields merged with a known layout).
    pub fields: &'a FieldSpec,
    /// The data set's name (default data source and id prefix).
    pub dataset: &'a str,
    /// Restore LaTeX backslashes lost to JSON escapes.
    pub repair_escapes: bool,
}

/// Converts one record; the error is a one-line reason (the caller adds file and line).
pub(crate) fn problem_from_record(
    record: &Value,
    number: usize,
    ctx: &RecordContext<'_>,
) -> Result<Problem, String> {
    if !record.is_object() {
        return Err(format!(
            "expected a JSON object, found {}",
            json_type_name(record)
        ));
    }
    let (problem_field, problem_value) = lookup(
        record,
        ctx.fields.problem.as_deref(),
        PROBLEM_FIELDS,
        "problem",
    )?;
    let mut prompt = prompt_from_value(problem_value)
        .map_err(|why| format!("field `{problem_field}`: {why}"))?;
    if ctx.repair_escapes {
        repair_prompt(&mut prompt);
    }
    if prompt.problem_text().trim().is_empty() {
        return Err(format!("field `{problem_field}` is empty"));
    }

    let (answer_field, answer_value) = lookup(
        record,
        ctx.fields.answer.as_deref(),
        ANSWER_FIELDS,
        "answer",
    )?;
    let gold = gold_from_value(&answer_field, answer_value, ctx.fields.answer_kind)
        .map_err(|why| format!("field `{answer_field}`: {why}"))?;

    let id = match &ctx.fields.id {
        Some(path) => get_path(record, path).map(scalar_text),
        None => first_present(record, ID_FIELDS).map(|(_, v)| scalar_text(v)),
    }
    .unwrap_or_else(|| format!("{}-{number}", ctx.dataset));
    let data_source = match &ctx.fields.data_source {
        Some(path) => get_path(record, path).map(scalar_text),
        None => get_path(record, "data_source").map(scalar_text),
    }
    .unwrap_or_else(|| ctx.dataset.to_string());

    Ok(Problem {
        id,
        prompt,
        gold,
        data_source,
    })
}

fn lookup<'a>(
    record: &'a Value,
    path: Option<&str>,
    candidates: &[&'static str],
    what: &str,
) -> Result<(String, &'a Value), String> {
    match path {
        Some(path) => get_path(record, path)
            .map(|v| (path.to_string(), v))
            .ok_or_else(|| format!("missing {what} field `{path}`")),
        None => first_present(record, candidates)
            .map(|(p, v)| (p.to_string(), v))
            .ok_or_else(|| format!("no {what} field (looked for {})", candidates.join(", "))),
    }
}

fn prompt_from_value(value: &Value) -> Result<PromptSource, String> {
    match value {
        Value::String(text) => Ok(PromptSource::Text(text.clone())),
        Value::Array(items) => {
            let messages = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let role = item.get("role").and_then(Value::as_str);
                    let content = item.get("content").and_then(Value::as_str);
                    match (role, content) {
                        (Some(role), Some(content)) => Ok(Message::new(role, content)),
                        _ => Err(format!("message {i} lacks a string `role` and `content`")),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            if messages.is_empty() {
                return Err("the message list is empty".into());
            }
            Ok(PromptSource::Messages(messages))
        }
        other => Err(format!(
            "expected a string or a list of chat messages, found {}",
            json_type_name(other)
        )),
    }
}

fn repair_prompt(prompt: &mut PromptSource) {
    match prompt {
        PromptSource::Text(text) => *text = repair_lost_backslashes(text).0,
        PromptSource::Messages(messages) => {
            for m in messages {
                m.content = repair_lost_backslashes(&m.content).0;
            }
        }
    }
}

fn gold_from_value(field: &str, value: &Value, kind: AnswerKind) -> Result<Value, String> {
    let kind = match kind {
        AnswerKind::Auto => match value {
            Value::String(s) if s.contains("####") => AnswerKind::AfterHashes,
            Value::String(_) if field.rsplit('.').next() == Some("solution") => AnswerKind::Boxed,
            _ => AnswerKind::Value,
        },
        explicit => explicit,
    };
    let gold = match kind {
        AnswerKind::AfterHashes => {
            let text = value
                .as_str()
                .ok_or("expected a string holding `#### answer`")?;
            let (_, after) = text
                .rsplit_once("####")
                .ok_or("no `####` before the answer")?;
            Value::String(after.trim().replace(',', ""))
        }
        AnswerKind::Boxed => {
            let text = value.as_str().ok_or("expected a solution string")?;
            let boxed = hicra_verify::extract_answer(text, hicra_verify::ExtractMode::StrictBoxed)
                .ok_or("no \\boxed{} answer in the solution")?;
            Value::String(boxed)
        }
        AnswerKind::Value | AnswerKind::Auto => normalise_gold(value)?,
    };
    match &gold {
        Value::String(s) if s.trim().is_empty() => Err("the answer is empty".into()),
        Value::Array(items) if items.is_empty() => Err("the answer list is empty".into()),
        _ => Ok(gold),
    }
}

fn normalise_gold(value: &Value) -> Result<Value, String> {
    match value {
        Value::String(s) => Ok(Value::String(s.trim().to_string())),
        Value::Number(_) => Ok(value.clone()),
        Value::Array(items) if items.len() == 1 => normalise_gold(&items[0]),
        Value::Array(items) => items
            .iter()
            .map(normalise_gold)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Err(format!(
            "expected a string, number or list answer, found {}",
            json_type_name(other)
        )),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The JSON type of a value as error messages name it (`a string`, `a list`, …).
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convert(record: Value, fields: &FieldSpec) -> Result<Problem, String> {
        let ctx = RecordContext {
            fields,
            dataset: "set",
            repair_escapes: true,
        };
        problem_from_record(&record, 3, &ctx)
    }

    #[test]
    fn verl_layout_with_chat_messages() {
        let p = convert(
            json!({"data_source": "openai/gsm8k",
                   "prompt": [{"role": "user", "content": "1+1?"}],
                   "reward_model": {"style": "rule", "ground_truth": "2"},
                   "extra_info": {"index": 7}}),
            &FieldSpec::default(),
        )
        .unwrap();
        assert_eq!(
            p.prompt,
            PromptSource::Messages(vec![Message::user("1+1?")])
        );
        assert_eq!(p.gold, json!("2"));
        assert_eq!(p.data_source, "openai/gsm8k");
        assert_eq!(p.id, "7");
    }

    #[test]
    fn plain_layout_with_gsm8k_answer_and_default_id() {
        let p = convert(
            json!({"question": "How many?", "answer": "2+2=4\n#### 1,450"}),
            &FieldSpec::default(),
        )
        .unwrap();
        assert_eq!(p.prompt, PromptSource::Text("How many?".into()));
        assert_eq!(p.gold, json!("1450"));
        assert_eq!(p.id, "set-3");
        assert_eq!(p.data_source, "set");
    }

    #[test]
    fn configured_dotted_fields() {
        let fields = FieldSpec {
            problem: Some("q.text".into()),
            answer: Some("q.gold".into()),
            ..FieldSpec::default()
        };
        let p = convert(json!({"q": {"text": "x?", "gold": [5]}}), &fields).unwrap();
        assert_eq!(p.gold, json!(5));
        let err = convert(json!({"q": {"text": "x?"}}), &fields).unwrap_err();
        assert!(err.contains("`q.gold`"), "{err}");
    }

    #[test]
    fn bad_records_are_explained() {
        let none = FieldSpec::default();
        assert!(
            convert(json!([1]), &none)
                .unwrap_err()
                .contains("JSON object")
        );
        assert!(
            convert(json!({"answer": "1"}), &none)
                .unwrap_err()
                .contains("no problem field")
        );
        assert!(
            convert(json!({"problem": "p"}), &none)
                .unwrap_err()
                .contains("no answer field")
        );
        assert!(
            convert(json!({"problem": "p", "answer": " "}), &none)
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            convert(json!({"problem": 4, "answer": "1"}), &none)
                .unwrap_err()
                .contains("`problem`")
        );
        assert!(
            convert(json!({"problem": "p", "answer": {"a": 1}}), &none)
                .unwrap_err()
                .contains("an object")
        );
    }
}
