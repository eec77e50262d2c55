//! One step's tallies, built response by response in file order, and the row they give.
//! Sums run in file order, so a hicra run's values equal its trainer's to the last bit.

use std::collections::{BTreeMap, HashMap};

use hicra_hier::{GramTally, pass_at_k_curve};

use super::measure::Measured;
use super::series::{Example, Row};

/// Responses of a step kept for the report.
pub const EXAMPLES_PER_STEP: usize = 6;

/// One group's tallies.
struct Group {
    n: usize,
    graded: usize,
    correct: usize,
    rewards: usize,
    first_reward: Option<f64>,
    all_equal: bool,
}

/// The running tallies of one step.
pub struct StepTally {
    n: usize,
    reward_sum: f64,
    rewards: usize,
    graded: usize,
    correct: usize,
    length_sum: usize,
    hierarchy_n: usize,
    units: usize,
    planning: usize,
    grams: GramTally,
    group_index: HashMap<u64, usize>,
    groups: Vec<Group>,
    examples: Vec<Example>,
}

/// A finished step: its row, its gram counts (for the movers) and its examples.
pub struct FinishedStep {
    /// The row.
    pub row: Row,
    /// Occurrences of each gram.
    pub gram_counts: Vec<usize>,
    /// A few of its responses.
    pub examples: Vec<Example>,
}

impl StepTally {
    /// An empty tally over `grams` grams.
    pub fn new(grams: &hicra_hier::GramSet) -> StepTally {
        StepTally {
            n: 0,
            reward_sum: 0.0,
            rewards: 0,
            graded: 0,
            correct: 0,
            length_sum: 0,
            hierarchy_n: 0,
            units: 0,
            planning: 0,
            grams: GramTally::new(grams),
            group_index: HashMap::new(),
            groups: Vec::new(),
            examples: Vec::new(),
        }
    }

    /// Adds one response.
    pub fn add(&mut self, m: Measured) {
        self.n += 1;
        self.length_sum += m.length;
        if let Some(r) = m.reward {
            self.reward_sum += r;
            self.rewards += 1;
        }
        if let Some(c) = m.correct {
            self.graded += 1;
            self.correct += usize::from(c);
        }
        let next = self.groups.len();
        let g = *self.group_index.entry(m.group).or_insert(next);
        if g == next {
            self.groups.push(Group {
                n: 0,
                graded: 0,
                correct: 0,
                rewards: 0,
                first_reward: None,
                all_equal: true,
            });
        }
        let group = &mut self.groups[g];
        group.n += 1;
        if let Some(c) = m.correct {
            group.graded += 1;
            group.correct += usize::from(c);
        }
        if let Some(r) = m.reward {
            group.rewards += 1;
            match group.first_reward {
                None => group.first_reward = Some(r),
                Some(first) => group.all_equal &= first == r,
            }
        }
        if m.trained {
            self.hierarchy_n += 1;
            self.units += m.units;
            self.planning += m.planning;
            for (gram, next) in m.occurrences {
                self.grams.record(gram, next);
            }
        }
        if self.examples.len() < EXAMPLES_PER_STEP {
            self.examples.push(Example {
                step: 0,
                prompt: m.prompt,
                response: m.response,
                reward: m.reward,
                correct: m.correct,
            });
        }
    }

    /// The step's row.
    pub fn finish(self, step: u64) -> FinishedStep {
        let n = self.n.max(1) as f64;
        let with_rewards: Vec<&Group> = self.groups.iter().filter(|g| g.rewards > 0).collect();
        let all_equal_group_frac = (!with_rewards.is_empty()).then(|| {
            with_rewards.iter().filter(|g| g.all_equal).count() as f64 / with_rewards.len() as f64
        });
        // pass@k only where every response of every group has a verdict.
        let pass_at_k: BTreeMap<usize, f64> = if self.graded == self.n && self.n > 0 {
            let problems: Vec<(usize, usize)> =
                self.groups.iter().map(|g| (g.graded, g.correct)).collect();
            pass_at_k_curve(&problems).into_iter().collect()
        } else {
            BTreeMap::new()
        };
        let row = Row {
            step,
            n: self.n,
            groups: self.groups.len(),
            reward_mean: (self.rewards > 0).then(|| self.reward_sum / self.rewards as f64),
            accuracy: (self.graded > 0).then(|| self.correct as f64 / self.graded as f64),
            response_length_mean: self.length_sum as f64 / n,
            planning_token_frac: if self.units == 0 {
                0.0
            } else {
                self.planning as f64 / self.units as f64
            },
            semantic_entropy: self.grams.semantic_entropy(),
            conditional_entropy: self.grams.conditional_entropy(),
            all_equal_group_frac,
            pass_at_k,
            hierarchy_n: self.hierarchy_n,
            rescored: None,
        };
        let examples = self
            .examples
            .into_iter()
            .map(|e| Example { step, ..e })
            .collect();
        FinishedStep {
            gram_counts: self.grams.counts().to_vec(),
            row,
            examples,
        }
    }
}
