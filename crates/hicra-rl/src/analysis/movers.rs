//! Which Strategic Grams rise and fall over a run: each gram's share of all gram occurrences
//! in the first quarter of the steps against the last quarter.

use serde::Serialize;

/// Grams listed each way.
pub const TOP_MOVERS: usize = 10;

/// One gram's change of share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GramMove {
    /// The gram.
    pub gram: String,
    /// Its share of occurrences in the early steps.
    pub early_share: f64,
    /// Its share in the late steps.
    pub late_share: f64,
    /// `late_share - early_share`.
    pub change: f64,
}

/// The top movers both ways.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GramMovers {
    /// First and last step of the early window.
    pub early_steps: [u64; 2],
    /// First and last step of the late window.
    pub late_steps: [u64; 2],
    /// Largest gains, largest first.
    pub rising: Vec<GramMove>,
    /// Largest losses, largest first.
    pub falling: Vec<GramMove>,
}

/// Shares of each gram over a window of steps (empty when the window has no occurrence).
fn shares(window: &[(u64, Vec<usize>)], grams: usize) -> Option<Vec<f64>> {
    let mut counts = vec![0usize; grams];
    for (_, c) in window {
        for (total, &x) in counts.iter_mut().zip(c) {
            *total += x;
        }
    }
    let total: usize = counts.iter().sum();
    (total > 0).then(|| counts.iter().map(|&c| c as f64 / total as f64).collect())
}

/// The movers between the first and last quarter of `steps` (each step with its gram counts,
/// in step order); `None` with fewer than two steps or no occurrences in either window.
pub fn gram_movers(grams: &[String], steps: &[(u64, Vec<usize>)]) -> Option<GramMovers> {
    if steps.len() < 2 {
        return None;
    }
    let w = steps.len().div_ceil(4);
    let (early, late) = (&steps[..w], &steps[steps.len() - w..]);
    let (a, b) = (shares(early, grams.len())?, shares(late, grams.len())?);
    let mut moves: Vec<GramMove> = grams
        .iter()
        .enumerate()
        .map(|(i, g)| GramMove {
            gram: g.clone(),
            early_share: a[i],
            late_share: b[i],
            change: b[i] - a[i],
        })
        .collect();
    moves.sort_by(|x, y| y.change.total_cmp(&x.change).then(x.gram.cmp(&y.gram)));
    let rising = moves
        .iter()
        .filter(|m| m.change > 0.0)
        .take(TOP_MOVERS)
        .cloned()
        .collect();
    let falling = moves
        .iter()
        .rev()
        .filter(|m| m.change < 0.0)
        .take(TOP_MOVERS)
        .cloned()
        .collect();
    Some(GramMovers {
        early_steps: [early[0].0, early[w - 1].0],
        late_steps: [late[0].0, late[w - 1].0],
        rising,
        falling,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_the_first_and_last_quarter() {
        let grams: Vec<String> = ["wait", "let's try", "so"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let steps: Vec<(u64, Vec<usize>)> = vec![
            (1, vec![3, 1, 0]),
            (2, vec![9, 9, 9]),
            (3, vec![9, 9, 9]),
            (4, vec![1, 3, 0]),
        ];
        let m = gram_movers(&grams, &steps).unwrap();
        assert_eq!((m.early_steps, m.late_steps), ([1, 1], [4, 4]));
        assert_eq!(m.rising[0].gram, "let's try");
        assert!((m.rising[0].change - 0.5).abs() < 1e-12);
        assert_eq!(m.falling[0].gram, "wait");
        assert!(gram_movers(&grams, &steps[..1]).is_none());
    }
}
