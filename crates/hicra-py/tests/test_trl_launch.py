"""HicraGRPOTrainer warns when several processes were asked for but one started: the case of
``accelerate launch --cpu --num_processes 2``, which starts a single process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("accelerate")
pytest.importorskip("datasets")

from hicra.trl import requested_processes, single_process_warning  # noqa: E402

ACCELERATE = ["/venv/bin/python", "/venv/bin/accelerate", "launch"]


def test_requested_processes_from_the_launch_command(tmp_path):
    assert requested_processes([*ACCELERATE, "--cpu", "--num_processes", "2", "train.py"]) == 2
    assert requested_processes([*ACCELERATE, "--num-processes=4", "train.py"]) == 4
    config = tmp_path / "multi_cpu.yaml"
    config.write_text("distributed_type: MULTI_CPU\nnum_processes: 3\nuse_cpu: true\n")
    assert requested_processes([*ACCELERATE, "--config_file", str(config), "train.py"]) == 3
    assert requested_processes(["/usr/bin/python", "train.py"]) is None
    assert requested_processes(["/usr/bin/python", "my_launcher.py", "--num_processes", "4"]) is None
    assert requested_processes(["/venv/bin/python", "-m", "accelerate.commands.launch", "--num_processes", "2", "t.py"]) == 2
    assert requested_processes([*ACCELERATE, "--config_file", str(tmp_path / "missing.yaml"), "t.py"]) is None


def test_warning_only_when_more_were_asked_for_than_started():
    argv = [*ACCELERATE, "--cpu", "--num_processes", "2", "train.py"]
    message = single_process_warning(1, {"MASTER_PORT": "29500"}, argv)
    assert message is not None and "2 processes were asked for" in message
    assert "WORLD_SIZE is unset" in message and "torchrun --nproc_per_node 2" in message
    assert single_process_warning(2, {"WORLD_SIZE": "2", "MASTER_PORT": "29500"}, argv) is None
    # torchrun --nproc_per_node 1 sets WORLD_SIZE=1 and MASTER_PORT: one process was asked for.
    torchrun = ["/venv/bin/python", "/venv/bin/torchrun", "--nproc_per_node", "1", "train.py"]
    assert single_process_warning(1, {"WORLD_SIZE": "1", "MASTER_PORT": "29500"}, torchrun) is None
    assert single_process_warning(1, {}, ["/usr/bin/python", "train.py"]) is None
    # A launcher that prepared a rendezvous but started no process group.
    assert "several processes were asked for" in single_process_warning(1, {"MASTER_PORT": "1"}, ["sh"])


SCRIPT = """
import datasets, sys, warnings
sys.path.insert(0, {tests!r})
from tiny_grpo import PROMPTS, write_tiny_model
from hicra.rewards import math_reward
from hicra.trl import HicraGRPOConfig, HicraGRPOTrainer
write_tiny_model({model!r})
args = HicraGRPOConfig(output_dir={out!r}, per_device_train_batch_size=4, num_generations=4, max_steps=1,
                       report_to="none", use_cpu=True, bf16=False)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    trainer = HicraGRPOTrainer(model={model!r}, reward_funcs=math_reward, args=args,
                               train_dataset=datasets.Dataset.from_dict(PROMPTS))
print("processes:", trainer.accelerator.num_processes)
for w in caught:
    if "processes were asked for" in str(w.message):
        print("WARNING:", w.message)
"""


def test_accelerate_launch_cpu_with_two_processes_starts_one_and_is_warned(tmp_path):
    script = tmp_path / "build_trainer.py"
    tests = str(Path(__file__).parent)
    script.write_text(textwrap.dedent(SCRIPT.format(tests=tests, model=str(tmp_path / "model"), out=str(tmp_path / "out"))))
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate), "launch", "--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(script)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.splitlines()
    assert lines.count("processes: 1") == 1, "accelerate was expected to start exactly one process here"
    warned = [line for line in lines if line.startswith("WARNING:")]
    assert len(warned) == 1 and "2 processes were asked for" in warned[0] and "torchrun" in warned[0], done.stdout
