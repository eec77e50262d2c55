//! `hicra grade` end to end: JSONL in, JSONL out in input order, malformed lines reported
//! with their line number, summary on stderr, both output destinations and both modes.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const INPUT: &str = r#####"{"gold": "\\frac12", "response": "so the answer is $\\boxed{0.5}$."}
this is not json
{"gold": 27.0, "response": "The answer is 27"}
{"gold": ["x=1", "1"], "response": "#### 1"}
{"gold": "5", "response": "I think \\boxed{6}"}

{"gold": null, "response": "x"}
{"response": "\\boxed{1}"}
{"gold": "(1,2)", "response": 3}
{"gold": "#### 1,234", "response": "so \\boxed{1234}"}
"#####;

fn hicra() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hicra"))
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("output line {l:?}: {e}")))
        .collect()
}

fn write_input(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("pairs.jsonl");
    std::fs::write(&path, INPUT).expect("write input");
    path
}

#[test]
fn grades_to_stdout_in_order_with_errors_and_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write_input(dir.path());
    let out = hicra()
        .args(["grade", "--input"])
        .arg(&input)
        .output()
        .expect("run hicra");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = lines(&String::from_utf8(out.stdout).expect("utf8"));
    // Blank line 6 is skipped; every other line gives one output line, in order.
    assert_eq!(rows.len(), 9);
    assert_eq!(rows[0]["correct"], true);
    assert_eq!(rows[0]["extracted"], "0.5");
    assert_eq!(rows[1]["line"], 2);
    assert!(
        rows[1]["error"]
            .as_str()
            .expect("error text")
            .contains("JSON")
    );
    assert_eq!(
        rows[2]["correct"], true,
        "flexible mode finds 'The answer is 27': {}",
        rows[2]
    );
    assert_eq!(rows[3]["correct"], true);
    assert_eq!(rows[4]["correct"], false);
    assert_eq!(rows[4]["extracted"], "6");
    assert!(!rows[4]["reason"].as_str().expect("reason").is_empty());
    assert_eq!(rows[5]["line"], 7);
    assert!(rows[5]["error"].as_str().expect("error").contains("gold"));
    assert_eq!(rows[6]["line"], 8);
    assert!(rows[6]["error"].as_str().expect("error").contains("gold"));
    assert_eq!(rows[7]["line"], 9);
    assert!(
        rows[7]["error"]
            .as_str()
            .expect("error")
            .contains("response")
    );
    assert_eq!(rows[8]["correct"], true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("graded 5 pairs"), "{stderr}");
    assert!(stderr.contains("4 malformed"), "{stderr}");
    assert!(stderr.contains("accuracy 0.8000"), "{stderr}");
    assert!(stderr.contains("pairs/s"), "{stderr}");
}

#[test]
fn strict_mode_to_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write_input(dir.path());
    let output = dir.path().join("graded.jsonl");
    let out = hicra()
        .args(["grade", "--mode", "strict-boxed", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .expect("run hicra");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "results go to the file, not stdout");
    let rows = lines(&std::fs::read_to_string(&output).expect("output file"));
    assert_eq!(rows.len(), 9);
    assert_eq!(rows[0]["correct"], true);
    // Without a \boxed{} nothing is extracted in strict mode.
    assert_eq!(rows[2]["correct"], false);
    assert_eq!(rows[2]["extracted"], Value::Null);
    assert_eq!(rows[3]["correct"], false);
    // No temporary files are left beside the output.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

#[test]
fn missing_input_and_bad_mode_are_clear_errors() {
    let out = hicra()
        .args(["grade", "--input", "/definitely/not/here.jsonl"])
        .output()
        .expect("run hicra");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/definitely/not/here.jsonl"), "{stderr}");
    let out = hicra()
        .args(["grade", "--input", "x.jsonl", "--mode", "loose"])
        .output()
        .expect("run hicra");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("strict-boxed"));
}

/// Lines 2-5 are bad in different ways; lines 1 and 6 are good.
fn bad_input() -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"{\"gold\": \"2\", \"response\": \"\\\\boxed{2}\"}\n");
    bytes.extend_from_slice(b"{\"gold\": \"1\", \"response\": \"caf\xe9 \\\\boxed{1}\"}\n");
    bytes.extend_from_slice(b"{\"response\": \"\\\\boxed{1}\"}\n");
    bytes.extend_from_slice(b"{\"gold\": {\"value\": 1}, \"response\": \"\\\\boxed{1}\"}\n");
    bytes.extend_from_slice(b"{\"gold\": \"1\", \"response\": [\"1\"]}\n");
    bytes.extend_from_slice(b"{\"gold\": \"x \\\\geq 7\", \"response\": \"so $7 \\\\le x$.\"}\n");
    bytes
}

#[test]
fn bad_lines_are_named_with_their_line_and_do_not_stop_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("bad.jsonl");
    std::fs::write(&input, bad_input()).expect("write input");
    let out = hicra()
        .args(["grade", "--input"])
        .arg(&input)
        .output()
        .expect("run hicra");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    let rows = lines(&String::from_utf8(out.stdout).expect("utf8"));
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0]["correct"], true);
    assert_eq!(rows[1]["line"], 2);
    assert!(
        rows[1]["error"].as_str().expect("error").contains("UTF-8"),
        "{}",
        rows[1]
    );
    assert_eq!(rows[2]["line"], 3);
    assert_eq!(rows[2]["field"], "gold");
    assert!(
        rows[2]["error"]
            .as_str()
            .expect("error")
            .contains("missing")
    );
    assert_eq!(rows[3]["line"], 4);
    assert_eq!(rows[3]["field"], "gold");
    assert!(
        rows[3]["error"].as_str().expect("error").contains("object"),
        "{}",
        rows[3]
    );
    assert_eq!(rows[4]["line"], 5);
    assert_eq!(rows[4]["field"], "response");
    assert!(rows[4]["error"].as_str().expect("error").contains("a list"));
    assert_eq!(rows[5]["correct"], true, "{}", rows[5]);
    // Each bad line is also reported on stderr with the file and line number.
    let name = input.display().to_string();
    for line in 2..=5 {
        assert!(
            stderr.contains(&format!("{name}:{line}:")),
            "line {line} not reported: {stderr}"
        );
    }
    assert!(stderr.contains("graded 2 pairs"), "{stderr}");
    assert!(stderr.contains("4 malformed"), "{stderr}");
}

#[test]
fn strict_stops_at_the_first_bad_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("bad.jsonl");
    std::fs::write(&input, bad_input()).expect("write input");
    let output = dir.path().join("graded.jsonl");
    let out = hicra()
        .args(["grade", "--strict", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .expect("run hicra");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2:", input.display())) && stderr.contains("UTF-8"),
        "{stderr}"
    );
    assert!(!output.exists(), "no partial output file");
}
