//! Metric sinks: `metrics.jsonl` (one JSON object per line, `"step"` always present) and
//! TensorBoard event files (TFRecord framing with masked crc32c around hand-encoded
//! `Event { wall_time, step, summary { value { tag, simple_value } } }` protobufs).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::checkpoint::write_atomic;
use crate::error::{Result, RlError};

/// Metric names that depend on wall-clock time or the machine (left out when comparing runs).
pub const WALL_CLOCK_METRICS: &[&str] = &[
    "time_rollout_s",
    "time_train_s",
    "time_val_s",
    "tokens_per_s",
    "peak_rss_mib",
];

/// One record: metric name → value.
pub type Record = BTreeMap<String, f64>;

/// Somewhere metrics go. `Send`, so a trainer can move between threads.
pub trait MetricsSink: Send {
    /// Logs `values` for `step`.
    fn log(&mut self, step: u64, values: &Record) -> Result<()>;
    /// Flushes buffered output.
    fn flush(&mut self) -> Result<()>;
}

/// Appends JSON lines to `metrics.jsonl`.
pub struct JsonlSink {
    path: PathBuf,
    file: File,
}

impl JsonlSink {
    /// Opens (appending) the JSONL file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| RlError::io(path, e))?;
        Ok(JsonlSink {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Keeps only the lines whose `"step"` is at most `step` (none for `None`), so that a
    /// resumed log continues exactly where the checkpoint was taken; a last line cut short by
    /// a kill is dropped. Rewrites the file atomically.
    pub fn truncate_after(path: &Path, step: Option<u64>) -> Result<()> {
        if !path.exists() {
            return Ok(());
        }
        let text = fs::read(path).map_err(|e| RlError::io(path, e))?;
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut kept = String::new();
        for (i, line) in text[..complete].split(|&b| b == b'\n').enumerate() {
            let line = String::from_utf8_lossy(line);
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| RlError::Json {
                context: format!("{} line {}", path.display(), i + 1),
                source: e,
            })?;
            if v.get("step")
                .and_then(|s| s.as_u64())
                .is_some_and(|s| step.is_some_and(|last| s <= last))
            {
                kept.push_str(&line);
                kept.push('\n');
            }
        }
        write_atomic(path, kept.as_bytes())
    }
}

/// Formats a record as a JSON object line with `"step"` first.
pub fn record_to_json(step: u64, values: &Record) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("step".into(), step.into());
    for (k, v) in values {
        let val = serde_json::Number::from_f64(*v)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null);
        obj.insert(k.clone(), val);
    }
    serde_json::Value::Object(obj)
}

impl MetricsSink for JsonlSink {
    fn log(&mut self, step: u64, values: &Record) -> Result<()> {
        let line = record_to_json(step, values).to_string();
        writeln!(self.file, "{line}").map_err(|e| RlError::io(&self.path, e))
    }
    fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| RlError::io(&self.path, e))
    }
}

fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len_delimited(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, ((field << 3) | 2) as u64);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Encodes a TensorBoard `Event` protobuf: wall_time (1, double), step (2, int64), and either
/// file_version (3, string) or summary (5) with one value per (tag, simple_value).
pub fn encode_event(
    wall_time: f64,
    step: i64,
    file_version: Option<&str>,
    scalars: &[(&str, f32)],
) -> Vec<u8> {
    let mut ev = Vec::new();
    ev.push(0x09);
    ev.extend_from_slice(&wall_time.to_le_bytes());
    ev.push(0x10);
    put_varint(&mut ev, step as u64);
    if let Some(v) = file_version {
        put_len_delimited(&mut ev, 3, v.as_bytes());
    }
    if !scalars.is_empty() {
        let mut summary = Vec::new();
        for (tag, val) in scalars {
            let mut value = Vec::new();
            put_len_delimited(&mut value, 1, tag.as_bytes());
            value.push(0x15); // field 2, fixed32
            value.extend_from_slice(&val.to_le_bytes());
            put_len_delimited(&mut summary, 1, &value);
        }
        put_len_delimited(&mut ev, 5, &summary);
    }
    ev
}

/// Frames `data` as one TFRecord: u64 length, masked crc of the length, data, masked crc.
pub fn tfrecord(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// Writes scalars to a TensorBoard event file in a directory.
pub struct TensorBoardSink {
    path: PathBuf,
    file: File,
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl TensorBoardSink {
    /// Creates `dir` and a new `events.out.tfevents.<secs>.hicra.<pid>` file in it.
    pub fn create(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| RlError::io(dir, e))?;
        let t = now_secs();
        let path = dir.join(format!(
            "events.out.tfevents.{}.hicra.{}",
            t as u64,
            std::process::id()
        ));
        let mut file = File::create(&path).map_err(|e| RlError::io(&path, e))?;
        file.write_all(&tfrecord(&encode_event(t, 0, Some("brain.Event:2"), &[])))
            .map_err(|e| RlError::io(&path, e))?;
        Ok(TensorBoardSink { path, file })
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl MetricsSink for TensorBoardSink {
    fn log(&mut self, step: u64, values: &Record) -> Result<()> {
        let scalars: Vec<(&str, f32)> = values
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(k, v)| (k.as_str(), *v as f32))
            .collect();
        if scalars.is_empty() {
            return Ok(());
        }
        let rec = tfrecord(&encode_event(now_secs(), step as i64, None, &scalars));
        self.file
            .write_all(&rec)
            .map_err(|e| RlError::io(&self.path, e))
    }
    fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| RlError::io(&self.path, e))
    }
}

