"""PyTorch + transformers side of the GPU comparison (scripts/gpu-check.sh runs it beside
`hicra bench model`), and the writer of the random-weight HF directories both sides load.

  python scripts/torch_bench.py write DIR --shape smollm2-135m   # config, weights, tokenizer
  python scripts/torch_bench.py bench DIR --device cuda --json   # the same figures as hicra's

The shapes are those of the published configs (SmolLM2-135M, Qwen2.5-0.5B, Qwen2.5-1.5B);
the weights are random (no weights travel, no network). The figures match `hicra bench
model`'s keys: generation tok/s at each batch size (sampling at temperature 1, exactly
`--new-tokens` new tokens per row from ~40-token prompts), training tok/s of forward + backward
+ AdamW on `--train-batch` x `--train-seq-len` tokens (bf16 autocast over f32 weights, as
PyTorch AMP trains, on CUDA; f32 on the CPU), and the peak device memory in use, polled from
the driver every millisecond (the same measure hicra reports), beside torch's own
max_memory_allocated / max_memory_reserved.
"""

import argparse
import json
import os
import sys
import threading
import time

SHAPES = {
    "smollm2-135m": dict(
        model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=576,
        intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
        num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192,
        rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
        hidden_act="silu", attention_bias=False, mlp_bias=False, head_dim=64,
    ),
    "qwen2.5-0.5b": dict(
        model_type="qwen2", architectures=["Qwen2ForCausalLM"], hidden_size=896,
        intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        hidden_act="silu", use_sliding_window=False,
    ),
    "qwen2.5-1.5b": dict(
        model_type="qwen2", architectures=["Qwen2ForCausalLM"], hidden_size=1536,
        intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
        num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        hidden_act="silu", use_sliding_window=False,
    ),
}

CORPUS = [
    "A train travels 120 km in 1.5 hours. What is its average speed in km per hour?",
    "Natalia sold clips to 48 friends in April and half as many in May.",
    "What is the sum of the first twenty positive odd numbers? Show the key step.",
    "If 3x + 7 = 22, what is the value of x? Check by substituting it back in.",
    "Let's think step by step. The answer is \\boxed{42}.",
]


