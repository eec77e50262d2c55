//! Shannon entropy of a count distribution, and the length of the n-gram that follows a gram
//! occurrence: shared by the batch metrics and the streaming tally.

/// Words in the n-gram following a gram occurrence, for [`crate::conditional_entropy`].
pub const FOLLOWING_NGRAM_WORDS: usize = 3;

/// Shannon entropy (natural log) of the distribution given by `counts`; 0 when the total is 0.
pub fn entropy_of_counts<I: IntoIterator<Item = usize>>(counts: I) -> f64 {
    let counts: Vec<usize> = counts.into_iter().filter(|&c| c > 0).collect();
    let total: usize = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let total = total as f64;
    counts
        .iter()
        .map(|&c| {
            let p = c as f64 / total;
            -p * p.ln()
        })
        .sum()
}
