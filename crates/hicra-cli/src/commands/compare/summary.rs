//! One run's validation curve reduced to the numbers a comparison reports.

use std::collections::BTreeMap;

use serde_json::Value;

/// Summary of one run's `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Accuracy at the last validation.
    pub final_acc: f64,
    /// Best validation accuracy.
    pub best_acc: f64,
    /// First validated step reaching the target.
    pub steps_to_target: Option<u64>,
    /// Area under the accuracy curve (trapezoids) divided by the step span: the mean
    /// validation accuracy over training.
    pub auc: f64,
    /// Semantic entropy at the first and last training step (0 when not logged).
    pub semantic_entropy: (f64, f64),
    /// The last logged value of every `val_lab_*` anatomy metric.
    pub final_anatomy: BTreeMap<String, f64>,
}

/// Summarises the lines of a run's `metrics.jsonl`; `None` without validation lines.
pub fn summarise(metrics: &[Value], target: f64) -> Option<RunSummary> {
    let val: Vec<(f64, f64)> = metrics
        .iter()
        .filter_map(|m| Some((m["step"].as_f64()?, m.get("val_accuracy")?.as_f64()?)))
        .collect();
    let (&(first_step, _), &(last_step, final_acc)) = (val.first()?, val.last()?);
    let best_acc = val.iter().map(|v| v.1).fold(f64::NEG_INFINITY, f64::max);
    let steps_to_target = val.iter().find(|v| v.1 >= target).map(|v| v.0 as u64);
    let area: f64 = val
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
        .sum();
    let span = last_step - first_step;
    let auc = if span > 0.0 { area / span } else { final_acc };
    let se: Vec<f64> = metrics
        .iter()
        .filter_map(|m| m.get("semantic_entropy")?.as_f64())
        .collect();
    let mut final_anatomy = BTreeMap::new();
    for m in metrics {
        let Some(object) = m.as_object() else {
            continue;
        };
        for (key, value) in object {
            if let (true, Some(v)) = (key.starts_with("val_lab_"), value.as_f64()) {
                final_anatomy.insert(key.clone(), v);
            }
        }
    }
    Some(RunSummary {
        final_acc,
        best_acc,
        steps_to_target,
        auc,
        semantic_entropy: (
            se.first().copied().unwrap_or(0.0),
            se.last().copied().unwrap_or(0.0),
        ),
        final_anatomy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summary_of_a_validation_curve() {
        let m: Vec<Value> = vec![
            json!({"step": 0, "val_accuracy": 0.2, "val_lab_planning_error_frac": 0.5}),
            json!({"step": 1, "semantic_entropy": 1.0}),
            json!({"step": 2, "val_accuracy": 0.6}),
            json!({"step": 2, "semantic_entropy": 1.5}),
            json!({"step": 4, "val_accuracy": 0.4, "val_lab_planning_error_frac": 0.3}),
        ];
        let s = summarise(&m, 0.5).unwrap();
        assert_eq!(s.final_acc, 0.4);
        assert_eq!(s.best_acc, 0.6);
        assert_eq!(s.steps_to_target, Some(2));
        // trapezoids: 2*(0.2+0.6)/2 + 2*(0.6+0.4)/2 = 1.8 over 4 steps
        assert!((s.auc - 0.45).abs() < 1e-12);
        assert_eq!(s.semantic_entropy, (1.0, 1.5));
        assert_eq!(s.final_anatomy["val_lab_planning_error_frac"], 0.3);
        assert_eq!(summarise(&m, 0.9).unwrap().steps_to_target, None);
    }

    #[test]
    fn no_validation_no_summary() {
        assert_eq!(summarise(&[json!({"step": 1, "accuracy": 0.5})], 0.5), None);
    }
}
