"""HICRA and the hicra reward inside verl (written against verl 0.9.1, its default V1
trainer, ``trainer.use_v1=True``; the legacy ``ray_trainer`` path is patched too).

- :func:`compute_score` has verl's ``custom_reward_function`` signature.
- :func:`hicra_advantage` is an advantage estimator with verl's registry signature plus a
  ``responses`` argument (the ``(B, T)`` response token ids). verl's ``compute_advantage``
  hands registry estimators only rewards, masks and uids, so:
- :func:`patch_compute_advantage` registers the estimator under ``"hicra"`` and wraps
  ``compute_advantage`` so that, for ``algorithm.adv_estimator=hicra``, the estimator also
  gets ``data.batch["responses"]`` (the V1 trainer's advantage step does not fetch them
  from its transfer queue, so the patch adds ``"responses"`` to that fetch).
- :class:`HicraTaskRunner` applies the patch inside verl's Ray task-runner process, and
  ``python -m hicra.verl <verl overrides>`` launches verl's ``main_ppo`` with it. HICRA
  settings come from the config: ``+hicra.alpha=0.2 +hicra.variant=paper
  +hicra.grams=paper`` (or a gram-file path).

Only the variants that need no token entropies run here (``paper``, ``placebo``, ``none``):
verl computes no per-token entropies before the advantage step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from hicra.advantages import apply_hicra
from hicra.grams import StrategicGrams
from hicra.verify import grade

VERL_VERSION = "0.9.1"
ESTIMATOR_NAME = "hicra"
_VARIANTS_WITHOUT_ENTROPY = ("paper", "placebo", "none")


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


_settings = HicraSettings()
_calls = 0


def configure(tokenizer: Any, grams: Any = "paper", alpha: float = 0.2, variant: str = "paper", seed: int = 0) -> HicraSettings:
    """Sets the tokenizer (to decode response ids), the grams and the HICRA settings."""
    if variant not in _VARIANTS_WITHOUT_ENTROPY:
        raise ValueError(
            f"HICRA variant {variant!r} is not available in verl: verl passes no per-token entropies "
            f"to advantage estimators (use one of {', '.join(_VARIANTS_WITHOUT_ENTROPY)})"
        )
    global _settings
    _settings = HicraSettings(tokenizer, StrategicGrams.load(grams), float(alpha), variant, int(seed))
    return _settings


def grpo_outcome_advantage(scores, index, epsilon: float = 1e-6, norm_adv_by_std: bool = True):
    """GRPO outcome advantage per response: score minus its group's mean, divided by the
    group's (unbiased) std plus ``epsilon`` when ``norm_adv_by_std``; groups of one get 0."""
    import torch

    index = np.asarray(index, dtype=object)
    out = torch.zeros_like(scores)
    for uid in dict.fromkeys(index.tolist()):
        rows = torch.as_tensor(np.flatnonzero(index == uid), device=scores.device)
        s = scores[rows]
        if len(rows) == 1:
            continue
        centred = s - s.mean()
        out[rows] = centred / (s.std() + epsilon) if norm_adv_by_std else centred
    return out


def hicra_advantage(
    token_level_rewards,
    response_mask,
    index=None,
    epsilon: float = 1e-6,
    norm_adv_by_std_in_grpo: bool = True,
    config: Any = None,
    responses=None,
    **kwargs: Any,
):
    """GRPO outcome advantages turned into HICRA per-token advantages: ``(advantages, returns)``,
    both ``(B, T)``, zero outside ``response_mask``."""
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
    if index is None:
        index = np.arange(token_level_rewards.shape[0])
    mask = response_mask.bool()
    scores = (token_level_rewards * mask).sum(dim=-1)
    outcome = grpo_outcome_advantage(scores, index, epsilon, norm_adv_by_std_in_grpo)
    planning = s.grams.planning_mask(s.tokenizer, responses, mask)
    _calls += 1
    advantages = apply_hicra(
        outcome, planning, mask=mask, alpha=s.alpha, variant=s.variant, seed=(s.seed * 1_000_003 + _calls) % 2**64
    )
    advantages = advantages.to(token_level_rewards.dtype)
    return advantages, advantages


