//! One decoding step's choice of the next token for every active row, with the fewest
//! transfers the device allows: on a GPU, greedy decoding takes the argmax and its log-prob on
//! the device (two numbers per row come back), and sampled decoding copies the logits once
//! and samples the rows in parallel on the host; on the CPU the rows are sampled in order, as
//! [`sample_token`] always did.

use candle_core::{D, DType, Tensor};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::Result;
use crate::generate::sampling::{SamplerSettings, sample_token};
use hicra_kernels::ops::log_softmax_last;

/// The (token, untempered log-prob) of each row of `logits` (N, V). `rows[i]` is the original
/// index of logits row `i` (strictly increasing) and picks the row's random stream in `rngs`.
pub(crate) fn pick_tokens(
    logits: &Tensor,
    settings: &SamplerSettings,
    rngs: &mut [ChaCha8Rng],
    rows: &[usize],
) -> Result<Vec<(u32, f32)>> {
    let on_host = logits.device().is_cpu();
    if !on_host && settings.temperature <= 0.0 {
        return greedy_on_device(logits);
    }
    let logits = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    if on_host {
        return Ok(rows
            .iter()
            .enumerate()
            .map(|(i, &r)| sample_token(&logits[i], settings, &mut rngs[r]))
            .collect());
    }
    // A GPU's rows (hundreds, one vocabulary each) are sampled side by side on the host.
    let mut streams: Vec<&mut ChaCha8Rng> = Vec::with_capacity(rows.len());
    let mut wanted = rows.iter().peekable();
    for (r, rng) in rngs.iter_mut().enumerate() {
        if wanted.peek() == Some(&&r) {
            streams.push(rng);
            wanted.next();
        }
    }
    debug_assert_eq!(
        streams.len(),
        rows.len(),
        "rows must be strictly increasing"
    );
    Ok(streams
        .into_par_iter()
        .zip(logits.par_iter())
        .map(|(rng, row)| sample_token(row, settings, rng))
        .collect())
}

/// Argmax and its log-softmax per row, computed on the device; 2 × N values are copied back.
fn greedy_on_device(logits: &Tensor) -> Result<Vec<(u32, f32)>> {
    let logits = logits.to_dtype(DType::F32)?;
    let ids = logits.argmax_keepdim(D::Minus1)?; // (N, 1) u32
    let lp = log_softmax_last(&logits)?.gather(&ids, D::Minus1)?;
    let ids = ids.flatten_all()?.to_vec1::<u32>()?;
    let lp = lp.flatten_all()?.to_vec1::<f32>()?;
    Ok(ids.into_iter().zip(lp).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use rand::SeedableRng;

    fn rngs(n: usize) -> Vec<ChaCha8Rng> {
        (0..n)
            .map(|r| {
                let mut rng = ChaCha8Rng::seed_from_u64(7);
                rng.set_stream(r as u64);
                rng
            })
            .collect()
    }

    #[test]
    fn host_picks_equal_row_by_row_sampling() {
        let values: Vec<f32> = (0..3 * 50)
            .map(|i| ((i * 37 % 101) as f32) / 17.0)
            .collect();
        let logits = Tensor::from_vec(values.clone(), (3, 50), &Device::Cpu).unwrap();
        let settings = SamplerSettings {
            temperature: 0.8,
            top_p: 0.9,
            top_k: 20,
        };
        let rows = [0usize, 2, 3];
        let mut a = rngs(4);
        let picks = pick_tokens(&logits, &settings, &mut a, &rows).unwrap();
        let mut b = rngs(4);
        for (i, &r) in rows.iter().enumerate() {
            let want = sample_token(&values[i * 50..(i + 1) * 50], &settings, &mut b[r]);
            assert_eq!(picks[i], want, "row {i}");
        }
    }

    #[test]
    fn device_greedy_equals_host_greedy() {
        // The device path's arithmetic, run on the CPU's tensors.
        let values: Vec<f32> = (0..4 * 30).map(|i| ((i * 53 % 97) as f32) / 11.0).collect();
        let logits = Tensor::from_vec(values.clone(), (4, 30), &Device::Cpu).unwrap();
        let settings = SamplerSettings {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
        };
        let on_device = greedy_on_device(&logits).unwrap();
        let mut r = rngs(4);
        for (i, got) in on_device.iter().enumerate() {
            let want = sample_token(&values[i * 30..(i + 1) * 30], &settings, &mut r[i]);
            assert_eq!(got.0, want.0, "row {i}");
            assert!(
                (got.1 - want.1).abs() < 1e-5,
                "row {i}: {got:?} vs {want:?}"
            );
        }
    }
}
