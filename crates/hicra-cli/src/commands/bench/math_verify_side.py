"""Math-Verify's side of `hicra bench verify`: times parse (gold and response) then verify on
the same pairs, one process, in its main thread (Math-Verify's timeouts use signals there),
after a warm-up on the first pairs.

Usage: python math_verify_side.py PAIRS.jsonl   (one {"gold": str, "response": str} per line)
Prints one JSON object: {"version", "pairs", "seconds", "correct"}.
Exit status 3 when math_verify cannot be imported.
"""

import importlib.metadata
import json
import sys
import time

try:
    from math_verify import parse, verify
except ImportError as e:
    print(f"math_verify is not importable: {e}", file=sys.stderr)
    sys.exit(3)

WARM_UP = 20


def grade(gold: str, response: str) -> bool:
    """Math-Verify's verdict; its own failures count as "not equal"."""
    try:
        return bool(verify(parse(gold), parse(response)))
    except Exception:
        return False


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f if line.strip()]
    for p in pairs[:WARM_UP]:
        grade(p["gold"], p["response"])
    start = time.perf_counter()
    correct = sum(grade(p["gold"], p["response"]) for p in pairs)
    seconds = time.perf_counter() - start
    version = importlib.metadata.version("math-verify")
    print(json.dumps({"version": version, "pairs": len(pairs), "seconds": seconds, "correct": correct}))


if __name__ == "__main__":
    main()
