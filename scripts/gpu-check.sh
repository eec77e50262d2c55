#!/usr/bin/env bash
# The one GPU run: everything issue 12 asks of a GPU machine, in one call, within ~10 minutes.
# It needs no Rust toolchain and no network there: the binaries are built here and carried.
#
#   bash scripts/gpu-check.sh --bundle        # here: build the CUDA binary and test binary into
#                                             # gpu-bundle/ (ignored; carry it)
#   bash scripts/gpu-check.sh                 # there: run it all (writes under $OUT)
#   bash scripts/gpu-check.sh --cpu           # here: the same steps on the CPU, short sizes,
#                                             # with the CPU build, to know the script runs
#
# It runs, each step under its own time limit and going on past a failed one:
#   1. the CUDA tests (HICRA_TEST_CUDA=1): GPU vs CPU logits and log-probs, every gradient
#      against the CPU f64 reference, greedy generation parity;
#   2. a 20-step RL run of the lab on the GPU (`hicra train --device cuda`);
#   3. random-weight HF directories of the SmolLM2-135M, Qwen2.5-0.5B and Qwen2.5-1.5B shapes
#      (scripts/torch_bench.py write), then for each `hicra bench model --device cuda --json`
#      and scripts/torch_bench.py bench on the same shapes: generation tok/s at batch 1, 64,
#      256 with 256 new tokens, training tok/s at 8 x 1024, peak GPU memory.
# The figures go to $OUT/bench.jsonl (one JSON line per side and model) and the logs to
# $OUT/*.log ($OUT: the device tool's, else /tmp/hicra-gpu-check/out); the last lines printed
# are a summary table.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
BUNDLE="$REPO/gpu-bundle"
MODE=gpu
case "${1:-}" in
  --bundle) MODE=bundle ;;
  --cpu) MODE=cpu ;;
  "") ;;
  *) echo "usage: $0 [--bundle | --cpu]" >&2; exit 2 ;;
esac

