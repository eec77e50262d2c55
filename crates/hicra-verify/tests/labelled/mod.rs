//! Grading labelled `(gold, response, equal?)` cases end to end (flexible mode) and reporting
//! the agreement of one class.

use hicra_verify::{Config, Gold, verify};

/// (gold, response, expected verdict)
pub type Case = (&'static str, &'static str, bool);

/// Grades every case; prints the class's agreement and fails listing each disagreement.
pub fn check(class: &str, cases: &[Case]) {
    let mut failures = Vec::new();
    for (gold, response, expected) in cases {
        let v = verify(&Gold::from(*gold), response, &Config::default());
        if v.correct != *expected {
            failures.push(format!(
                "gold {gold:?}, response {response:?}: expected {expected}, got {} (extracted {:?}, {})",
                v.correct, v.extracted, v.reason
            ));
        }
    }
    println!(
        "{class}: {}/{} cases agree",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{class}: {} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
