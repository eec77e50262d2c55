"""The verifier in threads: verl calls ``compute_score`` from Ray worker threads, and a grader
timed out with ``signal.alarm`` fails there. The same 10,000 pairs graded serially, from a
16-worker ``ThreadPoolExecutor`` and through ``grade_batch`` must give identical verdicts
(the operation budget, not the clock, decides them); ``hicra.verl.compute_score`` and
``hicra.rewards.math_reward`` likewise."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from hicra.rewards import math_reward
from hicra.verify import grade, grade_batch

PAIRS = 10_000
WORKERS = 16


def _answers(rng: random.Random) -> tuple:
    """A gold, an answer equal to it and one that is not, in one of several notations."""
    p, q = rng.randint(1, 40), rng.randint(2, 13)
    kind = rng.randrange(10)
    if kind == 0:
        return str(p), f"{p}.0", str(p + 1)
    if kind == 1:
        return f"\\frac{{{p}}}{{{q}}}", f"{p}/{q}", f"\\frac{{{p + 1}}}{{{q}}}"
    if kind == 2:
        return f"{p}\\sqrt{{2}}", f"\\sqrt{{{2 * p * p}}}", f"{p}\\sqrt{{3}}"
    if kind == 3:
        return f"({p}, {q})", f"\\left( {p}, {q} \\right)", f"({q}, {p + q})"
    if kind == 4:
        return f"y < {p}", f"-y > -{p}", f"-y < -{p}"
    if kind == 5:
        return f"({p},{q}),({q},{p})", f"x={q}, y={p}; x={p}, y={q}", f"({p},{q})"
    if kind == 6:
        cells = f"{p} & {q} \\\\ {q} & {p}"
        return (
            f"\\begin{{pmatrix}} {cells} \\end{{pmatrix}}",
            f"\\left[\\begin{{array}}{{cc}} {cells} \\end{{array}}\\right]",
            f"\\begin{{bmatrix}} {q} & {p} \\\\ {p} & {q} \\end{{bmatrix}}",
        )
    if kind == 7:
        return f"{p}:{q}", f"{2 * p}:{2 * q}", f"{q}:{p + q}"
    if kind == 8:
        return f"{p * 1000 + q}", f"{p},{q:03d}", f"{p * 1000 + q + 1}"
    return f"\\frac{{{p}}}{{{q}}}", f"x = \\frac{{{p}}}{{{q}}} \\approx {p / q:.2f}", f"{p / q + 1:.2f}"


# How a response states its answer `{a}` (the last: inline math broken over lines, no answer).
STYLES = (
    "Let me compute. So the result is $\\boxed{{a}}$.",
    "Step 1: work.\nThe final answer is ${a}$. I hope it is correct.",
    "We get 7 first, then \\[ {a} \\]",
    "Final Answer: The value of $k$ is {a}",
    "{a}",
    "Answer $ \n {a} \n $",
)


def make_pairs(n: int = PAIRS, seed: int = 2026) -> list:
    """Golds and responses, right and wrong, stated in several ways; a few hostile ones."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        gold, same, other = _answers(rng)
        answer = same if rng.random() < 0.5 else other
        response = rng.choice(STYLES).replace("{a}", answer)
        if i % 997 == 0:
            response = "{" * 5_000 + response + "}" * 5_000
        pairs.append((gold, response))
    return pairs


def test_verdicts_are_identical_serially_in_threads_and_in_batch():
    pairs = make_pairs()
    golds, responses = [g for g, _ in pairs], [r for _, r in pairs]
    serial = [grade(g, r) for g, r in pairs]
    with ThreadPoolExecutor(WORKERS) as pool:
        threaded = list(pool.map(lambda pair: grade(*pair), pairs))
    batch = grade_batch(golds, responses)
    assert threaded == serial
    assert batch == serial
    correct = sum(v["correct"] for v in serial)
    assert 0.2 * len(pairs) < correct < 0.8 * len(pairs), correct
    assert all(v["reason"] for v in serial)


def test_verl_compute_score_and_trl_reward_in_threads():
    import hicra.verl as hv

    pairs = make_pairs()
    expected = [1.0 if v["correct"] else 0.0 for v in grade_batch([g for g, _ in pairs], [r for _, r in pairs])]
    serial = [hv.compute_score("math", r, g) for g, r in pairs]
    with ThreadPoolExecutor(WORKERS) as pool:
        threaded = list(pool.map(lambda pair: hv.compute_score("math", pair[1], pair[0]), pairs))
    assert serial == expected
    assert threaded == expected
    chunks = [pairs[k : k + 250] for k in range(0, len(pairs), 250)]

    def reward(chunk: list) -> list:
        return math_reward(None, [r for _, r in chunk], [g for g, _ in chunk])

    with ThreadPoolExecutor(WORKERS) as pool:
        rewards = [x for part in pool.map(reward, chunks) for x in part]
    assert rewards == expected
