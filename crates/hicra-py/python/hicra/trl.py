"""HICRA inside TRL's GRPO trainer (written against TRL 1.16).

:class:`HicraGRPOTrainer` calls TRL's ``_generate_and_score_completions`` unchanged (so
every generation backend, vLLM server and colocate modes included, works as before), then
replaces its ``(B,)`` ``advantages`` with ``(B, T)`` per-token HICRA advantages. TRL's
``_compute_loss`` unsqueezes ``advantages`` only when it is 1-D, so per-token advantages
reach the clipped objective as they are; no part of the loss is copied or overridden.

Logged through TRL's metrics (averaged per logging step): ``hicra/planning_token_frac``
(planning tokens / completion tokens), ``hicra/semantic_entropy`` (gram occurrences pooled
over the step's completions, natural log), ``hicra/conditional_entropy``, and with
``hicra_token_entropy`` (default on) ``hicra/token_entropy_planning`` and
``hicra/token_entropy_execution`` (mean policy entropy over those tokens; this costs one
extra no-grad forward pass per generation batch).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
from accelerate.utils import gather_object
from trl import GRPOConfig, GRPOTrainer

from hicra.advantages import VARIANTS, apply_hicra
from hicra.grams import StrategicGrams

# The multimodal inputs TRL's forward helper accepts, passed through when present.
_FORWARD_KEYS = (
    "pixel_values",
    "image_grid_thw",
    "num_images",
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
)


@dataclass
class HicraGRPOConfig(GRPOConfig):
    """``GRPOConfig`` plus the HICRA settings."""

    hicra_alpha: float = field(default=0.2, metadata={"help": "HICRA amplification alpha (paper: 0.2)."})
    hicra_variant: str = field(
        default="paper",
        metadata={"help": "paper, released, entropy, placebo or none (see hicra.advantages)."},
    )
    strategic_grams: str = field(
        default="paper",
        metadata={"help": "'paper' (the shipped list) or a path to a gram file, one gram per line."},
    )
    hicra_entropy_quantile: float = field(
        default=0.7,
        metadata={"help": "Tokens above this quantile of their response's entropy are high-entropy."},
    )
    hicra_correct_reward: float = field(
        default=1.0,
        metadata={"help": "released variant: a completion is correct when its weighted reward is at least this."},
    )
    hicra_token_entropy: bool = field(
        default=True,
        metadata={"help": "Compute per-token policy entropy to log planning vs execution entropy."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.hicra_variant not in VARIANTS:
            raise ValueError(
                f"hicra_variant {self.hicra_variant!r} is unknown (expected one of {', '.join(VARIANTS)})"
            )
        if not 0.0 <= self.hicra_entropy_quantile <= 1.0:
            raise ValueError(f"hicra_entropy_quantile {self.hicra_entropy_quantile} is outside [0, 1]")


class HicraGRPOTrainer(GRPOTrainer):
    """TRL's ``GRPOTrainer`` with HICRA per-token advantages."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, HicraGRPOConfig):
            raise TypeError("HicraGRPOTrainer needs args=HicraGRPOConfig(...)")
        self.strategic_grams = StrategicGrams.load(self.args.strategic_grams)
        self._hicra_rewards: Optional[torch.Tensor] = None
        self._hicra_batches = 0

    # TRL gathers the rewards of all processes here; HICRA's `released` variant needs them.
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._hicra_rewards = rewards
        return rewards

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        args = self.args
        mode = "train" if self.model.training else "eval"
        completion_ids = output["completion_ids"]
        mask = output["completion_mask"].bool()
        tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        planning = self.strategic_grams.planning_mask(tokenizer, completion_ids, mask)

        variant = args.hicra_variant
        needs_entropy = variant in ("released", "entropy")
        entropy = None
        if needs_entropy or args.hicra_token_entropy:
            entropy = self._hicra_token_entropies(output)
        correct = self._hicra_correct(len(completion_ids)) if variant == "released" else None
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        group_size = self._hicra_group_size(len(completion_ids), num_generations, variant)

        seed = (int(args.seed) * 1_000_003 + self._hicra_batches) % 2**64
        self._hicra_batches += 1
        advantages = output["advantages"]
        per_token = apply_hicra(
            advantages,
            planning,
            mask=mask,
            alpha=args.hicra_alpha,
            variant=variant,
            entropy=None if entropy is None else entropy,
            correct=correct,
            group_size=group_size,
            seed=seed,
            entropy_quantile=args.hicra_entropy_quantile,
        )
        output["advantages"] = per_token.to(device=advantages.device, dtype=advantages.dtype)
        self._hicra_log(mode, completion_ids, mask, planning, entropy, tokenizer)
        return output

    @torch.no_grad()
    def _hicra_token_entropies(self, output: dict) -> torch.Tensor:
        """``(B, T)`` next-token entropy of the current policy at each completion token."""
        ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
        attention = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
        accepted = inspect.signature(self._get_per_token_logps_and_entropies).parameters
        extra = {k: output[k] for k in _FORWARD_KEYS if k in output and k in accepted}
        batch_size = (
            self.args.per_device_train_batch_size if self.model.training else self.args.per_device_eval_batch_size
        )
        _, entropies, _ = self._get_per_token_logps_and_entropies(
            self.model,
            ids,
            attention,
            output["completion_ids"].size(1),
            batch_size=batch_size,
            compute_entropy=True,
            **extra,
        )
        return entropies.float()

    def _hicra_correct(self, local: int) -> np.ndarray:
        """This process's completions whose weighted reward reaches ``hicra_correct_reward``."""
        rewards = self._hicra_rewards
        weights = self.reward_weights.to(rewards.device).unsqueeze(0)
        total = (rewards * weights).nansum(dim=1)
        start = self.accelerator.process_index * local
        return (total[start : start + local] >= self.args.hicra_correct_reward).cpu().numpy()

    def _hicra_group_size(self, local: int, num_generations: int, variant: str) -> Optional[int]:
        """Responses per group within this process's slice (only `released` uses groups)."""
        start = self.accelerator.process_index * local
        if local % num_generations == 0 and start % num_generations == 0:
            return num_generations
        if variant == "released":
            raise ValueError(
                f"the released HICRA variant needs whole groups on each process, but this process "
                f"holds {local} completions for groups of {num_generations}; make "
                f"per_device_train_batch_size * steps_per_generation a multiple of num_generations"
            )
        return None

    def _hicra_log(self, mode, completion_ids, mask, planning, entropy, tokenizer) -> None:
        device = self.accelerator.device
        plan = torch.as_tensor(planning, device=device) & mask
        counts = torch.stack([plan.sum(), mask.sum()]).float()
        planned, total = self.accelerator.gather(counts).view(-1, 2).sum(dim=0).tolist()
        metrics = self._metrics[mode]
        metrics["hicra/planning_token_frac"].append(planned / total if total else 0.0)

        texts = [
            tokenizer.decode(ids[m].tolist(), skip_special_tokens=True)
            for ids, m in zip(completion_ids.cpu(), mask.cpu())
        ]
        texts = gather_object(texts)
        metrics["hicra/semantic_entropy"].append(self.strategic_grams.semantic_entropy(texts))
        metrics["hicra/conditional_entropy"].append(self.strategic_grams.conditional_entropy(texts))

        if entropy is not None:
            ent = entropy.to(device)
            execution = mask & ~plan
            sums = torch.stack([(ent * plan).sum(), plan.sum(), (ent * execution).sum(), execution.sum()]).float()
            p_sum, p_n, e_sum, e_n = self.accelerator.gather(sums).view(-1, 4).sum(dim=0).tolist()
            if p_n:
                metrics["hicra/token_entropy_planning"].append(p_sum / p_n)
            if e_n:
                metrics["hicra/token_entropy_execution"].append(e_sum / e_n)
