//! Reference runner for the Python parity test (`tests/test_advantages.py`): reads HICRA
//! cases as JSON on stdin, runs `hicra_rl::hicra::apply_hicra` on each directly (no Python
//! involved) and prints the results as JSON on stdout.
//!
//! Input: `{"cases": [{"variant", "alpha", "entropy_quantile", "group_size", "seed",
//! "responses": [{"advantage", "planning": [bool], "entropy": [f32], "correct"}]}]}`.
//! Output: `{"results": [{"advantages": [[f32]], "marked": [[bool]]} | {"error": str}]}`.

use std::io::Read;

use hicra_rl::hicra::{HicraConfig, HicraVariant, ResponseInfo, apply_hicra};
use serde_json::{Value, json};

struct Response {
    advantage: f32,
    planning: Vec<bool>,
    entropy: Vec<f32>,
    correct: bool,
}

fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.get(name)
        .unwrap_or_else(|| panic!("case is missing field {name:?}"))
}

fn number(v: &Value, name: &str) -> f64 {
    field(v, name)
        .as_f64()
        .unwrap_or_else(|| panic!("field {name:?} must be a number"))
}

fn response(v: &Value) -> Response {
    let list = |name: &str| field(v, name).as_array().cloned().unwrap_or_default();
    Response {
        advantage: number(v, "advantage") as f32,
        planning: list("planning")
            .iter()
            .map(|x| x.as_bool().expect("planning flags are booleans"))
            .collect(),
        entropy: list("entropy")
            .iter()
            .map(|x| x.as_f64().expect("entropies are numbers") as f32)
            .collect(),
        correct: field(v, "correct").as_bool().expect("correct is a boolean"),
    }
}

fn run_case(case: &Value) -> Value {
    let variant: HicraVariant =
        serde_json::from_value(field(case, "variant").clone()).expect("a known variant");
    let config = HicraConfig {
        variant,
        alpha: number(case, "alpha") as f32,
        entropy_quantile: number(case, "entropy_quantile") as f32,
    };
    let responses: Vec<Response> = field(case, "responses")
        .as_array()
        .expect("responses is a list")
        .iter()
        .map(response)
        .collect();
    let infos: Vec<ResponseInfo<'_>> = responses
        .iter()
        .map(|r| ResponseInfo {
            advantage: r.advantage,
            planning: &r.planning,
            entropy: &r.entropy,
            correct: r.correct,
        })
        .collect();
    let group_size = number(case, "group_size") as usize;
    let seed = field(case, "seed").as_u64().expect("seed is a u64");
    match apply_hicra(&config, &infos, group_size, seed) {
        Ok(out) => json!({ "advantages": out.advantages, "marked": out.marked }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

fn main() {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .expect("reading stdin");
    let value: Value = serde_json::from_str(&input).expect("stdin holds JSON");
    let results: Vec<Value> = field(&value, "cases")
        .as_array()
        .expect("cases is a list")
        .iter()
        .map(run_case)
        .collect();
    println!("{}", json!({ "results": results }));
}
