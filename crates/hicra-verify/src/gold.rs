//! Gold answers: bare answers, LaTeX, numbers in JSON, lists of acceptable answers, and
//! full reference solutions (GSM8K `#### n`, Minerva `\boxed{…}` inside the solution).

use crate::error::VerifyError;
use crate::extract::gold_answer;

/// A gold (reference) answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Gold {
    /// An answer or a full reference solution as text.
    Text(String),
    /// A number as written in JSON (kept as its exact decimal text).
    Number(String),
    /// Several acceptable answers: a response is correct if it matches any.
    List(Vec<Gold>),
}

impl Gold {
    /// Reads a gold answer from JSON: a string, a number, or a (non-empty) list of those.
    pub fn from_json(v: &serde_json::Value) -> Result<Gold, VerifyError> {
        match v {
            serde_json::Value::String(s) if s.trim().is_empty() => Err(VerifyError::EmptyGold),
            serde_json::Value::String(s) => Ok(Gold::Text(s.clone())),
            serde_json::Value::Number(n) => Ok(Gold::Number(n.to_string())),
            serde_json::Value::Array(items) if items.is_empty() => Err(VerifyError::EmptyGoldList),
            serde_json::Value::Array(items) => Ok(Gold::List(
                items
                    .iter()
                    .map(Gold::from_json)
                    .collect::<Result<_, _>>()?,
            )),
            serde_json::Value::Null => Err(VerifyError::BadGoldType("null".into())),
            serde_json::Value::Bool(_) => Err(VerifyError::BadGoldType("a boolean".into())),
            serde_json::Value::Object(_) => Err(VerifyError::BadGoldType("an object".into())),
        }
    }

    /// The answer strings to compare against (one per acceptable answer).
    pub fn answer_texts(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect(&mut out, 0);
        out
    }

    fn collect(&self, out: &mut Vec<String>, depth: usize) {
        match self {
            Gold::Text(s) => {
                let answer = gold_answer_text(s);
                let whole = s.trim();
                // A gold read as prose around math also stands as written (an OlympiadBench
                // answer like "$f(x)=ax+b$, where $b$ is an arbitrary integer").
                let from_prose = answer != whole
                    && !whole.contains("####")
                    && !whole.contains("\\boxed")
                    && !whole.contains("\\fbox");
                out.push(answer);
                if from_prose {
                    out.push(whole.to_string());
                }
            }
            Gold::Number(s) => out.push(s.clone()),
            Gold::List(items) if depth < 4 => items.iter().for_each(|g| g.collect(out, depth + 1)),
            Gold::List(_) => {}
        }
    }
}

impl From<&str> for Gold {
    fn from(s: &str) -> Gold {
        Gold::Text(s.to_string())
    }
}

impl From<String> for Gold {
    fn from(s: String) -> Gold {
        Gold::Text(s)
    }
}

impl From<f64> for Gold {
    fn from(x: f64) -> Gold {
        Gold::Number(x.to_string())
    }
}

impl From<i64> for Gold {
    fn from(x: i64) -> Gold {
        Gold::Number(x.to_string())
    }
}

/// The final answer inside a gold string (see [`gold_answer`]).
pub fn gold_answer_text(s: &str) -> String {
    gold_answer(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_json_golds() {
        assert_eq!(
            Gold::from_json(&json!(27.0)).map(|g| g.answer_texts()),
            Ok(vec!["27.0".to_string()])
        );
        assert_eq!(
            Gold::from_json(&json!(["$1$", "2"])).map(|g| g.answer_texts()),
            Ok(vec!["$1$".into(), "2".into()])
        );
        assert_eq!(
            Gold::from_json(&json!("so 3+4=7\n#### 7")).map(|g| g.answer_texts()),
            Ok(vec!["7".to_string()])
        );
        assert_eq!(gold_answer_text("thus $\\boxed{1.6}$ cm"), "1.6");
        let prose = "$f(x)=a x+b$, where $b$ is an arbitrary integer and $a>0$";
        assert_eq!(
            Gold::from(prose).answer_texts(),
            vec!["a>0".to_string(), prose.into()]
        );
        assert!(Gold::from_json(&json!(null)).is_err());
        assert_eq!(Gold::from_json(&json!([])), Err(VerifyError::EmptyGoldList));
    }
}
