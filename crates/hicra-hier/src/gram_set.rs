//! The Strategic-Gram set and its matcher: every occurrence of every gram in a text,
//! and the planning-token mask derived from the matches.
//!
//! Matching rule (fixed, so numbers are comparable across tools):
//! - text and grams are normalised for matching only (lower case, ’ ‘ → `'`);
//! - a gram matches at every place it occurs, overlapping occurrences and grams included;
//! - if a gram's first character is a letter or digit, the character before the match must
//!   not be one (or the match starts the text); likewise after the match if the gram's last
//!   character is a letter or digit.

use std::path::Path;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::error::HierError;
use crate::normalize::{Normalized, normalize_str};

/// The paper's Strategic-Gram list (249 grams), shipped with hicra.
const PAPER_GRAMS: &str = include_str!("../data/strategic_grams_paper.txt");

/// One occurrence of a gram in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GramMatch {
    /// Byte offset of the first byte of the match in the original text.
    pub start: usize,
    /// Byte offset one past the last byte of the match in the original text.
    pub end: usize,
    /// Index of the gram in [`GramSet::grams`].
    pub gram: usize,
}

/// A Strategic-Gram list with an Aho-Corasick automaton over its normalised grams.
#[derive(Debug, Clone)]
pub struct GramSet {
    grams: Vec<String>,
    bounded_start: Vec<bool>,
    bounded_end: Vec<bool>,
    automaton: AhoCorasick,
}

impl GramSet {
    /// The built-in copy of the paper's 249 Strategic Grams.
    pub fn paper() -> GramSet {
        Self::from_lines(PAPER_GRAMS, "the built-in paper list")
            .expect("the built-in gram list is valid")
    }

    /// Reads a gram list with one gram per line (surrounding whitespace trimmed, empty
    /// lines skipped; `#` does not start a comment: `## step` is a gram).
    pub fn from_file(path: &Path) -> Result<GramSet, HierError> {
        let text = std::fs::read_to_string(path).map_err(|source| HierError::ReadGrams {
            path: path.to_path_buf(),
            source,
        })?;
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
        Self::from_lines(text, &path.display().to_string())
    }

    /// Builds a set from grams (trimmed; empty ones skipped; grams equal after
    /// normalisation kept once, first spelling wins).
    pub fn from_grams(grams: Vec<String>) -> Result<GramSet, HierError> {
        Self::build(grams, "the given list")
    }

    fn from_lines(text: &str, origin: &str) -> Result<GramSet, HierError> {
        Self::build(text.lines().map(str::to_string).collect(), origin)
    }

    fn build(raw: Vec<String>, origin: &str) -> Result<GramSet, HierError> {
        let mut grams = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for gram in raw {
            let gram = gram.trim();
            if gram.is_empty() {
                continue;
            }
            let pattern = normalize_str(gram);
            if seen.insert(pattern.clone()) {
                grams.push(gram.to_string());
                patterns.push(pattern);
            }
        }
        if grams.is_empty() {
            return Err(HierError::NoGrams {
                origin: origin.to_string(),
            });
        }
        let is_word_char = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        let bounded_start = patterns
            .iter()
            .map(|p| is_word_char(p.chars().next()))
            .collect();
        let bounded_end = patterns
            .iter()
            .map(|p| is_word_char(p.chars().next_back()))
            .collect();
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(|e| HierError::Automaton(e.to_string()))?;
        Ok(GramSet {
            grams,
            bounded_start,
            bounded_end,
            automaton,
        })
    }

    /// The grams, in list order (as written, not normalised).
    pub fn grams(&self) -> &[String] {
        &self.grams
    }

    /// Number of grams.
    pub fn len(&self) -> usize {
        self.grams.len()
    }

    /// Whether the set is empty (never true for a constructed set).
    pub fn is_empty(&self) -> bool {
        self.grams.is_empty()
    }

    /// Every occurrence of every gram in `text`, with BYTE offsets into `text`, sorted by
    /// start, then end, then gram index.
    pub fn find(&self, text: &str) -> Vec<GramMatch> {
        let normalized = Normalized::new(text);
        let haystack = normalized.text.as_str();
        let mut matches: Vec<GramMatch> = self
            .automaton
            .find_overlapping_iter(haystack)
            .filter(|m| {
                let gram = m.pattern().as_usize();
                let before_ok = !self.bounded_start[gram]
                    || !haystack[..m.start()]
                        .chars()
                        .next_back()
                        .is_some_and(char::is_alphanumeric);
                let after_ok = !self.bounded_end[gram]
                    || !haystack[m.end()..]
                        .chars()
                        .next()
                        .is_some_and(char::is_alphanumeric);
                before_ok && after_ok
            })
            .map(|m| {
                let (start, end) = normalized.to_original(m.start(), m.end());
                GramMatch {
                    start,
                    end,
                    gram: m.pattern().as_usize(),
                }
            })
            .collect();
        matches.sort_unstable();
        matches
    }

    /// The union of all matches of `text` as sorted, disjoint BYTE ranges (what a run's
    /// `samples/step-N.jsonl` stores as `planning_spans`).
    pub fn planning_spans(&self, text: &str) -> Vec<(usize, usize)> {
        merged_spans(&self.find(text))
    }

    /// The planning-token mask of a text: token `i` (byte span `token_byte_spans[i]` into
    /// `text`, as a byte-level tokenizer reports it: spans may split characters or include
    /// a leading space) is a planning token when its span overlaps any gram match.
    /// Empty spans (e.g. special tokens) are never planning tokens.
    pub fn planning_mask(&self, text: &str, token_byte_spans: &[(usize, usize)]) -> Vec<bool> {
        mask_from_matches(&self.find(text), token_byte_spans)
    }
}

/// The planning mask for token spans, given the matches of a text.
pub fn mask_from_matches(matches: &[GramMatch], token_byte_spans: &[(usize, usize)]) -> Vec<bool> {
    let covered = merged_spans(matches);
    token_byte_spans
        .iter()
        .map(|&(start, end)| {
            if start >= end {
                return false;
            }
            // First covered interval ending after the token's start.
            let i = covered.partition_point(|&(_, cover_end)| cover_end <= start);
            covered
                .get(i)
                .is_some_and(|&(cover_start, _)| cover_start < end)
        })
        .collect()
}

/// The union of the match spans as sorted, disjoint byte intervals (touching ones merged).
pub fn merged_spans(matches: &[GramMatch]) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = matches.iter().map(|m| (m.start, m.end)).collect();
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}
