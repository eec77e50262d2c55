//! What is computed from one response on its own (in parallel, before the step's tallies):
//! its gram occurrences, its length and planning share in the run's unit, and its verdict.

use hicra_hier::GramSet;
use hicra_hier::gram_set::mask_from_matches;
use hicra_hier::tally::occurrences;
use hicra_hier::words::word_spans;
use hicra_model::Tokenizer;

use super::sample::{Sample, Split};

/// How lengths and planning shares are counted where the run did not count them.
pub enum Units<'a> {
    /// Tokens of this tokenizer.
    Tokens(&'a Tokenizer),
    /// Whitespace-separated words.
    Words,
}

/// The per-response computation.
pub struct Measurer<'a> {
    /// The Strategic Grams.
    pub grams: &'a GramSet,
    /// The unit where the run gave no token counts.
    pub units: Units<'a>,
    /// Grade against the gold with hicra's verifier (`--regrade`).
    pub regrade: Option<hicra_verify::Config>,
}

/// One response, measured.
pub struct Measured {
    /// Training or validation.
    pub split: Split,
    /// Its step.
    pub step: u64,
    /// Its group.
    pub group: u64,
    /// Its reward.
    pub reward: Option<f64>,
    /// Its verdict (regraded when asked and a gold is logged).
    pub correct: Option<bool>,
    /// `--regrade` was asked but the record has no gold.
    pub no_gold: bool,
    /// In the hierarchy metrics' population.
    pub trained: bool,
    /// Length in the run's unit.
    pub length: usize,
    /// Units the planning share counts (tokens or words).
    pub units: usize,
    /// Of which planning units.
    pub planning: usize,
    /// Gram occurrences and the word 3-gram after each.
    pub occurrences: Vec<(usize, Option<String>)>,
    /// The prompt for display.
    pub prompt: String,
    /// The response.
    pub response: String,
}

impl Measurer<'_> {
    /// Measures one response.
    pub fn measure(&self, s: Sample) -> Result<Measured, String> {
        let matches = self.grams.find(&s.response);
        let (counted, counted_planning) = match (s.length, s.planning_tokens) {
            (Some(length), Some(planning)) => (Some(length), Some((length, planning))),
            (length, _) => (length, None),
        };
        let (own_length, (units, planning)) = match counted_planning {
            Some(p) => (counted.unwrap_or(p.0), p),
            None => {
                let spans = match &self.units {
                    Units::Tokens(tok) => {
                        tok.encode_with_offsets(&s.response)
                            .map_err(|e| format!("tokenizing the response: {e}"))?
                            .1
                    }
                    Units::Words => word_spans(&s.response),
                };
                let planning = mask_from_matches(&matches, &spans)
                    .into_iter()
                    .filter(|&p| p)
                    .count();
                (counted.unwrap_or(spans.len()), (spans.len(), planning))
            }
        };
        let (correct, no_gold) = match (&self.regrade, &s.gold) {
            (Some(config), Some(gold)) => match hicra_verify::Gold::from_json(gold) {
                Ok(gold) => (
                    Some(hicra_verify::verify(&gold, &s.response, config).correct),
                    false,
                ),
                Err(e) => return Err(format!("the gold answer cannot be read: {e}")),
            },
            (Some(_), None) => (s.correct, true),
            (None, _) => (s.correct, false),
        };
        Ok(Measured {
            split: s.split,
            step: s.step,
            group: s.group,
            reward: s.reward,
            correct,
            no_gold,
            trained: s.trained,
            length: own_length,
            units,
            planning,
            occurrences: occurrences(&s.response, &matches),
            prompt: s.prompt.display(),
            response: s.response,
        })
    }
}
