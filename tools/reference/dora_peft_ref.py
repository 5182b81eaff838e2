#!/usr/bin/env python3
"""PEFT DoRA adapters (LoraConfig(use_dora=True)) on the tiny random Llama and the tiny BERT, with the loss and every
trainable gradient of one fixed batch, for tests/test_dora.c (adapt/dora.c must meet DESIGN.md section 7's rows).

Both: DoRA r 4, lora_alpha 8, dropout 0, on every linear layer of the blocks. PEFT initialises A (Kaiming-uniform),
B = 0 and the magnitude m = ||W||_row (peft/tuners/lora/dora.py DoraLinearLayer.update_layer); then, so that every
piece matters, B is drawn N(0, 0.1^2) and m is multiplied by 1 + 0.2 N(0, 1). Seeded; fp32, eager attention, eval
mode (no dropout), one thread.
  * Llama: LlamaForCausalLM over tests/data/tiny_llama, target_modules "all-linear" (PEFT writes the 14 module paths),
    task_type CAUSAL_LM; the loss is transformers' causal-LM loss of the batch.
  * BERT: BertForSequenceClassification over tests/data/tiny_bert (the module paths PEFT gives a BERT classifier,
    bert.encoder.layer.N..., as hone names them), targets query, key, value, attention.output.dense,
    intermediate.dense, output.dense (not the pooler), task_type FEATURE_EXTRACTION. The classifier is not used:
    the loss is L = sum over the valid tokens (t < lens[b]) of <h[b, t], R[b, t]> / n_valid, h the encoder's
    last_hidden_state (pm.base_model.model.bert(...)) and R a fixed N(0, 1) array stored below.

Regenerate (not run by `make test`), from the source root:
    /root/.cache/hone/refvenv/bin/python tools/reference/dora_peft_ref.py [OUT]
(OUT defaults to tests/data/dora). Versions used for the committed files: torch 2.15.0, transformers 5.24.0,
peft 0.21.2 (printed when run), on the CPU.

Output, for M in llama, bert:
    OUT/M/adapter_config.json, OUT/M/adapter_model.safetensors   PeftModel.save_pretrained (base_model_name_or_path
                          set to "tiny_llama" / "tiny_bert", not this machine's path; no README.md)
    OUT/M/golden.bin      tools/reference/tiny_llama_ref.py's layout ("HNGT", version 1):
        input_ids   i32 (B, T)      llama: B 2, T 16 random ids; bert: TEXTS through its tokenizer, padded with [PAD]
        labels      i32 (B, T)      llama only: input_ids with labels[0, :4] = -100
        lens        i32 (B)         bert only: valid tokens per row
        R           f32 (B, T, C)   bert only: the loss weights (zero past lens[b])
        loss        f32 (1)
        trainable   i32 (1)         PeftModel.get_nb_trainable_parameters()[0] (print_trainable_parameters' number)
        out         f32 (B, T, V)   llama: logits; bert: last_hidden_state (B, T, C); of the model in memory
        out.loaded  f32             the same after PeftModel.from_pretrained(OUT/M) over a fresh base
        grad.NAME   f32             d loss / d NAME for every trainable tensor, NAME as save_pretrained writes it
                                    (...q_proj.lora_A.weight, ...lora_B.weight, ...lora_magnitude_vector), PyTorch
                                    shapes, HF row order (q/k not permuted)

Check mode: PEFT loads adapter directories that hone wrote and gives the outputs hone gave:
    /root/.cache/hone/refvenv/bin/python tools/reference/dora_peft_ref.py --check DIR
DIR/llama and DIR/bert each hold hone's adapter_config.json + adapter_model.safetensors and hone.bin (HNGT with
input_ids, lens for BERT, and out: hone's logits / hidden states for them). Prints the largest differences and
exits non-zero above 1e-4. `build/test_dora --save DIR` writes DIR.
"""
import json
import os
import sys

import numpy as np
import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import BertForSequenceClassification, BertTokenizerFast, LlamaForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_bert_ref import save_golden  # noqa: E402

LLAMA = "tests/data/tiny_llama"
BERT = "tests/data/tiny_bert"
TEXTS = ["The cat sat on the mat.", "hello world", "dog running, embedding tokens!"]
BERT_TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]
B, T = 2, 16


def llama_base():
    m = LlamaForCausalLM.from_pretrained(LLAMA, dtype=torch.float32, attn_implementation="eager")
    return m.eval()


def bert_base():
    m = BertForSequenceClassification.from_pretrained(BERT, num_labels=2, dtype=torch.float32,
                                                      attn_implementation="eager")
    return m.eval()


