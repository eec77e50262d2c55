//! Typed access to a GGUF file's metadata, with errors that name the file and the key.

use candle_core::quantized::gguf_file::Value;
use std::collections::HashMap;
use std::path::Path;

use super::error::GgufError;

/// Typed, error-naming access to a GGUF file's metadata.
pub struct Metadata<'a> {
    path: &'a Path,
    values: &'a HashMap<String, Value>,
}

impl<'a> Metadata<'a> {
    /// Wraps the metadata of the GGUF file at `path`.
    pub fn new(path: &'a Path, values: &'a HashMap<String, Value>) -> Self {
        Self { path, values }
    }

    /// The raw value of a key, if present.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.values.get(key)
    }

    fn err(&self, key: &str, message: impl Into<String>) -> GgufError {
        GgufError::Metadata {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The path of the file (for error messages).
    pub fn path(&self) -> &Path {
        self.path
    }

    /// A required string.
    pub fn string(&self, key: &str) -> Result<&'a str, GgufError> {
        match self.values.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(self.err(key, "expected a string")),
            None => Err(self.err(key, "missing")),
        }
    }

    /// An optional string (wrong type counts as absent).
    pub fn opt_string(&self, key: &str) -> Option<&'a str> {
        match self.values.get(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// An optional unsigned integer of any integer width.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        let Some(v) = self.values.get(key) else {
            return Ok(None);
        };
        let n = match v {
            Value::U8(x) => *x as u64,
            Value::U16(x) => *x as u64,
            Value::U32(x) => *x as u64,
            Value::U64(x) => *x,
            Value::I8(x) if *x >= 0 => *x as u64,
            Value::I16(x) if *x >= 0 => *x as u64,
            Value::I32(x) if *x >= 0 => *x as u64,
            Value::I64(x) if *x >= 0 => *x as u64,
            _ => return Err(self.err(key, "expected a non-negative integer")),
        };
        Ok(Some(n))
    }

    /// A required unsigned integer.
    pub fn u64(&self, key: &str) -> Result<u64, GgufError> {
        self.opt_u64(key)?.ok_or_else(|| self.err(key, "missing"))
    }

    /// An optional float (f32 or f64).
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, GgufError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::F32(x)) => Ok(Some(*x as f64)),
            Some(Value::F64(x)) => Ok(Some(*x)),
            Some(_) => Err(self.err(key, "expected a float")),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.err(key, "expected a bool")),
        }
    }

    /// A required array.
    pub fn array(&self, key: &str) -> Result<&'a Vec<Value>, GgufError> {
        match self.values.get(key) {
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(self.err(key, "expected an array")),
            None => Err(self.err(key, "missing")),
        }
    }

    /// A required array of strings.
    pub fn string_array(&self, key: &str) -> Result<Vec<&'a str>, GgufError> {
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.as_str()),
                _ => Err(self.err(key, format!("element {i} is not a string"))),
            })
            .collect()
    }

    /// An optional array of integers (any integer width).
    pub fn opt_int_array(&self, key: &str) -> Result<Option<Vec<i64>>, GgufError> {
        let Some(Value::Array(a)) = self.values.get(key) else {
            return Ok(None);
        };
        a.iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::U8(x) => Ok(*x as i64),
                Value::I8(x) => Ok(*x as i64),
                Value::U16(x) => Ok(*x as i64),
                Value::I16(x) => Ok(*x as i64),
                Value::U32(x) => Ok(*x as i64),
                Value::I32(x) => Ok(*x as i64),
                Value::U64(x) => Ok(*x as i64),
                Value::I64(x) => Ok(*x),
                _ => Err(self.err(key, format!("element {i} is not an integer"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}
