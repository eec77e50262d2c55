"""Arguments that would be read wrongly are refused by name: apply_hicra's masks of the wrong
dtype, a negative alpha, entropies with no finite value, lengths that are not whole; and
grade_batch given a single string instead of a sequence."""

from __future__ import annotations

import numpy as np
import pytest

import hicra
from hicra.advantages import apply_hicra

ADV = np.array([1.0, -1.0], np.float32)
PLAN = np.array([[True, False, True], [False, True, False]])

try:
    import torch
except ImportError:  # the venv that holds only the wheel: the torch cases skip there
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


@pytest.mark.parametrize(
    "mask",
    [
        lambda: np.full((2, 3), 0.7, np.float32),
        pytest.param(lambda: torch.full((2, 3), 0.5), marks=needs_torch, id="torch"),
        lambda: np.array([["yes"] * 3] * 2),
    ],
)
def test_a_mask_that_is_not_boolean_is_a_type_error(mask):
    with pytest.raises(TypeError, match="mask must be boolean"):
        apply_hicra(ADV, PLAN, mask=mask())


def test_integer_masks_of_zeros_and_ones_are_masks_and_others_are_refused():
    as_bool = apply_hicra(ADV, PLAN, mask=np.array([[1, 1, 0], [1, 0, 0]]))
    np.testing.assert_array_equal(
        as_bool, apply_hicra(ADV, PLAN, mask=np.array([[1, 1, 0], [1, 0, 0]], bool))
    )
    if torch is not None:
        # TRL's completion_mask is an integer tensor.
        apply_hicra(torch.from_numpy(ADV), torch.from_numpy(PLAN), mask=torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        apply_hicra(ADV, PLAN, mask=np.full((2, 3), 2))
    with pytest.raises(TypeError, match="planning must be boolean"):
        apply_hicra(ADV, PLAN.astype(np.float32))


def test_string_advantages_are_a_type_error():
    with pytest.raises(TypeError, match="advantages must be numbers"):
        apply_hicra(np.array(["1", "-1"]), PLAN)


@pytest.mark.parametrize("alpha", [-0.2, float("nan"), float("inf")])
def test_alpha_must_be_finite_and_not_negative(alpha):
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        apply_hicra(ADV, PLAN, alpha=alpha)


def test_alpha_must_be_a_number():
    with pytest.raises(TypeError, match="alpha must be a number"):
        apply_hicra(ADV, PLAN, alpha="0.2")


def test_the_native_function_refuses_a_negative_alpha_too():
    with pytest.raises(ValueError, match="alpha"):
        hicra._native.apply_hicra(
            ADV,
            PLAN,
            np.ones((2, 3), bool),
            alpha=-1.0,
            variant="paper",
            entropy_quantile=0.7,
            entropy=None,
            correct=None,
            group_size=None,
            seed=0,
        )


@pytest.mark.parametrize("variant", ["entropy", "released"])
def test_entropies_that_are_not_finite_are_refused(variant):
    entropy = np.full((2, 3), np.nan, np.float32)
    with pytest.raises(ValueError, match="entropy must be finite"):
        apply_hicra(ADV, PLAN, entropy=entropy, correct=np.array([True, False]), variant=variant)
    # Outside the mask (padding) any value is ignored.
    entropy = np.ones((2, 3), np.float32)
    entropy[:, 2] = np.nan
    mask = np.array([[True, True, False], [True, True, False]])
    apply_hicra(ADV, PLAN, entropy=entropy, correct=np.array([True, False]), variant=variant, mask=mask)


def test_lengths_must_be_whole_numbers():
    with pytest.raises(ValueError, match="lengths must hold whole numbers"):
        apply_hicra(ADV, PLAN, lengths=np.array([1.5, 2.0]))
    with pytest.raises(TypeError, match="lengths must be integers"):
        apply_hicra(ADV, PLAN, lengths=np.array(["1", "2"]))
    whole = apply_hicra(ADV, PLAN, lengths=np.array([1.0, 2.0]))
    np.testing.assert_array_equal(whole, apply_hicra(ADV, PLAN, lengths=np.array([1, 2])))


@pytest.mark.parametrize(
    "golds, responses, name",
    [("12", ["ab", "cd"], "golds"), (["1", "2"], "ab", "responses"), ("12", "ab", "golds"), (b"12", ["a", "b"], "golds")],
)
def test_grade_batch_refuses_a_single_string(golds, responses, name):
    with pytest.raises(TypeError, match=f"{name} must be a sequence"):
        hicra.grade_batch(golds, responses)
