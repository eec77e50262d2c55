"""HicraGRPOTrainer under ``torchrun --nproc_per_node 2`` (gloo, CPU), full training and LoRA.

One torchrun launch trains a tiny random model for two steps per case (tests/distributed_grpo.py
lists them: paper, released, released with every group split across the two processes, and
released with LoRA adapters). Each process saves its rows; this process then recomputes the
whole batch the way one process would (GRPO advantages from the gathered rewards, planning
tokens with our own regex matcher, one apply_hicra call over whole groups) and checks that
each process's per-token advantages are its rows of that result, that the logged hierarchy
metrics are those of all processes' completions, and that the processes end with identical
parameters. The LoRA case also checks that the base weights stay frozen, the adapters learn,
and the entropies HICRA used are the adapted policy's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")
pytest.importorskip("datasets")

from distributed_grpo import CASES, NUM_GENERATIONS  # noqa: E402
from tiny_grpo import GRAMS, char_spans, grpo_advantages, planning_flags, write_grams, write_tiny_model  # noqa: E402

from hicra.advantages import apply_hicra  # noqa: E402
from hicra.grams import StrategicGrams  # noqa: E402

PROCESSES = 2
ALPHA = 0.2


@pytest.fixture(scope="module")
def launch(tmp_path_factory):
    """Runs every case in one torchrun launch; returns (output dir, tokenizer)."""
    root = tmp_path_factory.mktemp("torchrun")
    tok = write_tiny_model(root / "model")
    grams = write_grams(root / "grams.txt")
    torchrun = Path(sys.executable).with_name("torchrun")
    script = Path(__file__).with_name("distributed_grpo.py")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(script.parent), os.environ.get("PYTHONPATH", "")]))
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", str(PROCESSES), str(script), str(root / "out"), str(root / "model"), str(grams), *CASES]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    return root / "out", tok


def load(out: Path, case: str) -> list:
    ranks = [torch.load(out / case / f"rank{r}.pt", weights_only=False) for r in range(PROCESSES)]
    assert [r["process_index"] for r in ranks] == list(range(PROCESSES))
    assert all(r["num_processes"] == PROCESSES for r in ranks)
    return ranks


def global_batch(tok, records: list) -> dict:
    """One step's completions of all processes, in process order, padded to one width."""
    width = max(r["completion_ids"].shape[1] for r in records)
    rows = []
    for r in records:
        for ids, m, ent in zip(r["completion_ids"], r["completion_mask"].bool(), r["entropy"]):
            valid = ids[m].tolist()
            text, spans = char_spans(tok, valid)
            flags = np.zeros(width, dtype=bool)
            flags[: len(valid)] = planning_flags(text, spans)
            mask = np.zeros(width, dtype=bool)
            mask[: len(valid)] = True
            entropy = np.zeros(width, dtype=np.float32)
            entropy[: len(valid)] = ent[m].numpy()
            rows.append((text, flags, mask, entropy))
    texts, planning, mask, entropy = zip(*rows)
    return {"texts": list(texts), "planning": np.stack(planning), "mask": np.stack(mask), "entropy": np.stack(entropy)}


def one_process_advantages(variant: str, rewards: np.ndarray, batch: dict):
    """What one process computes from all completions, rewards and groups."""
    outcome = grpo_advantages(rewards, NUM_GENERATIONS).astype(np.float32)
    per_token = apply_hicra(
        outcome,
        batch["planning"],
        mask=batch["mask"],
        alpha=ALPHA,
        variant=variant,
        entropy=batch["entropy"],
        correct=rewards >= 1.0,
        group_size=NUM_GENERATIONS,
    )
    return outcome, per_token


