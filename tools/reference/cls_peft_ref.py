#!/usr/bin/env python3
"""A PEFT LoRA sequence-classification adapter (task_type SEQ_CLS) on tests/data/tiny_gpt2, for
tests/test_cls_head.c: hone's `lora` classification method loads it and must give transformers' probabilities.

GPT2ForSequenceClassification (num_labels 2) over the tiny GPT-2 in fp32; its `score` head (no bias) drawn
N(0, 0.5^2) and LoRA (r 4, alpha 8, c_attn / c_proj / c_fc; A with PEFT's init, B drawn N(0, 0.05^2) instead of
PEFT's zeros so that it matters), seeded. PEFT saves the head (in memory
base_model.model.score.modules_to_save.default.weight) as base_model.model.score.weight, with modules_to_save
["classifier", "score"] in adapter_config.json. Each text runs alone (batch 1: no padding), so the pooled token is
the last one, as hone's.

Regenerate (not run by `make test`), from the source root:
    /root/.cache/hone/refvenv/bin/python tools/reference/cls_peft_ref.py [tests/data/tiny_gpt2/peft_seq_cls]
Versions used for the committed files: torch, transformers, peft 0.21.2 (printed when run).

Output: OUT/adapter_config.json, OUT/adapter_model.safetensors (PEFT's save_pretrained), OUT/probs.json:
    {"texts": [...], "ids": [[...], ...], "probs": [[p0, p1], ...]}
"""
import json
import os
import sys

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer, GPT2ForSequenceClassification

out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/tiny_gpt2/peft_seq_cls"
base = "tests/data/tiny_gpt2"
print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)
torch.manual_seed(0)
model = GPT2ForSequenceClassification.from_pretrained(base, num_labels=2, dtype=torch.float32)
model.eval()
cfg = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["c_attn", "c_proj", "c_fc"])
pm = get_peft_model(model, cfg)
with torch.no_grad():
    for name, p in pm.named_parameters():
        if "lora_B" in name:
            p.copy_(torch.randn_like(p) * 0.05)
        elif "modules_to_save.default" in name:
            p.copy_(torch.randn_like(p) * 0.5)
pm.save_pretrained(out)
cfg_path = os.path.join(out, "adapter_config.json")
c = json.load(open(cfg_path))
c["base_model_name_or_path"] = "tiny_gpt2"  # not this machine's path
json.dump(c, open(cfg_path, "w"), indent=2, sort_keys=True)

tok = AutoTokenizer.from_pretrained(base)
texts = ["red the of and", "cat is it in on", "a dog was here", "green fish", "the blue one she was"]
ids, probs = [], []
pm.eval()
with torch.no_grad():
    for t in texts:
        x = tok(t, return_tensors="pt")["input_ids"]
        ids.append(x[0].tolist())
        probs.append(torch.softmax(pm(input_ids=x).logits[0].double(), -1).tolist())
json.dump({"texts": texts, "ids": ids, "probs": probs}, open(os.path.join(out, "probs.json"), "w"), indent=1)
print(json.dumps(probs))
