"""Trains HicraGRPOTrainer for two steps per case and saves what each process saw; started by
tests/test_trl_distributed.py as

    torchrun --standalone --nproc_per_node 2 distributed_grpo.py OUT MODEL GRAMS CASE...

Each process writes ``OUT/CASE/rank{R}.pt``: per generation batch its completions, the
per-token advantages the loss received, the token entropies HICRA used, TRL's rewards of all
processes; then the trainer's log history, its parameters before and after, and the warnings
the trainer raised. For LoRA cases also the entropies recomputed here with the adapted model
and with the adapters switched off.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

CASES = {
    # name: (HICRA variant, completions per process per step, LoRA)
    "paper": ("paper", 4, False),
    "released": ("released", 4, False),
    # Two completions per process and groups of four: every group spans both processes.
    "released-split-groups": ("released", 2, False),
    "lora-released": ("released", 4, True),
}
NUM_GENERATIONS = 4


def answer_word_reward(prompts, completions, answer, **kwargs):
    """1.0 when the gold answer is one of the completion's words (denser than grading the
    final answer, so that the tiny random model's groups have mixed rewards)."""
    return [1.0 if gold in text.split() else 0.0 for text, gold in zip(completions, answer)]


def own_entropies(model, output, temperature):
    """Next-token entropy at each completion token, from the model's logits (no TRL code)."""
    import torch

    ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
    attention = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
    start = output["prompt_ids"].size(1) - 1
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention).logits.float()
    logits = logits[:, start : start + output["completion_ids"].size(1)] / temperature
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def recording_trainer(lora: bool):
    """HicraGRPOTrainer that keeps, per generation batch, what the checks need."""
    from hicra.trl import HicraGRPOTrainer

    class Recording(HicraGRPOTrainer):
        records: list = []

        def _hicra_token_entropies(self, output):
            self._used_entropy = super()._hicra_token_entropies(output)
            return self._used_entropy

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            rec = {k: out[k].detach().cpu().clone() for k in ("completion_ids", "completion_mask", "advantages")}
            rec["entropy"] = self._used_entropy.detach().cpu().clone()
            rec["rewards"] = self._hicra_rewards.detach().cpu().clone()
            if lora:
                rec["entropy_adapted"] = own_entropies(self.model, out, self.temperature).cpu()
                with self.model.disable_adapter():
                    rec["entropy_base"] = own_entropies(self.model, out, self.temperature).cpu()
            self.records.append(rec)
            return out

    Recording.records = []
    return Recording


def run_case(out_dir: Path, model_dir: str, grams: str, name: str) -> None:
    import datasets
    import torch
    from tiny_grpo import PROMPTS, TWO_CPU_STEPS

    from hicra.trl import HicraGRPOConfig

    variant, per_device, lora = CASES[name]
    args = HicraGRPOConfig(
        output_dir=str(out_dir / name / "trainer"),
        per_device_train_batch_size=per_device,
        num_generations=NUM_GENERATIONS,
        learning_rate=5e-2 if lora else 5e-3,
        hicra_alpha=0.2,
        hicra_variant=variant,
        strategic_grams=grams,
        **TWO_CPU_STEPS,
    )
    peft_config = None
    if lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer_class = recording_trainer(lora)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = trainer_class(
            model=model_dir,
            reward_funcs=answer_word_reward,
            args=args,
            train_dataset=datasets.Dataset.from_dict(PROMPTS),
            peft_config=peft_config,
        )
    before = {n: p.detach().cpu().clone() for n, p in trainer.model.named_parameters()}
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    trainer.train()
    after = {n: p.detach().cpu().clone() for n, p in trainer.model.named_parameters()}
    rank = trainer.accelerator.process_index
    (out_dir / name).mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "process_index": rank,
            "num_processes": trainer.accelerator.num_processes,
            "records": trainer.records,
            "log_history": trainer.state.log_history,
            "before": before,
            "after": after,
            "trainable": trainable,
            "warnings": [str(w.message) for w in caught],
        },
        out_dir / name / f"rank{rank}.pt",
    )
    trainer.accelerator.wait_for_everyone()


def main() -> None:
    out_dir, model_dir, grams, *names = sys.argv[1:]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in names:
        run_case(Path(out_dir), model_dir, grams, name)


if __name__ == "__main__":
    main()
