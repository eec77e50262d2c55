"""What the TRL and verl tests share: a tiny random model with a word-level tokenizer written
with transformers, its prompts, and the independent reference computations (GRPO advantages
from rewards, planning tokens from decoded text with a regex matcher of our own).

Imported by the tests and by the script that ``torchrun`` starts (tests/distributed_grpo.py).
"""

from __future__ import annotations

import re

import numpy as np

WORDS = ["wait", "let", "us", "check", "so", "the", "answer", "is", "1", "2", "3", "."]
GRAMS = ["wait", "let us", "the answer"]
# The training settings of the two-step CPU runs (HicraGRPOConfig keywords).
TWO_CPU_STEPS = dict(
    max_completion_length=16,
    max_steps=2,
    logging_steps=1,
    report_to="none",
    save_strategy="no",
    use_cpu=True,
    bf16=False,
    seed=0,
)
PROMPTS = {"prompt": ["so the answer is"] * 4 + ["let us check"] * 4, "answer": ["1", "2", "3", "2"] * 2}


def write_tiny_model(root):
    """Saves a 2-layer Granite model (Llama-shaped) with random weights (seed 0) and a
    word-level tokenizer over WORDS under ``root``; returns the tokenizer as AutoTokenizer
    loads it from there, as TRL and verl do. (Granite because AutoTokenizer loads a Granite
    folder's own tokenizer.json; for Qwen2 or Llama it substitutes their BPE tokenizer
    class, which cannot read a word-level vocabulary.)"""
    import tokenizers
    import torch
    import transformers

    vocab = {"<unk>": 0, "<pad>": 1, "<eos>": 2}
    for w in WORDS:
        vocab[w] = len(vocab)
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    written = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>"
    )
    written.save_pretrained(root)
    config = transformers.GraniteConfig(
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
    transformers.GraniteForCausalLM(config).save_pretrained(root)
    tok = transformers.AutoTokenizer.from_pretrained(root)
    for text in PROMPTS["prompt"]:
        assert tok(text).input_ids == written(text).input_ids, f"AutoTokenizer reads {root} differently"
    return tok


def write_grams(path):
    """The gram file the tests train with."""
    path.write_text("\n".join(GRAMS) + "\n")
    return path


def char_spans(tok, ids):
    """The decoded text and each token's characters in it, from prefix decodes."""
    text = tok.decode(ids, skip_special_tokens=True)
    spans, prev = [], 0
    for k in range(len(ids)):
        prefix = tok.decode(ids[: k + 1], skip_special_tokens=True)
        assert text.startswith(prefix)
        spans.append((prev, len(prefix)))
        prev = len(prefix)
    return text, spans


def planning_flags(text, spans):
    """Planning flag per token: its characters overlap a gram match (word boundaries, any case)."""
    lower = text.lower()
    matches = []
    for g in GRAMS:
        pattern = r"(?<![0-9a-z])" + re.escape(g) + r"(?![0-9a-z])"
        matches += [(m.start(), m.end()) for m in re.finditer(pattern, lower)]
    return [s < e and any(ms < e and s < me for ms, me in matches) for s, e in spans]


def grpo_advantages(rewards, group_size):
    """TRL's GRPO advantage per completion: (r - group mean) / (group std + 1e-4), float64."""
    r = np.asarray(rewards, dtype=np.float64).reshape(-1, group_size)
    a = (r - r.mean(1, keepdims=True)) / (r.std(1, ddof=1, keepdims=True) + 1e-4)
    return a.reshape(-1)
