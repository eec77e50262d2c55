//! [`GramTally`]: what the text metrics of a population of responses are read from, built one
//! text at a time, so a step's responses can be streamed and tallied in parallel pieces that
//! are merged afterwards (`merge` gives the same tally in any order).

use std::collections::BTreeMap;

use crate::entropy::{FOLLOWING_NGRAM_WORDS, entropy_of_counts};
use crate::gram_set::{GramMatch, GramSet};
use crate::words::first_words;

/// Gram occurrences of a population of texts: how often each gram occurs, and how often each
/// word 3-gram follows an occurrence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GramTally {
    counts: Vec<usize>,
    following: BTreeMap<String, usize>,
}

impl GramTally {
    /// An empty tally for `grams`.
    pub fn new(grams: &GramSet) -> GramTally {
        GramTally {
            counts: vec![0; grams.len()],
            following: BTreeMap::new(),
        }
    }

    /// Adds one text, given its matches ([`GramSet::find`]).
    pub fn add(&mut self, text: &str, matches: &[GramMatch]) {
        for (gram, next) in occurrences(text, matches) {
            self.record(gram, next);
        }
    }

    /// Adds one occurrence of gram `gram`, followed by the word 3-gram `next` (see
    /// [`occurrences`]).
    pub fn record(&mut self, gram: usize, next: Option<String>) {
        if gram >= self.counts.len() {
            self.counts.resize(gram + 1, 0);
        }
        self.counts[gram] += 1;
        if let Some(next) = next {
            *self.following.entry(next).or_default() += 1;
        }
    }

    /// Adds another tally of the same gram set.
    pub fn merge(&mut self, other: GramTally) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (c, o) in self.counts.iter_mut().zip(other.counts) {
            *c += o;
        }
        for (k, v) in other.following {
            *self.following.entry(k).or_default() += v;
        }
    }

    /// Occurrences of each gram (indexed like [`GramSet::grams`]).
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// Semantic entropy (see [`crate::semantic_entropy`]).
    pub fn semantic_entropy(&self) -> f64 {
        entropy_of_counts(self.counts.iter().copied())
    }

    /// The conditional-entropy control (see [`crate::conditional_entropy`]); the counts are
    /// summed in the sorted order of their 3-grams, so the value is the same in every process.
    pub fn conditional_entropy(&self) -> f64 {
        entropy_of_counts(self.following.values().copied())
    }
}

/// Each match of a text as what a tally records: the gram, and the word 3-gram after it
/// (`None` when fewer than three words follow). Computing these is the costly part of a
/// tally, so it can run in parallel and be [`GramTally::record`]ed in order afterwards.
pub fn occurrences(text: &str, matches: &[GramMatch]) -> Vec<(usize, Option<String>)> {
    matches
        .iter()
        .map(|m| (m.gram, following_ngram(text, m)))
        .collect()
}

/// The word 3-gram right after a match, when three words follow it.
fn following_ngram(text: &str, m: &GramMatch) -> Option<String> {
    first_words(&text[m.end..], FOLLOWING_NGRAM_WORDS).map(|w| w.join(" "))
}
