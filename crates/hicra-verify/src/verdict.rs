//! The top-level check: configuration, verdicts and [`verify`].

use crate::answer::{Parsed, parse_answer};
use crate::budget::{Budget, MAX_ANSWER_BYTES};
use crate::compare::{Ctx, parsed_equal};
use crate::extract::{ExtractMode, extract_answer};
use crate::gold::Gold;
use crate::normalize::{decimal_comma_reading, exact_side, thousands_list_reading};
use serde::{Deserialize, Serialize};
use std::cell::Cell;

/// Verifier settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// How the answer is found in the response.
    pub mode: ExtractMode,
    /// An absolute tolerance for numbers; when set it replaces the decimal rounding rules.
    pub abs_tolerance: Option<f64>,
}

impl Config {
    /// Default settings with the given extraction mode.
    pub fn with_mode(mode: ExtractMode) -> Config {
        Config {
            mode,
            ..Config::default()
        }
    }
}

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the response's answer matches the gold.
    pub correct: bool,
    /// The answer found in the response, if any.
    pub extracted: Option<String>,
    /// A short human-readable reason.
    pub reason: String,
}

/// Checks `response` against `gold`. Never panics; bounded in time.
pub fn verify(gold: &Gold, response: &str, config: &Config) -> Verdict {
    let Some(extracted) = extract_answer(response, config.mode) else {
        let reason = match config.mode {
            ExtractMode::StrictBoxed => "no \\boxed{} answer found",
            ExtractMode::Flexible => "no answer found",
        };
        return Verdict {
            correct: false,
            extracted: None,
            reason: reason.into(),
        };
    };
    let (correct, reason) = compare_answer(gold, &extracted, config);
    Verdict {
        correct,
        extracted: Some(extracted),
        reason,
    }
}

/// The readings of an answer text: itself, and first its decimal-comma reading when it has
/// one (`3,14` is 3.14 or the list 3, 14) and its exact side when it goes on to an
/// approximation (`2/7 \approx 0.29` is 2/7 or 0.29).
fn readings(text: &str) -> Vec<String> {
    if text.len() > MAX_ANSWER_BYTES {
        // Too long to parse: compared as text only.
        return vec![text.to_string()];
    }
    let mut out: Vec<String> = decimal_comma_reading(text).into_iter().collect();
    let exact = exact_side(text);
    if exact.len() < text.len() {
        out.push(exact.to_string());
    }
    out.push(text.to_string());
    out
}

/// Compares an already extracted answer with the gold: `(correct, reason)`.
pub fn compare_answer(gold: &Gold, answer: &str, config: &Config) -> (bool, String) {
    let plain = |s: &str| s.trim().trim_matches('$').trim().to_string();
    let gold_texts = gold.answer_texts();
    if gold_texts
        .iter()
        .any(|g| plain(g) == plain(answer) && !plain(answer).is_empty())
    {
        return (true, "correct: same text as the gold".into());
    }
    let budget = Budget::standard();
    let ctx = Ctx {
        budget: &budget,
        abs_tolerance: config.abs_tolerance,
        how: Cell::new(""),
    };
    let mut answer_readings = readings(answer);
    if answer.len() <= MAX_ANSWER_BYTES {
        answer_readings.extend(thousands_list_reading(answer));
    }
    let cands: Vec<Parsed> = answer_readings
        .iter()
        .map(|a| parse_answer(a, &budget))
        .collect();
    let golds: Vec<Parsed> = gold_texts
        .iter()
        .flat_map(|g| readings(g))
        .map(|g| parse_answer(&g, &budget))
        .collect();
    for g in &golds {
        for cand in &cands {
            if parsed_equal(g, cand, &ctx) {
                return (true, format!("correct: {}", ctx.how.get()));
            }
        }
    }
    let cand = &cands[cands.len() - 1];
    let reason = if budget.is_spent() {
        "not equal: work budget exhausted".to_string()
    } else if let Some(err) = &cand.error {
        format!("not equal: could not parse the answer ({err})")
    } else if golds.iter().all(|g| g.answer.is_none()) {
        "not equal: gold could not be parsed and texts differ".to_string()
    } else {
        "not equal to the gold answer".to_string()
    };
    (false, reason)
}
