"""HICRA and the hicra reward inside verl (written against verl 0.9.1, both its default V1
trainer, ``trainer.use_v1=True``, and the legacy ``ray_trainer`` path; importing this module
where another verl release is installed raises :class:`hicra.versions.UnsupportedVersionError`).

- :func:`compute_score` has verl's ``custom_reward_function`` signature (it needs no verl).
- :func:`hicra_advantage` is an advantage estimator with verl's registry signature plus the
  ``(B, T)`` response token ids (``responses``), the per-token policy ``entropy`` and the
  token-level ``scores``. verl's ``compute_advantage`` hands registry estimators only rewards,
  masks and uids, so:
- :func:`patch_compute_advantage` registers the estimator under ``"hicra"`` and wraps verl's
  advantage step so that, for ``algorithm.adv_estimator=hicra``, the estimator also gets
  ``responses`` and the entropies of verl's old-log-prob pass. The legacy trainer computes
  those entropies (``entropys``, logged as ``actor/entropy``) and drops them; the patch keeps
  a copy under ``hicra_entropy`` for the advantage step. The V1 trainer stores them in its
  transfer queue as ``entropy``; the patch adds ``responses`` and ``entropy`` to the advantage
  step's fetch. So every variant runs in verl: ``paper``, ``placebo``, ``none``, and
  ``released`` / ``entropy``, which use the entropies.
- ``python -m hicra.verl <verl overrides>`` launches verl's ``main_ppo`` with a task runner
  that configures HICRA and applies the patch inside verl's Ray task-runner process. HICRA's
  settings come from the ``hicra`` section the command line adds: ``+hicra.alpha=0.2
  +hicra.variant=paper +hicra.grams=paper`` (or a gram-file path), optionally
  ``+hicra.entropy_quantile=0.7``, ``+hicra.correct_reward=1.0`` and ``+hicra.seed=N``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from hicra.advantages import VARIANTS, apply_hicra
from hicra.grams import StrategicGrams
from hicra.verify import grade
from hicra.versions import SUPPORTED, installed_version, require

VERL_VERSION = SUPPORTED["verl"]
ESTIMATOR_NAME = "hicra"
ENTROPY_VARIANTS = ("released", "entropy")
KEPT_ENTROPY = "hicra_entropy"
"""The legacy trainer's batch key for the old-log-prob pass's entropies kept for HICRA."""
SETTINGS = ("alpha", "variant", "grams", "seed", "entropy_quantile", "correct_reward")
EXAMPLE_OVERRIDES = "+hicra.alpha=0.2 +hicra.variant=paper +hicra.grams=paper"

if installed_version("verl") is not None:
    require("verl", "hicra.verl")


def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any = None, **kwargs: Any) -> float:
    """1.0 when ``solution_str``'s answer matches ``ground_truth`` (flexible mode), else 0.0.
    ``extra_info={"hicra_mode": "strict-boxed"}`` switches to the paper's boxed-only rule."""
    mode = "flexible"
    if isinstance(extra_info, dict):
        mode = extra_info.get("hicra_mode", mode)
    return 1.0 if grade(ground_truth, solution_str, mode=mode)["correct"] else 0.0


@dataclass
class HicraSettings:
    """What the estimator needs besides verl's arguments."""

    tokenizer: Any = None
    grams: Optional[StrategicGrams] = None
    alpha: float = 0.2
    variant: str = "paper"
    seed: int = 0
    entropy_quantile: float = 0.7
    correct_reward: float = 1.0


_settings = HicraSettings()
_calls = 0


def configure(
    tokenizer: Any,
    grams: Any = "paper",
    alpha: float = 0.2,
    variant: str = "paper",
    seed: int = 0,
    entropy_quantile: float = 0.7,
    correct_reward: float = 1.0,
) -> HicraSettings:
    """Sets the tokenizer (to decode response ids), the grams and the HICRA settings.
    ``correct_reward``: the ``released`` variant counts a response correct when its score
    (the sum of its token-level scores) is at least this."""
    if variant not in VARIANTS:
        raise ValueError(f"hicra.variant {variant!r} is unknown (expected one of {', '.join(VARIANTS)})")
    if not 0.0 <= float(entropy_quantile) <= 1.0:
        raise ValueError(f"hicra.entropy_quantile {entropy_quantile} is outside [0, 1]")
    global _settings
    _settings = HicraSettings(
        tokenizer, StrategicGrams.load(grams), float(alpha), variant, int(seed), float(entropy_quantile), float(correct_reward)
    )
    return _settings


