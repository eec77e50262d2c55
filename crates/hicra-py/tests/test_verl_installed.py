"""hicra.verl inside verl 0.9.1's own code (CI runs this file in verl's environment).

- the estimator registry and ``compute_advantage`` of the legacy trainer against verl's own
  ``grpo``;
- HICRA's entropy variants: a stand-in actor worker group runs a tiny causal LM in verl's
  old-log-prob pass (legacy ``RayPPOTrainer._compute_old_log_prob``, and the V1 trainer's
  ``_compute_old_log_prob`` with a real TransferQueue), then verl's advantage step runs
  ``hicra``; the advantages are compared with the rules written out with numpy
  (tests/hicra_reference.py) on entropies recomputed here from the model;
- ``compute_score`` from 16 threads against serial calls;
- ``python -m hicra.verl`` on a CPU, as far as it gets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

verl = pytest.importorskip("verl", reason="verl is not installed (CI runs this file in verl's own venv)")
torch = pytest.importorskip("torch")

from hicra_reference import grpo, per_token  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from tiny_grpo import GRAMS, WORDS, write_tiny_model  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.trainer.ppo import core_algos, ray_trainer  # noqa: E402

import hicra.verl as hv  # noqa: E402

N = 2  # responses per prompt
PROMPTS = [["so", "the", "answer", "is"], ["let", "us", "check"], ["wait"]]
RESPONSES = [  # two per prompt, of different lengths
    ["wait", "let", "us", "check", "the", "answer", "is", "2"],
    ["so", "1"],
    ["the", "answer", "is", "3", ".", "wait", "so"],
    ["2", ".", "let", "us"],
    ["check", "wait", "3"],
    ["so", "the", "answer", "is", "1", ".", "wait", "let", "us"],
]
SCORES = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(tokenizer, model) of the tiny random Qwen2 the tests share."""
    import transformers

    root = tmp_path_factory.mktemp("verl-model")
    tok = write_tiny_model(root)
    model = transformers.AutoModelForCausalLM.from_pretrained(root).eval()
    return tok, model, root


def ids(tok, words):
    return torch.tensor(tok.convert_tokens_to_ids(words), dtype=torch.int64)


def next_token_stats(model, sequence):
    """Log-prob of each next token and the entropy of the distribution at each position."""
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=sequence[None]).logits[0].float(), dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    next_logp = torch.zeros(len(sequence))
    next_logp[:-1] = logp[:-1].gather(1, sequence[1:, None])[:, 0]
    return next_logp, entropy


