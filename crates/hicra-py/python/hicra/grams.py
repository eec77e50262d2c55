"""Strategic Grams: matching, planning-token masks and the semantic-entropy metric.

Matching is the trainer's rule (case-insensitive, typographic apostrophes as ``'``, every
occurrence including overlapping ones, grams that start/end with a letter or digit match
only at word boundaries). Offsets are Python character offsets. A token is a planning token
when its ``(start, end)`` character range overlaps a gram match; empty tokens (special
tokens) never are. Entropies use the natural log; counts are pooled over all texts given.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from hicra import _native

Offsets = Sequence[Tuple[int, int]]


class StrategicGrams:
    """A Strategic-Gram list with its matcher."""

    __slots__ = ("_native",)

    def __init__(self, native: "_native.StrategicGrams"):
        self._native = native

    @classmethod
    def paper(cls) -> "StrategicGrams":
        """The paper's 249 Strategic Grams (shipped with hicra)."""
        return cls(_native.StrategicGrams.paper())

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike]) -> "StrategicGrams":
        """Reads a UTF-8 file with one gram per line (empty lines skipped, ``#`` is no comment).

        Raises ``ValueError`` naming the file when it is missing, unreadable, not UTF-8 or
        holds no grams.
        """
        return cls(_native.StrategicGrams.from_file(os.fspath(path)))

    @classmethod
    def from_grams(cls, grams: Iterable[str]) -> "StrategicGrams":
        """Builds a set from grams (trimmed, empty ones skipped, duplicates kept once)."""
        if isinstance(grams, str):
            raise TypeError("from_grams takes a list of grams, not one string")
        return cls(_native.StrategicGrams.from_grams(list(grams)))

    @classmethod
    def load(cls, spec: Union[str, os.PathLike, "StrategicGrams"]) -> "StrategicGrams":
        """``"paper"``, a path to a gram file, or an existing set."""
        if isinstance(spec, StrategicGrams):
            return spec
        if isinstance(spec, str) and spec == "paper":
            return cls.paper()
        return cls.from_file(spec)

    @property
    def grams(self) -> List[str]:
        """The grams, in list order."""
        return self._native.grams

    def __len__(self) -> int:
        return len(self._native)

    def __repr__(self) -> str:
        return repr(self._native)

    def matches(self, text: str) -> List[Tuple[int, int, int]]:
        """Every occurrence as ``(start, end, gram_index)`` (character offsets), sorted."""
        return self._native.matches(text)

    def spans(self, text: str) -> List[Tuple[int, int]]:
        """The planning spans: the union of all matches as sorted, disjoint character ranges."""
        return self._native.spans(text)

    def token_mask(self, text: str, offsets: Offsets) -> List[bool]:
        """Planning flag per token from the tokens' character ``offsets`` into ``text`` (as a
        Hugging Face fast tokenizer's ``return_offsets_mapping`` gives them)."""
        return self._native.token_mask(text, [(int(s), int(e)) for s, e in offsets])

    def token_mask_ids(self, tokenizer: Any, token_ids: Sequence[int]) -> List[bool]:
        """Planning flag per token of ``token_ids``: decodes them with ``tokenizer`` (a Hugging
        Face tokenizer or a ``tokenizers.Tokenizer``) and maps each token to its characters."""
        text, offsets = decode_with_offsets(tokenizer, token_ids)
        return self.token_mask(text, offsets)

    def planning_mask(self, tokenizer: Any, token_ids: Any, mask: Any = None) -> np.ndarray:
        """``(B, T)`` bool planning mask of a padded batch of token ids. Only positions where
        ``mask`` (``(B, T)``, default all) is true are decoded; the others are False."""
        ids = _to_numpy(token_ids)
        if ids.ndim != 2:
            raise ValueError(f"token_ids must be (B, T), got shape {ids.shape}")
        valid = np.ones(ids.shape, dtype=bool) if mask is None else _to_numpy(mask).astype(bool)
        if valid.shape != ids.shape:
            raise ValueError(f"mask has shape {valid.shape} but token_ids has shape {ids.shape}")
        out = np.zeros(ids.shape, dtype=bool)
        for i in range(ids.shape[0]):
            cols = np.flatnonzero(valid[i])
            if cols.size:
                out[i, cols] = self.token_mask_ids(tokenizer, ids[i, cols].tolist())
        return out

    def semantic_entropy(self, texts: Sequence[str]) -> float:
        """Entropy (natural log) of the gram-occurrence distribution pooled over ``texts``."""
        return self._native.semantic_entropy(_text_list(texts))

    def conditional_entropy(self, texts: Sequence[str]) -> float:
        """Control metric: entropy of the word 3-grams that follow gram occurrences."""
        return self._native.conditional_entropy(_text_list(texts))


def semantic_entropy(texts: Sequence[str], grams: Optional[StrategicGrams] = None) -> float:
    """The paper's semantic entropy of ``texts`` under ``grams`` (default: the paper's list)."""
    return (grams or StrategicGrams.paper()).semantic_entropy(texts)


def _text_list(texts: Sequence[str]) -> List[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    return list(texts)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _backend(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` behind a Hugging Face fast tokenizer, if there is one."""
    if type(tokenizer).__module__.startswith("tokenizers"):
        return tokenizer
    return getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)


def decode_with_offsets(tokenizer: Any, token_ids: Sequence[int]) -> Tuple[str, List[Tuple[int, int]]]:
    """The text of ``token_ids`` (special tokens skipped) and each token's character range in
    it. A character split across tokens belongs to the token that completes it (the earlier
    ones get an empty range), the rule of the Rust trainer."""
    ids = [int(i) for i in token_ids]
    backend = _backend(tokenizer)
    if backend is not None:
        text = backend.decode(ids, skip_special_tokens=True)
        spans = _stream_spans(backend, ids, text)
        if spans is not None:
            return text, spans
        decode = lambda part: backend.decode(part, skip_special_tokens=True)  # noqa: E731
    else:
        decode = lambda part: tokenizer.decode(part, skip_special_tokens=True)  # noqa: E731
        text = decode(ids)
    return text, _prefix_spans(decode, ids, text)


def _stream_spans(backend: Any, ids: List[int], text: str) -> Optional[List[Tuple[int, int]]]:
    """Spans from incremental decoding; ``None`` when the pieces do not rebuild ``text``."""
    try:
        from tokenizers.decoders import DecodeStream
    except ImportError:
        return None
    stream = DecodeStream(skip_special_tokens=True)
    spans, pos = [], 0
    for token in ids:
        piece = stream.step(backend, token) or ""
        if not text.startswith(piece, pos):
            return None
        spans.append((pos, pos + len(piece)))
        pos += len(piece)
    return spans if pos == len(text) else None


def _prefix_spans(decode: Any, ids: List[int], text: str) -> List[Tuple[int, int]]:
    """Spans from decoding every prefix (for decoders whose pieces do not concatenate)."""
    spans, prev = [], 0
    for i in range(len(ids)):
        if i + 1 == len(ids):
            end = len(text)
        else:
            prefix = decode(ids[: i + 1])
            common = 0
            for a, b in zip(prefix, text):
                if a != b:
                    break
                common += 1
            end = max(common, prev)
        spans.append((prev, end))
        prev = end
    return spans
