"""hicra.verl: the reward and the HICRA estimator with verl 0.9.1's estimator signature.

CI does not install verl (it pins transformers < 5.11 and needs its own 5.6 GB
environment); there the estimator is tested alone against that signature. When verl is
importable, the registry, verl's own GRPO estimator and the patched compute_advantage
are checked too."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tokenizers = pytest.importorskip("tokenizers")

import hicra.verl as hv  # noqa: E402

VERL_SIGNATURE = ["token_level_rewards", "response_mask", "index", "epsilon", "norm_adv_by_std_in_grpo", "config"]
WORDS = ["wait", "so", "x", "is", "1", "2"]


@pytest.fixture
def tokenizer():
    vocab = {"<pad>": 0, **{w: i + 1 for i, w in enumerate(WORDS)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(["<pad>"])
    return tok


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    b, t = 6, 7
    responses = torch.randint(1, len(WORDS) + 1, (b, t), generator=g)
    lengths = torch.tensor([7, 5, 3, 7, 1, 6])
    mask = (torch.arange(t)[None, :] < lengths[:, None]).long()
    scores = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    rewards = torch.zeros(b, t)
    rewards[torch.arange(b), lengths - 1] = scores  # verl puts the score on the last token
    index = np.array(["a", "a", "a", "b", "b", "b"], dtype=object)
    return rewards, mask, index, responses, scores


def test_signature_matches_verl_0_9_1():
    params = list(inspect.signature(hv.hicra_advantage).parameters)
    assert params[: len(VERL_SIGNATURE)] == VERL_SIGNATURE
    assert inspect.signature(hv.hicra_advantage).parameters["epsilon"].default == 1e-6


def test_estimator_is_grpo_plus_alpha_abs_on_planning_tokens(tokenizer):
    hv.configure(tokenizer, grams=hv.StrategicGrams.from_grams(["wait"]), alpha=0.2)
    rewards, mask, index, responses, scores = batch()
    adv, ret = hv.hicra_advantage(rewards, mask, index, responses=responses)
    assert torch.equal(adv, ret) and adv.shape == rewards.shape
    wait_id = WORDS.index("wait") + 1
    planned = 0
    for i in range(6):
        group = scores[:3] if i < 3 else scores[3:]
        a = float((scores[i] - group.mean()) / (group.std() + 1e-6))
        for t in range(rewards.shape[1]):
            if not mask[i, t]:
                assert adv[i, t] == 0
            elif responses[i, t] == wait_id:
                planned += 1
                assert float(adv[i, t]) == pytest.approx(a + 0.2 * abs(a), rel=1e-6)
            else:
                assert float(adv[i, t]) == pytest.approx(a, rel=1e-6)
    assert planned > 0


def test_estimator_errors(tokenizer):
    rewards, mask, index, _, _ = batch()
    with pytest.raises(ValueError, match="needs the response token ids"):
        hv.hicra_advantage(rewards, mask, index)
    with pytest.raises(ValueError, match="not available in verl"):
        hv.configure(tokenizer, variant="entropy")


def test_compute_score():
    assert hv.compute_score("gsm8k", "so #### 12", "12") == 1.0
    assert hv.compute_score("math", "answer: 12", "12", {"hicra_mode": "strict-boxed"}) == 0.0


def test_against_installed_verl(tokenizer):
    pytest.importorskip("verl", reason="verl is not installed (CI tests the estimator alone)")
    from verl import DataProto
    from verl.trainer.ppo import core_algos, ray_trainer

    hv.configure(tokenizer, grams=hv.StrategicGrams.from_grams(["wait"]), alpha=0.2)
    hv.patch_compute_advantage()
    hv.patch_compute_advantage()  # idempotent
    assert core_algos.get_adv_estimator_fn("hicra") is hv.hicra_advantage
    rewards, mask, index, responses, _ = batch()
    # With variant none, HICRA is verl's own GRPO estimator.
    hv.configure(tokenizer, grams="paper", variant="none")
    ours, _ = hv.hicra_advantage(rewards, mask, index, responses=responses)
    theirs, _ = core_algos.compute_grpo_outcome_advantage(rewards, mask, index)
    torch.testing.assert_close(ours, theirs)
    hv.configure(tokenizer, grams=hv.StrategicGrams.from_grams(["wait"]), alpha=0.2)
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask, "responses": responses},
        non_tensors={"uid": index},
    )
    out = ray_trainer.compute_advantage(data, adv_estimator="hicra", config=None)
    want, _ = hv.hicra_advantage(rewards, mask, index, responses=responses)
    torch.testing.assert_close(out.batch["advantages"], want)