def grpo_outcome_advantage(scores, index, epsilon: float = 1e-6, norm_adv_by_std: bool = True):
    """GRPO outcome advantage per response: score minus its group's mean, divided by the
    group's (unbiased) std plus ``epsilon`` when ``norm_adv_by_std``; groups of one get 0."""
    import torch

    out = torch.zeros_like(scores)
    for rows in _groups(index):
        rows = torch.as_tensor(rows, device=scores.device)
        s = scores[rows]
        if len(rows) == 1:
            continue
        centred = s - s.mean()
        out[rows] = centred / (s.std() + epsilon) if norm_adv_by_std else centred
    return out


def _groups(index) -> list:
    """Row numbers of each uid, in order of first appearance."""
    index = np.asarray(index, dtype=object)
    return [np.flatnonzero(index == uid) for uid in dict.fromkeys(index.tolist())]


def _missing_entropy_message(variant: str) -> str:
    return (
        f"HICRA variant {variant!r} needs the per-token entropies of verl's old-log-prob pass: "
        f"launch with `python -m hicra.verl` or call hicra.verl.patch_compute_advantage() in the "
        f"trainer process, and leave algorithm.rollout_correction.bypass_mode off (it skips that "
        f"pass); or use one of paper, placebo, none"
    )


def hicra_advantage(
    token_level_rewards,
    response_mask,
    index=None,
    epsilon: float = 1e-6,
    norm_adv_by_std_in_grpo: bool = True,
    config: Any = None,
    responses=None,
    entropy=None,
    scores=None,
    **kwargs: Any,
):
    """GRPO outcome advantages turned into HICRA per-token advantages: ``(advantages, returns)``,
    both ``(B, T)``, zero outside ``response_mask``.

    ``entropy`` (``(B, T)``) is needed by ``released`` and ``entropy``; ``scores`` (``(B, T)``
    token-level scores, default ``token_level_rewards``) decide which responses ``released``
    counts correct. ``released`` compares each response with the others of its uid."""
    global _calls
    if responses is None:
        raise ValueError(
            "the hicra estimator needs the response token ids, which verl does not pass to "
            "advantage estimators: launch with `python -m hicra.verl` or call "
            "hicra.verl.patch_compute_advantage() in the trainer process"
        )
    s = _settings
    if s.tokenizer is None:
        raise ValueError("hicra.verl.configure(tokenizer, ...) has not been called")
    if s.variant in ENTROPY_VARIANTS and entropy is None:
        raise ValueError(_missing_entropy_message(s.variant))
    if index is None:
        index = np.arange(token_level_rewards.shape[0])
    mask = response_mask.bool()
    outcome = grpo_outcome_advantage((token_level_rewards * mask).sum(dim=-1), index, epsilon, norm_adv_by_std_in_grpo)
    planning = s.grams.planning_mask(s.tokenizer, responses, mask)
    _calls += 1
    common = dict(alpha=s.alpha, variant=s.variant, entropy_quantile=s.entropy_quantile)
    seed = (s.seed * 1_000_003 + _calls) % 2**64
    if s.variant == "released":
        totals = ((token_level_rewards if scores is None else scores) * mask).sum(dim=-1)
        correct = (totals >= s.correct_reward).cpu().numpy()
        advantages = outcome.new_zeros(mask.shape, dtype=outcome.dtype)
        for rows in _groups(index):
            advantages[rows] = apply_hicra(
                outcome[rows], planning[rows], mask=mask[rows], entropy=entropy[rows], correct=correct[rows], seed=seed, **common
            )
    else:
        advantages = apply_hicra(outcome, planning, mask=mask, entropy=entropy, seed=seed, **common)
    advantages = advantages.to(token_level_rewards.dtype)
    return advantages, advantages


def register() -> None:
    """Registers :func:`hicra_advantage` in verl's estimator registry under ``"hicra"``."""
    require("verl", "hicra.verl")
    from verl.trainer.ppo import core_algos

    core_algos.register_adv_est(ESTIMATOR_NAME)(hicra_advantage)


