//! Extraction of the final answer from a model response (and from gold solutions).
//!
//! Strict mode takes only the last `\boxed{…}` / `\fbox{…}` (or `\boxed 5`): the paper's
//! protocol. Flexible mode looks, in order, for:
//! 1. boxed answers ([`boxed_answer`]: the last box; several boxes ending the text listed in
//!    one sentence form one set);
//! 2. the last LaTeX math environment (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`,
//!    `\begin{align*}…`), or a text marker ("final answer is", "the answer is", "answer:",
//!    `<answer>…</answer>`, GSM8K `#### …`) when the marker comes after that environment;
//!    inside an environment the answer is the last side of an `=` chain (`envs`); a plain
//!    value after the environment wins when the environment only labels something or the
//!    value is in a later sentence (`The area of $PQRS$ is 48.`);
//! 3. a whole response of bare LaTeX (`\frac{7}{3}`), then a plain expression ending the
//!    text (`so we get -7/4.`, `1,500m²`); digits inside words (`QX7BR`) are not numbers
//!    (`plain`).
//!
//! The search covers the last 64 KiB of the response (the final answer is at the end; this
//! bounds the work).

pub use crate::boxed::last_boxed;
use crate::boxed::{boxed_answer, only_joins};
use crate::envs::{Env, env_answer, math_envs};
use crate::plain::{
    bare_math, has_prose, has_sentence_break, is_label, plain_tail_at, without_broken_math,
};
use serde::{Deserialize, Serialize};

/// Longest extracted answer kept (bytes); longer ones are cut at a character boundary.
const MAX_EXTRACTED_BYTES: usize = 4_096;
/// Bytes at the end of a response searched for environments and text markers.
const WINDOW: usize = 64 * 1024;

/// How answers are found in a response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExtractMode {
    /// Only `\boxed{}` / `\fbox{}` counts (the paper's protocol).
    StrictBoxed,
    /// Boxed first, then math environments and text markers, then a plain expression.
    #[default]
    Flexible,
}

impl std::str::FromStr for ExtractMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict-boxed" | "strict" => Ok(ExtractMode::StrictBoxed),
            "flexible" => Ok(ExtractMode::Flexible),
            other => Err(format!(
                "unknown extraction mode {other:?} (expected strict-boxed or flexible)"
            )),
        }
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The last [`WINDOW`] bytes of `text`, starting at a character boundary.
fn window(text: &str) -> &str {
    let mut from = text.len().saturating_sub(WINDOW);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..]
}

/// Text markers that introduce a final answer, matched case-insensitively.
const MARKERS: &[&str] = &[
    "final answer is",
    "final answer:",
    "the answer is",
    "answer is",
    "answer:",
    "####",
];

/// The end (byte index after it) of the last marker occurrence in `hay`.
fn last_marker(hay: &str) -> Option<usize> {
    let lower = hay.to_ascii_lowercase();
    MARKERS
        .iter()
        .filter_map(|m| lower.rfind(m).map(|at| at + m.len()))
        .max()
}

/// Cuts a trailing sentence: the text up to the first `.`/`!`/`?` followed by a space or
/// the end (a decimal point is followed by a digit).
fn first_sentence(s: &str) -> &str {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if matches!(c, b'.' | b'!' | b'?') && b.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()) {
            return &s[..i];
        }
    }
    s
}

/// The answer after a text marker: up to the end of its line; an environment or box in
/// that line is the answer; otherwise the first sentence.
fn marker_answer(rest: &str) -> Option<String> {
    let line = rest.split('\n').next().unwrap_or("");
    let line = line
        .trim()
        .trim_start_matches([':', '='])
        .trim()
        .trim_start_matches("is ")
        .trim();
    if let Some(b) = boxed_answer(line) {
        return Some(b);
    }
    let envs = math_envs(line);
    let mut first = None;
    for (k, env) in envs.iter().enumerate() {
        let a = env_answer(env.content);
        if a.trim().is_empty() {
            continue;
        }
        if !is_label(&a) {
            return Some(a);
        }
        // `The largest $k$ is 17.`: the math only names what the sentence states.
        let next = envs.get(k + 1).map_or(line.len(), |e| e.start);
        if let Some((_, value)) = plain_tail_at(first_sentence(&line[env.end..next])) {
            return Some(value);
        }
        first.get_or_insert(a);
    }
    if first.is_some() {
        return first;
    }
    let text = first_sentence(line)
        .trim()
        .trim_end_matches(['.', ' '])
        .trim_matches('$')
        .trim();
    let text = text.strip_prefix("\\(").unwrap_or(text);
    let text = text.strip_suffix("\\)").unwrap_or(text).trim();
    if has_prose(text)
        && let Some((_, value)) = plain_tail_at(text)
    {
        // `Answer: the smallest n is 3`.
        return Some(value);
    }
    (!text.is_empty()).then(|| text.to_string())
}

