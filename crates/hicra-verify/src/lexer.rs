//! Tokeniser for normalised LaTeX / plain-text answers.

use crate::budget::Budget;

/// Longest token stream accepted for one answer.
const MAX_TOKENS: usize = 1_500;

/// One lexical token.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A number literal as written: `12`, `3.50`, `.5`, `4.5e33`.
    Num(String),
    /// A single letter (a variable, or `e`).
    Letter(char),
    /// A command `\name`, or a bare function word like `sin`, `pi`.
    Cmd(String),
    /// A punctuation or operator character.
    Sym(char),
    /// `\{`.
    LSet,
    /// `\}`.
    RSet,
    /// `\\` (matrix row separator).
    RowSep,
    /// `\begin{env}`.
    Begin(String),
    /// `\end{env}`.
    End(String),
}

/// Words written without a backslash that still name functions or constants.
const BARE_WORDS: &[&str] = &[
    "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "ln", "log", "exp", "sqrt", "pi", "infty", "infinity",
];

/// Lexing failed (unknown character or too many tokens).
#[derive(Debug)]
pub struct LexError(pub String);

/// Splits an answer into tokens.
pub fn lex(s: &str, budget: &Budget) -> Result<Vec<Tok>, LexError> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        budget
            .tick(1)
            .map_err(|_| LexError("budget spent".into()))?;
        if toks.len() > MAX_TOKENS {
            return Err(LexError("answer has too many tokens".into()));
        }
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i < chars.len()
                && chars[i] == '.'
                && !chars.get(i + 1).is_some_and(|d| d.is_ascii_alphabetic())
            {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            // Scientific e-notation: 4.5e33, 1e-5.
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '-' || chars[j] == '+') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            toks.push(Tok::Num(chars[start..i].iter().collect()));
            continue;
        }
        if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            if i == start {
                // A non-ASCII letter: one symbol.
                toks.push(Tok::Letter(c));
                i += 1;
                continue;
            }
            let word: String = chars[start..i].iter().collect();
            if BARE_WORDS.contains(&word.as_str()) {
                toks.push(Tok::Cmd(if word == "infinity" {
                    "infty".into()
                } else {
                    word
                }));
            } else if word == "and" || word == "or" {
                toks.push(Tok::Sym(','));
            } else {
                toks.extend(word.chars().map(Tok::Letter));
            }
            continue;
        }
        if c == '\\' {
            let next = chars.get(i + 1).copied();
            match next {
                Some('{') => {
                    toks.push(Tok::LSet);
                    i += 2;
                }
                Some('}') => {
                    toks.push(Tok::RSet);
                    i += 2;
                }
                Some('\\') => {
                    toks.push(Tok::RowSep);
                    i += 2;
                }
                Some('|') => {
                    toks.push(Tok::Sym('|'));
                    i += 2;
                }
                Some(n) if n.is_ascii_alphabetic() => {
                    let start = i + 1;
                    i += 1;
                    while i < chars.len() && chars[i].is_ascii_alphabetic() {
                        i += 1;
                    }
                    let name: String = chars[start..i].iter().collect();
                    if name == "begin" || name == "end" {
                        let (env, next_i) = read_group_word(&chars, i);
                        i = next_i;
                        if name == "begin" {
                            if env == "array" {
                                // Skip the column specification `{cc}`.
                                let (_, after) = read_group_word(&chars, i);
                                i = after;
                            }
                            toks.push(Tok::Begin(env));
                        } else {
                            toks.push(Tok::End(env));
                        }
                    } else {
                        toks.push(Tok::Cmd(name));
                    }
                }
                _ => {
                    i += 2;
                }
            }
            continue;
        }
        // `<=`, `>=`, `!=` (a `!` after a number or bracket is a factorial: `3!=6`).
        if matches!(c, '<' | '>' | '!') && chars.get(i + 1) == Some(&'=') {
            let after_operand = toks
                .last()
                .is_some_and(|t| matches!(t, Tok::Num(_) | Tok::Sym(')' | '}' | ']')));
            if c != '!' || !after_operand {
                let name = match c {
                    '<' => "le",
                    '>' => "ge",
                    _ => "ne",
                };
                toks.push(Tok::Cmd(name.into()));
                i += 2;
                continue;
            }
        }
        match c {
            '+' | '-' | '*' | '/' | '^' | '_' | '!' | '=' | '<' | '>' | ',' | '(' | ')' | '['
            | ']' | '{' | '}' | '|' | '&' | '\'' | '%' | ':' | ';' => {
                toks.push(Tok::Sym(c));
                i += 1;
            }
            _ => return Err(LexError(format!("unexpected character {c:?}"))),
        }
    }
    Ok(toks)
}

/// Reads `{word}` starting at `i` (after optional spaces); returns the word and the next index.
fn read_group_word(chars: &[char], mut i: usize) -> (String, usize) {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    if i < chars.len() && chars[i] == '{' {
        let start = i + 1;
        let mut j = start;
        while j < chars.len() && chars[j] != '}' {
            j += 1;
        }
        let word: String = chars[start..j.min(chars.len())].iter().collect();
        return (word.trim().to_string(), (j + 1).min(chars.len()));
    }
    (String::new(), i)
}

/// Renders tokens back to a compact canonical string (used for names and text fallbacks).
pub fn render(toks: &[Tok]) -> String {
    let mut out = String::new();
    for t in toks {
        match t {
            Tok::Num(s) => out.push_str(s),
            Tok::Letter(c) => out.push(*c),
            Tok::Cmd(n) => {
                out.push('\\');
                out.push_str(n);
            }
            Tok::Sym(c) => out.push(*c),
            Tok::LSet => out.push_str("\\{"),
            Tok::RSet => out.push_str("\\}"),
            Tok::RowSep => out.push_str("\\\\"),
            Tok::Begin(e) => out.push_str(&format!("\\begin{{{e}}}")),
            Tok::End(e) => out.push_str(&format!("\\end{{{e}}}")),
        }
    }
    out
}
