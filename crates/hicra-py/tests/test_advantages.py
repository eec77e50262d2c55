"""hicra.advantages.apply_hicra against the Rust trainer's function run outside Python."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

import hicra
from hicra.advantages import VARIANTS, apply_hicra


def random_case(rng: np.random.Generator, variant: str, seed: int) -> dict:
    group = int(rng.integers(1, 5))
    b = group * int(rng.integers(1, 4))
    t = int(rng.integers(1, 30))
    lengths = rng.integers(0, t + 1, size=b)
    adv = rng.normal(size=b).astype(np.float32)
    adv[rng.random(b) < 0.2] = 0.0  # zero advantages exercise sign(0)
    return {
        "variant": variant,
        "alpha": float(np.float32(rng.choice([0.2, 0.5, 1.0]))),
        "entropy_quantile": float(np.float32(rng.choice([0.7, 0.5, 0.0, 1.0]))),
        "group_size": group,
        "seed": seed,
        "advantages": adv,
        "planning": rng.random((b, t)) < 0.3,
        "entropy": rng.gamma(1.0, size=(b, t)).astype(np.float32),
        "correct": rng.random(b) < 0.5,
        "lengths": lengths,
    }


def rust_results(reference_bin, cases: list) -> list:
    payload = {"cases": []}
    for c in cases:
        responses = []
        for i, n in enumerate(c["lengths"]):
            responses.append(
                {
                    "advantage": float(c["advantages"][i]),
                    "planning": c["planning"][i, :n].tolist(),
                    "entropy": [float(x) for x in c["entropy"][i, :n]],
                    "correct": bool(c["correct"][i]),
                }
            )
        payload["cases"].append(
            {k: c[k] for k in ("variant", "alpha", "entropy_quantile", "group_size", "seed")}
            | {"responses": responses}
        )
    out = subprocess.run(
        [str(reference_bin)], input=json.dumps(payload), capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)["results"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_python_equals_rust_on_random_inputs(reference_bin, variant):
    rng = np.random.default_rng(abs(hash(variant)) % 2**32)
    cases = [random_case(rng, variant, seed=int(rng.integers(0, 2**63))) for _ in range(60)]
    expected = rust_results(reference_bin, cases)
    amplified = 0
    for c, want in zip(cases, expected):
        assert "error" not in want, want
        got, marked = apply_hicra(
            c["advantages"],
            c["planning"],
            alpha=c["alpha"],
            variant=variant,
            entropy=c["entropy"],
            correct=c["correct"],
            group_size=c["group_size"],
            seed=c["seed"],
            lengths=c["lengths"],
            entropy_quantile=c["entropy_quantile"],
            return_marked=True,
        )
        assert got.dtype == np.float32 and got.shape == c["planning"].shape
        for i, n in enumerate(c["lengths"]):
            np.testing.assert_array_equal(got[i, :n], np.asarray(want["advantages"][i], dtype=np.float32))
            np.testing.assert_array_equal(marked[i, :n], np.asarray(want["marked"][i], dtype=bool))
            assert not got[i, n:].any() and not marked[i, n:].any(), "padding must be 0 / unmarked"
            amplified += int(np.sum(got[i, :n] != c["advantages"][i]))
    if variant == "none":
        assert amplified == 0
    else:
        assert amplified > 0, "random cases should amplify some tokens"


def test_paper_rule_by_hand_and_mask_argument():
    adv = np.array([1.5, -1.5, 0.0], dtype=np.float32)
    planning = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]], dtype=bool)
    mask = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=bool)
    out = apply_hicra(adv, planning, mask=mask)
    f = np.float32
    np.testing.assert_array_equal(
        out,
        np.array([[f(1.5) + f(0.2) * f(1.5), 1.5, f(1.5) + f(0.2) * f(1.5)], [-1.5, f(-1.5) + f(0.2) * f(1.5), 0], [0, 0, 0]], dtype=np.float32),
    )


def test_torch_in_torch_out_same_numbers():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    adv = rng.normal(size=6).astype(np.float32)
    planning = rng.random((6, 9)) < 0.4
    lengths = np.array([9, 3, 0, 5, 9, 1])
    want = apply_hicra(adv, planning, lengths=lengths, variant="placebo", seed=11, group_size=3)
    got = apply_hicra(
        torch.from_numpy(adv), torch.from_numpy(planning), lengths=torch.from_numpy(lengths), variant="placebo", seed=11, group_size=3
    )
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(advantages=np.zeros(3, np.float32), planning=np.zeros((2, 4), bool)), "3 entries but planning has 2 rows"),
        (dict(advantages=np.zeros((2, 4), np.float32), planning=np.zeros((2, 4), bool)), "advantages must be (B,)"),
        (dict(advantages=np.zeros(2, np.float32), planning=np.zeros(4, bool)), "planning must be (B, T)"),
        (dict(advantages=np.zeros(2, np.float32), planning=np.zeros((2, 4), bool), mask=np.ones((2, 5), bool)), "mask has shape"),
        (dict(advantages=np.zeros(2, np.float32), planning=np.zeros((2, 4), bool), entropy=np.ones((2, 3), np.float32), variant="entropy"), "entropy has shape"),
        (dict(advantages=np.zeros(6, np.float32), planning=np.zeros((6, 4), bool), group_size=4), "group_size 4 does not divide the batch of 6"),
        (dict(advantages=np.zeros(2, np.float32), planning=np.zeros((2, 4), bool), variant="hicra++"), "unknown HICRA variant 'hicra++'"),
        (dict(advantages=np.zeros(2, np.float32), planning=np.zeros((2, 4), bool), variant="entropy"), "needs entropy"),
        (dict(advantages=np.zeros(2, np.float32), planning=np.zeros((2, 4), bool), variant="released", entropy=np.ones((2, 4), np.float32)), "needs correct"),
        (dict(advantages=np.array([np.nan, 0], np.float32), planning=np.zeros((2, 4), bool)), "advantages[0] = NaN is not finite"),
        (dict(advantages=np.zeros(2, np.float32), planning=np.zeros((2, 4), bool), lengths=[1, 5]), "lengths must lie in"),
        (dict(advantages=np.zeros(2, np.float32), planning=np.zeros((2, 4), bool), group_size=0), "group_size must be a positive integer"),
    ],
)
def test_bad_input_raises_value_error_with_reason(kwargs, message):
    advantages = kwargs.pop("advantages")
    planning = kwargs.pop("planning")
    with pytest.raises(ValueError) as err:
        apply_hicra(advantages, planning, **kwargs)
    assert message in str(err.value)


def test_rust_panic_becomes_python_exception():
    with pytest.raises(hicra.RustPanicError, match="internal error in debug_panic: kaboom"):
        hicra._native.debug_panic("kaboom")
    assert issubclass(hicra.RustPanicError, RuntimeError)
    # The interpreter is still usable afterwards.
    assert hicra.grade("2", "\\boxed{2}")["correct"]
