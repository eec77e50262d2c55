//! The override engine of the configuration, apart from its sections: a TOML file merged over
//! the defaults (unknown keys named by their dotted path, types checked), and `--set key=value`
//! overrides typed by the value they replace.

use crate::error::{Result, RlError};

/// A serialisable value (the defaults) as a TOML tree.
pub fn to_value<T: serde::Serialize>(c: &T) -> toml::Value {
    toml::Value::try_from(c).expect("config serialises to TOML")
}

/// Merges `over` into `base` recursively (tables merge, other values replace); an unknown
/// key is reported with its dotted path.
pub fn merge(base: &mut toml::Value, over: toml::Value, path: &str) -> Result<()> {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                let key = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v, &key)?,
                    None => return Err(RlError::config(key, "unknown key")),
                }
            }
            Ok(())
        }
        (b @ toml::Value::Float(_), toml::Value::Integer(i)) => {
            *b = toml::Value::Float(i as f64);
            Ok(())
        }
        (b, o) => {
            if b.type_str() != o.type_str() {
                return Err(RlError::config(
                    path,
                    format!("expected a {}, found a {}", b.type_str(), o.type_str()),
                ));
            }
            *b = o;
            Ok(())
        }
    }
}

/// Parses `raw` as the type of `existing` for `--set`.
fn typed_value(key: &str, existing: &toml::Value, raw: &str) -> Result<toml::Value> {
    let bad = |ty: &str| RlError::config(key, format!("`{raw}` is not a valid {ty}"));
    Ok(match existing {
        toml::Value::String(_) => toml::Value::String(raw.to_string()),
        toml::Value::Integer(_) => toml::Value::Integer(raw.parse().map_err(|_| bad("integer"))?),
        toml::Value::Float(_) => toml::Value::Float(raw.parse().map_err(|_| bad("number"))?),
        toml::Value::Boolean(_) => toml::Value::Boolean(raw.parse().map_err(|_| bad("boolean"))?),
        _ => {
            let doc: toml::Table =
                toml::from_str(&format!("v = {raw}")).map_err(|_| bad("TOML value"))?;
            doc["v"].clone()
        }
    })
}

/// Applies one `key=value` override to `value`, typed by the existing entry.
pub fn apply_set(value: &mut toml::Value, assignment: &str) -> Result<()> {
    let (key, raw) = assignment.split_once('=').ok_or_else(|| {
        RlError::config(
            assignment,
            "an override must look like key=value (dotted key)",
        )
    })?;
    let key = key.trim();
    let mut cur = value;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let table = cur
            .as_table_mut()
            .ok_or_else(|| RlError::config(key, "is not a section"))?;
        let slot = table
            .get_mut(*part)
            .ok_or_else(|| RlError::config(parts[..=i].join("."), "unknown key"))?;
        if i + 1 == parts.len() {
            if slot.is_table() {
                return Err(RlError::config(key, "is a section; set one of its keys"));
            }
            *slot = typed_value(key, slot, raw.trim())?;
            return Ok(());
        }
        cur = slot;
    }
    Err(RlError::config(key, "empty key"))
}
