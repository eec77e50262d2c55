//! Planning-token masks on a real byte-level BPE tokenizer (hicra's test tokenizer), checked
//! against an independent byte-level oracle built with `str::find`.

use hicra_hier::GramSet;
use hicra_model::io::tiny::test_tokenizer;

/// Bytes covered by any occurrence of the given phrases (found with `str::find`).
fn covered_bytes(text: &str, phrases: &[&str]) -> Vec<bool> {
    let mut covered = vec![false; text.len()];
    for phrase in phrases {
        let mut from = 0;
        while let Some(at) = text[from..].find(phrase) {
            let start = from + at;
            covered[start..start + phrase.len()]
                .iter_mut()
                .for_each(|c| *c = true);
            from = start + phrase.chars().next().map_or(1, char::len_utf8);
        }
    }
    covered
}

#[test]
fn mask_marks_exactly_the_tokens_overlapping_matches() {
    let tokenizer = test_tokenizer();
    let grams = GramSet::from_grams(vec![
        "wait, that's not right".into(),
        "alternatively".into(),
        "hmm,".into(),
        "étape".into(),
    ])
    .unwrap();
    // Lower-case text so the oracle's plain `find` sees what the matcher sees; words with
    // leading spaces, digits, a 2-byte character inside a gram and one outside.
    let text = "so 12+7=19 wait, that's not right alternatively hmm,ok é étape 3";
    let ids = tokenizer.encode(text, false).unwrap();
    let decoded = tokenizer.decode(&ids, false).unwrap();
    assert_eq!(decoded, text);
    let spans = tokenizer.token_byte_spans(&ids).unwrap();
    assert_eq!(spans.len(), ids.len());
    assert!(
        spans
            .iter()
            .any(|&(s, e)| text[s..e].starts_with(' ') && e - s > 1),
        "the tokenizer should produce tokens with a leading space"
    );
    let mask = grams.planning_mask(&decoded, &spans);
    let covered = covered_bytes(
        text,
        &["wait, that's not right", "alternatively", "hmm,", "étape"],
    );
    for (i, (&(s, e), &planning)) in spans.iter().zip(&mask).enumerate() {
        let expected = covered[s..e].iter().any(|&c| c);
        assert_eq!(
            planning,
            expected,
            "token {i} {:?} at {s}..{e}",
            &text[s..e]
        );
    }
    // Every matched byte lies in some planning token, and digits stay execution.
    for (byte, &c) in covered.iter().enumerate() {
        if c {
            assert!(
                spans
                    .iter()
                    .zip(&mask)
                    .any(|(&(s, e), &p)| p && s <= byte && byte < e),
                "byte {byte} of a match is not in a planning token"
            );
        }
    }
    let digit_tokens: Vec<bool> = spans
        .iter()
        .zip(&mask)
        .filter(|&(&(s, e), _)| {
            let piece = text[s..e].trim();
            !piece.is_empty() && piece.chars().all(|c| c.is_ascii_digit())
        })
        .map(|(_, &p)| p)
        .collect();
    let pieces: Vec<&str> = spans.iter().map(|&(s, e)| &text[s..e]).collect();
    assert!(
        !digit_tokens.is_empty() && digit_tokens.iter().all(|&p| !p),
        "{pieces:?} {mask:?}"
    );
    assert!(mask.iter().any(|&p| p) && mask.iter().any(|&p| !p));
}
