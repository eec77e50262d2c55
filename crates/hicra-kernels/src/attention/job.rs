//! One decoding step's attention as the kernels read it: the queries, the cached keys and
//! values read in place, the mask and the shapes; and the row softmax they share.

use candle_core::{CpuStorage, Layout, Result};

/// A (B, KV, S, hd) operand read in place: element offsets of (b, g) blocks and of rows.
pub struct Cache<'a> {
    data: &'a [f32],
    strides: [usize; 3],
}

impl<'a> Cache<'a> {
    pub fn new(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<Cache<'a>> {
        let data = match storage {
            CpuStorage::F32(d) => &d[layout.start_offset()..],
            _ => candle_core::bail!("decode attention: f32 {what} expected"),
        };
        let st = layout.stride();
        let dims = layout.shape().dims();
        if st.len() != 4 || (st[3] != 1 && dims[3] > 1) {
            candle_core::bail!("decode attention: {what} rows must be contiguous");
        }
        // The furthest element the strides reach must lie inside the storage.
        let reach: usize = dims
            .iter()
            .zip(st)
            .map(|(&n, &s)| n.saturating_sub(1) * s)
            .sum();
        if dims.iter().product::<usize>() > 0 && reach >= data.len() {
            candle_core::bail!("decode attention: {what} layout exceeds its storage");
        }
        Ok(Cache {
            data,
            strides: [st[0], st[1], st[2]],
        })
    }

    /// Row `j` of block (bi, gi), `hd` values.
    pub fn row(&self, bi: usize, gi: usize, j: usize, hd: usize) -> &[f32] {
        let at = bi * self.strides[0] + gi * self.strides[1] + j * self.strides[2];
        &self.data[at..at + hd]
    }
}

/// One decoding step's attention: the operands and (KV heads, rows per head, head dim, keys,
/// queries).
pub struct Job<'a> {
    pub q: &'a [f32],
    pub k: Cache<'a>,
    pub v: Cache<'a>,
    pub mask: &'a [f32],
    pub dims: (usize, usize, usize, usize, usize),
}

/// Softmax of one row of scores in place.
#[inline(always)]
pub fn softmax_in_place(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    crate::vexp::shifted_exps_in_place(v, max);
    let inv = 1.0 / v.iter().sum::<f32>();
    v.iter_mut().for_each(|x| *x *= inv);
}