def _is_hicra(adv_estimator: Any) -> bool:
    return getattr(adv_estimator, "value", adv_estimator) == ESTIMATOR_NAME


def _with_hicra_inputs(compute_advantage):
    """Wraps verl's ``compute_advantage(data, adv_estimator, ...)`` to hand HICRA the response
    ids, the kept entropies and the token-level scores."""
    if getattr(compute_advantage, "_hicra_patched", False):
        return compute_advantage
    signature = inspect.signature(compute_advantage)

    def patched(data, adv_estimator, *args, **kwargs):
        kept = data.batch.pop(KEPT_ENTROPY) if KEPT_ENTROPY in data.batch.keys() else None
        if not _is_hicra(adv_estimator):
            return compute_advantage(data, adv_estimator, *args, **kwargs)
        keys = data.batch.keys()
        for key in ("responses", "response_mask", "token_level_rewards"):
            if key not in keys:
                raise ValueError(f"the batch holds no {key!r}, which the hicra estimator needs")
        bound = signature.bind(data, adv_estimator, *args, **kwargs)
        bound.apply_defaults()
        entropy = kept if kept is not None else (data.batch["entropy"] if "entropy" in keys else None)
        advantages, returns = hicra_advantage(
            token_level_rewards=data.batch["token_level_rewards"],
            response_mask=data.batch["response_mask"],
            index=data.non_tensor_batch.get("uid"),
            norm_adv_by_std_in_grpo=bound.arguments.get("norm_adv_by_std_in_grpo", True),
            config=bound.arguments.get("config"),
            responses=data.batch["responses"],
            entropy=entropy,
            scores=data.batch["token_level_scores"] if "token_level_scores" in keys else None,
        )
        data.batch["advantages"] = advantages
        data.batch["returns"] = returns
        return data

    patched._hicra_patched = True
    patched.__wrapped__ = compute_advantage
    return patched


def _keeping_entropy(compute_old_log_prob):
    """Wraps the legacy trainer's ``_compute_old_log_prob``: its ``entropys`` are also kept
    under ``hicra_entropy`` (the trainer pops ``entropys`` after logging them) when the HICRA
    variant uses entropies."""
    if getattr(compute_old_log_prob, "_hicra_patched", False):
        return compute_old_log_prob

    def patched(self, batch, *args, **kwargs):
        result = compute_old_log_prob(self, batch, *args, **kwargs)
        old_log_prob = result[0] if isinstance(result, tuple) else result
        if _settings.variant in ENTROPY_VARIANTS and "entropys" in old_log_prob.batch.keys():
            old_log_prob.batch[KEPT_ENTROPY] = old_log_prob.batch["entropys"]
        return result

    patched._hicra_patched = True
    patched.__wrapped__ = compute_old_log_prob
    return patched


class _FetchHicraInputsToo:
    """Proxy for the V1 trainer's transfer-queue module: the advantage step's fetch (the one
    asking for ``rm_scores`` and ``uid``) also returns ``responses`` and, for the variants
    that use them, the old-log-prob pass's ``entropy``."""

    def __init__(self, tq: Any):
        self._tq = tq

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tq, name)

    def kv_batch_get(self, *args: Any, **kwargs: Any) -> Any:
        fields = kwargs.get("select_fields")
        if fields and "rm_scores" in fields and "uid" in fields:
            extra = ["responses"] + (["entropy"] if _settings.variant in ENTROPY_VARIANTS else [])
            kwargs["select_fields"] = [*fields, *(f for f in extra if f not in fields)]
        return self._tq.kv_batch_get(*args, **kwargs)


def patch_compute_advantage() -> None:
    """Registers the estimator and patches verl's advantage step (idempotent)."""
    register()
    from verl.trainer.ppo import ray_trainer

    ray_trainer.compute_advantage = _with_hicra_inputs(ray_trainer.compute_advantage)
    trainer = ray_trainer.RayPPOTrainer
    trainer._compute_old_log_prob = _keeping_entropy(trainer._compute_old_log_prob)
    try:
        from verl.trainer.ppo.v1 import trainer_base, utils
    except ImportError:  # V1 needs the `transferqueue` package; the legacy path still works
        return
    utils.compute_advantage = _with_hicra_inputs(utils.compute_advantage)
    if not isinstance(trainer_base.tq, _FetchHicraInputsToo):
        trainer_base.tq = _FetchHicraInputsToo(trainer_base.tq)


