#!/usr/bin/env python3
"""A PEFT LoRA sequence-classification adapter (task_type SEQ_CLS, the classifier in modules_to_save) on the tiny
BERT of tests/data/tiny_bert, with the loss and every trainable gradient of one padded batch, for
tests/test_cls_bert.c (hone's `lora` classification method must meet DESIGN.md section 7's loss and gradient rows).

BertForSequenceClassification (num_labels 3) over tests/data/tiny_bert (which has a pooler: the logits are
classifier(tanh(pooler.dense(h[CLS])))), fp32, eager attention, eval mode (no dropout). LoRA r 4, alpha 8, on an
explicit target list that covers every linear layer of the blocks and not the pooler: query, key, value,
attention.output.dense, intermediate.dense, output.dense. A keeps PEFT's init; B is drawn N(0, 0.1^2) instead of
PEFT's zeros so that it matters; the classifier (weight and bias, modules_to_save) is drawn N(0, 0.5^2). Seeded.

Regenerate (not run by `make test`), from the source root:
    /root/.cache/hone/refvenv/bin/python tools/reference/cls_bert_peft_ref.py [OUT]
(OUT defaults to tests/data/tiny_bert/peft_seq_cls). Versions used for the committed files: torch 2.15.0,
transformers 5.24.0, peft 0.21.2 (printed when run), on the CPU, one thread.

Output:
    OUT/adapter_config.json, OUT/adapter_model.safetensors   PEFT's save_pretrained (base_model_name_or_path set to
                                         "tiny_bert", not this machine's path)
    OUT/golden.bin                       tools/reference/tiny_llama_ref.py's layout ("HNGT", version 1):
        input_ids  i32 (B, T)   TEXTS through the model's tokenizer, [CLS] ... [SEP], padded with [PAD] (id 0)
        lens       i32 (B)      valid tokens of each row (attention_mask = t < lens[b])
        labels     i32 (B)      LABELS
        loss       f32 (1)      BertForSequenceClassification's loss: the mean cross-entropy over the batch
        probs      f32 (B, 3)   softmax of the logits of the model in memory
        probs.loaded f32 (B, 3) the same after PeftModel.from_pretrained(OUT) over a fresh base
        grad.NAME  f32          d loss / d NAME for every trainable tensor, NAME as save_pretrained writes it
                                (base_model.model.bert.encoder.layer.N.attention.self.query.lora_A.weight, ...,
                                base_model.model.classifier.weight and .bias), shaped as PyTorch's
    OUT/texts.txt                        TEXTS, one a line (label TAB text)

Check mode: PEFT loads an adapter directory that hone wrote and gives the probabilities hone gave:
    /root/.cache/hone/refvenv/bin/python tools/reference/cls_bert_peft_ref.py --check RUN_DIR PROBS.tsv
RUN_DIR holds hone's adapter_config.json + adapter_model.safetensors over tests/data/tiny_bert; PROBS.tsv has lines
"p0 p1 ... TAB text" (hone's probabilities of the run's classes in order). Prints the largest difference and exits
non-zero above 1e-4.
"""
import json
import os
import sys

import numpy as np
import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import BertForSequenceClassification, BertTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_bert_ref import save_golden  # noqa: E402

BASE = "tests/data/tiny_bert"
TEXTS = ["The cat sat on the mat.", "hello world", "dog running, embedding tokens!", "the mat"]
LABELS = [0, 2, 1, 2]
TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]


def base_model(num_labels=3):
    m = BertForSequenceClassification.from_pretrained(BASE, num_labels=num_labels, dtype=torch.float32,
                                                      attn_implementation="eager")
    return m.eval()


def saved_name(name):
    # PEFT's in-memory names carry the adapter's name; save_pretrained drops it
    return name.replace(".modules_to_save.default", "").replace(".default", "")


def check(run_dir, probs_path):
    tok = BertTokenizerFast.from_pretrained(BASE)
    texts, want = [], []
    with open(probs_path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            p, t = line.split("\t", 1)
            texts.append(t)
            want.append([float(x) for x in p.split()])
    pm = PeftModel.from_pretrained(base_model(len(want[0])), run_dir).eval()
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        got = torch.softmax(pm(**enc).logits.double(), -1).numpy()
    d = np.abs(got - np.array(want)).max()
    print(f"PEFT {peft.__version__} loaded {run_dir}: {len(texts)} texts, probabilities within {d:.3g} of hone's")
    return 0 if d < 1e-4 else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/tiny_bert/peft_seq_cls"
    print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS)
    pm = get_peft_model(base_model(), cfg)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p) * 0.1)
            elif "modules_to_save.default" in name:
                p.copy_(torch.randn_like(p) * 0.5)
    pm.eval()
    assert all("pooler" not in n for n, p in pm.named_parameters() if p.requires_grad)
    os.makedirs(out, exist_ok=True)
    pm.save_pretrained(out)
    cfg_path = os.path.join(out, "adapter_config.json")
    c = json.load(open(cfg_path))
    c["base_model_name_or_path"] = "tiny_bert"
    json.dump(c, open(cfg_path, "w"), indent=2, sort_keys=True)
    if os.path.exists(os.path.join(out, "README.md")):  # PEFT's model card template: not needed
        os.remove(os.path.join(out, "README.md"))

    tok = BertTokenizerFast.from_pretrained(BASE)
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    labels = torch.tensor(LABELS)
    out_m = pm(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels)
    out_m.loss.backward()
    probs = torch.softmax(out_m.logits.detach().double(), -1).numpy()
    arrays = [("input_ids", enc["input_ids"].numpy().astype(np.int32)),
              ("lens", enc["attention_mask"].sum(1).numpy().astype(np.int32)),
              ("labels", np.array(LABELS, np.int32)), ("loss", np.array([out_m.loss.item()], np.float32)),
              ("probs", probs)]
    grads = [(saved_name(n), p.grad) for n, p in pm.named_parameters() if p.requires_grad]
    with torch.no_grad():
        loaded = PeftModel.from_pretrained(base_model(), out).eval()
        probs_loaded = torch.softmax(loaded(**enc).logits.double(), -1).numpy()
    assert np.abs(probs_loaded - probs).max() < 1e-6
    arrays.append(("probs.loaded", probs_loaded))
    for n, g in grads:
        arrays.append(("grad." + n, g.numpy()))
    save_golden(os.path.join(out, "golden.bin"), arrays)
    with open(os.path.join(out, "texts.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{l}\t{t}\n" for l, t in zip(LABELS, TEXTS)))
    print(f"wrote {out}: loss {out_m.loss.item():.6f}, {len(grads)} gradients, lens "
          f"{enc['attention_mask'].sum(1).tolist()}")


if __name__ == "__main__":
    main()
