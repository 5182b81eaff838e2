#!/usr/bin/env python3
"""PyTorch + PEFT side of `make bench-train` (bench/train_bench.sh runs it beside bench/bench_train.c).

The same work as hone's side: LoRA r=16, lora_alpha 32, all linear layers, dropout 0 on SmolLM2-135M-Instruct,
loaded by transformers from the same GGUF file (its GGUF loader dequantizes every tensor to fp32: PyTorch trains
over fp32 base weights, hone over the Q4_1 ones), fp32 activations, eager attention, transformers' causal-LM loss
(every token but the first of a row), torch.optim.AdamW (lr 1e-4) over the LoRA tensors, clip_grad_norm_ 1.0.
One warm-up step, then STEPS timed steps on the same batch: B rows of T token ids from the LCG of bench_train.c.

    python bench/train_bench_peft.py MODEL.gguf [B T STEPS THREADS]        (default 4 512 3 2)
Prints a line per step and `tokens/s: X`.
"""
import os
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM


def make_ids(n):
    x, out = 12345, []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out.append((x >> 33) % 16000)
    return out


def rss_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return -1


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: train_bench_peft.py MODEL.gguf [B T STEPS THREADS]")
    path = sys.argv[1]
    B, T, steps, threads = (int(a) for a in (sys.argv[2:6] + ["4", "512", "3", "2"][len(sys.argv) - 2:]))
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    d, f = os.path.split(os.path.abspath(path))
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation="eager")
    cfg = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", lora_dropout=0.0, bias="none",
                     task_type="CAUSAL_LM")
    pm = get_peft_model(model, cfg)
    pm.train()
    params = [p for p in pm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = torch.tensor(make_ids(B * T)).view(B, T)
    print(f"model {path} (fp32 after transformers' GGUF load), LoRA r 16 on all linear layers: "
          f"{sum(p.numel() for p in params)} trainable params; batch {B} x {T}, {torch.get_num_threads()} threads; "
          f"torch {torch.__version__}; RSS after load {rss_mib('VmRSS:'):.0f} MiB", flush=True)
    timed = 0.0
    for s in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = pm(input_ids=ids, labels=ids).loss
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if s:
            timed += dt
        print(f"{'step' if s else 'warm-up'} {s}: loss {loss.item():.4f}, grad norm {norm.item():.3f}, {dt:.2f} s, "
              f"{B * T / dt:.1f} tokens/s", flush=True)
    print(f"tokens/s: {B * T * steps / timed:.1f}")
    print(f"peak RSS (VmHWM): {rss_mib('VmHWM:'):.0f} MiB")


if __name__ == "__main__":
    main()
