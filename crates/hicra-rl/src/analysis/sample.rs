//! One logged response, as every input format is read into: the step and split it belongs to,
//! the group it was sampled in, its prompt and response, and what the run recorded about it.

use serde_json::Value;

/// Training rollouts or validation samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Split {
    /// Training rollouts.
    Train,
    /// Validation samples.
    Val,
}

/// One chat message of a conversational prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// `system`, `user`, `assistant`, …
    pub role: String,
    /// The message text.
    pub content: String,
}

/// A prompt as the run logged it.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Text (a chat template may already be applied).
    Text(String),
    /// Chat messages (the model's chat template renders them).
    Chat(Vec<Turn>),
    /// The run logged no prompt.
    Missing,
}

impl Prompt {
    /// One text for display and grouping (chat messages as `role: content` lines).
    pub fn display(&self) -> String {
        match self {
            Prompt::Text(t) => t.clone(),
            Prompt::Chat(turns) => turns
                .iter()
                .map(|t| format!("{}: {}", t.role, t.content))
                .collect::<Vec<_>>()
                .join("\n"),
            Prompt::Missing => String::new(),
        }
    }
}

/// One response of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Training or validation.
    pub split: Split,
    /// The training step it was logged at.
    pub step: u64,
    /// Its group: samples of one prompt within a step share it (a hash of the uid or prompt).
    pub group: u64,
    /// The prompt.
    pub prompt: Prompt,
    /// The response text.
    pub response: String,
    /// The reward the run gave it.
    pub reward: Option<f64>,
    /// The run's own verdict (verl's `acc`, hicra's `correct`).
    pub correct: Option<bool>,
    /// The gold answer, when logged (for `--regrade`).
    pub gold: Option<Value>,
    /// Its length in tokens as the run counted them (hicra).
    pub length: Option<usize>,
    /// Its planning tokens as the run counted them (hicra).
    pub planning_tokens: Option<usize>,
    /// Whether it is in the population of the step's hierarchy metrics (hicra: the responses
    /// trained on; every response elsewhere).
    pub trained: bool,
    /// Whether generation ended on a stop token that the text leaves out (hicra).
    pub stopped: Option<bool>,
    /// The prompt's and the response's token ids as the run sampled them (hicra), which
    /// rescoring uses instead of tokenising the texts again.
    pub token_ids: Option<(Vec<u32>, Vec<u32>)>,
}

impl Sample {
    /// A response the run logged as text alone: no verdict, reward, gold or token counts yet,
    /// and in the hierarchy population.
    pub fn text(split: Split, step: u64, group: u64, prompt: Prompt, response: String) -> Sample {
        Sample {
            split,
            step,
            group,
            prompt,
            response,
            reward: None,
            correct: None,
            gold: None,
            length: None,
            planning_tokens: None,
            trained: true,
            stopped: None,
            token_ids: None,
        }
    }
}