@pytest.mark.parametrize("case", list(CASES))
def test_each_process_gets_its_rows_of_the_one_process_result(launch, case):
    out, tok = launch
    ranks = load(out, case)
    variant, per_device, _ = CASES[case]
    steps = len(ranks[0]["records"])
    assert steps == 2 and all(len(r["records"]) == steps for r in ranks)
    amplified = 0
    for step in range(steps):
        records = [r["records"][step] for r in ranks]
        rewards = records[0]["rewards"][:, 0].numpy()
        for r in records[1:]:
            assert torch.equal(r["rewards"], records[0]["rewards"]), "TRL gathers the same rewards everywhere"
        assert len(rewards) == per_device * PROCESSES
        batch = global_batch(tok, records)
        outcome, want = one_process_advantages(variant, rewards, batch)
        for rank, rec in enumerate(records):
            got = rec["advantages"].numpy()
            rows = slice(rank * per_device, (rank + 1) * per_device)
            assert got.shape == rec["completion_ids"].shape, "the loss must receive (B, T) per-token advantages"
            np.testing.assert_allclose(got, want[rows, : got.shape[1]], rtol=1e-5, atol=1e-6, err_msg=f"{case} step {step} rank {rank}")
        amplified += int(((want != outcome[:, None]) & batch["mask"]).sum())
    assert amplified > 0, f"{case}: no token was amplified in either step, so the check shows nothing"


@pytest.mark.parametrize("case", list(CASES))
def test_logged_hierarchy_metrics_are_the_gathered_ones(launch, case):
    out, tok = launch
    ranks = load(out, case)
    grams = StrategicGrams.from_grams(GRAMS)
    logged = [h for h in ranks[0]["log_history"] if "hicra/planning_token_frac" in h]
    assert len(logged) == 2
    differs_from_local = False
    for step, h in enumerate(logged):
        records = [r["records"][step] for r in ranks]
        batch = global_batch(tok, records)
        plan, mask, ent = batch["planning"] & batch["mask"], batch["mask"], batch["entropy"].astype(np.float64)
        want = {
            "hicra/planning_token_frac": plan.sum() / mask.sum(),
            "hicra/semantic_entropy": grams.semantic_entropy(batch["texts"]),
            "hicra/token_entropy_planning": (ent * plan).sum() / plan.sum(),
            "hicra/token_entropy_execution": (ent * (mask & ~plan)).sum() / (mask & ~plan).sum(),
        }
        for key, value in want.items():
            assert h[key] == pytest.approx(value, rel=1e-5), (case, step, key)
        local = global_batch(tok, records[:1])
        local_frac = (local["planning"] & local["mask"]).sum() / local["mask"].sum()
        differs_from_local |= abs(local_frac - want["hicra/planning_token_frac"]) > 1e-6
    assert differs_from_local, "process 0's own completions give the same numbers: the check cannot tell"


@pytest.mark.parametrize("case", list(CASES))
def test_processes_end_with_identical_parameters_and_no_launch_warning(launch, case):
    out, _ = launch
    ranks = load(out, case)
    first = ranks[0]
    changed = [n for n in first["trainable"] if not torch.equal(first["after"][n], first["before"][n])]
    assert changed, "training changed no parameter"
    for other in ranks[1:]:
        for name, value in first["after"].items():
            assert torch.equal(value, other["after"][name]), f"{name} differs between processes"
    for r in ranks:
        assert not [w for w in r["warnings"] if "processes were asked for" in w], r["warnings"]


def test_lora_freezes_the_base_trains_the_adapters_and_hicra_sees_the_adapted_policy(launch):
    out, _ = launch
    ranks = load(out, "lora-released")
    first = ranks[0]
    trainable = set(first["trainable"])
    assert trainable and all("lora_" in n for n in trainable), sorted(trainable)
    for name, value in first["before"].items():
        if name not in trainable:
            assert torch.equal(value, first["after"][name]), f"base weight {name} changed"
    assert all(not torch.equal(first["before"][n], first["after"][n]) for n in trainable if "lora_B" in n)
    for r in ranks:
        for step, rec in enumerate(r["records"]):
            mask = rec["completion_mask"].bool()
            torch.testing.assert_close(rec["entropy"][mask], rec["entropy_adapted"][mask], rtol=1e-5, atol=1e-5)
            gap = (rec["entropy_adapted"] - rec["entropy_base"])[mask].abs().max().item()
            if step == 0:  # LoRA starts as the identity (B = 0): the adapted policy is the base
                assert gap < 1e-5
            else:
                assert gap > 1e-4, "after one update the adapted policy should differ from the base"