def response_entropies(model, tok, i):
    """Entropy of the policy at each token of response ``i`` (the distribution it was drawn from)."""
    prompt, response = ids(tok, PROMPTS[i // N]), ids(tok, RESPONSES[i])
    _, entropy = next_token_stats(model, torch.cat([prompt, response]))
    return entropy[len(prompt) - 1 : len(prompt) - 1 + len(response)]


def reference(variant, tok, model, uids):
    """What HICRA must give: GRPO from the scores, planning from the gram words, entropies
    recomputed from the model, the rules in numpy."""
    width = max(len(r) for r in RESPONSES)
    mask = np.zeros((len(RESPONSES), width), dtype=bool)
    planning = np.zeros_like(mask)
    entropy = np.zeros(mask.shape)
    for i, words in enumerate(RESPONSES):
        mask[i, : len(words)] = True
        text = " ".join(words)
        for gram in GRAMS:  # the grams are whole words here, so a word is planning when a gram covers it
            start = 0
            while (at := text.find(gram, start)) >= 0:
                first = text[:at].count(" ")
                planning[i, first : first + gram.count(" ") + 1] = True
                start = at + 1
        entropy[i, : len(words)] = response_entropies(model, tok, i).numpy()
    outcome = grpo(SCORES, uids)
    return per_token(variant, outcome, planning, mask, entropy, np.array(SCORES) >= 1, uids), mask, outcome


def padded_batch(tok):
    """The rollout as verl's legacy trainer holds it: left-padded prompts, right-padded responses."""
    pad = tok.pad_token_id
    p_width, r_width = max(map(len, PROMPTS)), max(map(len, RESPONSES))
    rows = []
    for i, words in enumerate(RESPONSES):
        prompt, response = ids(tok, PROMPTS[i // N]), ids(tok, words)
        p = torch.full((p_width,), pad)
        p[p_width - len(prompt) :] = prompt
        r = torch.full((r_width,), pad)
        r[: len(response)] = response
        attention = torch.cat([torch.arange(p_width) >= p_width - len(prompt), torch.arange(r_width) < len(response)]).long()
        rows.append((p, r, attention))
    prompts, responses, attention = (torch.stack(x) for x in zip(*rows))
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    scores = torch.zeros(responses.shape)
    lengths = torch.tensor([len(r) for r in RESPONSES])
    scores[torch.arange(len(RESPONSES)), lengths - 1] = torch.tensor(SCORES)
    return DataProto.from_dict(
        tensors={
            "prompts": prompts,
            "responses": responses,
            "input_ids": torch.cat([prompts, responses], dim=1),
            "attention_mask": attention,
            "position_ids": position_ids,
            "response_mask": attention[:, p_width:],
            "token_level_scores": scores,
            "token_level_rewards": scores,
        },
        non_tensors={"uid": np.array([f"p{i // N}" for i in range(len(RESPONSES))], dtype=object)},
    )


class LegacyActorWorkers:
    """Stands in for the legacy trainer's actor worker group: ``compute_log_prob`` runs the
    model over each sequence of the no-padding batch (nested ``input_ids``) and returns the
    per-position log-probs and entropies in that layout, as verl's workers do."""

    def __init__(self, model):
        self.model = model

    def compute_log_prob(self, batch_td):
        from tensordict import TensorDict

        log_probs, entropies = zip(*(next_token_stats(self.model, seq) for seq in batch_td["input_ids"].unbind()))
        nested = lambda xs: torch.nested.as_nested_tensor(list(xs), layout=torch.jagged)  # noqa: E731
        out = TensorDict({"log_probs": nested(log_probs), "entropy": nested(entropies)}, batch_size=len(log_probs))
        from verl.utils import tensordict_utils as tu

        tu.assign_non_tensor(out, metrics={"mfu": 0.0})
        return out


def test_registry_and_legacy_compute_advantage_against_verl_grpo(tiny):
    tok, _, _ = tiny
    hv.configure(tok, grams=hv.StrategicGrams.from_grams(GRAMS), alpha=0.2)
    hv.patch_compute_advantage()
    hv.patch_compute_advantage()  # idempotent
    assert core_algos.get_adv_estimator_fn("hicra") is hv.hicra_advantage
    data = padded_batch(tok)
    rewards, mask, uids = data.batch["token_level_rewards"], data.batch["response_mask"], data.non_tensor_batch["uid"]
    theirs, _ = core_algos.compute_grpo_outcome_advantage(rewards, mask, uids)
    hv.configure(tok, grams="paper", variant="none")  # HICRA without amplification is verl's GRPO
    ours, _ = hv.hicra_advantage(rewards, mask, uids, responses=data.batch["responses"])
    torch.testing.assert_close(ours, theirs)
    hv.configure(tok, grams=hv.StrategicGrams.from_grams(GRAMS), alpha=0.2, variant="paper")
    out = ray_trainer.compute_advantage(data, adv_estimator="hicra", num_repeat=N, config=None)
    want, _, outcome = reference("paper", tok, tiny[1], list(uids))
    np.testing.assert_allclose(out.batch["advantages"].numpy(), want, rtol=1e-5, atol=1e-6)
    assert (np.abs(want - outcome[:, None]) > 1e-6).any()


@pytest.mark.parametrize("variant", ["released", "entropy"])
def test_legacy_trainer_hands_the_old_log_prob_entropies_to_hicra(tiny, variant):
    tok, model, _ = tiny
    hv.configure(tok, grams=hv.StrategicGrams.from_grams(GRAMS), alpha=0.2, variant=variant)
    hv.patch_compute_advantage()
    trainer = SimpleNamespace(
        config=OmegaConf.create({"actor_rollout_ref": {"actor": {}}}), actor_rollout_wg=LegacyActorWorkers(model)
    )
    batch = padded_batch(tok)
    # The steps of RayPPOTrainer.fit between the old-log-prob pass and the advantages.
    old_log_prob, _ = ray_trainer.RayPPOTrainer._compute_old_log_prob(trainer, batch)
    kept = old_log_prob.batch[hv.KEPT_ENTROPY].clone()
    old_log_prob.batch.pop("entropys")
    batch = batch.union(old_log_prob)
    out = ray_trainer.compute_advantage(batch, adv_estimator="hicra", num_repeat=N, config=None)
    assert hv.KEPT_ENTROPY not in out.batch.keys(), "the kept entropies must not reach the actor update"
    want, mask, outcome = reference(variant, tok, model, list(batch.non_tensor_batch["uid"]))
    for i in range(len(RESPONSES)):
        n = len(RESPONSES[i])
        torch.testing.assert_close(kept[i, :n], response_entropies(model, tok, i), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.batch["advantages"].numpy(), want, rtol=1e-5, atol=1e-6)
    assert ((np.abs(want - outcome[:, None]) > 1e-6) & mask).any(), "the case should amplify some tokens"


@pytest.fixture(scope="module")
def transfer_queue():
    """A local Ray instance with verl's TransferQueue, as the V1 trainer's task runner has."""
    ray = pytest.importorskip("ray")
    tq = pytest.importorskip("transfer_queue", reason="the V1 trainer needs the transferqueue package")
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
    yield tq
    tq.close()
    ray.shutdown()


class V1ActorWorkers:
    """Stands in for the V1 trainer's actor worker group: reads ``input_ids`` from the
    transfer queue, writes per-position ``log_probs`` and ``entropy`` back, as its workers do."""

    def __init__(self, model, tq):
        self.model, self.tq = model, tq

    def compute_log_prob(self, meta):
        from tensordict import TensorDict

        data = self.tq.kv_batch_get(keys=meta.keys, partition_id=meta.partition_id, select_fields=["input_ids"])
        log_probs, entropies = zip(*(next_token_stats(self.model, seq) for seq in data["input_ids"].unbind()))
        nested = lambda xs: torch.nested.as_nested_tensor(list(xs), layout=torch.jagged)  # noqa: E731
        fields = TensorDict({"log_probs": nested(log_probs), "entropy": nested(entropies)}, batch_size=len(meta.keys))
        return self.tq.kv_batch_put(keys=meta.keys, partition_id=meta.partition_id, fields=fields)


def test_v1_trainer_hands_the_old_log_prob_entropies_to_hicra(tiny, transfer_queue):
    from verl.trainer.ppo.v1 import trainer_base
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    tok, model, _ = tiny
    tq = transfer_queue
    hv.configure(tok, grams=hv.StrategicGrams.from_grams(GRAMS), alpha=0.2, variant="released")
    hv.patch_compute_advantage()
    keys, samples = [], []
    for i, words in enumerate(RESPONSES):
        prompt, response = ids(tok, PROMPTS[i // N]), ids(tok, words)
        score = torch.zeros(len(response))
        score[-1] = SCORES[i]
        keys.append(f"p{i // N}_{i % N}_0")  # the V1 key: uid, sample within the group, index
        samples.append(
            {"uid": f"p{i // N}", "prompts": prompt, "responses": response, "input_ids": torch.cat([prompt, response]),
             "response_mask": torch.ones(len(response), dtype=torch.int64), "rm_scores": score}
        )
    meta = tq.kv_batch_put(keys=keys, partition_id="train", fields=list_of_dict_to_tensordict(samples))
    config = OmegaConf.create(
        {
            "algorithm": {"adv_estimator": "hicra", "use_kl_in_reward": False, "rollout_correction": None,
                          "gamma": 1.0, "lam": 1.0, "norm_adv_by_std_in_grpo": True},
            "actor_rollout_ref": {"rollout": {"n": N, "temperature": 1.0, "calculate_log_probs": False},
                                  "actor": {"loss_agg_mode": "token-mean", "loss_scale_factor": None}},
        }
    )
    trainer = SimpleNamespace(config=config, actor_rollout_wg=V1ActorWorkers(model, tq))
    metrics = {}
    meta = trainer_base.PPOTrainer._compute_old_log_prob(trainer, meta, metrics)
    meta = trainer_base.PPOTrainer._compute_advantage(trainer, meta, metrics)
    assert "actor/entropy" in metrics
    got = tq.kv_batch_get(keys=keys, partition_id="train", select_fields=["advantages"])["advantages"]
    want, mask, outcome = reference("released", tok, model, [s["uid"] for s in samples])
    for i, row in enumerate(got.unbind()):
        np.testing.assert_allclose(row.numpy(), want[i, : len(RESPONSES[i])], rtol=1e-5, atol=1e-6)
    assert ((np.abs(want - outcome[:, None]) > 1e-6) & mask).any()


def test_compute_score_from_threads_matches_serial():
    golds = [str(k % 7) for k in range(400)]
    answers = [f"so \\boxed{{{(k * 3) % 7}}}" if k % 2 else f"#### {k % 7}" for k in range(400)]
    serial = [hv.compute_score("math", a, g) for a, g in zip(answers, golds)]
    with ThreadPoolExecutor(16) as pool:
        threaded = list(pool.map(lambda ag: hv.compute_score("math", *ag), zip(answers, golds)))
    assert threaded == serial and 0 < sum(serial) < len(serial)


def launcher_command(model_dir: Path, data: Path, *extra: str) -> list:
    return [
        sys.executable, "-m", "hicra.verl",
        f"data.train_files={data}", f"data.val_files={data}",
        "data.train_batch_size=2", "data.max_prompt_length=16", "data.max_response_length=8",
        f"actor_rollout_ref.model.path={model_dir}", f"actor_rollout_ref.rollout.n={N}",
        "actor_rollout_ref.actor.ppo_mini_batch_size=2", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2",
        "trainer.n_gpus_per_node=1", "trainer.nnodes=1", "trainer.logger=console",
        "trainer.total_training_steps=1", "trainer.val_before_train=False",
        f"custom_reward_function.path={hv.__file__}", "custom_reward_function.name=compute_score",
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def launch_inputs(tiny, tmp_path_factory):
    import pandas as pd

    tok, _, model_dir = tiny
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    tok.save_pretrained(model_dir)
    data = tmp_path_factory.mktemp("verl-data") / "train.parquet"
    rows = [
        {"data_source": "hicra-test", "prompt": [{"role": "user", "content": " ".join(p)}],
         "reward_model": {"style": "rule", "ground_truth": "2"}, "extra_info": {"index": k}}
        for k, p in enumerate(PROMPTS * 2)
    ]
    pd.DataFrame(rows).to_parquet(data)
    return model_dir, data


def run_launcher(cmd, tmp_path):
    # Ray's socket paths must stay under 108 bytes: its own short temporary folder.
    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as ray_tmp:
        env = dict(os.environ, RAY_TMPDIR=ray_tmp, RAY_DEDUP_LOGS="0", HYDRA_FULL_ERROR="1")
        return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)


def test_launcher_without_hicra_settings_says_what_to_add(launch_inputs, tmp_path):
    done = run_launcher(launcher_command(*launch_inputs, "algorithm.adv_estimator=hicra"), tmp_path)
    assert done.returncode != 0
    assert "+hicra.alpha=0.2 +hicra.variant=paper +hicra.grams=paper" in done.stderr, done.stderr[-3000:]
    assert "Started a local Ray instance" not in done.stdout + done.stderr, "the check must come before Ray starts"


NCCL_STOP = "ProcessGroupNCCL is only supported with GPUs, no GPUs found!"


def test_launcher_runs_hicra_in_the_task_runner_until_verl_needs_a_gpu(launch_inputs, tmp_path):
    """On a CPU, ``python -m hicra.verl`` gets through verl's config checks, starts Ray and the
    V1 task runner (HICRA configured and patched there), the TransferQueue, the dataset and
    the worker group on a GPU that Ray is told exists; it stops where the actor worker sets up
    its NCCL process group: verl 0.9.1 has no CPU device platform."""
    cmd = launcher_command(
        *launch_inputs,
        "algorithm.adv_estimator=hicra", "+hicra.alpha=0.2", "+hicra.variant=released", "+hicra.grams=paper",
        # TransferQueue's storage units and verl's workers each take a Ray CPU; the GPU is declared only.
        "ray_kwargs.ray_init.num_cpus=16", "+ray_kwargs.ray_init.num_gpus=1",
    )  # fmt: skip
    done = run_launcher(cmd, tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "hicra: estimator 'hicra' registered and verl's advantage step patched in the task runner; variant released" in out, out[-6000:]
    assert "initialize_global_process_group_ray" in out and NCCL_STOP in out, out[-6000:]
    print(f"\npython -m hicra.verl stopped at: {NCCL_STOP}")
