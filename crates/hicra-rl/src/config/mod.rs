//! The training configuration: TOML sections with serde (`deny_unknown_fields` everywhere so
//! unknown keys are named; [`sections`], each checking itself), `--set key=value` overrides
//! typed by the existing value ([`overrides`]), up-front validation naming the key, and the
//! fully resolved TOML written to the run directory.

use std::path::Path;

use hicra_model::Precision;
use serde::{Deserialize, Serialize};

use crate::error::{Result, RlError};
use overrides::{apply_set, merge, to_value};
pub use sections::{
    AlgorithmSection, DTypeSpec, DeviceSpec, LabModelSection, ModelSection, OptimSection,
    RolloutSection, SftSection, TaskKind, TaskSection, TrainerSection,
};

mod overrides;
pub mod sections;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Model.
    pub model: ModelSection,
    /// Task.
    pub task: TaskSection,
    /// Rollouts.
    pub rollout: RolloutSection,
    /// Algorithm.
    pub algorithm: AlgorithmSection,
    /// Optimiser.
    pub optim: OptimSection,
    /// Trainer loop.
    pub trainer: TrainerSection,
    /// Supervised warm start.
    pub sft: SftSection,
    /// Lab model shape.
    pub lab_model: LabModelSection,
}

/// The first section of `value` that does not deserialise (to name it in an error).
fn failing_section(value: &toml::Value) -> String {
    fn check<T: serde::de::DeserializeOwned>(v: Option<&toml::Value>) -> bool {
        v.is_none_or(|v| v.clone().try_into::<T>().is_ok())
    }
    type Check = fn(Option<&toml::Value>) -> bool;
    let sections: [(&str, Check); 8] = [
        ("model", check::<ModelSection>),
        ("task", check::<TaskSection>),
        ("rollout", check::<RolloutSection>),
        ("algorithm", check::<AlgorithmSection>),
        ("optim", check::<OptimSection>),
        ("trainer", check::<TrainerSection>),
        ("sft", check::<SftSection>),
        ("lab_model", check::<LabModelSection>),
    ];
    for (name, ok) in sections {
        if !ok(value.get(name)) {
            return name.to_string();
        }
    }
    "config".to_string()
}

impl TrainConfig {
    /// Whether the old log-probs are rescored by the policy before training: asked for, or
    /// needed because rollouts were sampled in another precision than the policy's.
    pub fn rescores_old_logprobs(&self) -> bool {
        self.algorithm.recompute_old_logprobs
            || self.rollout.decode_dtype != Precision::F32
            || self.algorithm.matmul_dtype != Precision::F32
    }

    /// Builds the config from defaults, an optional TOML text (`source` names it in errors),
    /// and `--set` overrides, then validates it.
    pub fn resolve(toml_text: Option<(&str, &str)>, sets: &[String]) -> Result<TrainConfig> {
        let mut value = to_value(&TrainConfig::default());
        if let Some((source, text)) = toml_text {
            let user: toml::Value = toml::from_str(text)
                .map_err(|e| RlError::config(source, format!("invalid TOML: {e}")))?;
            merge(&mut value, user, "").map_err(|e| match e {
                RlError::Config { key, message } => {
                    RlError::config(key, format!("{message} (in {source})"))
                }
                other => other,
            })?;
        }
        for s in sets {
            apply_set(&mut value, s)?;
        }
        let config: TrainConfig = value.clone().try_into().map_err(|e: toml::de::Error| {
            RlError::config(failing_section(&value), e.message().to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads `path` (if given) and applies overrides.
    pub fn load(path: Option<&Path>, sets: &[String]) -> Result<TrainConfig> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| RlError::io(p, e))?;
                Self::resolve(Some((&p.display().to_string(), &text)), sets)
            }
            None => Self::resolve(None, sets),
        }
    }

    /// The fully resolved TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises to TOML")
    }

    /// Prompts per step.
    pub fn prompts_per_step(&self) -> usize {
        self.rollout.batch_size / self.rollout.group_size.max(1)
    }

    /// Checks impossible combinations, section by section, naming the key.
    pub fn validate(&self) -> Result<()> {
        self.rollout.validate()?;
        self.algorithm.validate(self.prompts_per_step())?;
        self.optim.validate()?;
        self.trainer.validate()?;
        self.task.validate()?;
        self.sft.validate()?;
        self.lab_model.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hicra::HicraVariant;

    #[test]
    fn file_and_overrides_are_applied_with_types() {
        let text = "[rollout]\ngroup_size = 4\nbatch_size = 16\n[algorithm.hicra]\nvariant = \"placebo\"\n";
        let c = TrainConfig::resolve(
            Some(("x.toml", text)),
            &[
                "optim.lr=0.001".into(),
                "algorithm.kl_coef=0.01".into(),
                "trainer.steps=7".into(),
                "algorithm.dynamic_sampling=true".into(),
                "algorithm.hicra.variant=released".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.rollout.group_size, 4);
        assert_eq!(c.optim.lr, 0.001);
        assert_eq!(c.trainer.steps, 7);
        assert!(c.algorithm.dynamic_sampling);
        assert_eq!(c.algorithm.hicra.variant, HicraVariant::Released);
        // resolved TOML round-trips
        let again = TrainConfig::resolve(Some(("r", &c.to_toml())), &[]).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e =
            TrainConfig::resolve(Some(("x.toml", "[rollout]\ngroup_sise = 4\n")), &[]).unwrap_err();
        assert!(e.to_string().contains("rollout.group_sise"), "{e}");
        let e = TrainConfig::resolve(None, &["optim.learning_rate=1".into()]).unwrap_err();
        assert!(e.to_string().contains("optim.learning_rate"), "{e}");
    }

    #[test]
    fn wrong_types_are_named() {
        let e = TrainConfig::resolve(None, &["trainer.steps=many".into()]).unwrap_err();
        assert!(e.to_string().contains("trainer.steps"), "{e}");
        let e = TrainConfig::resolve(Some(("x.toml", "[trainer]\nsteps = \"ten\"\n")), &[])
            .unwrap_err();
        assert!(e.to_string().contains("trainer.steps"), "{e}");
        let e = TrainConfig::resolve(None, &["algorithm.advantage=ppo".into()]).unwrap_err();
        assert!(
            e.to_string().contains("ppo") && e.to_string().contains("algorithm"),
            "{e}"
        );
    }

    #[test]
    fn impossible_combinations_are_rejected_up_front() {
        let e = TrainConfig::resolve(None, &["rollout.batch_size=10".into()]).unwrap_err();
        assert!(e.to_string().contains("rollout.batch_size"), "{e}");
        let e = TrainConfig::resolve(None, &["algorithm.mini_batches=3".into()]).unwrap_err();
        assert!(e.to_string().contains("algorithm.mini_batches"), "{e}");
        let e = TrainConfig::resolve(None, &["algorithm.dual_clip=0.5".into()]).unwrap_err();
        assert!(e.to_string().contains("algorithm.dual_clip"), "{e}");
    }
}