/// The content of the last `<answer>…</answer>` (an unclosed tag runs to the end).
fn answer_tag(hay: &str) -> Option<(usize, String)> {
    let lower = hay.to_ascii_lowercase();
    let open = lower.rfind("<answer>")? + "<answer>".len();
    let inner = &hay[open..];
    let inner = match lower[open..].find("</answer>") {
        Some(close) => &inner[..close],
        None => inner,
    };
    let inner = inner.trim();
    if inner.is_empty() {
        return None;
    }
    let answer = extract_answer(inner, ExtractMode::Flexible).unwrap_or_else(|| inner.into());
    Some((open, answer))
}

/// The answer stated by environments and markers (step 2 of the module docs).
fn stated_answer(hay: &str) -> Option<String> {
    if let Some((_, a)) = answer_tag(hay) {
        return Some(a);
    }
    let envs = math_envs(hay);
    let marker = last_marker(hay);
    let last = envs
        .iter()
        .rposition(|e| !env_answer(e.content).trim().is_empty());
    match (last, marker) {
        (Some(k), Some(m)) if m > envs[k].start => marker_answer(&hay[m..]),
        (Some(k), _) => {
            Some(value_after(hay, &envs[k]).unwrap_or_else(|| joined_env_answers(hay, &envs[..=k])))
        }
        (None, Some(m)) => marker_answer(&hay[m..]),
        (None, None) => None,
    }
}

/// A plain value stated after the last environment that takes its place: when the
/// environment only names something (`The area of $PQRS$ is 48.`), or when the value is in
/// a later sentence (`… $m = \frac{30}{n}$. Therefore, there are 9 ways.`).
fn value_after(hay: &str, env: &Env<'_>) -> Option<String> {
    let tail = without_broken_math(&hay[env.end..]);
    let (at, value) = plain_tail_at(&tail)?;
    let before = &tail[..at];
    // The sentence ended inside the environment (`… = 2.$$ Therefore`), in the text after
    // it, or a new one starts after a displayed formula (`\[ … \] Therefore`).
    let displayed = ["$$", "\\[", "\\begin"]
        .iter()
        .any(|open| hay[env.start..].starts_with(open));
    let new_sentence = env.content.trim_end().ends_with('.')
        || has_sentence_break(before)
        || displayed
            && before
                .trim_start()
                .starts_with(|c: char| c.is_ascii_uppercase());
    (new_sentence || is_label(&env_answer(env.content))).then_some(value)
}

/// Most environments joined into one set of answers.
const MAX_JOINED_ENVS: usize = 16;

