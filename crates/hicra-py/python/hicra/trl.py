"""HICRA inside TRL's GRPO trainer (written against TRL 1.16; importing this module with any
other TRL release raises :class:`hicra.versions.UnsupportedVersionError`).

:class:`HicraGRPOTrainer` calls TRL's ``_generate_and_score_completions`` unchanged (so
every generation backend, vLLM server and colocate modes included, works as before), then
replaces its ``(B,)`` ``advantages`` with ``(B, T)`` per-token HICRA advantages. TRL's
``_compute_loss`` unsqueezes ``advantages`` only when it is 1-D, so per-token advantages
reach the clipped objective as they are; no part of the loss is copied or overridden.

Several processes (torchrun, accelerate, DeepSpeed): each process turns its own rows into
per-token advantages; the ``released`` variant compares a response with its whole group, so
when a process holds part of a group (``per_device_train_batch_size * steps_per_generation``
not a multiple of ``num_generations``) the processes gather the batch and each takes its rows
of the one result. With LoRA (``peft_config=``) the token-entropy pass runs the adapted policy.

Logged through TRL's metrics (averaged per logging step, over all processes' completions):
``hicra/planning_token_frac`` (planning tokens / completion tokens), ``hicra/semantic_entropy``
(gram occurrences pooled over the step's completions, natural log),
``hicra/conditional_entropy``, and with ``hicra_token_entropy`` (default on)
``hicra/token_entropy_planning`` and ``hicra/token_entropy_execution`` (mean policy entropy
over those tokens; this costs one extra no-grad forward pass per generation batch).
"""

from __future__ import annotations

import inspect
import os
import shlex
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from hicra.versions import require