/// Sends every record to several sinks.
#[derive(Default)]
pub struct MultiSink {
    sinks: Vec<Box<dyn MetricsSink>>,
}

impl MultiSink {
    /// Adds a sink.
    pub fn push(&mut self, sink: Box<dyn MetricsSink>) {
        self.sinks.push(sink);
    }
}

impl MetricsSink for MultiSink {
    fn log(&mut self, step: u64, values: &Record) -> Result<()> {
        for s in &mut self.sinks {
            s.log(step, values)?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        for s in &mut self.sinks {
            s.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal reader: TFRecord frames (checking both CRCs) then Event fields.
    type Event = (i64, Option<String>, Vec<(String, f32)>);

    fn read_events(bytes: &[u8]) -> Vec<Event> {
        fn varint(b: &[u8], i: &mut usize) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let x = b[*i];
                *i += 1;
                v |= ((x & 0x7f) as u64) << shift;
                if x < 0x80 {
                    return v;
                }
                shift += 7;
            }
        }
        fn fields(b: &[u8]) -> Vec<(u64, u64, &[u8])> {
            // (field, wire, payload) — payload holds fixed/len bytes; varints in `u64`
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                let key = varint(b, &mut i);
                let (f, w) = (key >> 3, key & 7);
                match w {
                    0 => {
                        let v = varint(b, &mut i);
                        out.push((f, v, &b[0..0]));
                    }
                    1 => {
                        out.push((f, 0, &b[i..i + 8]));
                        i += 8;
                    }
                    2 => {
                        let n = varint(b, &mut i) as usize;
                        out.push((f, 0, &b[i..i + n]));
                        i += n;
                    }
                    5 => {
                        out.push((f, 0, &b[i..i + 4]));
                        i += 4;
                    }
                    _ => panic!("wire type {w}"),
                }
            }
            out
        }
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let len_b = &bytes[i..i + 8];
            let n = u64::from_le_bytes(len_b.try_into().unwrap()) as usize;
            let crc_len = u32::from_le_bytes(bytes[i + 8..i + 12].try_into().unwrap());
            assert_eq!(crc_len, masked_crc(len_b));
            let data = &bytes[i + 12..i + 12 + n];
            let crc = u32::from_le_bytes(bytes[i + 12 + n..i + 16 + n].try_into().unwrap());
            assert_eq!(crc, masked_crc(data));
            i += 16 + n;
            let (mut step, mut ver, mut vals) = (0, None, Vec::new());
            for (f, v, p) in fields(data) {
                match f {
                    2 => step = v as i64,
                    3 => ver = Some(String::from_utf8(p.to_vec()).unwrap()),
                    5 => {
                        for (_, _, value) in fields(p) {
                            let vf = fields(value);
                            let tag = String::from_utf8(vf[0].2.to_vec()).unwrap();
                            let x = f32::from_le_bytes(vf[1].2.try_into().unwrap());
                            vals.push((tag, x));
                        }
                    }
                    _ => {}
                }
            }
            out.push((step, ver, vals));
        }
        out
    }

    #[test]
    fn masked_crc_matches_known_value() {
        // crc32c("123456789") = 0xE3069283 (the standard check value)
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        let c: u32 = 0xE306_9283;
        assert_eq!(
            masked_crc(b"123456789"),
            c.rotate_right(15).wrapping_add(0xa282ead8)
        );
    }

    #[test]
    fn event_file_parses_back() {
        let d = tempfile::tempdir().unwrap();
        let mut sink = TensorBoardSink::create(d.path()).unwrap();
        let mut r = Record::new();
        r.insert("reward_mean".into(), 0.25);
        r.insert("lr".into(), 1e-3);
        sink.log(7, &r).unwrap();
        r.insert("reward_mean".into(), 0.5);
        sink.log(8, &r).unwrap();
        sink.flush().unwrap();
        let ev = read_events(&fs::read(sink.path()).unwrap());
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].1.as_deref(), Some("brain.Event:2"));
        assert_eq!(ev[1].0, 7);
        assert_eq!(
            ev[1].2,
            vec![
                ("lr".to_string(), 1e-3f32),
                ("reward_mean".to_string(), 0.25)
            ]
        );
        assert_eq!(ev[2].0, 8);
        assert_eq!(ev[2].2[1], ("reward_mean".to_string(), 0.5));
    }

    #[test]
    fn jsonl_lines_carry_step_and_truncate_on_resume() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("metrics.jsonl");
        let mut s = JsonlSink::open(&p).unwrap();
        for step in 1..=4 {
            let mut r = Record::new();
            r.insert("accuracy".into(), step as f64 / 10.0);
            s.log(step, &r).unwrap();
        }
        s.flush().unwrap();
        drop(s);
        JsonlSink::truncate_after(&p, Some(2)).unwrap();
        let text = fs::read_to_string(&p).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["step"], 2);
        assert_eq!(lines[1]["accuracy"], 0.2);
    }
}
