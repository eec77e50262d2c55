//! Sampling one token from a row of logits on the CPU: greedy, temperature, top-k, top-p, and
//! the log-probability of the chosen token under the untempered distribution.

use rand::Rng;

/// How to pick the next token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerSettings {
    /// 0 = greedy.
    pub temperature: f64,
    /// Nucleus mass in (0, 1]; 1 = off.
    pub top_p: f64,
    /// Keep the k most likely tokens; 0 = off.
    pub top_k: usize,
}

/// Picks a token from `logits` and returns it with its log-probability under softmax(logits).
pub fn sample_token<R: Rng>(logits: &[f32], settings: &SamplerSettings, rng: &mut R) -> (u32, f32) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max
        + logits
            .iter()
            .map(|&l| ((l - max) as f64).exp())
            .sum::<f64>()
            .ln() as f32;
    let token = if settings.temperature <= 0.0 {
        argmax(logits)
    } else {
        sample_tempered(logits, max, settings, rng)
    };
    (token as u32, logits[token] - lse)
}

fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best
}

fn sample_tempered<R: Rng>(logits: &[f32], max: f32, s: &SamplerSettings, rng: &mut R) -> usize {
    let inv_t = 1.0 / s.temperature;
    // Candidates sorted by logit, descending, cut to top-k when that is set.
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    let k = if s.top_k > 0 {
        s.top_k.min(logits.len())
    } else {
        logits.len()
    };
    let by_logit = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, by_logit);
        idx.truncate(k);
    }
    let need_sorted = s.top_p < 1.0;
    if need_sorted {
        idx.sort_unstable_by(by_logit);
    }
    let mut probs: Vec<f64> = idx
        .iter()
        .map(|&i| (((logits[i] - max) as f64) * inv_t).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    if need_sorted {
        let mut cum = 0.0;
        let mut keep = probs.len();
        for (j, p) in probs.iter().enumerate() {
            cum += p / total;
            if cum >= s.top_p {
                keep = j + 1;
                break;
            }
        }
        probs.truncate(keep);
        idx.truncate(keep);
    }
    let total: f64 = probs.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (j, p) in probs.iter().enumerate() {
        if u < *p {
            return idx[j];
        }
        u -= p;
    }
    idx[probs.len() - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn greedy_picks_argmax_and_reports_untempered_logprob() {
        let logits = [0.0f32, 2.0, 1.0];
        let s = SamplerSettings {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
        };
        let (t, lp) = sample_token(&logits, &s, &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(t, 1);
        let z: f32 = logits.iter().map(|l| l.exp()).sum();
        assert!((lp - (2.0f32.exp() / z).ln()).abs() < 1e-6);
    }

    #[test]
    fn top_k_and_top_p_restrict_the_support() {
        let logits = [3.0f32, 2.9, 0.0, -1.0, 2.8];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let k2 = SamplerSettings {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 2,
        };
        let p = SamplerSettings {
            temperature: 1.0,
            top_p: 0.3,
            top_k: 0,
        };
        for _ in 0..200 {
            let (t, _) = sample_token(&logits, &k2, &mut rng);
            assert!(t == 0 || t == 1, "top-k 2 sampled {t}");
            let (t, _) = sample_token(&logits, &p, &mut rng);
            assert_eq!(t, 0, "top-p 0.3 keeps only the top token");
        }
    }

    #[test]
    fn temperature_sampling_follows_the_distribution() {
        let logits = [0.0f32, (3.0f32).ln()];
        let s = SamplerSettings {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let ones = (0..4000)
            .filter(|_| sample_token(&logits, &s, &mut rng).0 == 1)
            .count();
        let frac = ones as f64 / 4000.0;
        assert!((frac - 0.75).abs() < 0.03, "frequency {frac}");
    }
}
