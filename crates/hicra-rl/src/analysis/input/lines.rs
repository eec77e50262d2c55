//! JSONL files read in chunks of lines, each line with its number, so a file of any size is
//! streamed and every bad line can be named `FILE:LINE`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::analysis::error::AnalysisError;

/// One non-blank line.
#[derive(Debug, Clone)]
pub struct RawLine {
    /// 1-based line number.
    pub number: usize,
    /// The bytes, without the line end.
    pub bytes: Vec<u8>,
    /// The last line of a file that does not end with a newline.
    pub unfinished: bool,
}

/// Reads a JSONL file chunk by chunk.
pub struct LineChunks {
    path: PathBuf,
    reader: BufReader<File>,
    number: usize,
    done: bool,
}

impl LineChunks {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<LineChunks, AnalysisError> {
        let file = File::open(path).map_err(|e| AnalysisError::io(path, e))?;
        Ok(LineChunks {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, file),
            number: 0,
            done: false,
        })
    }

    /// The next non-blank lines, about `max_bytes` of them; `None` at the end of the file.
    pub fn next_chunk(&mut self, max_bytes: usize) -> Result<Option<Vec<RawLine>>, AnalysisError> {
        let mut lines = Vec::new();
        let mut bytes = 0;
        while !self.done && bytes < max_bytes {
            let mut buf = Vec::new();
            let n = self
                .reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| AnalysisError::io(&self.path, e))?;
            if n == 0 {
                self.done = true;
                break;
            }
            self.number += 1;
            let unfinished = buf.last() != Some(&b'\n');
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            bytes += buf.len();
            lines.push(RawLine {
                number: self.number,
                bytes: buf,
                unfinished,
            });
        }
        Ok((!lines.is_empty() || !self.done).then_some(lines))
    }
}

/// Parses a line as a JSON value; the message names an unfinished last line as such.
pub fn parse_line(line: &RawLine) -> Result<serde_json::Value, String> {
    serde_json::from_slice(&line.bytes).map_err(|e| {
        if line.unfinished {
            format!(
                "unfinished last line (the file ends inside a record: was the writer stopped?): {e}"
            )
        } else if std::str::from_utf8(&line.bytes).is_err() {
            "the line is not valid UTF-8".to_string()
        } else {
            format!("invalid JSON: {e}")
        }
    })
}

/// The first parseable JSON object of a file (for format detection), or why there is none.
pub fn first_object(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut chunks = LineChunks::open(path).map_err(|e| e.to_string())?;
    while let Some(lines) = chunks.next_chunk(1 << 16).map_err(|e| e.to_string())? {
        for line in &lines {
            if let Ok(serde_json::Value::Object(map)) = parse_line(line) {
                return Ok(map);
            }
        }
    }
    Err(format!("{} holds no JSON object", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lines_skips_blanks_and_flags_an_unfinished_end() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.jsonl");
        std::fs::write(&p, "{\"a\":1}\r\n\n  \n{\"a\":2}\n{\"a\":").unwrap();
        let mut r = LineChunks::open(&p).unwrap();
        let mut all = Vec::new();
        while let Some(chunk) = r.next_chunk(4).unwrap() {
            all.extend(chunk);
        }
        let numbers: Vec<usize> = all.iter().map(|l| l.number).collect();
        assert_eq!(numbers, [1, 4, 5]);
        assert_eq!(all[0].bytes, b"{\"a\":1}");
        assert!(!all[1].unfinished && all[2].unfinished);
        let e = parse_line(&all[2]).unwrap_err();
        assert!(e.starts_with("unfinished last line"), "{e}");
        assert_eq!(parse_line(&all[1]).unwrap()["a"], 2);
    }
}
