"""Writes a synthetic verl rollout dump for measuring `hicra analyze` at scale: STEPS files
`{global_step}.jsonl` in OUT_DIR, LINES responses in all, in groups of 8 per prompt, each line
as verl's dump writer has it (`input`, `output`, `gts`, `score`, `step`, the reward's extra
keys `acc` and `pred`, and `request_id`). Responses are about 120 words of arithmetic
reasoning with Strategic Grams mixed in, drawn (fixed seed) from a pool of 4,096, each ending
in a boxed answer that is right half of the time.

    python3 scripts/make-verl-run.py OUT_DIR [LINES] [STEPS]
"""

import json
import os
import random
import sys

PLANNING = [
    "Wait, let me check that again.",
    "Let's try a different approach.",
    "First, we need to find the total.",
    "Alternatively, we can use the formula.",
    "But wait, that is not right.",
    "Let me think step by step.",
    "So the next step is to add them.",
    "Hmm, maybe I should verify this.",
]
EXECUTION = [
    "{a} + {b} = {c}.",
    "{a} times {b} gives {d}.",
    "Subtracting {b} from {c} leaves {a}.",
    "The sum of the digits is {e}.",
    "Dividing {d} by {b} gives {a}.",
    "So we have {c} apples in total.",
]


def response(rng, gold):
    parts = []
    while sum(len(p.split()) for p in parts) < 110:
        if rng.random() < 0.3:
            parts.append(rng.choice(PLANNING))
        else:
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            parts.append(rng.choice(EXECUTION).format(a=a, b=b, c=a + b, d=a * b, e=(a % 9) + (b % 9)))
    answer = gold if rng.random() < 0.5 else str(int(gold) + 1)
    parts.append(f"The answer is \\boxed{{{answer}}}.")
    return " ".join(parts), answer


def main(out, lines=1_000_000, steps=100):
    os.makedirs(out, exist_ok=True)
    rng = random.Random(0)
    # A pool of responses per answer slot, drawn once: writing, not drawing, is the cost.
    pool = [response(rng, "0")[0].rsplit(" The answer is", 1)[0] for _ in range(4096)]
    per_step = lines // steps
    for step in range(1, steps + 1):
        with open(os.path.join(out, f"{step}.jsonl"), "w") as f:
            for i in range(per_step):
                p = i // 8
                gold = str(37 * step + p)
                pred = gold if rng.random() < 0.5 else str(37 * step + p + 1)
                ok = pred == gold
                text = f"{rng.choice(pool)} The answer is \\boxed{{{pred}}}."
                record = {
                    "input": f"user\nJane has {step} boxes of {p} apples each. How many apples are there? Put the answer in \\boxed{{}}.\nassistant\n",
                    "output": text,
                    "gts": gold,
                    "score": 1.0 if ok else 0.0,
                    "step": step,
                    "acc": ok,
                    "pred": pred,
                    "request_id": f"{step}-{i}",
                }
                f.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], *(int(a) for a in args[1:]))
