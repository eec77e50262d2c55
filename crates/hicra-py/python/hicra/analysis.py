"""The hierarchy analysis of an RL run, as ``hicra analyze`` computes it, for notebooks.

``analyze(path)`` reads a verl dump folder, a TRL output directory (``completions/``), a hicra
run directory or a generic JSONL file and returns one row per step, training rollouts and
validation apart: reward, accuracy, response length, planning-token share, semantic entropy
of the Strategic Grams and the conditional-entropy control, the share of groups whose rewards
are all equal, pass@k, and, with ``checkpoints``, token entropy and perplexity of planning vs
execution tokens. What each key means is documented with ``hicra analyze``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Sequence, Union

from hicra import _native

PathLike = Union[str, "os.PathLike[str]"]


def _rows(analysis: dict) -> list:
    """One flat dict per run, split and step (``pass_at_k`` spread over ``pass_at_1``, ...)."""
    out = []
    for run in analysis["runs"]:
        for split in ("train", "val"):
            for row in run[split]:
                flat = {"run": run["path"], "format": run["format"], "split": split}
                for key, value in row.items():
                    if key == "pass_at_k":
                        flat.update({f"pass_at_{k}": v for k, v in value.items()})
                    else:
                        flat[key] = value
                out.append(flat)
    return out


def analyze(
    path: Union[PathLike, Sequence[PathLike]],
    format: str = "auto",
    regrade: bool = False,
    tokenizer: Optional[str] = None,
    grams: Optional[PathLike] = None,
    checkpoints: Optional[Union[PathLike, Sequence[Optional[PathLike]]]] = None,
    max_responses_per_step: int = 64,
    base_model: Optional[str] = None,
    device: str = "cpu",
    strict: bool = False,
    as_frame: Optional[bool] = None,
) -> Any:
    """Analyses one run (or several: a list of paths, and then one checkpoint folder per path).

    Returns a pandas DataFrame with one row per run, split and step when pandas is installed
    (``as_frame=None``) or asked for (``as_frame=True``), the whole analysis (runs, reading,
    gram movers, notes) in ``df.attrs["analysis"]``; otherwise (or with ``as_frame=False``) the
    analysis as a dict, ``{"runs": [{"path", "format", "train": [row, ...], "val": [...], ...}]}``.
    ``base_model`` is the model the run started from, rescored as step 0 for the relative
    perplexities (default: the model the run's config names, when found).
    Malformed records are skipped and listed in each run's ``problems`` (``strict=True`` raises
    ``ValueError`` at the first); an unreadable path raises ``ValueError`` naming the formats
    tried.
    """
    paths = [os.fspath(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
    if checkpoints is None:
        folders = []
    elif isinstance(checkpoints, (list, tuple)):
        folders = [None if c is None else os.fspath(c) for c in checkpoints]
    else:
        folders = [os.fspath(checkpoints)]
    if folders and len(folders) != len(paths):
        raise ValueError(f"checkpoints: give one folder per path ({len(folders)} for {len(paths)} paths)")
    text = _native.analyze(
        paths,
        format,
        regrade,
        tokenizer,
        None if grams is None else os.fspath(grams),
        folders,
        max_responses_per_step,
        base_model,
        device,
        strict,
    )
    result = json.loads(text)
    if as_frame is False:
        return result
    try:
        import pandas as pd
    except ImportError:
        if as_frame:
            raise
        return result
    frame = pd.DataFrame(_rows(result))
    frame.attrs["analysis"] = result
    return frame
