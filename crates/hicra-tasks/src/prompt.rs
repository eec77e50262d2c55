//! Prompt formatting: a problem becomes chat messages (optional system prompt, the problem,
//! an instruction suffix) or one raw text prompt. Rendering messages with a model's chat
//! template is the caller's job (`hicra_model::ChatTemplate`).

use serde::{Deserialize, Serialize};

use crate::problem::{Message, Problem, PromptSource};

/// The usual math instruction (Qwen2.5-Math / the paper's evaluation style).
pub const BOXED_INSTRUCTION: &str =
    "Please reason step by step, and put your final answer within \\boxed{}.";

/// Whether prompts are chat conversations or raw text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptStyle {
    /// Chat messages, to be rendered with the model's chat template.
    #[default]
    Chat,
    /// One text prompt, no chat template (base models, the reasoning lab).
    Raw,
}

/// How problems are turned into prompts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptFormat {
    /// Chat or raw.
    pub style: PromptStyle,
    /// An optional system prompt (chat: a system message; raw: a first paragraph).
    pub system: Option<String>,
    /// Appended to the problem text on a new line (e.g. [`BOXED_INSTRUCTION`]).
    pub instruction: Option<String>,
}

impl Default for PromptFormat {
    fn default() -> Self {
        Self {
            style: PromptStyle::Chat,
            system: None,
            instruction: Some(BOXED_INSTRUCTION.to_string()),
        }
    }
}

/// A formatted prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FormattedPrompt {
    /// Messages for a chat template.
    Chat(Vec<Message>),
    /// Text to feed the model as is.
    Raw(String),
}

impl FormattedPrompt {
    /// The messages, if this is a chat prompt.
    pub fn messages(&self) -> Option<&[Message]> {
        match self {
            FormattedPrompt::Chat(messages) => Some(messages),
            FormattedPrompt::Raw(_) => None,
        }
    }

    /// Plain text for a model without a chat template: raw text as is; messages'
    /// contents joined by blank lines.
    pub fn to_plain_text(&self) -> String {
        match self {
            FormattedPrompt::Raw(text) => text.clone(),
            FormattedPrompt::Chat(messages) => messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n\n"),
        }
    }
}

impl PromptFormat {
    /// A raw-text format with no system prompt and no instruction.
    pub fn raw() -> Self {
        Self {
            style: PromptStyle::Raw,
            system: None,
            instruction: None,
        }
    }

    /// Formats a problem. A conversation given by the data set (verl layout) is kept as is,
    /// except that the system prompt is added when it has none.
    pub fn format(&self, problem: &Problem) -> FormattedPrompt {
        let messages = match &problem.prompt {
            PromptSource::Text(text) => {
                let mut messages = Vec::with_capacity(2);
                if let Some(system) = &self.system {
                    messages.push(Message::system(system.clone()));
                }
                messages.push(Message::user(self.with_instruction(text)));
                messages
            }
            PromptSource::Messages(given) => {
                let mut messages = Vec::with_capacity(given.len() + 1);
                if let Some(system) = &self.system
                    && !given.iter().any(|m| m.role == "system")
                {
                    messages.push(Message::system(system.clone()));
                }
                messages.extend(given.iter().cloned());
                messages
            }
        };
        match self.style {
            PromptStyle::Chat => FormattedPrompt::Chat(messages),
            PromptStyle::Raw => {
                FormattedPrompt::Raw(FormattedPrompt::Chat(messages).to_plain_text())
            }
        }
    }

    fn with_instruction(&self, text: &str) -> String {
        match &self.instruction {
            Some(instruction) if !instruction.is_empty() => format!("{text}\n{instruction}"),
            _ => text.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problem(prompt: PromptSource) -> Problem {
        Problem {
            id: "1".into(),
            prompt,
            gold: json!("2"),
            data_source: "t".into(),
        }
    }

    #[test]
    fn chat_format_adds_system_and_instruction() {
        let format = PromptFormat {
            system: Some("Be brief.".into()),
            ..PromptFormat::default()
        };
        let out = format.format(&problem(PromptSource::Text("1+1?".into())));
        assert_eq!(
            out,
            FormattedPrompt::Chat(vec![
                Message::system("Be brief."),
                Message::user(format!("1+1?\n{BOXED_INSTRUCTION}")),
            ])
        );
    }

    #[test]
    fn raw_format_is_plain_text() {
        assert_eq!(
            PromptFormat::raw().format(&problem(PromptSource::Text("Q: 2+2 =\n".into()))),
            FormattedPrompt::Raw("Q: 2+2 =\n".into())
        );
        let format = PromptFormat {
            style: PromptStyle::Raw,
            system: Some("S".into()),
            instruction: Some("I".into()),
        };
        assert_eq!(
            format.format(&problem(PromptSource::Text("P".into()))),
            FormattedPrompt::Raw("S\n\nP\nI".into())
        );
    }

    #[test]
    fn given_conversations_are_kept_and_get_a_missing_system_prompt() {
        let given = vec![Message::system("own"), Message::user("q")];
        let format = PromptFormat {
            system: Some("mine".into()),
            ..PromptFormat::default()
        };
        assert_eq!(
            format.format(&problem(PromptSource::Messages(given.clone()))),
            FormattedPrompt::Chat(given)
        );
        let out = format.format(&problem(PromptSource::Messages(vec![Message::user("q")])));
        assert_eq!(out.messages().unwrap()[0], Message::system("mine"));
    }
}
