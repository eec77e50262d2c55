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
    let exps = hicra_kernels::vexp::shifted_exps_f64(logits, max);
    let lse = max + exps.iter().sum::<f64>().ln() as f32;
    let token = if settings.temperature <= 0.0 {
        argmax(logits)
    } else {
        // At temperature 1 the sampling weights are the exponentials just computed.
        let plain = (settings.temperature == 1.0).then_some(exps.as_slice());
        sample_tempered(logits, max, plain, settings, rng)
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

/// `plain`: the untempered weights `exp(logit - max)`, when the temperature is 1.
fn sample_tempered<R: Rng>(
    logits: &[f32],
    max: f32,
    plain: Option<&[f64]>,
    s: &SamplerSettings,
    rng: &mut R,
) -> usize {
    let inv_t = 1.0 / s.temperature;
    let weight = |i: usize| match plain {
        Some(e) => e[i],
        None => (((logits[i] - max) as f64) * inv_t).exp(),
    };
    // Candidates ordered by logit, descending, ties by index: a total order, so any prefix of
    // it is the same whether found by sorting everything or by selecting the top few.
    let by_logit = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    if s.top_k > 0 && s.top_k < idx.len() {
        idx.select_nth_unstable_by(s.top_k - 1, by_logit);
        idx.truncate(s.top_k);
    }
    if s.top_p < 1.0 {
        let total: f64 = idx.iter().map(|&i| weight(i)).sum();
        // The nucleus is usually a few dozen tokens: sort a growing top slice until its mass
        // reaches top_p instead of sorting the whole vocabulary.
        let mut head = 64.min(idx.len());
        loop {
            if head < idx.len() {
                idx.select_nth_unstable_by(head - 1, by_logit);
            }
            idx[..head].sort_unstable_by(by_logit);
            let mut cum = 0.0;
            let keep = idx[..head].iter().position(|&i| {
                cum += weight(i) / total;
                cum >= s.top_p
            });
            match keep {
                Some(j) => {
                    idx.truncate(j + 1);
                    break;
                }
                None if head == idx.len() => break,
                None => head = (head * 4).min(idx.len()),
            }
        }
    }
    let probs: Vec<f64> = idx.iter().map(|&i| weight(i)).collect();
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

    /// The nucleus by sorting the whole vocabulary (the textbook definition).
    fn nucleus_by_full_sort(logits: &[f32], temperature: f64, top_p: f64) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..logits.len()).collect();
        idx.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b)));
        let w: Vec<f64> = idx
            .iter()
            .map(|&i| ((logits[i] - logits[idx[0]]) as f64 / temperature).exp())
            .collect();
        let total: f64 = w.iter().sum();
        let mut cum = 0.0;
        for (j, x) in w.iter().enumerate() {
            cum += x / total;
            if cum >= top_p {
                idx.truncate(j + 1);
                break;
            }
        }
        idx
    }

    #[test]
    fn top_p_samples_only_from_the_full_sort_nucleus() {
        // Flat and peaked vocabularies, so the nucleus is sometimes far beyond the first 64.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for (spread, top_p) in [(0.5f32, 0.95), (8.0, 0.95), (2.0, 0.6), (0.05, 0.99)] {
            let logits: Vec<f32> = (0..5000)
                .map(|_| rng.random::<f32>() * spread - spread / 2.0)
                .collect();
            let nucleus = nucleus_by_full_sort(&logits, 0.7, top_p);
            let s = SamplerSettings {
                temperature: 0.7,
                top_p,
                top_k: 0,
            };
            for _ in 0..50 {
                let (t, _) = sample_token(&logits, &s, &mut rng);
                assert!(
                    nucleus.contains(&(t as usize)),
                    "token {t} outside the nucleus of {} (spread {spread})",
                    nucleus.len()
                );
            }
        }
    }
}
