//! Turning a verdict into a scalar reward for RL.

use crate::extract::last_boxed;
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};

/// How verdicts map to rewards.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardScheme {
    /// Reward of a correct answer.
    pub correct: f32,
    /// Reward of a wrong or missing answer.
    pub incorrect: f32,
    /// Added when the response states its answer in `\boxed{}` (format bonus; 0 = off).
    pub format_bonus: f32,
}

impl RewardScheme {
    /// 1 for correct, 0 otherwise.
    pub fn binary() -> RewardScheme {
        RewardScheme {
            correct: 1.0,
            incorrect: 0.0,
            format_bonus: 0.0,
        }
    }

    /// +1 for correct, -1 otherwise.
    pub fn signed() -> RewardScheme {
        RewardScheme {
            correct: 1.0,
            incorrect: -1.0,
            format_bonus: 0.0,
        }
    }

    /// The same scheme with a format bonus.
    pub fn with_format_bonus(self, bonus: f32) -> RewardScheme {
        RewardScheme {
            format_bonus: bonus,
            ..self
        }
    }
}

impl Default for RewardScheme {
    fn default() -> Self {
        RewardScheme::binary()
    }
}

/// The reward of `response` given its verdict.
pub fn reward(verdict: &Verdict, response: &str, scheme: &RewardScheme) -> f32 {
    let base = if verdict.correct {
        scheme.correct
    } else {
        scheme.incorrect
    };
    let bonus = if scheme.format_bonus != 0.0 && last_boxed(response).is_some() {
        scheme.format_bonus
    } else {
        0.0
    };
    base + bonus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        let right = Verdict {
            correct: true,
            extracted: Some("1".into()),
            reason: String::new(),
        };
        let wrong = Verdict {
            correct: false,
            extracted: None,
            reason: String::new(),
        };
        assert_eq!(reward(&right, "x", &RewardScheme::binary()), 1.0);
        assert_eq!(reward(&wrong, "x", &RewardScheme::signed()), -1.0);
        let s = RewardScheme::binary().with_format_bonus(0.1);
        assert_eq!(reward(&wrong, "\\boxed{2}", &s), 0.1);
        assert_eq!(reward(&wrong, "2", &s), 0.0);
    }
}
