//! What the trainer integration tests share: a task with a continuous, learnable reward and a
//! tiny random Llama model on disk.

use std::path::{Path, PathBuf};

use hicra_model::Arch;
use hicra_model::io::tiny;
use hicra_tasks::{FormattedPrompt, Problem, PromptSource, Score, Task};

/// Reward = share of the response's characters that are ASCII digits: continuous, so groups
/// almost always have reward variance, and learnable by shifting token probabilities.
pub struct DigitTask {
    validation: Vec<Problem>,
}

fn problem(i: u64) -> Problem {
    Problem {
        id: format!("p{i}"),
        prompt: PromptSource::Text(
            [
                "Hello, world!",
                "The answer is",
                "Alice has 5 apples",
                "If x = 3, then",
            ][i as usize % 4]
                .to_string(),
        ),
        gold: serde_json::json!(0),
        data_source: "digits".into(),
    }
}

impl DigitTask {
    pub fn new() -> Self {
        DigitTask {
            validation: (0..4).map(problem).collect(),
        }
    }
}

impl Task for DigitTask {
    fn name(&self) -> &str {
        "digits"
    }
    fn train_problem(&self, position: u64) -> Problem {
        problem(position)
    }
    fn validation_problems(&self) -> &[Problem] {
        &self.validation
    }
    fn prompt(&self, problem: &Problem) -> FormattedPrompt {
        FormattedPrompt::Raw(problem.prompt.problem_text().to_string())
    }
    fn score(&self, _problem: &Problem, response: &str) -> Score {
        let n = response.chars().count().max(1) as f32;
        let digits = response.chars().filter(|c| c.is_ascii_digit()).count() as f32;
        Score {
            reward: digits / n,
            correct: digits / n > 0.5,
            extracted: None,
        }
    }
}

pub fn tiny_model(dir: &Path) -> PathBuf {
    let tok = tiny::test_tokenizer();
    let cfg = tiny::tiny_config(Arch::Llama, tok.vocab_size());
    let path = dir.join("model");
    tiny::write_tiny_model(&path, &cfg, &tok, None, 7).unwrap();
    path
}