/// The answer of the last environment, with the environments before it that are joined to
/// it only by `,`/`and`/`or` (`$x = 3$ or $x = -5$`) as one list.
fn joined_env_answers(hay: &str, envs: &[Env<'_>]) -> String {
    let mut k = envs.len() - 1;
    let mut answers = vec![env_answer(envs[k].content)];
    while k > 0
        && answers.len() < MAX_JOINED_ENVS
        && only_joins(&hay[envs[k - 1].end..envs[k].start])
        && !hay[envs[k - 1].end..envs[k].start].trim().is_empty()
    {
        k -= 1;
        let a = env_answer(envs[k].content);
        if a.trim().is_empty() {
            break;
        }
        answers.push(a);
    }
    answers.reverse();
    answers.join(", ")
}

/// Extracts the final answer of `response` under `mode`.
pub fn extract_answer(response: &str, mode: ExtractMode) -> Option<String> {
    match mode {
        ExtractMode::StrictBoxed => last_boxed(response),
        ExtractMode::Flexible => {
            let hay = window(response);
            boxed_answer(hay)
                .or_else(|| stated_answer(hay))
                .or_else(|| bare_math(hay))
                .or_else(|| plain_tail_at(&without_broken_math(hay)).map(|(_, a)| a))
                .map(|a| cap(a.trim(), MAX_EXTRACTED_BYTES).to_string())
                .filter(|a| !a.is_empty())
        }
    }
}

/// Whether text outside math environments is prose (words) rather than joiners between
/// answers (`,`, `and`, `or`).
fn has_prose_outside_math(s: &str) -> bool {
    let envs = math_envs(s);
    let mut outside = String::new();
    let mut at = 0;
    for e in &envs {
        outside.push_str(&s[at..e.start]);
        outside.push(' ');
        at = e.end;
    }
    outside.push_str(&s[at..]);
    has_prose(&outside)
}

/// The answer inside a gold string: after the last `####` (GSM8K), the boxed answer of a
/// solution, the stated answer of a worked solution (prose around math), or the string
/// itself when it is a bare answer (`\frac{1}{2}`, `$x \geq 7$`, `$(1,2)$, $(3,4)$`).
pub fn gold_answer(s: &str) -> String {
    if let Some(at) = s.rfind("####") {
        let rest = s[at + 4..].lines().next().unwrap_or("").trim();
        if !rest.is_empty() {
            return rest.to_string();
        }
    }
    if (s.contains("\\boxed") || s.contains("\\fbox"))
        && let Some(b) = boxed_answer(s)
    {
        return b;
    }
    if s.len() > 40
        && has_prose_outside_math(window(s))
        && let Some(a) = stated_answer(window(s))
    {
        return a;
    }
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExtractMode::*;

    fn flex(s: &str) -> Option<String> {
        extract_answer(s, Flexible)
    }

    #[test]
    fn strict_takes_only_the_last_box() {
        assert_eq!(
            extract_answer("so \\boxed{1} then \\boxed{\\frac{1}{2}}.", StrictBoxed).as_deref(),
            Some("\\frac{1}{2}")
        );
        assert_eq!(extract_answer("The answer is 7.", StrictBoxed), None);
        assert_eq!(extract_answer("$\\frac{2}{7}$", StrictBoxed), None);
    }

    #[test]
    fn latex_environments_outside_boxes() {
        assert_eq!(
            flex("Thus $\\frac{2}{7}$.").as_deref(),
            Some("\\frac{2}{7}")
        );
        assert_eq!(flex("So $-\\frac{7}{4}$").as_deref(), Some("-\\frac{7}{4}"));
        assert_eq!(flex("We get $\\frac25$.").as_deref(), Some("\\frac25"));
        assert_eq!(
            flex("Hence \\(x \\in (-3, 8)\\).").as_deref(),
            Some("x \\in (-3, 8)")
        );
        assert_eq!(flex("$$\\sqrt5$$").as_deref(), Some("\\sqrt5"));
        assert_eq!(flex("so \\[ 3k \\]").as_deref(), Some("3k"));
        assert_eq!(
            flex("\\begin{align*} x &= 5+5+1 \\\\ &= 11 \\end{align*}").as_deref(),
            Some("11")
        );
        assert_eq!(flex("so $x = 5+5+1 = 3k$.").as_deref(), Some("3k"));
        assert_eq!(flex("hence $x = 3$.").as_deref(), Some("x = 3"));
        assert_eq!(
            flex("The final answer is $12{,}345$. I hope it is correct.").as_deref(),
            Some("12{,}345")
        );
    }

    #[test]
    fn text_markers_after_the_last_environment() {
        assert_eq!(
            flex("We know $x=2$. The final answer is 7.").as_deref(),
            Some("7")
        );
        assert_eq!(
            flex("The final answer is 12,345. I hope it is correct.").as_deref(),
            Some("12,345")
        );
        assert_eq!(flex("work\n#### 1,234\n").as_deref(), Some("1,234"));
        assert_eq!(flex("<answer> 12 </answer>").as_deref(), Some("12"));
        assert_eq!(flex("Answer: x=3").as_deref(), Some("x=3"));
        assert_eq!(flex("The answer is .7").as_deref(), Some(".7"));
        assert_eq!(
            flex("the answer is: the probability is $\\frac13$").as_deref(),
            Some("\\frac13")
        );
    }

    #[test]
    fn plain_expression_at_the_end() {
        assert_eq!(
            flex("we get 3 apples and then -4.5 more").as_deref(),
            Some("-4.5")
        );
        assert_eq!(flex("so we get -7/4.").as_deref(), Some("-7/4"));
        assert_eq!(flex("The total is 1 000.").as_deref(), Some("1 000"));
        assert_eq!(flex("Its code is QX7BR."), None);
        assert_eq!(flex("nothing here"), None);
        assert_eq!(flex("\\boxed{unclosed"), None);
    }

    #[test]
    fn boxes_come_first_and_several_form_a_set() {
        assert_eq!(
            flex("so $\\boxed{3}$ and $\\boxed{-5}$ while $y$ is free").as_deref(),
            Some("3, -5")
        );
        assert_eq!(flex("\\boxed 5.").as_deref(), Some("5"));
    }

    #[test]
    fn golds_are_extracted_like_responses() {
        assert_eq!(gold_answer("$x \\geq 7$"), "$x \\geq 7$");
        assert_eq!(gold_answer("\\frac{1}{2}"), "\\frac{1}{2}");
        assert_eq!(
            gold_answer("$90^{\\circ}$,$60^{\\circ}$"),
            "$90^{\\circ}$,$60^{\\circ}$"
        );
        assert_eq!(gold_answer("so 3+4=7\n#### 7"), "7");
        assert_eq!(gold_answer("thus $\\boxed{1.6}$ cm"), "1.6");
        assert_eq!(
            gold_answer("Adding the two pieces we find that the total is $\\frac{3}{4}$."),
            "\\frac{3}{4}"
        );
        assert_eq!(gold_answer("Evelyn"), "Evelyn");
    }
}
