//! The key/value cache of generation: preallocated per layer, filled position by position.

use candle_core::{DType, Device, Tensor};

use crate::config::ModelConfig;
use crate::error::Result;

/// Preallocated key/value cache: per layer (B, KV, capacity, head_dim).
pub(crate) struct KvCache {
    pub k: Vec<Tensor>,
    pub v: Vec<Tensor>,
    /// Number of filled positions.
    pub len: usize,
}

impl KvCache {
    /// Zero-filled cache for `batch` rows and `capacity` positions.
    pub fn new(
        config: &ModelConfig,
        batch: usize,
        capacity: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<KvCache> {
        let shape = (batch, config.num_key_value_heads, capacity, config.head_dim);
        let mut k = Vec::with_capacity(config.num_hidden_layers);
        let mut v = Vec::with_capacity(config.num_hidden_layers);
        for _ in 0..config.num_hidden_layers {
            k.push(Tensor::zeros(shape, dtype, device)?);
            v.push(Tensor::zeros(shape, dtype, device)?);
        }
        Ok(KvCache { k, v, len: 0 })
    }
}
