"""HICRA on per-response advantages: ``(B,)`` outcome advantages and a ``(B, T)`` planning
mask in, ``(B, T)`` per-token advantages out. This calls the Rust trainer's
``hicra_rl::hicra::apply_hicra``, so every variant gives the trainer's numbers.

Variants (``variant=``): ``"paper"`` (``A + alpha*|A|`` on planning tokens, the default),
``"released"`` (the authors' later code: factor ``1 + alpha*sign(A)`` on planning or
high-entropy tokens of correct responses longer than their group's mean; needs ``entropy``
and ``correct``), ``"entropy"`` (the paper's rule on high-entropy tokens; needs
``entropy``), ``"placebo"`` (the paper's rule on as many random tokens as there are planning
tokens, drawn from ``seed``), ``"none"`` (plain outcome advantage on every token).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from hicra import _native

VARIANTS = tuple(_native.VARIANTS)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _raw(x: Any, name: str) -> np.ndarray:
    """``x`` (numpy, torch or a nested list) as a numpy array of its own dtype."""
    if _is_torch(x):
        x = x.detach().cpu()
        x = x.float().numpy() if x.dtype.is_floating_point else x.numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: cannot read as an array ({e})") from None


def _numpy(x: Any, dtype: Any, name: str) -> np.ndarray:
    """``x`` as a contiguous array of ``dtype`` (float32, bool or int64), converting only what
    converts exactly: numbers to float32; booleans, or integers that are all 0 or 1, to bool;
    integers, or floats that are all whole, to int64. Anything else raises ``TypeError`` (a
    dtype that does not fit) or ``ValueError`` (values that do not), naming ``name``."""
    arr = _raw(x, name)
    kind = arr.dtype.kind
    want = np.dtype(dtype)
    if want == np.bool_:
        if kind == "b":
            return np.ascontiguousarray(arr, dtype=np.bool_)
        if kind in "iu":
            if arr.size and not np.isin(arr, (0, 1)).all():
                raise ValueError(f"{name} must hold only 0 and 1 (or booleans)")
            return np.ascontiguousarray(arr, dtype=np.bool_)
        raise TypeError(f"{name} must be boolean (or 0/1 integers), got dtype {arr.dtype}")
    if want == np.int64:
        if kind in "iu":
            return np.ascontiguousarray(arr, dtype=np.int64)
        if kind == "f":
            if not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
                raise ValueError(f"{name} must hold whole numbers, got {arr.ravel()[:4]!r}")
            return np.ascontiguousarray(arr, dtype=np.int64)
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    if kind not in "fiu":
        raise TypeError(f"{name} must be numbers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=want)


def apply_hicra(
    advantages: Any,
    planning: Any,
    *,
    alpha: float = 0.2,
    variant: str = "paper",
    entropy: Any = None,
    correct: Any = None,
    group_size: Optional[int] = None,
    seed: int = 0,
    mask: Any = None,
    lengths: Any = None,
    entropy_quantile: float = 0.7,
    return_marked: bool = False,
):
    """Per-token HICRA advantages, ``(B, T)``.

    - ``advantages``: ``(B,)`` outcome advantage per response (numpy or torch).
    - ``planning``: ``(B, T)`` planning-token flags (padded).
    - ``mask`` (``(B, T)`` response-token mask) or ``lengths`` (``(B,)``, the first
      ``lengths[i]`` positions of row ``i`` are its tokens); default: every position.
      Positions outside the response get 0.
    - ``entropy``: ``(B, T)`` policy entropy per token (``released`` and ``entropy``).
    - ``correct``: ``(B,)`` bool, which responses were graded correct (``released``).
    - ``group_size``: responses per prompt, consecutive (default: the whole batch is one
      group); only ``released`` looks at groups, but it must divide the batch.
    - ``seed``: the placebo's random draw.

    Returns a torch tensor (float32, on ``advantages``' device) when ``advantages`` is one,
    else a float32 numpy array; with ``return_marked=True`` also the ``(B, T)`` bool array of
    the tokens the variant amplified. Bad shapes, a group size that does not divide the batch,
    unknown variants, ``alpha < 0``, non-finite advantages or entropies, non-whole
    ``lengths`` and masks or flags other than 0/1 raise ``ValueError``; arrays of a dtype that
    does not fit (a float or string mask, string advantages) raise ``TypeError``.
    """
    if not isinstance(variant, str):
        raise ValueError(f"variant must be a string, one of {', '.join(VARIANTS)}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise TypeError(f"alpha must be a number, got {type(alpha).__name__}")
    if not (np.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown HICRA variant {variant!r} (expected one of {', '.join(VARIANTS)})")
    adv = _numpy(advantages, np.float32, "advantages")
    plan = _numpy(planning, np.bool_, "planning")
    if adv.ndim != 1:
        raise ValueError(f"advantages must be (B,), got shape {adv.shape}")
    if plan.ndim != 2:
        raise ValueError(f"planning must be (B, T), got shape {plan.shape}")
    if mask is not None and lengths is not None:
        raise ValueError("pass mask or lengths, not both")
    if mask is not None:
        valid = _numpy(mask, np.bool_, "mask")
    elif lengths is not None:
        lens = _numpy(lengths, np.int64, "lengths")
        if lens.shape != (plan.shape[0],):
            raise ValueError(f"lengths must be ({plan.shape[0]},), got shape {lens.shape}")
        if lens.size and (lens.min() < 0 or lens.max() > plan.shape[1]):
            raise ValueError(f"lengths must lie in [0, {plan.shape[1]}]")
        valid = np.arange(plan.shape[1])[None, :] < lens[:, None]
    else:
        valid = np.ones(plan.shape, dtype=bool)
    if valid.ndim != 2:
        raise ValueError(f"mask must be (B, T), got shape {valid.shape}")
    ent = None if entropy is None else _numpy(entropy, np.float32, "entropy")
    if ent is not None and ent.ndim != 2:
        raise ValueError(f"entropy must be (B, T), got shape {ent.shape}")
    if ent is not None and ent.shape == valid.shape and not np.isfinite(ent[valid]).all():
        raise ValueError("entropy must be finite at every response token (found NaN or infinity)")
    cor = None if correct is None else _numpy(correct, np.bool_, "correct")
    if cor is not None and cor.ndim != 1:
        raise ValueError(f"correct must be (B,), got shape {cor.shape}")
    if group_size is not None and (not isinstance(group_size, (int, np.integer)) or group_size < 1):
        raise ValueError(f"group_size must be a positive integer, got {group_size!r}")
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must lie in [0, 2**64), got {seed}")
    out, marked = _native.apply_hicra(
        adv,
        plan,
        np.ascontiguousarray(valid, dtype=np.bool_),
        alpha=float(alpha),
        variant=variant,
        entropy_quantile=float(entropy_quantile),
        entropy=ent,
        correct=cor,
        group_size=None if group_size is None else int(group_size),
        seed=int(seed),
    )
    if _is_torch(advantages):
        import torch

        out = torch.from_numpy(out).to(advantages.device)
        marked = torch.from_numpy(marked).to(advantages.device)
    return (out, marked) if return_marked else out
