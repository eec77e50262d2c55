"""HICRA's rules written out with numpy from the method's description, independent of hicra's
Rust code: the tests compare the verl estimator with these.

Per response: high-entropy tokens are those strictly above the response's ``q`` quantile of
token entropy (numpy's linear interpolation). ``paper``: ``A + alpha*|A|`` on planning tokens.
``entropy``: the same on high-entropy tokens. ``released``: only correct responses longer
than their group's mean length, factor ``1 + alpha*sign(A)`` on planning or high-entropy
tokens. Groups are the rows sharing a uid; positions outside the mask get 0.
"""

from __future__ import annotations

import numpy as np


def grpo(scores, uids, epsilon=1e-6):
    """(score - group mean) / (unbiased group std + epsilon); 0 in groups of one."""
    scores = np.asarray(scores, dtype=np.float64)
    out = np.zeros_like(scores)
    for uid in set(uids):
        rows = [i for i, u in enumerate(uids) if u == uid]
        if len(rows) > 1:
            s = scores[rows]
            out[rows] = (s - s.mean()) / (s.std(ddof=1) + epsilon)
    return out


def per_token(variant, outcome, planning, mask, entropy, correct, uids, alpha=0.2, q=0.7):
    """``(B, T)`` advantages of ``variant`` for outcome advantages ``outcome`` (``(B,)``)."""
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros(mask.shape, dtype=np.float64)
    lengths = mask.sum(axis=1)
    for i in range(mask.shape[0]):
        valid = mask[i]
        a = float(outcome[i])
        plan = np.asarray(planning[i], dtype=bool)[valid]
        ent = np.asarray(entropy[i], dtype=np.float64)[valid] if entropy is not None else None
        high = ent > np.quantile(ent, q) if ent is not None and ent.size else np.zeros(plan.shape, bool)
        if variant == "paper":
            marked, amplified = plan, a + alpha * abs(a)
        elif variant == "entropy":
            marked, amplified = high, a + alpha * abs(a)
        elif variant == "released":
            group = [j for j, u in enumerate(uids) if u == uids[i]]
            longer = lengths[i] > lengths[group].mean()
            marked = (plan | high) if correct[i] and longer else np.zeros(plan.shape, bool)
            amplified = a * (1 + alpha * np.sign(a))
        else:
            raise ValueError(variant)
        out[i, valid] = np.where(marked, amplified, a)
    return out
