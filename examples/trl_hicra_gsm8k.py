"""TRL + HICRA + the hicra reward on GSM8K-style data.

    pip install "hicra[trl]"            # "hicra[lora]" for --lora-rank
    python examples/trl_hicra_gsm8k.py --model Qwen/Qwen2.5-0.5B-Instruct --data gsm8k.jsonl
    python examples/trl_hicra_gsm8k.py --model ... --data ... --lora-rank 16     # LoRA (PEFT)
    torchrun --nproc_per_node 2 examples/trl_hicra_gsm8k.py --model ... --data ... --cpu

`--data` is a JSONL file with `question` and `answer` fields (GSM8K's format: the answer is
a reference solution ending in `#### <number>`; the verifier reads the number after
`####`). Several processes: `torchrun --nproc_per_node N` (on a CPU it uses gloo; there
`accelerate launch --cpu --num_processes N` starts one process, and the trainer warns);
on GPUs `accelerate launch` works as usual. vLLM rollouts: `--use-vllm` (TRL's colocate mode).
"""

import argparse

from datasets import load_dataset

from hicra.rewards import math_reward
from hicra.trl import HicraGRPOConfig, HicraGRPOTrainer

PROMPT = "{question}\nReason step by step, then give the final answer as \\boxed{{...}}."


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="Hugging Face model id or local path")
    p.add_argument("--data", required=True, help="JSONL with question/answer fields")
    p.add_argument("--output-dir", default="runs/trl-hicra-gsm8k")
    p.add_argument("--grams", default="paper", help="'paper' or a gram file, one gram per line")
    p.add_argument("--variant", default="paper", choices=["paper", "released", "entropy", "placebo", "none"])
    p.add_argument("--alpha", type=float, default=0.2)
    p.add_argument("--num-generations", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8, help="completions per device per step")
    p.add_argument("--max-completion-length", type=int, default=512)
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--learning-rate", type=float, default=1e-6)
    p.add_argument("--use-vllm", action="store_true")
    p.add_argument("--lora-rank", type=int, default=0, help="train LoRA adapters of this rank (0: full training)")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even where a GPU is visible")
    args = p.parse_args()

    data = load_dataset("json", data_files=args.data, split="train")
    data = data.map(
        lambda row: {"prompt": [{"role": "user", "content": PROMPT.format(question=row["question"])}]}
    )
    config = HicraGRPOConfig(
        output_dir=args.output_dir,
        per_device_train_batch_size=args.batch_size,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        # The paper's base objective: GRPO with clip-higher, token-level aggregation.
        epsilon=0.2,
        epsilon_high=0.28,
        loss_type="dapo",
        beta=0.0,
        temperature=1.0,
        logging_steps=1,
        use_cpu=args.cpu,
        bf16=False if args.cpu else None,
        use_vllm=args.use_vllm,
        vllm_mode="colocate",
        hicra_alpha=args.alpha,
        hicra_variant=args.variant,
        strategic_grams=args.grams,
    )
    peft_config = None
    if args.lora_rank:
        from peft import LoraConfig

        peft_config = LoraConfig(r=args.lora_rank, lora_alpha=2 * args.lora_rank, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = HicraGRPOTrainer(
        model=args.model, reward_funcs=math_reward, args=config, train_dataset=data, peft_config=peft_config
    )
    trainer.train()
    trainer.save_model(args.output_dir)


if __name__ == "__main__":
    main()
