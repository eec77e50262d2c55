"""A real TRL GRPO run on the CPU with HicraGRPOTrainer: a tiny random Qwen2 model and a
word-level tokenizer written with transformers, 2 steps, the hicra math reward.

The test recomputes, without hicra, what the loss must have received: the GRPO advantage of
each completion from the rewards, the planning tokens from the decoded completions, each
token's characters and the gram list (its own regex matcher), then A + alpha*|A| on
planning tokens and A elsewhere.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")
tokenizers = pytest.importorskip("tokenizers")

from hicra.rewards import math_reward  # noqa: E402
from hicra.trl import HicraGRPOConfig, HicraGRPOTrainer  # noqa: E402

WORDS = ["wait", "let", "us", "check", "so", "the", "answer", "is", "1", "2", "3", "."]
GRAMS = ["wait", "let us", "the answer"]
ALPHA = 0.2
G = 4


def write_tiny_model(root):
    vocab = {"<unk>": 0, "<pad>": 1, "<eos>": 2}
    for w in WORDS:
        vocab[w] = len(vocab)
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>"
    )
    tok.save_pretrained(root)
    config = transformers.Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        eos_token_id=2,
        pad_token_id=1,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    transformers.Qwen2ForCausalLM(config).save_pretrained(root)
    return tok


def char_spans(tok, ids):
    """Each token's characters in the decoded text, from prefix decodes."""
    text = tok.decode(ids, skip_special_tokens=True)
    spans, prev = [], 0
    for k in range(len(ids)):
        prefix = tok.decode(ids[: k + 1], skip_special_tokens=True)
        assert text.startswith(prefix)
        spans.append((prev, len(prefix)))
        prev = len(prefix)
    return text, spans


def planning_flags(text, spans):
    lower = text.lower()
    matches = []
    for g in GRAMS:
        pattern = r"(?<![0-9a-z])" + re.escape(g) + r"(?![0-9a-z])"
        matches += [(m.start(), m.end()) for m in re.finditer(pattern, lower)]
    return [s < e and any(ms < e and s < me for ms, me in matches) for s, e in spans]


def test_hicra_grpo_trainer_two_steps_on_cpu(tmp_path):
    model_dir = tmp_path / "model"
    tok = write_tiny_model(model_dir)
    gram_file = tmp_path / "grams.txt"
    gram_file.write_text("\n".join(GRAMS) + "\n")
    data = datasets.Dataset.from_dict(
        {"prompt": ["so the answer is"] * 4 + ["let us check"] * 4, "answer": ["1", "2", "3", "2"] * 2}
    )

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
        max_completion_length=16,
        max_steps=2,
        learning_rate=5e-3,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        seed=0,
        hicra_alpha=ALPHA,
        strategic_grams=str(gram_file),
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
        r = np.asarray(rewards, dtype=np.float64).reshape(-1, G)
        a = (r - r.mean(1, keepdims=True)) / (r.std(1, ddof=1, keepdims=True) + 1e-4)
        for key, (b, i, _) in rewarded.items():
            if b == batch:
                base[key] = a.flat[i]

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
