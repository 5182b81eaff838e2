#!/usr/bin/env python3
"""A tiny random Llama in Hugging Face layout, a PEFT LoRA adapter for it, and golden numbers for hone's tests.

Writes into tests/data/tiny_llama/ (or the directory given as the first argument):
    config.json, model.safetensors       the base model (LlamaForCausalLM, fp32): 2 layers, hidden 64, 4 heads,
                                         2 KV heads (grouped-query attention), head size 16, MLP 128, vocab 256,
                                         rope_theta 10000, rms_norm_eps 1e-5, untied output head
    peft_adapter/                        PEFT LoRA (r=4, lora_alpha=8, all-linear, dropout 0) as PEFT saves it
    golden.bin                           the numbers below

Deviations from defaults, on purpose:
  * initializer_range 0.2 (not 0.02) and RMSNorm weights 1 + 0.1*N(0,1): logits of magnitude ~1-10 instead of ~0,
    so that a wrong Q/K permutation, rope pairing or norm moves them far more than the 1e-4 tolerance.
  * lora_B starts as N(0, 0.1^2) instead of PEFT's zeros, so that the adapter changes the logits and every lora_A
    gets a non-zero gradient. lora_A keeps PEFT's Kaiming-uniform init.

Regenerate (not run by `make test`):
    /root/.cache/hone/refvenv/bin/python tools/reference/tiny_llama_ref.py [tests/data/tiny_llama]
Versions used for the committed files: torch 2.15.0, transformers 5.24.0, peft 0.21.2, safetensors 0.8.0,
numpy 2.4.6. Everything runs in fp32 on the CPU with eager attention and one thread (deterministic).

golden.bin layout (little-endian, no padding):
    char magic[4] = "HNGT"; u32 version = 1; u32 n_arrays
    per array: u32 name_len; name bytes (ASCII, no NUL); u32 dtype (0 = f32, 1 = i32); u32 ndim; u32 dims[ndim]
               (PyTorch order: the last dim is contiguous); data (prod(dims) elements of 4 bytes)
Arrays (B = 2, T = 16, V = 256, r = 4; M = a module's GGUF base name, e.g. blk.0.attn_q, blk.1.ffn_down):
    input_ids            i32 (B, T)
    labels               i32 (B, T)  = input_ids, except labels[0, :4] = -100 (ignored)
    base.logits          f32 (B, T, V)  the base model
    base.loss            f32 (1)
    lora.logits          f32 (B, T, V)  base + the adapter
    lora.loss            f32 (1)
    lora.scale           f32 (1)  lora_alpha / r = 2
    lora.init.M.lora_a   f32 (r, in)    the adapter's A (= PEFT lora_A.weight)
    lora.init.M.lora_b   f32 (out, r)   the adapter's B; for attn_q / attn_k its rows are in GGUF order
                                        (FORMATS.md section 3: permuted as llama.cpp permutes q_proj / k_proj)
    lora.grad.M.lora_a   f32 (r, in)    d lora.loss / d A
    lora.grad.M.lora_b   f32 (out, r)   d lora.loss / d B (GGUF row order for attn_q / attn_k, like lora_b)
    adamw.hparams        f32 (5)  lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-8, weight_decay 0.01
    adamw.loss           f32 (5)  the loss at steps 1..5 (before each update; adamw.loss[0] == lora.loss)
    adamw.final_loss     f32 (1)  the loss after the 5th update
    adamw.final.M.lora_a / adamw.final.M.lora_b   the adapter after 5 updates (same orders as lora.init)
The loss is transformers' causal-LM loss: the mean over (b, t < T-1) with labels[b, t+1] != -100 of
-log softmax(logits[b, t])[labels[b, t+1]]. AdamW is torch.optim.AdamW over the LoRA tensors only (decoupled weight
decay: p -= lr*wd*p, then the Adam step with bias correction), constant learning rate, no clipping, no accumulation.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

B, T, R, ALPHA = 2, 16, 4, 8
SEED = 1234
HF_TO_GGUF = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
              "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}


def permute_rows(w, n_head):
    """HF -> GGUF row order of q_proj / k_proj (llama.cpp convert_hf_to_gguf.py LlamaModel.permute)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def module_names(peft_model):
    """(gguf base name, hf module kind, module) for every LoRA-wrapped linear layer, in layer order."""
    out = []
    for name, mod in peft_model.named_modules():
        if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {}):
            parts = name.split(".")
            layer = int(parts[parts.index("layers") + 1])
            kind = parts[-1]
            out.append((f"blk.{layer}.{HF_TO_GGUF[kind]}", kind, mod))
    return out


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/data/tiny_llama"
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    cfg = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5,
                      rope_theta=10000.0, tie_word_embeddings=False, initializer_range=0.2, bos_token_id=1,
                      eos_token_id=2)
    model = LlamaForCausalLM(cfg).float()
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
    model.eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads

    g = torch.Generator().manual_seed(SEED + 1)
    ids = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100
    arrays = [("input_ids", ids.numpy().astype(np.int32)), ("labels", labels.numpy().astype(np.int32))]

    with torch.no_grad():
        out = model(input_ids=ids, labels=labels)
    arrays += [("base.logits", out.logits.numpy()), ("base.loss", np.array([out.loss.item()]))]

    lcfg = LoraConfig(r=R, lora_alpha=ALPHA, target_modules="all-linear", lora_dropout=0.0, bias="none",
                      task_type="CAUSAL_LM")
    model.name_or_path = "hone-tiny-llama"  # what PEFT records as base_model_name_or_path
    pm = get_peft_model(model, lcfg)
    mods = module_names(pm)
    with torch.no_grad():
        for _, _, mod in mods:
            w = mod.lora_B["default"].weight
            w.copy_(0.1 * torch.randn(w.shape, generator=g))
    pm.save_pretrained(os.path.join(out_dir, "peft_adapter"))
    for extra in ("peft_adapter/README.md", "generation_config.json"):  # model cards, not needed
        if os.path.exists(os.path.join(out_dir, extra)):
            os.remove(os.path.join(out_dir, extra))

    def gguf_order(kind, t):
        t = t.detach().numpy().copy()
        if kind == "q_proj":
            return permute_rows(t, n_head)
        if kind == "k_proj":
            return permute_rows(t, n_kv)
        return t

    def lora_arrays(prefix, grad=False):
        res = []
        for base, kind, mod in mods:
            a, b = mod.lora_A["default"].weight, mod.lora_B["default"].weight
            if grad:
                a, b = a.grad, b.grad
            res.append((f"{prefix}.{base}.lora_a", a.detach().numpy().copy()))
            res.append((f"{prefix}.{base}.lora_b", gguf_order(kind, b)))
        return res

    pm.train()  # dropout is 0: train mode changes nothing but is what a trainer uses
    params = [p for p in pm.parameters() if p.requires_grad]
    assert len(params) == 2 * len(mods) == 2 * 7 * cfg.num_hidden_layers
    arrays += lora_arrays("lora.init")
    out = pm(input_ids=ids, labels=labels)
    out.loss.backward()
    arrays += [("lora.logits", out.logits.detach().numpy()), ("lora.loss", np.array([out.loss.item()])),
               ("lora.scale", np.array([ALPHA / R]))]
    arrays += lora_arrays("lora.grad", grad=True)

    hp = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    opt = torch.optim.AdamW(params, **hp)
    losses = []
    for step in range(5):
        opt.zero_grad()
        loss = pm(input_ids=ids, labels=labels).loss
        losses.append(loss.item())
        loss.backward()
        opt.step()
    with torch.no_grad():
        final_loss = pm(input_ids=ids, labels=labels).loss.item()
    assert abs(losses[0] - out.loss.item()) < 1e-6
    arrays += [("adamw.hparams", np.array([1e-3, 0.9, 0.999, 1e-8, 0.01])), ("adamw.loss", np.array(losses)),
               ("adamw.final_loss", np.array([final_loss]))]
    arrays += lora_arrays("adamw.final")

    path = os.path.join(out_dir, "golden.bin")
    with open(path, "wb") as f:
        f.write(b"HNGT" + struct.pack("<II", 1, len(arrays)))
        for name, a in arrays:
            a = np.ascontiguousarray(a)
            dtype = 1 if a.dtype.kind in "iu" else 0
            a = a.astype("<i4" if dtype else "<f4")
            nb = name.encode("ascii")
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<II", dtype, a.ndim))
            f.write(struct.pack(f"<{a.ndim}I", *a.shape))
            f.write(a.tobytes())
    print(f"wrote {path}: {len(arrays)} arrays; base loss {arrays[3][1][0]:.6f}, lora loss {losses[0]:.6f}, "
          f"after 5 AdamW steps {final_loss:.6f}; |base logits| max {np.abs(arrays[2][1]).max():.3f}")
    with open(os.path.join(out_dir, "peft_adapter", "adapter_config.json")) as f:
        print("target_modules:", json.load(f)["target_modules"])


if __name__ == "__main__":
    main()
