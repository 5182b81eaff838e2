#!/usr/bin/env python3
"""LoRA adapters crossing between PEFT and hone on SmolLM2-135M-Instruct: transformers' side of
tests/test_peft_compat.c.

Both sides use identical weights: an F32 copy of the pulled Q4_1 GGUF made by `hone quantize --type f32` (hone's
test writes the same copy itself). transformers' GGUF loader reads it, un-permutes llama.cpp's q/k row order into
Hugging Face's and runs in fp32 (eager attention) on the CPU. This script
  (a) makes a PEFT LoRA adapter — r=4, lora_alpha=8, all linear layers of blocks 0, 7, 14, 22, 29
      (layers_to_transform keeps the committed file small), A with PEFT's Kaiming-uniform init, B drawn N(0, 0.05^2)
      instead of PEFT's zeros so that it matters, A and B rounded to fp16 and saved in fp16 (the values used are the
      values stored) — into OUT/peft_adapter/;
  (b) loads OUT/hone_adapter/ (written by hone: `build/tests/test_peft_compat --regenerate`, run it first) with
      PeftModel.from_pretrained and checks that every tensor in the file was loaded;
and records transformers' logits for one fixed token sequence: the base model, the base with (a) loaded back from
its directory by PeftModel.from_pretrained, and the base with (b). adapter_config.json's base_model_name_or_path
(PEFT writes the GGUF's local directory) is set to the model's name.

Regenerate (not run by `make test`), from the source root, after a build:
    build/tests/test_peft_compat --regenerate                  # hone_adapter/ (only when hone's writer changes)
    build/hone quantize smollm2-135m-instruct -o /tmp/SmolLM2-135M-Instruct.F32.gguf --type f32
    /root/.cache/hone/refvenv/bin/python tools/reference/peft_compat_ref.py /tmp/SmolLM2-135M-Instruct.F32.gguf \
        [tests/data/peft_compat]
Versions used for the committed files: torch 2.15.0, transformers 5.24.0, peft 0.21.2, gguf 0.19.0, numpy 2.4.6,
safetensors 0.8.0.

logits.bin layout (little-endian, no padding):
    char magic[4] = "HNPC"; u32 version = 1; u32 T; u32 K; u32 n_vocab; i32 ids[T]
    3 records, in order base, base + peft_adapter, base + hone_adapter; each:
        i32 top_i[T*K]   the K largest logits' token ids per position, largest first
        f32 top_v[T*K]   their logits
        f32 lse[T]       log-sum-exp of the position's logits over the whole vocabulary (float64 sum, stored f32)
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils import get_peft_model_state_dict
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

TEXT = ("<|im_start|>user\nName three colours of the rainbow.<|im_end|>\n<|im_start|>assistant\n"
        "Red, orange and yellow are three of them.")
K = 8
R, ALPHA = 4, 8
LAYERS = [0, 7, 14, 22, 29]
SEED = 20240611


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()  # (T, V)


def record(lg):
    top_v, top_i = torch.topk(lg, K, dim=-1)
    lse = torch.logsumexp(lg.double(), dim=-1).float()
    return (top_i.numpy().astype("<i4").tobytes() + top_v.numpy().astype("<f4").tobytes() +
            lse.numpy().astype("<f4").tobytes())


def check_loaded(pm, adapter_dir):
    """Every tensor of the adapter file is in the model, with the file's values."""
    file = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    sd = get_peft_model_state_dict(pm)
    assert set(sd) == set(file), (sorted(set(file) - set(sd))[:3], sorted(set(sd) - set(file))[:3])
    for k, v in file.items():
        assert np.array_equal(sd[k].float().numpy(), v.astype(np.float32)), k
    return len(file) // 2


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: peft_compat_ref.py F32.gguf [OUT_DIR]")
    d, f = os.path.split(os.path.abspath(sys.argv[1]))
    out = sys.argv[2] if len(sys.argv) > 2 else "tests/data/peft_compat"
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    ids = tok.encode(TEXT, add_special_tokens=False)
    T, V = len(ids), model.config.vocab_size
    base = logits_of(model, ids)
    recs = [record(base)]

    # (a) PEFT's adapter.
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    cfg = LoraConfig(r=R, lora_alpha=ALPHA, target_modules=targets, layers_to_transform=LAYERS,
                     lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    pm = get_peft_model(model, cfg)
    g = torch.Generator().manual_seed(SEED + 1)
    n_mod = 0
    with torch.no_grad():
        for name, mod in pm.named_modules():
            if hasattr(mod, "lora_A") and "default" in mod.lora_A:
                b, a = mod.lora_B["default"].weight, mod.lora_A["default"].weight
                b.copy_(0.05 * torch.randn(b.shape, generator=g))
                for w in (a, b):
                    w.copy_(w.half().float())
                n_mod += 1
    assert n_mod == 7 * len(LAYERS), n_mod
    in_memory = logits_of(pm, ids)
    peft_dir = os.path.join(out, "peft_adapter")
    loras = [m for _, m in pm.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A]
    for m in loras:  # fp16 in the file; the values are already fp16-exact
        m.lora_A["default"].half(), m.lora_B["default"].half()
    pm.save_pretrained(peft_dir)
    for m in loras:
        m.lora_A["default"].float(), m.lora_B["default"].float()
    if os.path.exists(os.path.join(peft_dir, "README.md")):  # a model card, not needed
        os.remove(os.path.join(peft_dir, "README.md"))
    cfg_path = os.path.join(peft_dir, "adapter_config.json")
    with open(cfg_path) as fp:  # PEFT records the local directory of the GGUF; name the model instead
        c = json.load(fp)
    c["base_model_name_or_path"] = "SmolLM2-135M-Instruct"
    with open(cfg_path, "w") as fp:
        json.dump(c, fp, indent=2, sort_keys=True)
    os.chmod(os.path.join(peft_dir, "adapter_model.safetensors"), 0o644)
    model = pm.unload()  # the base again, LoRA layers removed (nothing merged)
    assert torch.equal(logits_of(model, ids), base)

    pm = PeftModel.from_pretrained(model, peft_dir)
    pm.eval()
    n = check_loaded(pm, peft_dir)
    lg = logits_of(pm, ids)
    print(f"peft_adapter: {n} modules; reloaded vs in-memory max abs diff {(lg - in_memory).abs().max():.3g}; "
          f"moves logits by up to {(lg - base).abs().max():.3g}")
    recs.append(record(lg))
    model = pm.unload()

    # (b) hone's adapter.
    hone_dir = os.path.join(out, "hone_adapter")
    pm = PeftModel.from_pretrained(model, hone_dir)
    pm.eval()
    n = check_loaded(pm, hone_dir)
    lg = logits_of(pm, ids)
    c = pm.peft_config["default"]
    print(f"hone_adapter: {n} modules, r {c.r}, alpha {c.lora_alpha}, rslora {c.use_rslora}; moves logits by up to "
          f"{(lg - base).abs().max():.3g}")
    recs.append(record(lg))

    path = os.path.join(out, "logits.bin")
    with open(path + ".tmp", "wb") as fp:
        fp.write(b"HNPC" + struct.pack("<IIII", 1, T, K, V) + np.array(ids, dtype="<i4").tobytes())
        for r in recs:
            fp.write(r)
    os.replace(path + ".tmp", path)
    print(f"wrote {path}: T {T}, K {K}, vocab {V}; argmax {base.argmax(-1).tolist()}")


if __name__ == "__main__":
    main()