def bert_hidden(pm_or_model, enc):
    inner = pm_or_model.base_model.model if isinstance(pm_or_model, PeftModel) else pm_or_model
    return inner.bert(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state


def load_hngt(path):
    import struct
    out = {}
    with open(path, "rb") as f:
        assert f.read(4) == b"HNGT"
        ver, n = struct.unpack("<II", f.read(8))
        assert ver == 1
        for _ in range(n):
            (ln,) = struct.unpack("<I", f.read(4))
            name = f.read(ln).decode()
            dt, nd = struct.unpack("<II", f.read(8))
            dims = struct.unpack(f"<{nd}I", f.read(4 * nd))
            cnt = int(np.prod(dims)) if nd else 1
            out[name] = np.frombuffer(f.read(4 * cnt), np.int32 if dt else np.float32).reshape(dims)
    return out


def check(d):
    worst = 0.0
    h = load_hngt(os.path.join(d, "llama", "hone.bin"))
    pm = PeftModel.from_pretrained(llama_base(), os.path.join(d, "llama")).eval()
    with torch.no_grad():
        got = pm(input_ids=torch.tensor(h["input_ids"], dtype=torch.long)).logits.numpy()
    dl = float(np.abs(got - h["out"]).max())
    print(f"PEFT {peft.__version__} loaded hone's Llama DoRA {d}/llama: logits within {dl:.3g} of hone's "
          f"(max |logit| {np.abs(got).max():.3g})")
    h = load_hngt(os.path.join(d, "bert", "hone.bin"))
    pm = PeftModel.from_pretrained(bert_base(), os.path.join(d, "bert")).eval()
    ids = torch.tensor(h["input_ids"], dtype=torch.long)
    lens = h["lens"]
    mask = (torch.arange(ids.shape[1])[None, :] < torch.tensor(lens)[:, None]).long()
    with torch.no_grad():
        got = bert_hidden(pm, {"input_ids": ids, "attention_mask": mask}).numpy()
    db = max(float(np.abs(got[b, :lens[b]] - h["out"][b, :lens[b]]).max()) for b in range(len(lens)))
    print(f"PEFT {peft.__version__} loaded hone's BERT DoRA {d}/bert: hidden states within {db:.3g} of hone's")
    worst = max(dl, db)
    return 0 if worst <= 1e-4 else 1


def perturb(pm, g):
    # B ~ N(0, 0.1^2) and m *= 1 + 0.2 N(0, 1): the adapter then changes the outputs and every tensor has a gradient
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "lora_magnitude_vector" in name:
                p.mul_(1 + 0.2 * torch.randn(p.shape, generator=g))


def saved_name(name):
    # PEFT's in-memory names carry the adapter's name; save_pretrained drops it (and the magnitude's ".weight")
    return name.replace("lora_magnitude_vector.default.weight", "lora_magnitude_vector").replace(".default", "")


def save_dir(pm, out, base_name):
    os.makedirs(out, exist_ok=True)
    pm.save_pretrained(out)
    cfg_path = os.path.join(out, "adapter_config.json")
    c = json.load(open(cfg_path))
    c["base_model_name_or_path"] = base_name
    json.dump(c, open(cfg_path, "w"), indent=2, sort_keys=True)
    if os.path.exists(os.path.join(out, "README.md")):  # PEFT's model card template: not needed
        os.remove(os.path.join(out, "README.md"))


def grads(pm):
    return [("grad." + saved_name(n), p.grad.numpy().copy()) for n, p in pm.named_parameters() if p.requires_grad]


def llama(out):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(7)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", use_dora=True,
                     task_type="CAUSAL_LM")
    pm = get_peft_model(llama_base(), cfg)
    perturb(pm, g)
    pm.eval()
    save_dir(pm, out, "tiny_llama")
    ids = torch.randint(0, 256, (B, T), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100
    res = pm(input_ids=ids, labels=labels)
    res.loss.backward()
    n_train = pm.get_nb_trainable_parameters()[0]
    arrays = [("input_ids", ids.numpy().astype(np.int32)), ("labels", labels.numpy().astype(np.int32)),
              ("loss", np.array([res.loss.item()], np.float32)), ("trainable", np.array([n_train], np.int32)),
              ("out", res.logits.detach().numpy())]
    with torch.no_grad():
        loaded = PeftModel.from_pretrained(llama_base(), out).eval()
        lg = loaded(input_ids=ids).logits.numpy()
    assert np.abs(lg - res.logits.detach().numpy()).max() < 1e-5
    arrays.append(("out.loaded", lg))
    gr = grads(pm)
    arrays += gr
    save_golden(os.path.join(out, "golden.bin"), arrays)
    print(f"wrote {out}: loss {res.loss.item():.6f}, {len(gr)} gradients, {n_train} trainable")


def bert(out):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(8)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=BERT_TARGETS, use_dora=True,
                     task_type="FEATURE_EXTRACTION")
    pm = get_peft_model(bert_base(), cfg)
    perturb(pm, g)
    pm.eval()
    assert all("pooler" not in n for n, p in pm.named_parameters() if p.requires_grad)
    save_dir(pm, out, "tiny_bert")
    tok = BertTokenizerFast.from_pretrained(BERT)
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    lens = enc["attention_mask"].sum(1)
    h = bert_hidden(pm, enc)
    R = torch.randn(h.shape, generator=g) * enc["attention_mask"][:, :, None]
    loss = (h * R).sum() / lens.sum()
    loss.backward()
    n_train = pm.get_nb_trainable_parameters()[0]
    arrays = [("input_ids", enc["input_ids"].numpy().astype(np.int32)), ("lens", lens.numpy().astype(np.int32)),
              ("R", R.numpy()), ("loss", np.array([loss.item()], np.float32)),
              ("trainable", np.array([n_train], np.int32)), ("out", h.detach().numpy())]
    with torch.no_grad():
        hl = bert_hidden(PeftModel.from_pretrained(bert_base(), out).eval(), enc).numpy()
    assert np.abs(hl - h.detach().numpy()).max() < 1e-5
    arrays.append(("out.loaded", hl))
    gr = grads(pm)
    arrays += gr
    save_golden(os.path.join(out, "golden.bin"), arrays)
    print(f"wrote {out}: loss {loss.item():.6f}, {len(gr)} gradients, {n_train} trainable, lens {lens.tolist()}")


def main():
    torch.set_num_threads(1)
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/dora"
    print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)
    llama(os.path.join(out, "llama"))
    bert(os.path.join(out, "bert"))


if __name__ == "__main__":
    main()
