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

pub mod keys;
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

/// The first key of `value` whose value does not deserialise (to name it in an error): each
/// leaf is tried alone in the defaults.
fn failing_key(value: &toml::Value) -> String {
    let defaults = to_value(&TrainConfig::default());
    for (key, leaf) in keys::leaves(value) {
        let mut probe = defaults.clone();
        let mut slot = &mut probe;
        for part in key.split('.') {
            if slot.get(part).is_none() {
                break;
            }
            slot = slot.get_mut(part).expect("checked above");
        }
        *slot = leaf;
        if probe.try_into::<TrainConfig>().is_err() {
            return key;
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
            RlError::config(failing_key(&value), e.message().to_string())
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
        self.algorithm.validate_groups(self.rollout.group_size)?;
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
        for (set, key) in [
            ("trainer.steps=-1", "`trainer.steps`"),
            ("rollout.top_k=-3", "`rollout.top_k`"),
            ("task.lab.validation_size=-1", "`task.lab.validation_size`"),
        ] {
            let e = TrainConfig::resolve(None, &[set.into()]).unwrap_err();
            assert!(e.to_string().contains(key), "{set}: {e}");
        }
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

    #[test]
    fn settings_that_train_nothing_are_refused_by_name() {
        for estimator in ["grpo", "dr-grpo", "rloo", "reinforce++-baseline"] {
            let e = TrainConfig::resolve(
                None,
                &[
                    "rollout.group_size=1".into(),
                    format!("algorithm.advantage={estimator}"),
                ],
            )
            .unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("rollout.group_size") && msg.contains(&format!("\"{estimator}\"")),
                "{msg}"
            );
        }
        for (set, key) in [
            ("trainer.steps=0", "trainer.steps"),
            ("sft.steps=0", "sft.steps"),
        ] {
            let e = TrainConfig::resolve(None, &[set.into()]).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
    }
}