if [ "$MODE" = bundle ]; then
  set -e
  cuda_env="$(bash scripts/cuda-toolkit.sh)"
  eval "$cuda_env"
  export CARGO_TARGET_DIR="${HICRA_CUDA_TARGET_DIR:-/work/target-cuda}"
  cargo build --locked --release -p hicra-cli --features cuda
  # The CUDA test binary (release, so the f64 reference and the GPU runs are quick).
  test_bin="$(cargo test --locked --release -p hicra-model --features cuda --test cuda --no-run \
    --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "cuda" and m.get("executable"):
        print(m["executable"])')"
  rm -rf "$BUNDLE"
  mkdir -p "$BUNDLE"
  cp "$CARGO_TARGET_DIR/release/hicra" "$BUNDLE/hicra"
  cp "$test_bin" "$BUNDLE/cuda-tests"
  strip "$BUNDLE/hicra" "$BUNDLE/cuda-tests"
  xz -T2 -6 "$BUNDLE/hicra" "$BUNDLE/cuda-tests"
  grep -qx '/gpu-bundle/' .git/info/exclude 2>/dev/null || echo '/gpu-bundle/' >> .git/info/exclude
  du -sh "$BUNDLE"/*
  echo "carry gpu-bundle; run: bash scripts/gpu-check.sh"
  exit 0
fi

PY="${PYTHON:-python3}"
WORK="${HICRA_GPU_WORK:-/tmp/hicra-gpu-check}"
OUT="${OUT:-$WORK/out}"
mkdir -p "$WORK" "$OUT"
export HICRA_HOME="$WORK/home"
export PYTHONUNBUFFERED=1

if [ "$MODE" = gpu ]; then
  DEVICE=cuda
  SHAPES="smollm2-135m qwen2.5-0.5b qwen2.5-1.5b"
  BATCHES=1,64,256 NEW=256 TRAIN_B=8 TRAIN_T=1024 TRAIN_STEPS=2 RL_STEPS=20 SFT_STEPS=200
  T_TEST=120 T_GEN=45 T_TRAIN=60 T_RL=100 DEADLINE="${HICRA_GPU_DEADLINE:-570}"
  for f in hicra cuda-tests; do  # unpacked with Python's lzma (no xz needed there)
    [ -x "$WORK/$f" ] || "$PY" -c 'import lzma, shutil, sys
shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$BUNDLE/$f.xz" "$WORK/$f"
    chmod +x "$WORK/$f"
  done
  HICRA="$WORK/hicra"
  TESTS="$WORK/cuda-tests"
  # The CUDA libraries of the Python's wheels (cublas, curand, nvrtc, cudart), beside the
  # driver's libcuda.so.1.
  LIBS="$("$PY" -c '
import glob, os, site
dirs = []
for root in site.getsitepackages():
    dirs += sorted(glob.glob(os.path.join(root, "nvidia", "*", "lib")))
print(":".join(dirs))')"
  export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv 2>&1 | tee "$OUT/nvidia-smi.log"
  if ! ldd "$HICRA" | tee "$OUT/ldd.log" | grep -q "not found"; then :; else
    echo "missing libraries:"; grep "not found" "$OUT/ldd.log"
  fi
else
  DEVICE=cpu
  SHAPES="smollm2-135m"
  BATCHES=1,2 NEW=8 TRAIN_B=1 TRAIN_T=32 TRAIN_STEPS=1 RL_STEPS=1 SFT_STEPS=5
  T_TEST=600 T_GEN=300 T_TRAIN=300 T_RL=900 DEADLINE="${HICRA_GPU_DEADLINE:-7200}"
  TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
  cargo build --release -p hicra-cli >&2
  HICRA="$TARGET_DIR/release/hicra"
  TESTS="cargo test --release -p hicra-model --test cuda --"
fi

status=()
# Runs a step under its own limit, cut to what is left before DEADLINE (seconds since the
# start: the device tool's 10-minute command limit); a step that cannot start is skipped.
step() { # name, seconds, command...
  local name="$1" secs="$2"; shift 2
  local left=$((DEADLINE - SECONDS))
  if [ "$left" -lt 20 ]; then
    status+=("$name skipped (deadline)")
    return 124
  fi
  [ "$secs" -gt "$left" ] && secs=$left
  echo "== $name (limit ${secs}s)"
  local t0=$SECONDS
  timeout --kill-after=10 "$secs" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  status+=("$name rc=$rc $((SECONDS - t0))s")
  return $rc
}

# 1. The CUDA tests. On the CPU (no HICRA_TEST_CUDA) they only report that they skip.
if [ "$MODE" = gpu ]; then
  step cuda-tests "$T_TEST" env HICRA_TEST_CUDA=1 "$TESTS" --test-threads=1 --nocapture
else
  step cuda-tests "$T_TEST" $TESTS --nocapture
fi

# 2. The lab's RL loop on the device (SFT warm start first, also on the device).
step "lab-rl" "$T_RL" "$HICRA" train --device "$DEVICE" --out "$WORK/lab-run" \
  --set trainer.steps="$RL_STEPS" --set trainer.val_every=0 --set trainer.ckpt_every=0 \
  --set sft.steps="$SFT_STEPS"
[ -f "$WORK/lab-run/metrics.jsonl" ] && cp "$WORK/lab-run/metrics.jsonl" "$OUT/lab-metrics.jsonl"

# 3. The benchmark per shape, smallest first: hicra then torch, one process per generation
# batch size and one for training (a slow or failed one loses only its own figure). Each
# JSON object printed is kept in $OUT/bench.jsonl with its side and shape.
decode_flag=()
"$HICRA" bench model --help | grep -q -- "--decode-dtypes" && decode_flag=(--decode-dtypes f32)
keep_json() { # log, side, shape
  grep '^{' "$1" | tail -n 1 | "$PY" -c 'import json, sys
d = json.load(sys.stdin)
d.update(side=sys.argv[1], shape=sys.argv[2])
print(json.dumps(d))' "$2" "$3" >> "$OUT/bench.jsonl"
}
: > "$OUT/bench.jsonl"
for shape in $SHAPES; do
  dir="$WORK/models/$shape"
  [ -f "$dir/model.safetensors" ] || step "write-$shape" 120 "$PY" scripts/torch_bench.py write "$dir" --shape "$shape"
  for b in ${BATCHES//,/ }; do
    step "hicra-$shape-gen$b" "$T_GEN" "$HICRA" bench model --model "$dir" --device "$DEVICE" --json \
      --batch-sizes "$b" --new-tokens "$NEW" --train-steps 0 "${decode_flag[@]}" \
      && keep_json "$OUT/hicra-$shape-gen$b.log" hicra "$shape"
    step "torch-$shape-gen$b" "$T_GEN" "$PY" scripts/torch_bench.py bench "$dir" --device "$DEVICE" \
      --batch-sizes "$b" --new-tokens "$NEW" --train-steps 0 \
      && keep_json "$OUT/torch-$shape-gen$b.log" torch "$shape"
  done
  step "hicra-$shape-train" "$T_TRAIN" "$HICRA" bench model --model "$dir" --device "$DEVICE" --json \
    --batch-sizes 1 --new-tokens 1 --train-batch "$TRAIN_B" --train-seq-len "$TRAIN_T" \
    --train-steps "$TRAIN_STEPS" "${decode_flag[@]}" \
    && keep_json "$OUT/hicra-$shape-train.log" hicra "$shape"
  step "torch-$shape-train" "$T_TRAIN" "$PY" scripts/torch_bench.py bench "$dir" --device "$DEVICE" \
    --batch-sizes 1 --new-tokens 1 --train-batch "$TRAIN_B" --train-seq-len "$TRAIN_T" \
    --train-steps "$TRAIN_STEPS" \
    && keep_json "$OUT/torch-$shape-train.log" torch "$shape"
done

echo "== summary"
printf '%s\n' "${status[@]}"
"$PY" - "$OUT/bench.jsonl" "$BATCHES" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
batches = sys.argv[2].split(",")
by = {}
for r in rows:  # one process per figure: a training process or a generation process
    m = by.setdefault((r["shape"], r["side"]), {})
    peak = r.get("gpu_peak_mb")
    if isinstance(r.get("train_tok_s"), (int, float)):
        m["train_tok_s"] = r["train_tok_s"]
        m["train_peak_mb"] = peak
    else:
        m.update({k: v for k, v in r.items() if k.startswith("gen_b") and k.endswith("_tok_s")})
        if isinstance(peak, (int, float)):
            m["gen_peak_mb"] = max(peak, m.get("gen_peak_mb", 0))
cols = [f"gen_b{b}_tok_s" for b in batches] + ["train_tok_s", "train_peak_mb", "gen_peak_mb"]
print("shape          side   " + " ".join(f"{c:>16}" for c in cols))
for shape in dict.fromkeys(r["shape"] for r in rows):
    for side in ("hicra", "torch"):
        r = by.get((shape, side))
        if r:
            cells = [r.get(c) for c in cols]
            print(f"{shape:14} {side:6} " + " ".join(f"{c:16.1f}" if isinstance(c, (int, float)) else f"{'-':>16}" for c in cells))
    h, t = by.get((shape, "hicra")), by.get((shape, "torch"))
    if h and t:
        ratio = [h.get(c) / t[c] if isinstance(h.get(c), (int, float)) and t.get(c) else None for c in cols]
        print(f"{shape:14} {'ratio':6} " + " ".join(f"{x:16.2f}" if x is not None else f"{'-':>16}" for x in ratio))
EOF
