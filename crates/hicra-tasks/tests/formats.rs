//! Loading from JSONL, JSON and Parquet in verl's and plain layouts, and the handling of
//! malformed records (skipped with file:line, or fatal).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use hicra_tasks::{
    AnswerKind, Dataset, FieldSpec, LoadOptions, Message, OnError, Problem, PromptSource,
    RecordUnit, TaskError,
};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde_json::json;

fn write(path: &Path, text: &str) {
    File::create(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

fn skip() -> LoadOptions {
    LoadOptions::default()
}

fn fail() -> LoadOptions {
    LoadOptions {
        on_error: OnError::Fail,
        ..LoadOptions::default()
    }
}

fn verl_problems() -> Vec<Problem> {
    vec![
        Problem {
            id: "0".into(),
            prompt: PromptSource::Messages(vec![
                Message::system("You are a careful solver."),
                Message::user("What is 2+3? Put the answer in \\boxed{}."),
            ]),
            gold: json!("5"),
            data_source: "toy/add".into(),
        },
        Problem {
            id: "1".into(),
            prompt: PromptSource::Messages(vec![Message::user("Simplify \\frac{6}{4}.")]),
            gold: json!("\\frac{3}{2}"),
            data_source: "toy/frac".into(),
        },
    ]
}

fn verl_record(p: &Problem) -> serde_json::Value {
    json!({
        "data_source": p.data_source,
        "prompt": p.prompt,
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": p.gold},
        "extra_info": {"index": p.id.parse::<i64>().unwrap(), "split": "train"},
    })
}

#[test]
fn verl_jsonl_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.jsonl");
    let problems = verl_problems();
    let text: String = problems
        .iter()
        .map(|p| format!("{}\n", verl_record(p)))
        .collect();
    write(&path, &text);
    let loaded = Dataset::load(&path, &fail()).unwrap();
    assert!(loaded.skipped.is_empty());
    assert_eq!(loaded.dataset.problems, problems);
}

#[test]
fn json_list_and_plain_layout_with_configured_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.json");
    write(
        &path,
        r#"[{"meta": {"q": "1+1?", "key": "k1"}, "sol": "so \\boxed{2}"},
            {"meta": {"q": "2+2?", "key": "k2"}, "sol": "thus \\boxed{4}"}]"#,
    );
    let options = LoadOptions {
        fields: FieldSpec {
            problem: Some("meta.q".into()),
            answer: Some("sol".into()),
            answer_kind: AnswerKind::Boxed,
            id: Some("meta.key".into()),
            data_source: None,
        },
        ..fail()
    };
    let dataset = Dataset::load(&path, &options).unwrap().dataset;
    assert_eq!(dataset.name, "mine");
    let golds: Vec<_> = dataset
        .iter()
        .map(|p| (p.id.as_str(), p.gold_text()))
        .collect();
    assert_eq!(golds, [("k1", "2".to_string()), ("k2", "4".to_string())]);
    assert_eq!(
        dataset.problems[0].prompt,
        PromptSource::Text("1+1?".into())
    );
    assert_eq!(dataset.problems[0].data_source, "mine");
}

#[test]
fn malformed_lines_are_skipped_and_reported_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    write(
        &path,
        concat!(
            "{\"question\": \"ok 1\", \"answer\": \"1\"}\n",
            "{\"question\": \"broken\", \"answer\": \n",
            "\n",
            "{\"question\": \"no answer\"}\n",
            "[1, 2]\n",
            "{\"question\": \"ok 2\", \"answer\": 2}\n",
        ),
    );
    let loaded = Dataset::load(&path, &skip()).unwrap();
    let ids: Vec<_> = loaded.dataset.iter().map(|p| p.id.clone()).collect();
    assert_eq!(ids, ["mixed-1", "mixed-6"]);
    let lines: Vec<usize> = loaded.skipped.iter().map(|s| s.location.number).collect();
    assert_eq!(lines, [2, 4, 5]);
    assert!(
        loaded
            .skipped
            .iter()
            .all(|s| s.location.unit == RecordUnit::Line)
    );
    let first = loaded.skipped[0].to_string();
    assert!(
        first.starts_with(&format!("{}:2: invalid JSON", path.display())),
        "{first}"
    );
    assert!(loaded.skipped[1].reason.contains("no answer field"));

    let err = Dataset::load(&path, &fail()).unwrap_err();
    assert!(matches!(err, TaskError::Malformed { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2:", path.display())),
        "{err}"
    );
}

#[test]
fn limit_stops_after_that_many_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.jsonl");
    let text: String = (0..10)
        .map(|i| format!("{{\"problem\": \"p{i}\", \"answer\": \"{i}\"}}\n"))
        .collect();
    write(&path, &text);
    let options = LoadOptions {
        limit: Some(3),
        ..skip()
    };
    let dataset = Dataset::load(&path, &options).unwrap().dataset;
    assert_eq!(
        dataset.iter().map(|p| p.gold_text()).collect::<Vec<_>>(),
        ["0", "1", "2"]
    );
}

#[test]
fn file_level_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.jsonl");
    let err = Dataset::load(&missing, &skip()).unwrap_err();
    assert!(
        matches!(err, TaskError::Io { .. }) && err.to_string().contains("absent.jsonl"),
        "{err}"
    );

    let csv = dir.path().join("data.csv");
    write(&csv, "a,b\n");
    let err = Dataset::load(&csv, &skip()).unwrap_err();
    assert!(matches!(err, TaskError::UnsupportedFormat { .. }), "{err}");

    let all_bad = dir.path().join("bad.jsonl");
    write(&all_bad, "nope\n{}\n");
    let err = Dataset::load(&all_bad, &skip()).unwrap_err();
    assert!(matches!(err, TaskError::Empty { skipped: 2, .. }), "{err}");

    let corrupt = dir.path().join("corrupt.parquet");
    write(&corrupt, "PAR1 this is not parquet");
    let err = Dataset::load(&corrupt, &skip()).unwrap_err();
    assert!(
        matches!(err, TaskError::Parquet { .. }) && err.to_string().contains("corrupt.parquet"),
        "{err}"
    );
}

