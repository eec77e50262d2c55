"""hicra.verify against the `hicra grade` binary, the TRL reward wrapper, and bad input.
Prints the speed against Math-Verify on the same pairs (no timing assertion)."""

from __future__ import annotations

import json
import random
import subprocess
import time

import pytest

from hicra.rewards import completion_text, math_reward, math_reward_for
from hicra.verify import grade, grade_batch


def make_pairs(n: int, seed: int = 7) -> list:
    """Golds and responses with equivalent and non-equivalent answers in many notations."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        p, q = rng.randint(1, 30), rng.randint(2, 12)
        kind = rng.randrange(6)
        if kind == 0:
            gold, same, other = str(p), f"{p}.0", str(p + rng.randint(1, 5))
        elif kind == 1:
            gold, same, other = f"\\frac{{{p}}}{{{q}}}", f"{p}/{q}", f"\\frac{{{p + 1}}}{{{q}}}"
        elif kind == 2:
            gold, same, other = f"{p}\\sqrt{{2}}", f"\\sqrt{{{2 * p * p}}}", f"{p}\\sqrt{{3}}"
        elif kind == 3:
            gold, same, other = f"x^2 + {p}x", f"x(x + {p})", f"x^2 + {p + 1}x"
        elif kind == 4:
            gold, same, other = f"({p}, {q})", f"({p},{q})", f"({q}, {p + q})"
        else:
            gold, same, other = f"{p * 1000 + q}", f"{p},{q:03d}", f"{p * 1000 + q + 1}"
        answer = same if rng.random() < 0.5 else other
        style = rng.randrange(3)
        if style == 0:
            response = f"Let me compute. So the result is $\\boxed{{{answer}}}$."
        elif style == 1:
            response = f"Step 1: work.\nThe final answer is {answer}"
        else:
            response = f"We get {rng.randint(0, 9)} first, then \\boxed{{{answer}}}"
        pairs.append((gold, response))
    pairs.append((42, "#### 42"))
    pairs.append((["3", "4"], "answer: 4"))
    pairs.append(("7", "no number here"))
    return pairs


def test_grade_batch_equals_hicra_grade(hicra_bin, tmp_path):
    pairs = make_pairs(400)
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"gold": g, "response": r}) + "\n" for g, r in pairs))
    for mode in ("flexible", "strict-boxed"):
        out = subprocess.run(
            [str(hicra_bin), "grade", "--input", str(path), "--mode", mode],
            capture_output=True, text=True, check=True,
        )
        cli = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        py = grade_batch([g for g, _ in pairs], [r for _, r in pairs], mode=mode, threads=2)
        assert len(cli) == len(py) == len(pairs)
        assert py == cli
        assert 0 < sum(v["correct"] for v in py) < len(py)
    assert grade_batch([g for g, _ in pairs[:50]], [r for _, r in pairs[:50]], mode="strict-boxed", threads=1) == py[:50]
    assert [grade(g, r, mode="strict-boxed") for g, r in pairs[:50]] == py[:50]


def test_speed_against_math_verify():
    math_verify = pytest.importorskip("math_verify")
    pairs = make_pairs(300)
    golds, responses = [str(g) if not isinstance(g, list) else g[0] for g, _ in pairs], [r for _, r in pairs]
    start = time.perf_counter()
    grade_batch(golds, responses)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    for g, r in zip(golds, responses):
        math_verify.verify(math_verify.parse(f"${g}$"), math_verify.parse(r))
    theirs = time.perf_counter() - start
    print(f"\n{len(pairs)} pairs: hicra.grade_batch {ours * 1e3:.1f} ms, Math-Verify {theirs * 1e3:.1f} ms, "
          f"ratio {theirs / max(ours, 1e-9):.0f}x")


def test_math_reward_for_trl():
    completions = ["so \\boxed{3}", [{"role": "assistant", "content": "answer: 5"}], "nothing"]
    assert math_reward(None, completions, ["3", "4", "1"]) == [1.0, 0.0, 0.0]
    assert math_reward(None, completions[:2], ["3", None]) == [1.0, None]
    strict = math_reward_for("solution", mode="strict-boxed")
    assert strict.__name__ == "math_reward_solution"
    assert strict(prompts=None, completions=["answer: 5", "\\boxed{5}"], solution=["5", "#### 5"]) == [0.0, 1.0]
    with pytest.raises(ValueError, match="no column 'solution'"):
        strict(prompts=None, completions=["x"], answer=["1"])
    assert completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "text", "text": "a"}]}]) == "a"


def test_bad_input():
    with pytest.raises(ValueError, match="2 golds but 1 responses"):
        grade_batch(["1", "2"], ["1"])
    with pytest.raises(ValueError, match="mode"):
        grade("1", "1", mode="lenient")
    with pytest.raises(ValueError, match=r"golds\[1\]"):
        grade_batch(["1", ""], ["1", "2"])
    with pytest.raises(TypeError, match="bool"):
        grade(True, "1")
    with pytest.raises(ValueError, match="threads must be at least 1"):
        grade_batch(["1"], ["1"], threads=0)
