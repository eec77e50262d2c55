//! Reads data files into JSON records: JSONL (one object per line), JSON (a list of
//! objects) and Parquet (rows through the `parquet` crate's record reader).

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};
use serde_json::{Map, Number, Value};

use crate::error::TaskError;

/// Where a record sits in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLocation {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (JSONL), element (JSON list) or row (Parquet) number.
    pub number: usize,
    /// What `number` counts.
    pub unit: RecordUnit,
}

/// What a [`RecordLocation`]'s number counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordUnit {
    /// A JSONL line.
    Line,
    /// An element of a JSON list.
    Element,
    /// A Parquet row.
    Row,
}

impl fmt::Display for RecordLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit {
            RecordUnit::Line => write!(f, "{}:{}", self.path.display(), self.number),
            RecordUnit::Element => write!(f, "{}: element {}", self.path.display(), self.number),
            RecordUnit::Row => write!(f, "{}: row {}", self.path.display(), self.number),
        }
    }
}

/// One record, or why it could not be decoded.
pub(crate) type RawRecord = (RecordLocation, Result<Value, String>);

/// The file formats the loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// One JSON object per line (`.jsonl`, `.ndjson`).
    Jsonl,
    /// A JSON list of objects (`.json`).
    Json,
    /// Apache Parquet (`.parquet`).
    Parquet,
}

impl FileFormat {
    /// The format implied by the file's extension.
    pub fn from_path(path: &Path) -> Result<Self, TaskError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("jsonl") | Some("ndjson") => Ok(FileFormat::Jsonl),
            Some("json") => Ok(FileFormat::Json),
            Some("parquet") => Ok(FileFormat::Parquet),
            _ => Err(TaskError::UnsupportedFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Reads every record of `path`. File-level failures are errors; record-level ones are
/// returned per record.
pub(crate) fn read_records(path: &Path) -> Result<Vec<RawRecord>, TaskError> {
    match FileFormat::from_path(path)? {
        FileFormat::Jsonl => read_jsonl(path),
        FileFormat::Json => read_json_list(path),
        FileFormat::Parquet => read_parquet(path),
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TaskError + '_ {
    move |source| TaskError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The UTF-8 byte order mark some editors put at the start of a text file.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `bytes` without a leading UTF-8 byte order mark.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
}

fn read_jsonl(path: &Path) -> Result<Vec<RawRecord>, TaskError> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    let mut records = Vec::new();
    for (index, raw_line) in strip_bom(&bytes).split(|&b| b == b'\n').enumerate() {
        let raw_line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        if raw_line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let location = RecordLocation {
            path: path.to_path_buf(),
            number: index + 1,
            unit: RecordUnit::Line,
        };
        let parsed = std::str::from_utf8(raw_line)
            .map_err(|e| format!("not valid UTF-8 ({e})"))
            .and_then(|line| {
                serde_json::from_str::<Value>(line).map_err(|e| format!("invalid JSON: {e}"))
            });
        records.push((location, parsed));
    }
    Ok(records)
}

fn read_json_list(path: &Path) -> Result<Vec<RawRecord>, TaskError> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    let value: Value =
        serde_json::from_slice(strip_bom(&bytes)).map_err(|e| TaskError::Malformed {
            location: format!("{}:{}", path.display(), e.line()),
            reason: format!("invalid JSON: {e}"),
        })?;
    let Value::Array(items) = value else {
        return Err(TaskError::Malformed {
            location: path.display().to_string(),
            reason:
                "a .json data set must be a list of objects (use .jsonl for one object per line)"
                    .into(),
        });
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let location = RecordLocation {
                path: path.to_path_buf(),
                number: i + 1,
                unit: RecordUnit::Element,
            };
            (location, Ok(item))
        })
        .collect())
}

fn read_parquet(path: &Path) -> Result<Vec<RawRecord>, TaskError> {
    let mut records = Vec::new();
    for (index, row) in parquet_rows(path)?.1.enumerate() {
        let location = RecordLocation {
            path: path.to_path_buf(),
            number: index + 1,
            unit: RecordUnit::Row,
        };
        records.push((location, Ok(row?)));
    }
    Ok(records)
}

/// The top-level column names of a Parquet file in schema order, and its rows as JSON objects
/// (see [`row_to_json`]), read one row group at a time. A row that fails to decode means the
/// column data is damaged: later rows are not trustworthy either, so it is a file-level error
/// naming the row.
pub fn parquet_rows(
    path: &Path,
) -> Result<
    (
        Vec<String>,
        impl Iterator<Item = Result<Value, TaskError>> + use<>,
    ),
    TaskError,
> {
    let file = File::open(path).map_err(io_error(path))?;
    let reader = SerializedFileReader::new(file).map_err(|e| TaskError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let columns = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let path = path.to_path_buf();
    let rows = reader.into_iter().enumerate().map(move |(index, row)| {
        row.map(|row| row_to_json(&row))
            .map_err(|e| TaskError::Parquet {
                path: path.clone(),
                message: format!("row {}: {e}", index + 1),
            })
    });
    Ok((columns, rows))
}

/// Converts a Parquet row to a JSON object (groups → objects, lists → arrays,
/// maps → objects keyed by the key's text, dates/decimals/binary → their display text).
pub(crate) fn row_to_json(row: &Row) -> Value {
    Value::Object(
        row.get_column_iter()
            .map(|(name, field)| (name.clone(), field_to_json(field)))
            .collect(),
    )
}

fn field_to_json(field: &Field) -> Value {
    let float = |f: f64| {
        Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    };
    match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(v) => Value::from(*v),
        Field::Short(v) => Value::from(*v),
        Field::Int(v) => Value::from(*v),
        Field::Long(v) => Value::from(*v),
        Field::UByte(v) => Value::from(*v),
        Field::UShort(v) => Value::from(*v),
        Field::UInt(v) => Value::from(*v),
        Field::ULong(v) => Value::from(*v),
        Field::Float16(v) => float(v.to_f64()),
        Field::Float(v) => float(f64::from(*v)),
        Field::Double(v) => float(*v),
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => match b.as_utf8() {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => Value::String(field.to_string()),
        },
        Field::Group(row) => row_to_json(row),
        Field::ListInternal(list) => {
            Value::Array(list.elements().iter().map(field_to_json).collect())
        }
        Field::MapInternal(map) => Value::Object(
            map.entries()
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Field::Str(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (key, field_to_json(v))
                })
                .collect::<Map<_, _>>(),
        ),
        Field::Decimal(_)
        | Field::Date(_)
        | Field::TimeMillis(_)
        | Field::TimeMicros(_)
        | Field::TimestampMillis(_)
        | Field::TimestampMicros(_) => Value::String(field.to_string()),
    }
}