fn utf8(values: &[&str]) -> Vec<ByteArray> {
    values.iter().map(|s| ByteArray::from(*s)).collect()
}

/// Writes the verl layout: `prompt` as a list of `{content, role}` structs.
fn write_verl_parquet(path: &Path, problems: &[Problem]) {
    let schema = parse_message_type(
        "message verl {
            REQUIRED BYTE_ARRAY data_source (UTF8);
            OPTIONAL group prompt (LIST) {
                REPEATED group list {
                    OPTIONAL group element {
                        OPTIONAL BYTE_ARRAY content (UTF8);
                        OPTIONAL BYTE_ARRAY role (UTF8);
                    }
                }
            }
            REQUIRED group reward_model {
                REQUIRED BYTE_ARRAY ground_truth (UTF8);
                REQUIRED BYTE_ARRAY style (UTF8);
            }
            OPTIONAL group extra_info {
                OPTIONAL INT64 index;
            }
        }",
    )
    .unwrap();
    let messages: Vec<&Vec<Message>> = problems
        .iter()
        .map(|p| match &p.prompt {
            PromptSource::Messages(m) => m,
            PromptSource::Text(_) => unreachable!(),
        })
        .collect();
    let contents: Vec<&str> = messages
        .iter()
        .flat_map(|m| m.iter().map(|x| x.content.as_str()))
        .collect();
    let roles: Vec<&str> = messages
        .iter()
        .flat_map(|m| m.iter().map(|x| x.role.as_str()))
        .collect();
    let rep: Vec<i16> = messages
        .iter()
        .flat_map(|m| (0..m.len()).map(|i| i16::from(i > 0)))
        .collect();
    let def = vec![4i16; contents.len()];
    let sources: Vec<&str> = problems.iter().map(|p| p.data_source.as_str()).collect();
    let golds: Vec<String> = problems.iter().map(|p| p.gold_text()).collect();
    let golds: Vec<&str> = golds.iter().map(String::as_str).collect();
    let styles = vec!["rule"; problems.len()];
    let index: Vec<i64> = problems.iter().map(|p| p.id.parse().unwrap()).collect();

    let props = Arc::new(WriterProperties::builder().build());
    let mut writer =
        SerializedFileWriter::new(File::create(path).unwrap(), Arc::new(schema), props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut column = 0;
    while let Some(mut col) = group.next_column().unwrap() {
        match column {
            0 => col
                .typed::<ByteArrayType>()
                .write_batch(&utf8(&sources), None, None),
            1 => col
                .typed::<ByteArrayType>()
                .write_batch(&utf8(&contents), Some(&def), Some(&rep)),
            2 => col
                .typed::<ByteArrayType>()
                .write_batch(&utf8(&roles), Some(&def), Some(&rep)),
            3 => col
                .typed::<ByteArrayType>()
                .write_batch(&utf8(&golds), None, None),
            4 => col
                .typed::<ByteArrayType>()
                .write_batch(&utf8(&styles), None, None),
            5 => col
                .typed::<Int64Type>()
                .write_batch(&index, Some(&vec![2i16; index.len()]), None),
            _ => unreachable!(),
        }
        .unwrap();
        col.close().unwrap();
        column += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
}

#[test]
fn verl_parquet_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.parquet");
    let problems = verl_problems();
    write_verl_parquet(&path, &problems);
    let loaded = Dataset::load(&path, &fail()).unwrap();
    assert!(loaded.skipped.is_empty());
    assert_eq!(loaded.dataset.problems, problems);
    assert_eq!(
        loaded.dataset.name,
        dir.path().file_name().unwrap().to_str().unwrap()
    );
}

#[test]
fn plain_parquet_with_numeric_answers_and_a_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.parquet");
    let schema = parse_message_type(
        "message plain { REQUIRED BYTE_ARRAY question (UTF8); OPTIONAL DOUBLE answer; }",
    )
    .unwrap();
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer =
        SerializedFileWriter::new(File::create(&path).unwrap(), Arc::new(schema), props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut column = 0;
    while let Some(mut col) = group.next_column().unwrap() {
        match column {
            0 => col
                .typed::<ByteArrayType>()
                .write_batch(&utf8(&["a?", "b?", "c?"]), None, None),
            // The second row's answer is null.
            _ => col
                .typed::<DoubleType>()
                .write_batch(&[27.0, 0.5], Some(&[1, 0, 1]), None),
        }
        .unwrap();
        col.close().unwrap();
        column += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();

    let loaded = Dataset::load(&path, &skip()).unwrap();
    let golds: Vec<_> = loaded.dataset.iter().map(|p| p.gold.clone()).collect();
    assert_eq!(golds, [json!(27.0), json!(0.5)]);
    assert_eq!(loaded.dataset.problems[0].gold_text(), "27");
    assert_eq!(loaded.skipped.len(), 1);
    assert_eq!(loaded.skipped[0].location.unit, RecordUnit::Row);
    assert_eq!(loaded.skipped[0].location.number, 2);
    assert!(
        loaded.skipped[0]
            .to_string()
            .contains("plain.parquet: row 2:"),
        "{}",
        loaded.skipped[0]
    );
}
