//! `TokenBatch`: padded token id rows with their attention mask.

use candle_core::{Device, Tensor};

use crate::error::{ModelError, Result};

/// Which side padding goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Pad at the start (generation-style).
    Left,
    /// Pad at the end (training-style).
    Right,
}

/// A batch of token rows: `input_ids` (B, T) u32 and `attention_mask` (B, T) u32 (1 = real token).
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// Token ids, (B, T) u32.
    pub input_ids: Tensor,
    /// 1 for real tokens, 0 for padding, (B, T) u32.
    pub attention_mask: Tensor,
}

impl TokenBatch {
    /// Pads `rows` to the longest with `pad_id` on the given side.
    pub fn from_rows(
        rows: &[Vec<u32>],
        pad_id: u32,
        padding: Padding,
        device: &Device,
    ) -> Result<Self> {
        if rows.is_empty() {
            return Err(ModelError::InvalidInput("token batch has no rows".into()));
        }
        let t = rows.iter().map(Vec::len).max().unwrap_or(0);
        if t == 0 {
            return Err(ModelError::InvalidInput(
                "token batch has only empty rows".into(),
            ));
        }
        let mut ids = Vec::with_capacity(rows.len() * t);
        let mut mask = Vec::with_capacity(rows.len() * t);
        for row in rows {
            let pad = t - row.len();
            if padding == Padding::Left {
                ids.extend(std::iter::repeat_n(pad_id, pad));
                mask.extend(std::iter::repeat_n(0u32, pad));
            }
            ids.extend_from_slice(row);
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            if padding == Padding::Right {
                ids.extend(std::iter::repeat_n(pad_id, pad));
                mask.extend(std::iter::repeat_n(0u32, pad));
            }
        }
        Ok(TokenBatch {
            input_ids: Tensor::from_vec(ids, (rows.len(), t), device)?,
            attention_mask: Tensor::from_vec(mask, (rows.len(), t), device)?,
        })
    }

    /// (B, T).
    pub fn dims(&self) -> Result<(usize, usize)> {
        Ok(self.input_ids.dims2()?)
    }

    /// The mask as booleans per row; checks it matches `input_ids`.
    pub fn mask_rows(&self) -> Result<Vec<Vec<bool>>> {
        if self.attention_mask.dims() != self.input_ids.dims() {
            return Err(ModelError::InvalidInput(format!(
                "attention_mask shape {:?} differs from input_ids shape {:?}",
                self.attention_mask.dims(),
                self.input_ids.dims()
            )));
        }
        let m = self
            .attention_mask
            .to_dtype(candle_core::DType::U32)?
            .to_vec2::<u32>()?;
        Ok(m.into_iter()
            .map(|r| r.into_iter().map(|x| x != 0).collect())
            .collect())
    }

    /// The token ids per row (padding included).
    pub fn id_rows(&self) -> Result<Vec<Vec<u32>>> {
        Ok(self.input_ids.to_vec2::<u32>()?)
    }
}