require("trl", "hicra.trl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from accelerate.utils import gather_object  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from hicra.advantages import VARIANTS, apply_hicra  # noqa: E402
from hicra.grams import StrategicGrams  # noqa: E402

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


def _flag_value(argv: Sequence[str], *names: str) -> Optional[str]:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``argv`` (the last one given)."""
    value = None
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(name + "="):
                value = arg[len(name) + 1 :]
    return value


def _launcher_argv() -> list:
    """The command line of the process that started this one (Linux), or ``[]``."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _is_accelerate_launch(argv: Sequence[str]) -> bool:
    head = [os.path.basename(a) for a in argv[:3]]
    return "accelerate.commands.launch" in argv or ("accelerate" in head and "launch" in argv)


def requested_processes(launcher_argv: Sequence[str]) -> Optional[int]:
    """How many processes an ``accelerate launch`` command line asked for: its
    ``--num_processes``, else ``num_processes`` in its ``--config_file``; ``None`` if neither
    or if the command is no ``accelerate launch``."""
    if not _is_accelerate_launch(launcher_argv):
        return None
    count = _flag_value(launcher_argv, "--num_processes", "--num-processes")
    if count is None:
        config = _flag_value(launcher_argv, "--config_file", "--config-file")
        if config is not None:
            try:
                import yaml

                with open(config) as f:
                    count = (yaml.safe_load(f) or {}).get("num_processes")
            except (OSError, ValueError, AttributeError, ImportError):
                count = None
    try:
        return None if count is None else int(count)
    except (TypeError, ValueError):
        return None


def single_process_warning(
    world_size: int, environ: Mapping[str, str], launcher_argv: Sequence[str]
) -> Optional[str]:
    """The warning for a run that asked for several processes but got one, else ``None``.

    Asked for several: the launching ``accelerate launch`` command line says so, or a launcher
    set ``MASTER_PORT`` (accelerate does only when told to start more than one process) while
    leaving ``WORLD_SIZE`` unset. ``accelerate launch --cpu --num_processes N`` and an
    accelerate config with ``distributed_type: MULTI_CPU`` both start one process without MPI.
    """
    if world_size != 1:
        return None
    asked = requested_processes(launcher_argv)
    rendezvous_only = "MASTER_PORT" in environ and "WORLD_SIZE" not in environ
    if not ((asked is not None and asked > 1) or (asked is None and rendezvous_only)):
        return None
    count = str(asked) if asked else "several"
    launcher = shlex.join(launcher_argv[:6]) + (" ..." if len(launcher_argv) > 6 else "")
    return (
        f"{count} processes were asked for ({launcher or 'MASTER_PORT is set'}) but this run has one "
        f"(WORLD_SIZE is {environ.get('WORLD_SIZE', 'unset')}): on a CPU, accelerate starts a single "
        f"process for --cpu and for distributed_type: MULTI_CPU unless MPI launches it. Start the "
        f"processes with torchrun instead: torchrun --nproc_per_node {asked or 2} your_script.py ..."
    )


class HicraGRPOTrainer(GRPOTrainer):
    """TRL's ``GRPOTrainer`` with HICRA per-token advantages."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, HicraGRPOConfig):
            raise TypeError("HicraGRPOTrainer needs args=HicraGRPOConfig(...)")
        self.strategic_grams = StrategicGrams.load(self.args.strategic_grams)
        self._hicra_rewards: Optional[torch.Tensor] = None
        self._hicra_batches = 0
        message = single_process_warning(self.accelerator.num_processes, os.environ, _launcher_argv())
        if message is not None:
            warnings.warn(message, stacklevel=2)

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
        planning = torch.as_tensor(self.strategic_grams.planning_mask(tokenizer, completion_ids, mask))

        variant = args.hicra_variant
        entropy = None
        if variant in ("released", "entropy") or args.hicra_token_entropy:
            entropy = self._hicra_token_entropies(output)
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        local = len(completion_ids)
        whole_groups = self._hicra_holds_whole_groups(local, num_generations)

        seed = (int(args.seed) * 1_000_003 + self._hicra_batches) % 2**64
        self._hicra_batches += 1
        advantages = output["advantages"]
        settings = dict(alpha=args.hicra_alpha, variant=variant, seed=seed, entropy_quantile=args.hicra_entropy_quantile)
        if variant == "released" and not whole_groups:
            per_token = self._hicra_released_gathered(advantages, planning, mask, entropy, num_generations, settings)
        else:
            per_token = apply_hicra(
                advantages,
                planning,
                mask=mask,
                entropy=entropy,
                correct=self._hicra_correct()[self._hicra_rows(local)] if variant == "released" else None,
                group_size=num_generations if whole_groups else None,
                **settings,
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

    def _hicra_rows(self, local: int) -> slice:
        """This process's rows in the batch gathered from all processes (in process order)."""
        start = self.accelerator.process_index * local
        return slice(start, start + local)

    def _hicra_correct(self) -> np.ndarray:
        """Every process's completions whose weighted reward reaches ``hicra_correct_reward``."""
        rewards = self._hicra_rewards
        weights = self.reward_weights.to(rewards.device).unsqueeze(0)
        total = (rewards * weights).nansum(dim=1)
        return (total >= self.args.hicra_correct_reward).cpu().numpy()

    def _hicra_holds_whole_groups(self, local: int, num_generations: int) -> bool:
        """Whether this process's rows are whole groups. Every process holds as many rows, so
        every process gets the same answer (the gathered path below is collective)."""
        return local % num_generations == 0

    def _hicra_gather_rows(self, x: torch.Tensor) -> torch.Tensor:
        """All processes' ``(B, T)`` rows in process order, padded with 0 to the longest ``T``."""
        x = x.to(self.accelerator.device)
        return self.accelerator.gather(self.accelerator.pad_across_processes(x, dim=1, pad_index=0))

    def _hicra_released_gathered(self, advantages, planning, mask, entropy, num_generations, settings):
        """The released variant when groups span processes: the whole batch on every process,
        one call over whole groups, this process's rows of the result."""
        local, width = mask.shape
        everyone = self.accelerator.gather(advantages.detach().float().to(self.accelerator.device))
        if everyone.numel() % num_generations:
            raise ValueError(
                f"the released HICRA variant needs whole groups of num_generations={num_generations} "
                f"completions, but the processes hold {everyone.numel()} together; make "
                f"per_device_train_batch_size * steps_per_generation * number of processes a multiple "
                f"of num_generations"
            )
        per_token = apply_hicra(
            everyone.cpu(),
            self._hicra_gather_rows(planning.int()).bool().cpu(),
            mask=self._hicra_gather_rows(mask.int()).bool().cpu(),
            entropy=self._hicra_gather_rows(entropy.float()).cpu(),
            correct=self._hicra_correct(),
            group_size=num_generations,
            **settings,
        )
        return per_token[self._hicra_rows(local), :width]

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
