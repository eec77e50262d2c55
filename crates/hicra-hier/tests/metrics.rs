//! Hierarchy metrics and pass@k against hand-computed values.

use hicra_hier::metrics::entropy_of_counts;
use hicra_hier::pass_at_k::{pass_at_k_curve, pass_k_values};
use hicra_hier::{
    GramSet, HierarchyMetrics, ResponseTokens, conditional_entropy, pass_at_k, semantic_entropy,
};

fn set(grams: &[&str]) -> GramSet {
    GramSet::from_grams(grams.iter().map(|g| g.to_string()).collect()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn semantic_entropy_pools_occurrences_over_texts() {
    let g = set(&["wait", "let's try", "alternatively"]);
    // wait ×2, let's try ×1, alternatively ×1 → p = (1/2, 1/4, 1/4).
    let texts = ["wait, wait. let's try x", "alternatively y"];
    let expected = -(0.5f64 * 0.5f64.ln() + 2.0 * 0.25 * 0.25f64.ln());
    assert!(close(semantic_entropy(&texts, &g), expected));
    assert!(close(expected, 1.5 * 2f64.ln()));
    assert_eq!(semantic_entropy(&["nothing here"], &g), 0.0);
    assert_eq!(semantic_entropy::<&str>(&[], &g), 0.0);
    // One gram only → 0.
    assert_eq!(semantic_entropy(&["wait wait wait"], &g), 0.0);
}

#[test]
fn conditional_entropy_counts_the_three_words_after_each_occurrence() {
    let g = set(&["wait,"]);
    let texts = [
        "Wait, let us check. wait, let us check again",
        "wait, we are done. wait, too short",
    ];
    // Following 3-grams: "let us check" ×2, "we are done" ×1; "too short" has 2 words → left out.
    let expected = -(2.0 / 3.0 * (2.0f64 / 3.0).ln() + 1.0 / 3.0 * (1.0f64 / 3.0).ln());
    assert!(close(conditional_entropy(&texts, &g), expected));
    assert_eq!(conditional_entropy(&["wait, a b"], &g), 0.0);
}

#[test]
fn entropy_of_counts_ignores_zero_counts() {
    assert!(close(entropy_of_counts([1, 1, 0, 0]), 2f64.ln()));
    assert_eq!(entropy_of_counts([0, 0]), 0.0);
}

#[test]
fn compute_splits_token_metrics_by_planning_mask() {
    let g = set(&["wait"]);
    let text_a = "wait 12";
    let spans_a = [(0, 4), (4, 5), (5, 7)]; // "wait" planning; " ", "12" execution
    let lp_a = [-1.0f32, -0.5, -0.25];
    let ent_a = [2.0f32, 1.0, 0.5];
    let text_b = "ok wait";
    let spans_b = [(0, 2), (2, 4), (4, 7)]; // " w" overlaps "wait" at 3..7
    let lp_b = [-2.0f32, -3.0, -1.0];
    let ent_b = [0.25f32, 1.5, 0.5];
    let responses = [
        ResponseTokens {
            text: text_a,
            token_byte_spans: &spans_a,
            logprobs: &lp_a,
            entropies: Some(&ent_a),
        },
        ResponseTokens {
            text: text_b,
            token_byte_spans: &spans_b,
            logprobs: &lp_b,
            entropies: Some(&ent_b),
        },
    ];
    let (m, masks) = HierarchyMetrics::compute_with_masks(&responses, &g).unwrap();
    assert_eq!(masks, [vec![true, false, false], vec![false, true, true]]);
    // Planning tokens: a0 (nll 1, ent 2), b1 (3, 1.5), b2 (1, 0.5).
    // Execution tokens: a1 (0.5, 1), a2 (0.25, 0.5), b0 (2, 0.25).
    assert!(close(m.planning_token_frac, 0.5));
    assert!(close(m.ppl_planning.unwrap(), (5.0f64 / 3.0).exp()));
    assert!(close(m.ppl_execution.unwrap(), (2.75f64 / 3.0).exp()));
    assert!(close(m.token_entropy_planning.unwrap(), 4.0 / 3.0));
    assert!(close(m.token_entropy_execution.unwrap(), 1.75 / 3.0));
    assert_eq!(m.semantic_entropy, 0.0); // one gram, two occurrences
    assert_eq!(m, HierarchyMetrics::compute(&responses, &g).unwrap());

    // Serialised names are the logged metric names.
    let json = serde_json::to_value(&m).unwrap();
    for name in [
        "semantic_entropy",
        "conditional_entropy",
        "planning_token_frac",
        "token_entropy_planning",
        "token_entropy_execution",
        "ppl_planning",
        "ppl_execution",
    ] {
        assert!(json.get(name).is_some(), "{name} missing in {json}");
    }
}

#[test]
fn compute_leaves_out_split_metrics_without_tokens_of_that_kind() {
    let g = set(&["wait"]);
    let spans = [(0, 2)];
    let lp = [-1.0f32];
    let r = [ResponseTokens {
        text: "ok",
        token_byte_spans: &spans,
        logprobs: &lp,
        entropies: None,
    }];
    let m = HierarchyMetrics::compute(&r, &g).unwrap();
    assert_eq!(m.ppl_planning, None);
    assert!(close(m.ppl_execution.unwrap(), 1f64.exp()));
    assert_eq!(m.token_entropy_execution, None);
    let json = serde_json::to_value(&m).unwrap();
    assert!(json.get("ppl_planning").is_none());
}

#[test]
fn compute_rejects_mismatched_arrays_naming_the_response_and_field() {
    let g = set(&["wait"]);
    let spans = [(0, 2), (2, 4)];
    let lp = [-1.0f32, -1.0];
    let ent = [1.0f32];
    let ok = ResponseTokens {
        text: "okok",
        token_byte_spans: &spans,
        logprobs: &lp,
        entropies: None,
    };
    let bad = ResponseTokens {
        entropies: Some(&ent),
        ..ok
    };
    let err = HierarchyMetrics::compute(&[ok, bad], &g)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("response 1") && err.contains("entropies"),
        "{err}"
    );
}

#[test]
fn pass_at_k_matches_hand_values() {
    // n=4, c=1: pass@1 = 1/4; pass@2 = 1 - C(3,2)/C(4,2) = 1 - 3/6 = 1/2; pass@4 = 1.
    assert!(close(pass_at_k(4, 1, 1), 0.25));
    assert!(close(pass_at_k(4, 1, 2), 0.5));
    assert!(close(pass_at_k(4, 1, 4), 1.0));
    // n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10.
    assert!(close(pass_at_k(5, 2, 2), 0.7));
    // n=10, c=3, k=4: 1 - C(7,4)/C(10,4) = 1 - 35/210.
    assert!(close(pass_at_k(10, 3, 4), 1.0 - 35.0 / 210.0));
    assert_eq!(pass_at_k(8, 0, 4), 0.0);
    assert_eq!(pass_at_k(8, 8, 1), 1.0);
    assert!(pass_at_k(4, 1, 5).is_nan());
    assert!(pass_at_k(4, 1, 0).is_nan());
}

#[test]
fn pass_at_k_curve_uses_powers_of_two_up_to_n() {
    assert_eq!(pass_k_values(6), [1, 2, 4]);
    assert_eq!(pass_k_values(8), [1, 2, 4, 8]);
    let curve = pass_at_k_curve(&[(4, 1), (4, 0)]);
    let ks: Vec<usize> = curve.iter().map(|p| p.0).collect();
    assert_eq!(ks, [1, 2, 4]);
    assert!(close(curve[0].1, 0.125));
    assert!(close(curve[1].1, 0.25));
    assert!(close(curve[2].1, 0.5));
    assert!(pass_at_k_curve(&[]).is_empty());
}
