"""hicra.verl without verl: the reward, the HICRA estimator with verl 0.9.1's estimator
signature against the rules written out with numpy (tests/hicra_reference.py), and the
checks of a verl config. verl's own code is exercised in tests/test_verl_installed.py, which
CI runs in verl's own environment (verl pins transformers < 5.11)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tokenizers = pytest.importorskip("tokenizers")

from hicra_reference import grpo, per_token  # noqa: E402

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


@pytest.mark.parametrize("variant", ["entropy", "released"])
def test_entropy_variants_follow_the_rules_with_uid_groups(tokenizer, variant):
    hv.configure(tokenizer, grams=hv.StrategicGrams.from_grams(["wait"]), alpha=0.2, variant=variant)
    rewards, mask, _, responses, scores = batch(seed=3)
    uids = np.array(["b", "a", "b", "a", "b", "a"], dtype=object)  # groups interleaved, as after balancing
    entropy = torch.rand(rewards.shape, generator=torch.Generator().manual_seed(5)) * 3
    adv, _ = hv.hicra_advantage(rewards, mask, uids, responses=responses, entropy=entropy)
    planning = (responses == WORDS.index("wait") + 1).numpy()
    outcome = grpo(scores.numpy(), list(uids))
    want = per_token(variant, outcome, planning, mask.numpy(), entropy.numpy(), scores.numpy() >= 1, list(uids))
    np.testing.assert_allclose(adv.numpy(), want, rtol=1e-5, atol=1e-6)
    changed = (np.abs(want - outcome[:, None]) > 1e-6) & mask.numpy().astype(bool)
    assert changed.any(), "the case should amplify some tokens"


def test_estimator_errors(tokenizer):
    rewards, mask, index, responses, _ = batch()
    with pytest.raises(ValueError, match="needs the response token ids"):
        hv.hicra_advantage(rewards, mask, index)
    hv.configure(tokenizer, variant="released")
    with pytest.raises(ValueError, match="needs the per-token entropies of verl's old-log-prob pass.*bypass_mode"):
        hv.hicra_advantage(rewards, mask, index, responses=responses)
    with pytest.raises(ValueError, match="hicra.variant 'hicra' is unknown"):
        hv.configure(tokenizer, variant="hicra")


def test_verl_config_checks_say_what_to_change():
    omegaconf = pytest.importorskip("omegaconf")

    def config(**extra):
        base = {"algorithm": {"adv_estimator": "hicra", "rollout_correction": {"bypass_mode": False}}}
        return omegaconf.OmegaConf.create({**base, **extra})

    with pytest.raises(ValueError, match=r"no hicra section.*\+hicra\.alpha=0\.2 \+hicra\.variant=paper \+hicra\.grams=paper"):
        hv.check_verl_config(config())
    with pytest.raises(ValueError, match=r"unknown hicra settings \['aplha'\]"):
        hv.check_verl_config(config(hicra={"aplha": 0.2}))
    wrong = config(hicra={"variant": "paper"})
    wrong.algorithm.adv_estimator = "grpo"
    with pytest.raises(ValueError, match="set algorithm.adv_estimator=hicra"):
        hv.check_verl_config(wrong)
    bypass = config(hicra={"variant": "entropy"})
    bypass.algorithm.rollout_correction.bypass_mode = True
    with pytest.raises(ValueError, match="bypass_mode"):
        hv.check_verl_config(bypass)
    assert hv.check_verl_config(config(hicra={"variant": "released", "alpha": 0.3})) == {"variant": "released", "alpha": 0.3}


def test_compute_score():
    assert hv.compute_score("gsm8k", "so #### 12", "12") == 1.0
    assert hv.compute_score("math", "answer: 12", "12", {"hicra_mode": "strict-boxed"}) == 0.0
