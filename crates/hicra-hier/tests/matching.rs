//! Gram matching on hand-made texts: one test per rule of the matching spec.

use hicra_hier::{GramMatch, GramSet};

fn set(grams: &[&str]) -> GramSet {
    GramSet::from_grams(grams.iter().map(|g| g.to_string()).collect()).unwrap()
}

/// (matched original text, gram text) for every match.
fn found<'a>(grams: &'a GramSet, text: &'a str) -> Vec<(&'a str, &'a str)> {
    grams
        .find(text)
        .into_iter()
        .map(|m| (&text[m.start..m.end], grams.grams()[m.gram].as_str()))
        .collect()
}

#[test]
fn paper_list_is_built_in_with_all_249_grams() {
    let paper = GramSet::paper();
    assert_eq!(paper.len(), 249);
    assert_eq!(paper.grams()[0], "## step");
    assert!(paper.grams().iter().any(|g| g == "hmm,"));
    assert!(paper.grams().iter().all(|g| !g.trim().is_empty()));
}

#[test]
fn word_boundaries_apply_to_alphanumeric_ends() {
    let g = set(&["but", "check if"]);
    // "but" inside "butter", "rebut" or "but2" is not a match.
    assert!(found(&g, "butter rebut but2 _but").len() == 1);
    assert_eq!(found(&g, "_but"), [("but", "but")]);
    assert_eq!(found(&g, "but"), [("but", "but")]);
    assert_eq!(found(&g, "(but)"), [("but", "but")]);
    assert_eq!(found(&g, "check ifx check if."), [("check if", "check if")]);
    assert!(found(&g, "recheck if").is_empty());
}

#[test]
fn gram_ending_in_punctuation_needs_no_boundary_after() {
    let g = set(&["hmm,"]);
    assert_eq!(found(&g, "Hmm,so"), [("Hmm,", "hmm,")]);
    assert!(
        found(&g, "ahmm, x").is_empty(),
        "start boundary still applies"
    );
    assert!(found(&g, "hmm.").is_empty());
}

#[test]
fn gram_starting_with_hash_needs_no_boundary_before() {
    let g = set(&["## step"]);
    assert_eq!(found(&g, "x## Step 1"), [("## Step", "## step")]);
    assert!(
        found(&g, "## steps").is_empty(),
        "end boundary still applies"
    );
}

#[test]
fn overlapping_occurrences_and_grams_all_match() {
    let g = set(&["wait, but", "but wait", "but", "wait"]);
    let text = "but wait, but wait";
    let got: Vec<(usize, usize, &str)> = g
        .find(text)
        .into_iter()
        .map(|m| (m.start, m.end, g.grams()[m.gram].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (0, 3, "but"),
            (0, 8, "but wait"),
            (4, 8, "wait"),
            (4, 13, "wait, but"),
            (10, 13, "but"),
            (10, 18, "but wait"),
            (14, 18, "wait"),
        ]
    );
    // Overlapping occurrences of the same gram.
    let g = set(&["la la"]);
    assert_eq!(g.find("la la la").len(), 2);
}

#[test]
fn case_and_typographic_apostrophes_are_normalised() {
    let g = set(&["Let's Try"]);
    assert_eq!(
        found(&g, "LET\u{2019}S try it"),
        [("LET\u{2019}S try", "Let's Try")]
    );
    assert_eq!(
        found(&g, "let\u{2018}s TRY"),
        [("let\u{2018}s TRY", "Let's Try")]
    );
    assert_eq!(found(&g, "let's try"), [("let's try", "Let's Try")]);
}

#[test]
fn offsets_are_bytes_of_the_original_text_even_when_lowercase_changes_length() {
    // "İİ ÉTÉ " is 11 bytes; 'İ' lower-cases to two chars (3 bytes); '’' is 3 bytes and becomes '\'' (1 byte).
    let g = set(&["let's check"]);
    let text = "İİ ÉTÉ Let\u{2019}s CHECK";
    let m = g.find(text);
    assert_eq!(m.len(), 1);
    assert_eq!(&text[m[0].start..m[0].end], "Let\u{2019}s CHECK");
    assert_eq!(
        m[0],
        GramMatch {
            start: 11,
            end: 24,
            gram: 0
        }
    );
    // A non-ASCII letter before the gram is a word character: no match.
    assert!(g.find("élet's check").is_empty());
}

#[test]
fn duplicates_and_empty_lines_are_dropped_and_empty_lists_rejected() {
    let g = set(&["Wait", "", "  wait  ", "but"]);
    assert_eq!(g.grams(), ["Wait", "but"]);
    assert!(GramSet::from_grams(vec!["".into(), "  ".into()]).is_err());
}

#[test]
fn from_file_reads_one_gram_per_line_and_names_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grams.txt");
    std::fs::write(&path, "## step\r\n\nhmm,\nlet's try\n").unwrap();
    let g = GramSet::from_file(&path).unwrap();
    assert_eq!(g.grams(), ["## step", "hmm,", "let's try"]);
    let missing = dir.path().join("nope.txt");
    let err = GramSet::from_file(&missing).unwrap_err().to_string();
    assert!(err.contains("nope.txt"), "{err}");
    std::fs::write(&path, "\n\n").unwrap();
    let err = GramSet::from_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("grams.txt") && err.contains("no grams"),
        "{err}"
    );
}

#[test]
fn planning_mask_marks_tokens_overlapping_a_match() {
    let g = set(&["let's try"]);
    let text = "so let's try 3";
    //           0123456789012345
    // tokens: "so", " let", "'s", " try", " ", "3"
    let spans = [(0, 2), (2, 6), (6, 8), (8, 12), (12, 13), (13, 14)];
    assert_eq!(
        g.planning_mask(text, &spans),
        [false, true, true, true, false, false]
    );
    // Empty spans (special tokens) are never planning; spans past the text are fine.
    assert_eq!(g.planning_mask(text, &[(3, 3), (20, 25)]), [false, false]);
}

#[test]
fn planning_mask_handles_tokens_splitting_a_character() {
    // "é" is two bytes; a byte-level tokenizer may give one byte per token.
    let g = set(&["élan"]);
    let text = "x élan";
    let spans = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 7)];
    assert_eq!(
        g.planning_mask(text, &spans),
        [false, false, true, true, true]
    );
}

#[test]
fn planning_spans_are_the_merged_matches() {
    let g = set(&["but wait", "wait, no", "hmm,"]);
    // "but wait" (0..8) and "wait, no" (4..12) overlap; "hmm," (13..17) touches nothing.
    assert_eq!(g.planning_spans("but wait, no hmm, x"), [(0, 12), (13, 17)]);
    assert!(g.planning_spans("nothing").is_empty());
}
