"""Grades (gold, response) pairs with Math-Verify, for hicra-verify's differential test.

Usage: python math_verify_oracle.py INPUT.jsonl OUTPUT.jsonl [PROCESSES]
INPUT holds one {"gold": str, "response": str} object per line. OUTPUT gets one
{"correct": bool} object per input line, in order, then {"seconds": float, "processes": int}:
the wall time spent grading (parse of gold and response, then verify) in that many worker
processes (PROCESSES, else one per CPU this process may use), not counting start-up.
Exit status 3 when math_verify cannot be imported.
"""

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

try:
    from math_verify import parse, verify
except ImportError as e:  # pragma: no cover - reported by the Rust test
    print(f"math_verify is not importable: {e}", file=sys.stderr)
    sys.exit(3)


def grade(pair: dict) -> bool:
    """Math-Verify's verdict; its own failures count as "not equal"."""
    try:
        return bool(verify(parse(pair["gold"]), parse(pair["response"])))
    except Exception:
        return False


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f if line.strip()]
    processes = int(sys.argv[3]) if len(sys.argv) > 3 else max(1, len(os.sched_getaffinity(0)))
    start = time.perf_counter()
    # Each worker's main thread grades, so Math-Verify's signal-based timeout works there.
    with ProcessPoolExecutor(max_workers=processes) as pool:
        out = list(pool.map(grade, pairs, chunksize=64))
    seconds = time.perf_counter() - start
    with open(dst, "w", encoding="utf-8") as f:
        for ok in out:
            f.write(json.dumps({"correct": ok}) + "\n")
        f.write(json.dumps({"seconds": seconds, "processes": processes}) + "\n")


if __name__ == "__main__":
    main()
