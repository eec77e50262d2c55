//! Mining logic with fake encoders: candidate n-grams, cluster DF, top fraction, determinism.

use hicra_hier::HierError;
use hicra_hier::mining::{HashingEncoder, MiningOptions, SentenceEncoder, candidate_ngrams, mine};

/// Puts n-grams containing "check" at e0, "try" at e1, everything else at e2.
struct KeywordEncoder;

impl SentenceEncoder for KeywordEncoder {
    fn dim(&self) -> usize {
        3
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, HierError> {
        Ok(texts
            .iter()
            .map(|t| {
                let axis = if t.contains("check") {
                    0
                } else if t.contains("try") {
                    1
                } else {
                    2
                };
                let mut v = vec![0.0; 3];
                v[axis] = 1.0;
                v
            })
            .collect())
    }
}

fn docs(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

fn options(k: usize, top_frac: f64) -> MiningOptions {
    MiningOptions {
        k,
        top_frac,
        ..MiningOptions::default()
    }
}

#[test]
fn candidates_are_deduplicated_word_3_to_5_grams_with_counts_and_df() {
    let d = docs(&[
        "Wait, let us check. 3 + 4 = 7",
        "wait, let us check wait, let us",
    ]);
    let c = candidate_ngrams(&d, &MiningOptions::default());
    let get = |t: &str| {
        c.iter()
            .find(|(s, _)| s.text == t)
            .map(|(s, docs)| (s.count, s.df, docs.clone()))
    };
    assert_eq!(get("wait, let us"), Some((3, 2, vec![0, 1])));
    assert_eq!(get("wait, let us check"), Some((2, 2, vec![0, 1])));
    assert_eq!(get("let us check wait, let"), Some((1, 1, vec![1])));
    // Numbers and symbols are not planning: n-grams with a letterless word are skipped.
    assert!(
        c.iter()
            .all(|(s, _)| !s.text.contains('+') && !s.text.contains('3'))
    );
    // Most frequent first.
    assert_eq!(c[0].0.text, "wait, let us");
    assert!(
        c.iter()
            .all(|(s, _)| (3..=5).contains(&s.text.split(' ').count()))
    );
}

#[test]
fn cluster_df_counts_distinct_solutions_and_top_fraction_keeps_the_best() {
    let d = docs(&[
        "wait let us check the sum",
        "now we check the sum again",
        "so we try a new idea",
        "wait let us check it twice",
        "then we try a new idea",
        "plain filler words only here",
    ]);
    // Clusters: "check" n-grams (docs 0, 1, 3 → DF 3), "try" n-grams (docs 2, 4 → DF 2),
    // the rest (every doc has one → DF 6).
    let result = mine(&d, &KeywordEncoder, &options(3, 0.5)).unwrap();
    let dfs: Vec<usize> = result.clusters.iter().map(|c| c.df).collect();
    assert_eq!(dfs, [6, 3, 2]);
    let kept: Vec<bool> = result.clusters.iter().map(|c| c.kept).collect();
    assert_eq!(kept, [true, true, false], "ceil(0.5 × 3) = 2 clusters kept");
    assert!(
        result.clusters[1]
            .members
            .iter()
            .all(|m| m.text.contains("check"))
    );
    assert!(
        result.clusters[2]
            .members
            .iter()
            .all(|m| m.text.contains("try"))
    );
    assert!(result.grams.iter().any(|g| g == "let us check"));
    assert!(result.grams.iter().all(|g| !g.contains("try")));
    let kept_members: usize = result.clusters[..2].iter().map(|c| c.members.len()).sum();
    assert_eq!(result.grams.len(), kept_members);

    let only_top = mine(&d, &KeywordEncoder, &options(3, 0.2)).unwrap();
    assert!(
        only_top
            .grams
            .iter()
            .all(|g| !g.contains("check") && !g.contains("try"))
    );
}

#[test]
fn cap_embeds_only_the_most_frequent_ngrams() {
    let d = docs(&["a b c d e f", "a b c x y z", "a b c q r s"]);
    let opts = MiningOptions {
        max_ngrams: 1,
        k: 5,
        ..MiningOptions::default()
    };
    let result = mine(&d, &HashingEncoder::default(), &opts).unwrap();
    assert_eq!(result.embedded_ngrams, 1);
    assert!(result.candidate_ngrams > 1);
    assert_eq!(result.grams, ["a b c"]);
    assert_eq!(result.clusters[0].df, 3);
}

#[test]
fn mining_is_deterministic_for_a_seed_and_recovers_a_planted_phrase() {
    // A planted planning phrase in most solutions, around varied filler.
    let fillers = [
        "apples", "boxes", "cars", "dogs", "eggs", "figs", "gums", "hats",
    ];
    let mut texts = Vec::new();
    for i in 0..40 {
        let a = fillers[i % 8];
        let b = fillers[(i * 3 + 1) % 8];
        let c = fillers[(i * 5 + 2) % 8];
        if i % 4 != 0 {
            texts.push(format!(
                "we count {a} and {b}. wait, let's double check the {c} here."
            ));
        } else {
            texts.push(format!("we count {a} and {b} then {c} so done"));
        }
    }
    let opts = MiningOptions {
        k: 20,
        top_frac: 0.2,
        seed: 11,
        ..MiningOptions::default()
    };
    let encoder = HashingEncoder::default();
    let a = mine(&texts, &encoder, &opts).unwrap();
    let b = mine(&texts, &encoder, &opts).unwrap();
    assert_eq!(a, b, "same seed, same result");
    assert!(
        a.grams.iter().any(|g| g == "wait, let's double check"),
        "{:?}",
        a.grams
    );
    // Clusters come sorted by DF and the kept ones are exactly the first ceil(20% of them).
    assert!(a.clusters.windows(2).all(|w| w[0].df >= w[1].df));
    let kept = a.clusters.iter().filter(|c| c.kept).count();
    assert_eq!(kept, (a.clusters.len() as f64 * 0.2).ceil() as usize);
    assert!(a.clusters[..kept].iter().all(|c| c.kept));
}

#[test]
fn bad_options_and_bad_encoders_are_errors() {
    let d = docs(&["one two three four"]);
    for opts in [options(0, 0.2), options(3, 0.0), options(3, 1.5)] {
        assert!(matches!(
            mine(&d, &KeywordEncoder, &opts),
            Err(HierError::InvalidOption(_))
        ));
    }
    struct Broken;
    impl SentenceEncoder for Broken {
        fn dim(&self) -> usize {
            4
        }
        fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, HierError> {
            Ok(texts.iter().map(|_| vec![f32::NAN; 4]).collect())
        }
    }
    let err = mine(&d, &Broken, &options(2, 0.5)).unwrap_err().to_string();
    assert!(err.contains("non-finite"), "{err}");
}
