//! Streams the records of a run's files in chunks and turns each chunk's records into samples,
//! and those into whatever the caller computes from them, in parallel; results keep the file's
//! order, and a record that cannot be read keeps its `FILE:LINE` and the reason.

use rayon::prelude::*;

use super::error::AnalysisError;
use super::input::lines::{LineChunks, parse_line};
use super::input::{Reading, Source, Unit, is_parquet, to_sample};
use super::sample::Sample;

/// About how many bytes of JSONL one chunk holds.
const CHUNK_BYTES: usize = 8 << 20;
/// Parquet rows per chunk.
const CHUNK_ROWS: usize = 4096;

/// One record's outcome: where it is, and the caller's result or why it could not be read.
pub struct Record<T> {
    /// `FILE:LINE` or `FILE: row N`.
    pub location: String,
    /// The result, or the reason (naming the field).
    pub outcome: Result<T, String>,
}

/// Reads `unit` chunk by chunk: each record becomes a sample and then `map`'s result (in
/// parallel); `each` receives every chunk's records in file order and the bytes read so far.
pub fn for_each_chunk<T: Send>(
    source: &Source,
    unit: &Unit,
    map: &(dyn Fn(Sample) -> Result<T, String> + Sync),
    each: &mut dyn FnMut(Vec<Record<T>>, u64) -> Result<(), AnalysisError>,
) -> Result<(), AnalysisError> {
    if is_parquet(unit) {
        return parquet_chunks(source, unit, map, each);
    }
    let mut lines = LineChunks::open(&unit.path)?;
    let path = unit.path.display().to_string();
    let mut read = 0u64;
    while let Some(chunk) = lines.next_chunk(CHUNK_BYTES)? {
        read += chunk.iter().map(|l| l.bytes.len() as u64 + 1).sum::<u64>();
        let records = chunk
            .into_par_iter()
            .map(|line| {
                let outcome = parse_line(&line).and_then(|value| {
                    to_sample(source, unit, &Reading::Lines, value)
                        .map_err(|e| e.message)
                        .and_then(map)
                });
                Record {
                    location: format!("{path}:{}", line.number),
                    outcome,
                }
            })
            .collect();
        each(records, read)?;
    }
    Ok(())
}

fn parquet_chunks<T: Send>(
    source: &Source,
    unit: &Unit,
    map: &(dyn Fn(Sample) -> Result<T, String> + Sync),
    each: &mut dyn FnMut(Vec<Record<T>>, u64) -> Result<(), AnalysisError>,
) -> Result<(), AnalysisError> {
    let file_error = |e: hicra_tasks::TaskError| AnalysisError::File {
        path: unit.path.clone(),
        message: e.to_string(),
    };
    let (columns, rows) = hicra_tasks::parquet_rows(&unit.path).map_err(file_error)?;
    let reading = Reading::Parquet(columns);
    let size = std::fs::metadata(&unit.path).map_or(0, |m| m.len());
    let path = unit.path.display().to_string();
    let mut rows = rows.enumerate().peekable();
    while rows.peek().is_some() {
        let mut chunk = Vec::with_capacity(CHUNK_ROWS);
        for (index, row) in rows.by_ref().take(CHUNK_ROWS) {
            chunk.push((index + 1, row.map_err(file_error)?));
        }
        let last = rows.peek().is_none();
        let records = chunk
            .into_par_iter()
            .map(|(number, value)| Record {
                location: format!("{path}: row {number}"),
                outcome: to_sample(source, unit, &reading, value)
                    .map_err(|e| e.message)
                    .and_then(map),
            })
            .collect();
        each(records, if last { size } else { 0 })?;
    }
    Ok(())
}
