"""Grades (gold, response) pairs with Math-Verify, for hicra-verify's differential test.

Usage: python math_verify_oracle.py INPUT.jsonl OUTPUT.jsonl
INPUT holds one {"gold": str, "response": str} object per line. OUTPUT gets one
{"correct": bool} object per input line, in order, then {"seconds": float}: the time spent
grading (parse of gold and response, then verify), not counting start-up.
Exit status 3 when math_verify cannot be imported.
"""

import json
import sys
import time

try:
    from math_verify import parse, verify
except ImportError as e:  # pragma: no cover - reported by the Rust test
    print(f"math_verify is not importable: {e}", file=sys.stderr)
    sys.exit(3)


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f if line.strip()]
    out = []
    start = time.perf_counter()
    for p in pairs:
        try:
            ok = bool(verify(parse(p["gold"]), parse(p["response"])))
        except Exception:  # Math-Verify's own failures count as "not equal"
            ok = False
        out.append(ok)
    seconds = time.perf_counter() - start
    with open(dst, "w", encoding="utf-8") as f:
        for ok in out:
            f.write(json.dumps({"correct": ok}) + "\n")
        f.write(json.dumps({"seconds": seconds}) + "\n")


if __name__ == "__main__":
    main()
