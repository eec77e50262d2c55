"""The math verifier: answer extraction and equivalence, no ``eval``, bounded in time.

``mode`` is ``"flexible"`` (``\\boxed{}`` first, then ``####``, "final answer is", the last
number, ...) or ``"strict-boxed"`` (only ``\\boxed{}``, the paper's protocol). A gold is a
string (a bare answer or a full reference solution such as GSM8K's ``... #### 42``), a
number, or a list of acceptable answers.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from hicra import _native


def grade(gold: Any, response: str, mode: str = "flexible") -> dict:
    """Grades one response: ``{"correct": bool, "extracted": str | None, "reason": str}``."""
    return _native.grade(gold, response, mode)


def grade_batch(
    golds: Sequence[Any],
    responses: Sequence[str],
    mode: str = "flexible",
    threads: Optional[int] = None,
) -> list:
    """Grades ``responses[i]`` against ``golds[i]`` for every ``i``; one dict per pair, in order.

    Releases the GIL and grades in parallel (rayon). ``threads`` sets the number of worker
    threads (default: one per core, or ``RAYON_NUM_THREADS``). ``golds`` and ``responses``
    must be sequences of the same length; a single string for either raises ``TypeError``
    (it would be graded character by character).
    """
    for name, value in (("golds", golds), ("responses", responses)):
        if isinstance(value, (str, bytes)):
            raise TypeError(
                f"{name} must be a sequence with one entry per pair, not a single "
                f"{type(value).__name__} (use hicra.grade for one pair)"
            )
    return _native.grade_batch(golds, responses, mode, threads)
