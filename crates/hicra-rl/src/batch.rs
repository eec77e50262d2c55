//! Packs prompt + response sequences into model batches (right-padded) and lays out the
//! per-position arrays the loss needs: response token k of a sequence with prompt length p
//! sits at position p + k.

use candle_core::Device;
use hicra_model::{Padding, TokenBatch};

use crate::error::{Result, RlError};

/// One training sequence.
#[derive(Debug, Clone)]
pub struct Sequence<'a> {
    /// Prompt token ids.
    pub prompt: &'a [u32],
    /// Response token ids.
    pub response: &'a [u32],
}

/// Builds a right-padded batch of `prompt ++ response` rows.
pub fn build_batch(seqs: &[Sequence<'_>], pad_id: u32, device: &Device) -> Result<TokenBatch> {
    let rows: Vec<Vec<u32>> = seqs
        .iter()
        .map(|s| s.prompt.iter().chain(s.response).copied().collect())
        .collect();
    TokenBatch::from_rows(&rows, pad_id, Padding::Right, device)
        .map_err(|e| RlError::Model(format!("building a batch: {e}")))
}

/// Places per-response-token values at their batch positions (zeros elsewhere), padded to
/// width `t`.
pub fn place(seqs: &[Sequence<'_>], values: &[&[f32]], t: usize) -> Vec<Vec<f32>> {
    seqs.iter()
        .zip(values)
        .map(|(s, v)| {
            let mut row = vec![0.0; t];
            let p = s.prompt.len();
            for (k, &x) in v.iter().enumerate().take(s.response.len()) {
                if p + k < t {
                    row[p + k] = x;
                }
            }
            row
        })
        .collect()
}

/// Reads back per-response-token values from batch positions.
pub fn gather(seqs: &[Sequence<'_>], rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
    seqs.iter()
        .zip(rows)
        .map(|(s, row)| {
            let p = s.prompt.len();
            (0..s.response.len())
                .map(|k| row.get(p + k).copied().unwrap_or(0.0))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_and_gather_round_trip_at_response_positions() {
        let (p1, r1, p2, r2) = ([1u32, 2], [3u32, 4, 5], [7u32], [8u32]);
        let seqs = [
            Sequence {
                prompt: &p1,
                response: &r1,
            },
            Sequence {
                prompt: &p2,
                response: &r2,
            },
        ];
        let v1 = [0.1f32, 0.2, 0.3];
        let v2 = [0.9f32];
        let rows = place(&seqs, &[&v1, &v2], 5);
        assert_eq!(rows[0], vec![0.0, 0.0, 0.1, 0.2, 0.3]);
        assert_eq!(rows[1], vec![0.0, 0.9, 0.0, 0.0, 0.0]);
        assert_eq!(gather(&seqs, &rows), vec![v1.to_vec(), v2.to_vec()]);
    }
}
