"""A real TRL GRPO run on the CPU with HicraGRPOTrainer: a tiny random model and a
word-level tokenizer written with transformers, 2 steps, the hicra math reward.

The test recomputes, without hicra, what the loss must have received: the GRPO advantage of
each completion from the rewards, the planning tokens from the decoded completions, each
token's characters and the gram list (its own regex matcher), then A + alpha*|A| on
planning tokens and A elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")
tokenizers = pytest.importorskip("tokenizers")

from tiny_grpo import PROMPTS, TWO_CPU_STEPS, char_spans, grpo_advantages, planning_flags, write_grams, write_tiny_model  # noqa: E402

from hicra.rewards import math_reward  # noqa: E402
from hicra.trl import HicraGRPOConfig, HicraGRPOTrainer  # noqa: E402

ALPHA = 0.2
G = 4


def test_hicra_grpo_trainer_two_steps_on_cpu(tmp_path):
    model_dir = tmp_path / "model"
    tok = write_tiny_model(model_dir)
    gram_file = write_grams(tmp_path / "grams.txt")
    data = datasets.Dataset.from_dict(PROMPTS)

    rewarded = {}  # completion ids -> (batch number, index in batch, reward)
    calls = []

    def reward(prompts, completions, completion_ids, answer, **kwargs):
        out = math_reward(prompts, completions, answer, **kwargs)
        calls.append(out)
        for i, (ids, r) in enumerate(zip(completion_ids, out)):
            rewarded[tuple(ids)] = (len(calls) - 1, i, r)
        return out

    reward.__name__ = "math_reward"
    received = []

    class Recording(HicraGRPOTrainer):
        def _compute_loss(self, model, inputs):
            received.append({k: inputs[k].detach().clone() for k in ("completion_ids", "completion_mask", "advantages")})
            return super()._compute_loss(model, inputs)

    args = HicraGRPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        num_generations=G,
        learning_rate=5e-3,
        hicra_alpha=ALPHA,
        strategic_grams=str(gram_file),
        **TWO_CPU_STEPS,
    )
    trainer = Recording(
        model=str(model_dir), reward_funcs=reward, args=args, train_dataset=data, processing_class=tok
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()

    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert changed, "training did not change any parameter"

    # GRPO advantages from the rewards, per group of G consecutive completions of one call.
    base = {}
    for batch, rewards in enumerate(calls):
        a = grpo_advantages(rewards, G)
        for key, (b, i, _) in rewarded.items():
            if b == batch:
                base[key] = a[i]

    assert len(received) == 2
    f32 = np.float32
    planning_tokens = nonzero = 0
    for rec in received:
        ids, mask, adv = rec["completion_ids"], rec["completion_mask"].bool(), rec["advantages"]
        assert adv.shape == ids.shape, "the loss must receive (B, T) per-token advantages"
        for row in range(ids.shape[0]):
            valid = ids[row][mask[row]].tolist()
            a = base[tuple(valid)]
            text, spans = char_spans(tok, valid)
            flags = planning_flags(text, spans)
            got = adv[row][mask[row]].numpy()
            a32 = f32(adv[row][mask[row]][[not f for f in flags]].numpy()[0]) if not all(flags) else None
            for t, plan in enumerate(flags):
                want = a + ALPHA * abs(a) if plan else a
                assert got[t] == pytest.approx(want, abs=1e-5), (text, t, plan)
                if plan and a32 is not None:
                    # Exactly the float32 rule applied to the row's own advantage.
                    assert got[t] == a32 + f32(ALPHA) * abs(a32)
            planning_tokens += sum(flags)
            nonzero += int(a != 0)
    assert planning_tokens > 0, "the grams should match some completion tokens"
    assert nonzero > 0, "some groups should have mixed rewards"

    logged = [h for h in trainer.state.log_history if "hicra/planning_token_frac" in h]
    assert len(logged) == 2
    for h in logged:
        assert 0.0 < h["hicra/planning_token_frac"] < 1.0
        assert h["hicra/semantic_entropy"] >= 0.0
        assert h["hicra/token_entropy_planning"] > 0.0 and h["hicra/token_entropy_execution"] > 0.0
