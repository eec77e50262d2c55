"""The README's TRL example, run as the README shows it for several processes and LoRA:
``torchrun --nproc_per_node 2 examples/trl_hicra_gsm8k.py ... --lora-rank 4 --cpu`` for one
step on a tiny random model and three GSM8K-style rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")
pytest.importorskip("datasets")

from tiny_grpo import write_tiny_model  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "trl_hicra_gsm8k.py"


def test_trl_example_under_torchrun_with_lora(tmp_path):
    tok = write_tiny_model(tmp_path / "model")
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    tok.save_pretrained(tmp_path / "model")
    data = tmp_path / "gsm8k.jsonl"
    rows = [{"question": "so the answer is", "answer": f"let us check #### {k}"} for k in (1, 2, 3)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    cmd = [
        str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", "2", str(EXAMPLE),
        "--model", str(tmp_path / "model"), "--data", str(data), "--output-dir", str(out), "--cpu",
        "--lora-rank", "4", "--num-generations", "2", "--batch-size", "2", "--max-completion-length", "8",
        "--max-steps", "1", "--learning-rate", "1e-2",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-6000:]
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    assert "processes were asked for" not in done.stderr
