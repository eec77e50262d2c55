"""Strategic Grams from Python: character offsets, the token rule, files and metrics."""

from __future__ import annotations

import math

import pytest

from hicra.grams import StrategicGrams, decode_with_offsets, semantic_entropy


def test_paper_list_and_spans_in_characters():
    grams = StrategicGrams.paper()
    assert len(grams) == 249 and grams.grams[0] == "## step"
    text = "Été: Wait, let me check. But wait, we can use the fact that x = 2."
    spans = grams.spans(text)
    # Character offsets: the leading "Été" is 3 characters (5 UTF-8 bytes).
    assert (5, 9) in spans and text[5:9] == "Wait"
    for s, e in spans:
        assert 0 <= s < e <= len(text)
    assert all(spans[i][1] < spans[i + 1][0] for i in range(len(spans) - 1)), "spans are disjoint"


def test_word_boundaries_and_case():
    grams = StrategicGrams.from_grams(["let me", "Wait"])
    assert grams.spans("awaiting WAIT let meet let me") == [(9, 13), (23, 29)]


def test_token_mask_overlap_rule():
    grams = StrategicGrams.from_grams(["let us try"])
    text = "So let us try it"
    # tokens: "So", " let", " us", " try", " it", and an empty special token
    offsets = [(0, 2), (2, 6), (6, 9), (9, 13), (13, 16), (16, 16)]
    assert grams.token_mask(text, offsets) == [False, True, True, True, False, False]
    with pytest.raises(ValueError, match=r"offsets\[1\] = \(2, 99\) is not a character range"):
        grams.token_mask(text, [(0, 2), (2, 99)])


def test_token_mask_ids_with_a_real_tokenizer():
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token=None))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(["wait, let us check the answer é"] * 50, trainer=trainer)
    text = "so wait, é let us check"
    ids = tok.encode(text).ids
    decoded, offsets = decode_with_offsets(tok, ids)
    assert decoded == text and offsets[-1][1] == len(text)
    grams = StrategicGrams.from_grams(["wait", "let us"])
    mask = grams.token_mask_ids(tok, ids)
    pieces = [decoded[s:e] for s, e in offsets]
    want = [any(w in p.lower() for w in ("wait", "let", "us")) for p in pieces]
    assert mask == want, list(zip(pieces, mask))


def test_semantic_entropy_is_the_entropy_of_gram_counts():
    grams = StrategicGrams.from_grams(["wait", "let us"])
    texts = ["wait wait let us", "wait"]
    p = [3 / 4, 1 / 4]
    assert semantic_entropy(texts, grams) == pytest.approx(-sum(x * math.log(x) for x in p))
    assert grams.semantic_entropy(["nothing here"]) == 0.0
    assert semantic_entropy(["But wait, let me check."]) > 0.0


def test_gram_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.txt"
    with pytest.raises(ValueError, match="missing.txt"):
        StrategicGrams.from_file(missing)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"wait\n\xe9t\xe9\n")
    with pytest.raises(ValueError, match="latin1.txt.*UTF-8"):
        StrategicGrams.from_file(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(ValueError, match="empty.txt holds no grams"):
        StrategicGrams.from_file(empty)
    good = tmp_path / "grams.txt"
    good.write_text("## step\nwait\n\n")
    assert StrategicGrams.from_file(good).grams == ["## step", "wait"]
    assert StrategicGrams.load("paper").grams == StrategicGrams.paper().grams