def check_verl_config(config: Any) -> dict:
    """The ``hicra`` section of a verl config, checked: it must exist with known keys, the
    estimator must be ``hicra``, and variants that use entropies need the old-log-prob pass.
    Raises ``ValueError`` saying which setting to change."""
    section = config.get("hicra", None)
    if not section:
        raise ValueError(
            "the verl config has no hicra section, so HICRA would run with settings nobody chose: "
            f"add them to the command line, e.g. {EXAMPLE_OVERRIDES} (the + adds keys that verl's "
            "own config does not define)"
        )
    section = dict(section)
    unknown = sorted(set(section) - set(SETTINGS))
    if unknown:
        raise ValueError(f"unknown hicra settings {unknown} (known: {', '.join('hicra.' + k for k in SETTINGS)})")
    estimator = config.algorithm.adv_estimator
    if not _is_hicra(estimator):
        raise ValueError(
            f"algorithm.adv_estimator is {getattr(estimator, 'value', estimator)!r}, so the hicra settings would "
            f"be ignored: set algorithm.adv_estimator={ESTIMATOR_NAME}"
        )
    variant = section.get("variant", "paper")
    if variant not in VARIANTS:
        raise ValueError(f"hicra.variant {variant!r} is unknown (expected one of {', '.join(VARIANTS)})")
    rollout_correction = config.algorithm.get("rollout_correction", None) or {}
    if variant in ENTROPY_VARIANTS and rollout_correction.get("bypass_mode", False):
        raise ValueError(_missing_entropy_message(variant))
    return section


def configure_from_verl_config(config: Any) -> HicraSettings:
    """Checks the config (:func:`check_verl_config`), reads ``hicra.*`` and loads the
    tokenizer of ``actor_rollout_ref.model.path``."""
    from transformers import AutoTokenizer

    section = check_verl_config(config)
    path = config.actor_rollout_ref.model.path
    trust = bool(config.actor_rollout_ref.model.get("trust_remote_code", False))
    return configure(
        AutoTokenizer.from_pretrained(path, trust_remote_code=trust),
        grams=section.get("grams", "paper"),
        alpha=section.get("alpha", 0.2),
        variant=section.get("variant", "paper"),
        seed=section.get("seed", config.get("data", {}).get("seed", 0) or 0),
        entropy_quantile=section.get("entropy_quantile", 0.7),
        correct_reward=section.get("correct_reward", 1.0),
    )


def hicra_task_runner(task_runner_class: Any) -> Any:
    """verl's task runner (V1 or legacy) with HICRA configured and patched inside its Ray
    process, where the advantage step runs."""
    import ray

    base = getattr(task_runner_class, "__ray_actor_class__", task_runner_class)

    class HicraTaskRunner(base):
        def run(self, config):
            s = configure_from_verl_config(config)
            patch_compute_advantage()
            print(
                f"hicra: estimator {ESTIMATOR_NAME!r} registered and verl's advantage step patched in the task "
                f"runner; variant {s.variant}, alpha {s.alpha}, {len(s.grams)} grams",
                flush=True,
            )
            return super().run(config)

    options = getattr(task_runner_class, "_default_options", None) or {}
    return ray.remote(**options)(HicraTaskRunner) if options else ray.remote(HicraTaskRunner)


def _running_hicra(run_ppo):
    """Wraps ``main_ppo.run_ppo``: the config is checked before Ray starts, and the task runner
    verl picked (V1 or legacy) runs HICRA."""

    def patched(config, task_runner_class, *args, **kwargs):
        check_verl_config(config)
        return run_ppo(config, hicra_task_runner(task_runner_class), *args, **kwargs)

    return patched


def main() -> None:
    """``python -m hicra.verl ...``: verl's ``main_ppo`` with the HICRA task runner."""
    require("verl", "hicra.verl")
    from verl.trainer import main_ppo

    main_ppo.run_ppo = _running_hicra(main_ppo.run_ppo)
    main_ppo.main()


if __name__ == "__main__":
    main()
