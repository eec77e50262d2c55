//! The lab's knobs: problem difficulty, the SFT trace mix, slip rates and seeds.

use serde::{Deserialize, Serialize};

use crate::error::TaskError;

/// Settings of the reasoning lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabConfig {
    /// Seed of the training stream and of SFT trace sampling.
    pub seed: u64,
    /// Seed of the validation set (keep it fixed to compare runs with different seeds).
    pub validation_seed: u64,
    /// Number of distinct validation problems.
    pub validation_size: usize,
    /// Fewest digits per operand (≥ 1).
    pub min_digits: usize,
    /// Most digits per operand (≤ 9).
    pub max_digits: usize,
    /// Share of problems in which no column carries (where the shortcut is valid).
    pub no_carry_fraction: f64,
    /// SFT: share of traces that open with the shortcut (chosen blind to the problem), among
    /// the traces that do not follow the units-column habit (`habit_rate`).
    pub shortcut_rate: f64,
    /// SFT: share of traces whose strategy follows a habit that looks only at the units
    /// column: the shortcut when the units digits sum below 10, else the column method. The
    /// habit is wrong whenever a carry sits in another column, and it is confident, so RL has
    /// to explore against it to fix it (0 = every strategy is drawn blind).
    pub habit_rate: f64,
    /// SFT: share of broken shortcuts that notice the overflow and switch to the column method
    /// (the others finish the shortcut and answer wrongly).
    pub backtrack_rate: f64,
    /// SFT: chance that a column-method step writes a wrong sum (±1).
    pub column_slip_rate: f64,
    /// SFT: chance that a shortcut digit step writes a wrong sum (±1).
    pub shortcut_slip_rate: f64,
}

impl Default for LabConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            validation_seed: 1_000_003,
            validation_size: 200,
            min_digits: 2,
            max_digits: 3,
            no_carry_fraction: 0.4,
            shortcut_rate: 0.6,
            habit_rate: 0.0,
            backtrack_rate: 0.25,
            column_slip_rate: 0.12,
            shortcut_slip_rate: 0.03,
        }
    }
}

impl LabConfig {
    /// The default configuration with another seed.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// Rejects impossible settings, naming the key.
    pub fn validate(&self) -> Result<(), TaskError> {
        let invalid = |key: &str, message: &str| {
            Err(TaskError::InvalidConfig {
                key: format!("lab.{key}"),
                message: message.to_string(),
            })
        };
        if self.min_digits == 0 || self.max_digits > 9 || self.min_digits > self.max_digits {
            return invalid("min_digits", "need 1 <= min_digits <= max_digits <= 9");
        }
        if self.validation_size == 0 {
            return invalid("validation_size", "must be at least 1");
        }
        for (key, value) in [
            ("no_carry_fraction", self.no_carry_fraction),
            ("shortcut_rate", self.shortcut_rate),
            ("habit_rate", self.habit_rate),
            ("backtrack_rate", self.backtrack_rate),
            ("column_slip_rate", self.column_slip_rate),
            ("shortcut_slip_rate", self.shortcut_slip_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return invalid(key, "must be a probability in [0, 1]");
            }
        }
        Ok(())
    }
}
