//! Character ↔ byte offsets: Python strings (and Hugging Face offset mappings) count
//! characters, the Rust matchers count UTF-8 bytes.

/// Byte offset of every character boundary of a text (`len = chars + 1`).
pub struct CharIndex {
    byte_of_char: Vec<usize>,
}

impl CharIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> CharIndex {
        let mut byte_of_char: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        byte_of_char.push(text.len());
        CharIndex { byte_of_char }
    }

    /// Number of characters.
    pub fn chars(&self) -> usize {
        self.byte_of_char.len() - 1
    }

    /// Byte offset of character offset `c` (`None` past the end).
    pub fn byte(&self, c: usize) -> Option<usize> {
        self.byte_of_char.get(c).copied()
    }

    /// Character offset of byte offset `b`, which must be a character boundary.
    pub fn char_of_byte(&self, b: usize) -> usize {
        self.byte_of_char.partition_point(|&x| x < b)
    }
}
