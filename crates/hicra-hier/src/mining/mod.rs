//! Strategic-Gram mining (paper §2.1): word n-grams (n = 3..5) of correct solutions →
//! sentence embeddings → k-means (k-means++ init, seeded) → cluster document frequency
//! (distinct solutions containing any n-gram of the cluster) → the n-grams of the top
//! clusters by DF are the mined grams.
//!
//! To run in minutes on a small CPU, n-grams are deduplicated and only the `max_ngrams`
//! most frequent are embedded; n-grams with a word holding no letter (numbers, `=`) are
//! skipped by default (they are arithmetic, never planning).

pub mod encoder;
pub mod kmeans;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::HierError;
use crate::words::{has_letter, word_ngrams, words};
pub use encoder::{HashingEncoder, SentenceEncoder, l2_normalize};
pub use kmeans::{Clustering, kmeans};

/// Options of [`mine`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MiningOptions {
    /// Shortest n-gram in words.
    pub min_n: usize,
    /// Longest n-gram in words.
    pub max_n: usize,
    /// Number of clusters.
    pub k: usize,
    /// Fraction of clusters kept, by DF.
    pub top_frac: f64,
    /// Seed of k-means++.
    pub seed: u64,
    /// Most n-grams embedded (the most frequent ones).
    pub max_ngrams: usize,
    /// Least number of solutions an n-gram must occur in to be a candidate.
    pub min_df: usize,
    /// Skip n-grams with a word holding no letter.
    pub require_letters: bool,
    /// Lloyd iterations at most.
    pub max_iterations: usize,
    /// Texts per encoder call.
    pub batch_size: usize,
}

impl Default for MiningOptions {
    fn default() -> Self {
        Self {
            min_n: 3,
            max_n: 5,
            k: 100,
            top_frac: 0.2,
            seed: 0,
            max_ngrams: 10_000,
            min_df: 1,
            require_letters: true,
            max_iterations: 100,
            batch_size: 256,
        }
    }
}

/// A candidate n-gram with its statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NgramStat {
    /// The n-gram (normalised words joined by spaces).
    pub text: String,
    /// Occurrences over all solutions.
    pub count: usize,
    /// Distinct solutions containing it.
    pub df: usize,
}

/// One cluster of the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinedCluster {
    /// Cluster id (k-means index).
    pub id: usize,
    /// Distinct solutions containing any member.
    pub df: usize,
    /// Whether the cluster is in the top fraction by DF.
    pub kept: bool,
    /// Members, most frequent first (ties by text).
    pub members: Vec<NgramStat>,
}

/// The result of [`mine`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MiningResult {
    /// Solutions mined.
    pub documents: usize,
    /// Distinct candidate n-grams before the cap.
    pub candidate_ngrams: usize,
    /// N-grams embedded and clustered.
    pub embedded_ngrams: usize,
    /// The mined grams: members of kept clusters, most frequent first (ties by text).
    pub grams: Vec<String>,
    /// Non-empty clusters by DF, highest first (ties by id).
    pub clusters: Vec<MinedCluster>,
}

/// Distinct word n-grams of the documents with counts, DF and the documents holding each,
/// most frequent first (ties by text).
pub fn candidate_ngrams(
    documents: &[String],
    options: &MiningOptions,
) -> Vec<(NgramStat, Vec<usize>)> {
    let mut table: HashMap<String, (usize, Vec<usize>)> = HashMap::new();
    for (doc, text) in documents.iter().enumerate() {
        let words = words(text);
        for ngram in word_ngrams(&words, options.min_n, options.max_n) {
            if options.require_letters && !ngram.split(' ').all(has_letter) {
                continue;
            }
            let entry = table.entry(ngram).or_default();
            entry.0 += 1;
            if entry.1.last() != Some(&doc) {
                entry.1.push(doc);
            }
        }
    }
    let mut list: Vec<(NgramStat, Vec<usize>)> = table
        .into_iter()
        .filter(|(_, (_, docs))| docs.len() >= options.min_df)
        .map(|(text, (count, docs))| {
            let df = docs.len();
            (NgramStat { text, count, df }, docs)
        })
        .collect();
    list.sort_by(|a, b| {
        b.0.count
            .cmp(&a.0.count)
            .then_with(|| a.0.text.cmp(&b.0.text))
    });
    list
}

