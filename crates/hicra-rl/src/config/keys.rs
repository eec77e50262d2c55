//! A TOML value as dotted key → leaf value (`trainer.steps` → `100`): how errors and resume
//! checks name a setting.

use std::collections::BTreeMap;

/// Every leaf of `value` under its dotted key, sorted by key.
pub fn leaves(value: &toml::Value) -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            leaf => {
                out.insert(prefix.to_string(), leaf.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}