def register() -> None:
    """Registers :func:`hicra_advantage` in verl's estimator registry under ``"hicra"``."""
    from verl.trainer.ppo import core_algos

    core_algos.register_adv_est(ESTIMATOR_NAME)(hicra_advantage)


def _is_hicra(adv_estimator: Any) -> bool:
    return getattr(adv_estimator, "value", adv_estimator) == ESTIMATOR_NAME


def _with_responses(compute_advantage):
    """Wraps verl's ``compute_advantage(data, adv_estimator, ...)`` to hand HICRA the ids."""
    if getattr(compute_advantage, "_hicra_patched", False):
        return compute_advantage

    def patched(data, adv_estimator, *args, **kwargs):
        if not _is_hicra(adv_estimator):
            return compute_advantage(data, adv_estimator, *args, **kwargs)
        if "responses" not in data.batch.keys():
            raise ValueError("the batch holds no 'responses': hicra needs the response token ids")
        if "response_mask" not in data.batch.keys():
            raise ValueError("the batch holds no 'response_mask'")
        advantages, returns = hicra_advantage(
            token_level_rewards=data.batch["token_level_rewards"],
            response_mask=data.batch["response_mask"],
            index=data.non_tensor_batch.get("uid"),
            norm_adv_by_std_in_grpo=kwargs.get("norm_adv_by_std_in_grpo", True),
            config=kwargs.get("config"),
            responses=data.batch["responses"],
        )
        data.batch["advantages"] = advantages
        data.batch["returns"] = returns
        return data

    patched._hicra_patched = True
    patched.__wrapped__ = compute_advantage
    return patched


class _FetchResponsesToo:
    """Proxy for the V1 trainer's transfer-queue module: the advantage step's fetch (the one
    asking for ``rm_scores`` and ``uid``) also returns ``responses``."""

    def __init__(self, tq: Any):
        self._tq = tq

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tq, name)

    def kv_batch_get(self, *args: Any, **kwargs: Any) -> Any:
        fields = kwargs.get("select_fields")
        if fields and "rm_scores" in fields and "uid" in fields and "responses" not in fields:
            kwargs["select_fields"] = [*fields, "responses"]
        return self._tq.kv_batch_get(*args, **kwargs)


def patch_compute_advantage() -> None:
    """Registers the estimator and patches verl's advantage step (idempotent)."""
    register()
    from verl.trainer.ppo import ray_trainer

    ray_trainer.compute_advantage = _with_responses(ray_trainer.compute_advantage)
    try:
        from verl.trainer.ppo.v1 import trainer_base, utils
    except ImportError:  # V1 needs the `transferqueue` package; the legacy path still works
        return
    utils.compute_advantage = _with_responses(utils.compute_advantage)
    if not isinstance(trainer_base.tq, _FetchResponsesToo):
        trainer_base.tq = _FetchResponsesToo(trainer_base.tq)


def configure_from_verl_config(config: Any) -> HicraSettings:
    """Reads ``hicra.{alpha,variant,grams,seed}`` from a verl config and loads the tokenizer
    of ``actor_rollout_ref.model.path``."""
    from transformers import AutoTokenizer

    section = config.get("hicra", None) or {}
    path = config.actor_rollout_ref.model.path
    trust = bool(config.actor_rollout_ref.model.get("trust_remote_code", False))
    return configure(
        AutoTokenizer.from_pretrained(path, trust_remote_code=trust),
        grams=section.get("grams", "paper"),
        alpha=section.get("alpha", 0.2),
        variant=section.get("variant", "paper"),
        seed=section.get("seed", config.get("data", {}).get("seed", 0) or 0),
    )


def _task_runner_class():
    """verl's V1 task runner with HICRA configured and patched inside its Ray process."""
    import ray
    from verl.trainer import main_ppo

    base = main_ppo.TaskRunnerV1
    base = getattr(base, "__ray_actor_class__", base)

    class HicraTaskRunner(base):
        def run(self, config):
            configure_from_verl_config(config)
            patch_compute_advantage()
            return super().run(config)

    return ray.remote(HicraTaskRunner)


def main() -> None:
    """``python -m hicra.verl ...``: verl's ``main_ppo`` with the HICRA task runner."""
    from verl.trainer import main_ppo

    main_ppo.TaskRunnerV1 = _task_runner_class()
    main_ppo.main()


if __name__ == "__main__":
    main()
