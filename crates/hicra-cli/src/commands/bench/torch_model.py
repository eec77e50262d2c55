"""The PyTorch + transformers side of `hicra bench model --torch`.

Loads the same Hugging Face directory in f32 on the CPU, then answers one JSON request per
stdin line with one JSON reply per stdout line, so that hicra can interleave its own runs with
these. Requests:
  {"op": "generate", "prompts": [[ids...]...], "new_tokens": N, "seed": S}
  {"op": "train", "rows": [[ids...]...], "steps": N, "autocast_bf16": false}
  {"op": "quit"}
Replies carry "tokens" and "seconds" (or "error"); every reply carries "peak_rss_mb".
"""

import json
import resource
import sys
import time


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    model_dir, threads, pad_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    import torch
    import transformers

    torch.set_num_threads(threads)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    reply({"ready": True, "torch": torch.__version__, "transformers": transformers.__version__})
    for line in sys.stdin:
        req = json.loads(line)
        op = req.get("op")
        if op == "quit":
            break
        try:
            if op == "generate":
                out = generate(torch, model, req, pad_id)
            elif op == "train":
                out = train(torch, model, req, pad_id)
            else:
                out = {"error": f"unknown op {op!r}"}
        except Exception as e:  # reported to hicra, which names the failing run
            out = {"error": f"{type(e).__name__}: {e}"}
        reply(out)


def reply(obj):
    obj["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def left_padded(torch, prompts, pad_id):
    width = max(len(p) for p in prompts)
    ids = [[pad_id] * (width - len(p)) + p for p in prompts]
    mask = [[0] * (width - len(p)) + [1] * len(p) for p in prompts]
    return torch.tensor(ids), torch.tensor(mask)


def generate(torch, model, req, pad_id):
    ids, mask = left_padded(torch, req["prompts"], pad_id)
    n = req["new_tokens"]

    def run(new_tokens):
        torch.manual_seed(req["seed"])
        with torch.inference_mode():
            return model.generate(
                input_ids=ids,
                attention_mask=mask,
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                pad_token_id=pad_id,
            )

    run(min(n, 8))  # warm-up, as hicra does
    start = time.perf_counter()
    out = run(n)
    seconds = time.perf_counter() - start
    tokens = (out.shape[1] - ids.shape[1]) * out.shape[0]
    return {"tokens": int(tokens), "seconds": seconds}


def train(torch, model, req, pad_id):
    ids = torch.tensor(req["rows"])
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.01)

    # bf16 autocast: the matmuls of forward and backward in bf16 (oneDNN, AMX where the CPU
    # has it), f32 weights and optimiser, as hicra's `--train-matmul-dtypes bf16`.
    autocast = bool(req.get("autocast_bf16", False))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=ids).logits[:, :-1].float()
            logp = torch.log_softmax(logits, dim=-1)
            loss = -logp.gather(-1, ids[:, 1:, None]).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(req["steps"]):
        step()
    seconds = time.perf_counter() - start
    model.eval()
    return {"tokens": int(req["steps"] * ids.numel()), "seconds": seconds}


if __name__ == "__main__":
    main()