def write(args):
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers

    shape = dict(SHAPES[args.shape])
    shape.update(bos_token_id=None, eos_token_id=2, torch_dtype="bfloat16")
    os.makedirs(args.dir, exist_ok=True)
    with open(os.path.join(args.dir, "config.json"), "w") as f:
        json.dump(shape, f, indent=1)
    d, ff, layers = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    heads, kv = shape["num_attention_heads"], shape["num_key_value_heads"]
    hd = shape.get("head_dim", d // heads)
    bias = shape["model_type"] == "qwen2"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator(device=device).manual_seed(args.seed)

    def normal(*size, std=0.02):
        return (torch.randn(*size, generator=gen, device=device) * std).to(torch.bfloat16).cpu()

    tensors = {"model.embed_tokens.weight": normal(shape["vocab_size"], d)}
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors[p + "self_attn.q_proj.weight"] = normal(heads * hd, d)
        tensors[p + "self_attn.k_proj.weight"] = normal(kv * hd, d)
        tensors[p + "self_attn.v_proj.weight"] = normal(kv * hd, d)
        tensors[p + "self_attn.o_proj.weight"] = normal(d, heads * hd)
        if bias:
            tensors[p + "self_attn.q_proj.bias"] = normal(heads * hd)
            tensors[p + "self_attn.k_proj.bias"] = normal(kv * hd)
            tensors[p + "self_attn.v_proj.bias"] = normal(kv * hd)
        tensors[p + "mlp.gate_proj.weight"] = normal(ff, d)
        tensors[p + "mlp.up_proj.weight"] = normal(ff, d)
        tensors[p + "mlp.down_proj.weight"] = normal(d, ff)
        tensors[p + "input_layernorm.weight"] = torch.ones(d, dtype=torch.bfloat16)
        tensors[p + "post_attention_layernorm.weight"] = torch.ones(d, dtype=torch.bfloat16)
    tensors["model.norm.weight"] = torch.ones(d, dtype=torch.bfloat16)
    save_file(tensors, os.path.join(args.dir, "model.safetensors"), metadata={"format": "pt"})

    # A small byte-level BPE (ids below the vocabulary size): the benchmarks only need prompts.
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(
        CORPUS * 4,
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok.save(os.path.join(args.dir, "tokenizer.json"))
    with open(os.path.join(args.dir, "tokenizer_config.json"), "w") as f:
        json.dump({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                   "model_max_length": shape["max_position_embeddings"]}, f)
    with open(os.path.join(args.dir, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": 2, "pad_token_id": 0}, f)
    print(f"wrote {args.shape} ({sum(t.numel() for t in tensors.values()) / 1e6:.1f}M "
          f"parameters) to {args.dir}", file=sys.stderr)


class PeakMemory:
    """Device memory in use (total - free), polled every millisecond on a thread."""

    def __init__(self, torch):
        self.torch, self.peak, self.stop = torch, 0, False
        free, total = torch.cuda.mem_get_info()
        self.start = total - free
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()

    def poll(self):
        while not self.stop:
            free, total = self.torch.cuda.mem_get_info()
            self.peak = max(self.peak, total - free)
            time.sleep(0.001)

    def close(self):
        self.stop = True
        self.thread.join()
        return self.peak


def bench(args):
    import torch
    from transformers import AutoModelForCausalLM

    cuda = args.device.startswith("cuda")
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
    watch = None
    started = time.time()
    # Generation in bf16 weights on CUDA (as hicra's default there), f32 on the CPU.
    gen_dtype = torch.bfloat16 if cuda else torch.float32
    model = AutoModelForCausalLM.from_pretrained(args.dir, dtype=gen_dtype).to(device).eval()
    load_s = time.time() - started
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        watch = PeakMemory(torch)
    vocab = model.config.vocab_size
    params = sum(p.numel() for p in model.parameters())
    out = {"model": args.dir, "parameters": params, "device": args.device,
           "torch": torch.__version__, "load_s": load_s}

    def sync():
        if cuda:
            torch.cuda.synchronize()

    for batch in args.batch_sizes:
        ids = torch.randint(3, min(vocab, 400), (batch, args.prompt_len), device=device)
        mask = torch.ones_like(ids)
        kwargs = dict(attention_mask=mask, do_sample=True, temperature=1.0, top_p=1.0,
                      top_k=0, pad_token_id=0, eos_token_id=None)
        with torch.no_grad():
            warm = min(8, args.new_tokens)
            model.generate(ids, max_new_tokens=warm, min_new_tokens=warm, **kwargs)
            sync()
            t0 = time.time()
            res = model.generate(ids, max_new_tokens=args.new_tokens,
                                 min_new_tokens=args.new_tokens, **kwargs)
            sync()
            seconds = time.time() - t0
        tokens = (res.shape[1] - args.prompt_len) * batch
        out[f"gen_b{batch}_tok_s"] = tokens / seconds
        print(f"torch generation batch {batch:>3}: {tokens / seconds:9.1f} tok/s "
              f"({tokens} tokens in {seconds:.2f}s)", file=sys.stderr)

    if args.train_steps > 0:
        # PyTorch AMP: f32 master weights, bf16 autocast forward/backward, f32 AdamW state.
        model = model.float().train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.01)
        ids = torch.randint(3, vocab, (args.train_batch, args.train_seq_len), device=device)

        def step():
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

        step()
        sync()
        t0 = time.time()
        for _ in range(args.train_steps):
            step()
        sync()
        seconds = time.time() - t0
        tok_s = args.train_steps * args.train_batch * args.train_seq_len / seconds
        out["train_tok_s"] = tok_s
        print(f"torch training {args.train_batch}x{args.train_seq_len}: {tok_s:.1f} tok/s",
              file=sys.stderr)
    if watch is not None:
        peak = watch.close()
        mib = 1 << 20
        out["gpu_after_load_mb"] = watch.start / mib
        out["gpu_peak_mb"] = peak / mib
        out["torch_max_allocated_mb"] = torch.cuda.max_memory_allocated() / mib
        out["torch_max_reserved_mb"] = torch.cuda.max_memory_reserved() / mib
        print(f"torch peak GPU memory: {peak / mib:.0f} MiB", file=sys.stderr)
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="write a random-weight HF directory of a shape")
    w.add_argument("dir")
    w.add_argument("--shape", choices=sorted(SHAPES), required=True)
    w.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("bench", help="measure generation and training like hicra bench model")
    b.add_argument("dir")
    b.add_argument("--device", default="cuda")
    b.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")],
                   default=[1, 64, 256])
    b.add_argument("--new-tokens", type=int, default=256)
    b.add_argument("--prompt-len", type=int, default=40)
    b.add_argument("--train-batch", type=int, default=8)
    b.add_argument("--train-seq-len", type=int, default=1024)
    b.add_argument("--train-steps", type=int, default=2)
    b.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    write(args) if args.cmd == "write" else bench(args)


if __name__ == "__main__":
    main()
