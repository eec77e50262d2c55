"""TRL reward functions built on :func:`hicra.verify.grade_batch`.

TRL calls a reward function with ``prompts``, ``completions``, ``completion_ids`` and every
dataset column as keywords; ``completions`` are strings (standard format) or message lists
(conversational format). A row whose gold is ``None`` gets ``None`` (TRL skips it).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from hicra.verify import grade_batch


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: the string itself, or the assistant messages' content."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    parts = []
    for message in completion:
        if message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content", "")
        if isinstance(content, str):
            parts.append(content)
        else:  # a list of typed parts (multimodal chat format)
            parts.extend(p.get("text", "") for p in content if p.get("type", "text") == "text")
    return "\n".join(parts)


def math_reward_for(
    column: str,
    mode: str = "flexible",
    correct: float = 1.0,
    incorrect: float = 0.0,
    threads: Optional[int] = None,
) -> Callable[..., list]:
    """A TRL reward function grading completions against the dataset column ``column``."""

    def reward(prompts=None, completions=None, **kwargs) -> list:
        if completions is None:
            raise ValueError("the reward function needs completions")
        if column not in kwargs:
            raise ValueError(
                f"the dataset has no column {column!r} with the gold answers "
                f"(columns passed: {sorted(k for k in kwargs if not k.startswith('completion'))})"
            )
        golds = list(kwargs[column])
        if len(golds) != len(completions):
            raise ValueError(f"{len(golds)} golds in {column!r} for {len(completions)} completions")
        scored = [i for i, g in enumerate(golds) if g is not None]
        verdicts = grade_batch(
            [golds[i] for i in scored],
            [completion_text(completions[i]) for i in scored],
            mode=mode,
            threads=threads,
        )
        out: list = [None] * len(completions)
        for i, v in zip(scored, verdicts):
            out[i] = correct if v["correct"] else incorrect
        return out

    reward.__name__ = "math_reward" if column == "answer" else f"math_reward_{column}"
    reward.__qualname__ = reward.__name__
    return reward


_answer_reward = math_reward_for("answer")


def math_reward(prompts, completions, answer, **kwargs) -> list:
    """1.0 when a completion's answer matches the ``answer`` column (flexible mode), else 0.0."""
    return _answer_reward(prompts=prompts, completions=completions, answer=answer, **kwargs)
