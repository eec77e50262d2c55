//! Text normalisation for gram matching, with a map back to the original text.
//!
//! Matching is case-insensitive and treats typographic apostrophes (’ ‘) as `'`.
//! Lower-casing can change byte lengths (`İ` is 2 bytes, its lower case `i̇` is 3),
//! so [`Normalized`] remembers, for every byte of the normalised text, which
//! character of the original text it came from.

/// Normalises one gram or text fragment (lower case, typographic apostrophes → `'`).
pub fn normalize_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_normalized(c, &mut out);
    }
    out
}

fn push_normalized(c: char, out: &mut String) {
    match c {
        '\u{2019}' | '\u{2018}' => out.push('\''),
        c => out.extend(c.to_lowercase()),
    }
}

/// A normalised text with its byte-offset map back to the original.
pub struct Normalized<'a> {
    original: &'a str,
    /// The normalised text.
    pub text: String,
    /// For each byte of `text`, the byte range of the original character it came from.
    origin: Vec<(usize, usize)>,
}

impl<'a> Normalized<'a> {
    /// Normalises `original`, keeping the offset map.
    pub fn new(original: &'a str) -> Self {
        let mut text = String::with_capacity(original.len());
        let mut origin = Vec::with_capacity(original.len());
        for (start, c) in original.char_indices() {
            let end = start + c.len_utf8();
            let before = text.len();
            push_normalized(c, &mut text);
            origin.resize(text.len(), (start, end));
            debug_assert!(text.len() > before);
        }
        Self {
            original,
            text,
            origin,
        }
    }

    /// The original text.
    pub fn original(&self) -> &'a str {
        self.original
    }

    /// Maps a byte range of the normalised text to the byte range of the original
    /// characters it covers (whole characters, so the result is always a valid slice).
    pub fn to_original(&self, start: usize, end: usize) -> (usize, usize) {
        if start >= end {
            let at = self.origin.get(start).map_or(self.original.len(), |r| r.0);
            return (at, at);
        }
        (self.origin[start].0, self.origin[end - 1].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_and_maps_apostrophes() {
        assert_eq!(normalize_str("Let\u{2019}s TRY \u{2018}x"), "let's try 'x");
    }

    #[test]
    fn maps_offsets_through_length_changing_lowercase() {
        // 'İ' (2 bytes) lower-cases to "i\u{307}" (3 bytes).
        let n = Normalized::new("İx Wait");
        assert_eq!(n.text, "i\u{307}x wait");
        let at = n.text.find("wait").unwrap();
        assert_eq!(n.to_original(at, at + 4), (4, 8));
        assert_eq!(&n.original()[4..8], "Wait");
        // A range starting inside the expansion maps to the whole original char.
        assert_eq!(n.to_original(1, 4), (0, 3));
    }
}