fn validate(options: &MiningOptions) -> Result<(), HierError> {
    let bad = |m: String| Err(HierError::InvalidOption(m));
    if options.min_n == 0 || options.min_n > options.max_n {
        return bad(format!(
            "n-gram lengths {}..={} (need 1 <= min_n <= max_n)",
            options.min_n, options.max_n
        ));
    }
    if options.k == 0 {
        return bad("k must be at least 1".into());
    }
    if !(options.top_frac > 0.0 && options.top_frac <= 1.0) {
        return bad(format!(
            "top_frac {} (need 0 < top_frac <= 1)",
            options.top_frac
        ));
    }
    if options.max_ngrams == 0 || options.batch_size == 0 {
        return bad("max_ngrams and batch_size must be at least 1".into());
    }
    Ok(())
}

/// Embeds texts in batches, checking the encoder's output shape and values.
fn embed_all(
    texts: &[String],
    encoder: &dyn SentenceEncoder,
    batch_size: usize,
) -> Result<Vec<Vec<f32>>, HierError> {
    let mut out = Vec::with_capacity(texts.len());
    for batch in texts.chunks(batch_size) {
        let vectors = encoder.embed(batch)?;
        if vectors.len() != batch.len() {
            return Err(HierError::Encoder(format!(
                "returned {} embeddings for {} texts",
                vectors.len(),
                batch.len()
            )));
        }
        for (text, v) in batch.iter().zip(&vectors) {
            if v.len() != encoder.dim() || v.iter().any(|x| !x.is_finite()) {
                return Err(HierError::Encoder(format!(
                    "bad embedding for {text:?} (length {}, expected {}, or non-finite values)",
                    v.len(),
                    encoder.dim()
                )));
            }
        }
        out.extend(vectors);
    }
    Ok(out)
}

/// Mines Strategic Grams from correct solutions (the caller filters by correctness).
pub fn mine(
    documents: &[String],
    encoder: &dyn SentenceEncoder,
    options: &MiningOptions,
) -> Result<MiningResult, HierError> {
    validate(options)?;
    let mut candidates = candidate_ngrams(documents, options);
    let candidate_count = candidates.len();
    candidates.truncate(options.max_ngrams);
    let texts: Vec<String> = candidates.iter().map(|c| c.0.text.clone()).collect();
    let embeddings = embed_all(&texts, encoder, options.batch_size)?;
    let clustering = kmeans(&embeddings, options.k, options.max_iterations, options.seed);
    let k = clustering.centroids.len();

    let mut members: Vec<Vec<NgramStat>> = vec![Vec::new(); k];
    let mut doc_seen: Vec<Vec<bool>> = vec![vec![false; documents.len()]; k];
    for ((stat, docs), &cluster) in candidates.iter().zip(&clustering.assignment) {
        members[cluster].push(stat.clone());
        for &d in docs {
            doc_seen[cluster][d] = true;
        }
    }
    let mut clusters: Vec<MinedCluster> = members
        .into_iter()
        .enumerate()
        .filter(|(_, m)| !m.is_empty())
        .map(|(id, members)| MinedCluster {
            id,
            df: doc_seen[id].iter().filter(|&&seen| seen).count(),
            kept: false,
            members,
        })
        .collect();
    clusters.sort_by(|a, b| b.df.cmp(&a.df).then(a.id.cmp(&b.id)));
    let keep = ((clusters.len() as f64) * options.top_frac).ceil() as usize;
    let mut grams: Vec<&NgramStat> = Vec::new();
    for cluster in clusters.iter_mut().take(keep) {
        cluster.kept = true;
        grams.extend(cluster.members.iter());
    }
    grams.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.text.cmp(&b.text)));
    Ok(MiningResult {
        documents: documents.len(),
        candidate_ngrams: candidate_count,
        embedded_ngrams: texts.len(),
        grams: grams.into_iter().map(|g| g.text.clone()).collect(),
        clusters,
    })
}

/// A readable cluster report: one block per cluster (id, DF, kept, members by frequency).
pub fn render_report(result: &MiningResult, members_shown: usize) -> String {
    let mut out = format!(
        "Strategic-Gram mining: {} solutions, {} candidate n-grams, {} embedded, {} clusters, {} grams kept\n\n",
        result.documents,
        result.candidate_ngrams,
        result.embedded_ngrams,
        result.clusters.len(),
        result.grams.len()
    );
    for c in &result.clusters {
        out.push_str(&format!(
            "cluster {:>3}  DF {:>6}  {}  ({} n-grams)\n",
            c.id,
            c.df,
            if c.kept { "KEPT" } else { "    " },
            c.members.len()
        ));
        for m in c.members.iter().take(members_shown) {
            out.push_str(&format!(
                "    {:>6} ×  {}   (DF {})\n",
                m.count, m.text, m.df
            ));
        }
        if c.members.len() > members_shown {
            out.push_str(&format!("    … {} more\n", c.members.len() - members_shown));
        }
    }
    out
}
