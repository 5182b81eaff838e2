#!/usr/bin/env python3
"""PEFT IA3 adapters (Liu et al. 2022, PEFT's IA3Config) on the tiny random models, with the loss, every gradient
and the outputs of a fixed batch, for tests/test_ia3.c (hone's `ia3` method must meet DESIGN.md section 7's rows).

Four bases with IA3Config's defaults for the architecture (target_modules / feedforward_modules from PEFT's
TRANSFORMERS_MODELS_TO_IA3_*_MAPPING: Llama k_proj, v_proj, down_proj (feed-forward: down_proj); BERT key, value,
output.dense (feed-forward: output.dense; both suffixes also match attention.output.dense); GPT-2 c_attn, mlp.c_proj
(feed-forward: mlp.c_proj); Qwen2 q_proj, v_proj, down_proj (feed-forward: down_proj)), and two with explicit
targets (IA3_ARGS):
    llama    tests/data/tiny_llama          LlamaForCausalLM, task_type CAUSAL_LM
    gpt2     tests/data/tiny_gpt2           GPT2LMHeadModel, task_type CAUSAL_LM
    bert     tests/data/tiny_bert           BertModel (AutoModel), task_type FEATURE_EXTRACTION
    qwen2    tests/data/hf_family/qwen2     Qwen2ForCausalLM (q/k/v biases), task_type CAUSAL_LM
    llama-q  tests/data/tiny_llama          q_proj, k_proj, v_proj, up_proj, down_proj; up_proj and down_proj
                                            feed-forward
    distilbert  tests/data/tiny_bert/distilbert   DistilBertModel, FEATURE_EXTRACTION; k_lin, v_lin, lin2 (feed-
                                            forward: lin2), as PEFT has no defaults for it
fp32 (the F16 checkpoints are upcast), eager attention, eval mode (no dropout). Every ia3_l is drawn
1 + 0.25 * N(0, 1) instead of PEFT's ones, so that each one matters. Seeded.

Regenerate (not run by `make test`), from the source root:
    /root/.cache/hone/refvenv/bin/python tools/reference/ia3_peft_ref.py [OUT]
(OUT defaults to tests/data/ia3). Versions used for the committed files: torch 2.15.0, transformers 5.24.0,
peft 0.21.2 (printed when run), on the CPU, one thread.

Output, for each NAME in llama, gpt2, bert, qwen2, llama-q, distilbert:
    OUT/NAME/adapter_config.json, OUT/NAME/adapter_model.safetensors   PEFT's save_pretrained
                                     (base_model_name_or_path set to "tiny_NAME", not this machine's path;
                                     target_modules and feedforward_modules sorted)
    OUT/NAME/golden.bin              tools/reference/tiny_llama_ref.py's layout ("HNGT", version 1):
        input_ids   i32 (B, T)
        labels      i32 (B, T)  causal models: input_ids, except labels[0, :4] = -100; the loss is transformers'
                                causal-LM loss (mean over the predicted tokens)
        lens        i32 (B)     bert: valid tokens of each row (attention_mask = t < lens[b])
        probe       f32 (B, T, C)  bert: a fixed N(0, 1) target; loss = the mean over valid (b, t) and k of
                                (hidden[b, t, k] - probe[b, t, k])^2
        loss        f32 (1)
        out         f32 (B, T, V) logits (causal) or (B, T, C) last_hidden_state (bert), the model in memory
        out.loaded  f32         the same after PeftModel.from_pretrained(OUT/NAME) over a fresh base
        n_trainable i32 (1)     the trainable count print_trainable_parameters reports
        grad.NAME   f32         d loss / d NAME for every ia3_l, NAME as save_pretrained writes it
                                (base_model.model.model.layers.0.self_attn.k_proj.ia3_l, ...), shaped as PEFT's
                                ((out, 1) for output scaling, (1, in) for feed-forward modules), rows in HF's order

Check mode: PEFT loads an adapter directory that hone wrote and gives the outputs hone gave:
    /root/.cache/hone/refvenv/bin/python tools/reference/ia3_peft_ref.py --check NAME RUN_DIR
RUN_DIR holds hone's adapter_config.json + adapter_model.safetensors over NAME's base and hone_out.bin (the layout
above: input_ids, lens for bert, and out, hone's logits or hidden states), as `test_ia3 --write DIR` writes them
under DIR/NAME (and DIR/bert-odd: BERT with query, attention.output.dense and output.dense, only the last
feed-forward, which PEFT's suffix matching cannot name in short; check it as bert). Checks that every ia3_l of the
file is the vector PEFT's module holds, prints the largest difference of the outputs (valid rows only for bert) and
exits non-zero above 1e-4.
"""
import json
import os
import sys

import numpy as np
import peft
import torch
import transformers
from peft import IA3Config, PeftModel, get_peft_model
from transformers import AutoModel, AutoModelForCausalLM, BertTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_bert_ref import save_golden  # noqa: E402

BASES = {"llama": ("tests/data/tiny_llama", "CAUSAL_LM"), "gpt2": ("tests/data/tiny_gpt2", "CAUSAL_LM"),
         "bert": ("tests/data/tiny_bert", "FEATURE_EXTRACTION"), "qwen2": ("tests/data/hf_family/qwen2", "CAUSAL_LM"),
         "llama-q": ("tests/data/tiny_llama", "CAUSAL_LM"),
         "distilbert": ("tests/data/tiny_bert/distilbert", "FEATURE_EXTRACTION")}
# Explicit targets (the rest take PEFT's defaults): q_proj's vector goes through GGUF's rotary permutation with
# n_head, k_proj's with n_head_kv; up_proj feed-forward scales the MLP input of up_proj only, not gate_proj's.
IA3_ARGS = {"llama-q": dict(target_modules=["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"],
                            feedforward_modules=["up_proj", "down_proj"]),
            # PEFT's tables have no DistilBERT: IA3's pattern (keys, values, the MLP's second layer) by hand
            "distilbert": dict(target_modules=["k_lin", "v_lin", "lin2"], feedforward_modules=["lin2"])}
B, T = 2, 16
TEXTS = ["The cat sat on the mat.", "hello world", "dog running, embedding tokens!"]


def base_model(name):
    path, task = BASES[name]
    cls = AutoModel if task == "FEATURE_EXTRACTION" else AutoModelForCausalLM
    return cls.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()


def load_golden(path):
    import struct
    res = {}
    with open(path, "rb") as f:
        assert f.read(4) == b"HNGT"
        _, n = struct.unpack("<II", f.read(8))
        for _ in range(n):
            (ln,) = struct.unpack("<I", f.read(4))
            name = f.read(ln).decode()
            dt, nd = struct.unpack("<II", f.read(8))
            dims = struct.unpack(f"<{nd}I", f.read(4 * nd))
            a = np.frombuffer(f.read(4 * int(np.prod(dims))), "<i4" if dt else "<f4").reshape(dims)
            res[name] = a
    return res


def run(name, pm, batch):
    """(loss, out) of the batch through pm."""
    if BASES[name][1] == "CAUSAL_LM":
        o = pm(input_ids=batch["input_ids"], labels=batch["labels"])
        return o.loss, o.logits
    mask = batch["attention_mask"]
    h = pm(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).to(h.dtype)
    # a mean of squares: no terms that cancel, so the loss is as close as the hidden states are
    return ((h - batch["probe"]) ** 2 * m).sum() / (mask.sum() * h.shape[-1]), h


def make_batch(name, model, g):
    if BASES[name][1] == "CAUSAL_LM":
        ids = torch.randint(0, model.config.vocab_size, (B, T), generator=g)
        labels = ids.clone()
        labels[0, :4] = -100
        return {"input_ids": ids, "labels": labels}
    enc = BertTokenizerFast.from_pretrained(BASES[name][0])(TEXTS, padding=True, return_tensors="pt")
    probe = torch.randn(*enc["input_ids"].shape, model.config.hidden_size, generator=g)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "probe": probe}


def generate(name, out_root, seed):
    out = os.path.join(out_root, name)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = base_model(name)
    batch = make_batch(name, model, g)
    pm = get_peft_model(model, IA3Config(task_type=BASES[name][1], **IA3_ARGS.get(name, {})))
    n_trainable = pm.get_nb_trainable_parameters()[0]
    pm.print_trainable_parameters()
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if p.requires_grad:
                assert "ia3_l" in n, n
                p.copy_(1 + 0.25 * torch.randn(p.shape, generator=g))
    pm.eval()
    os.makedirs(out, exist_ok=True)
    pm.save_pretrained(out)
    cfg_path = os.path.join(out, "adapter_config.json")
    c = json.load(open(cfg_path))
    c["base_model_name_or_path"] = "tiny_" + name
    for k in ("target_modules", "feedforward_modules"):  # sets in PEFT: their order follows Python's string hashes
        c[k] = sorted(c[k])
    json.dump(c, open(cfg_path, "w"), indent=2, sort_keys=True)
    if os.path.exists(os.path.join(out, "README.md")):  # PEFT's model card template: not needed
        os.remove(os.path.join(out, "README.md"))

    loss, o = run(name, pm, batch)
    loss.backward()
    arrays = [("input_ids", batch["input_ids"].numpy().astype(np.int32))]
    if "labels" in batch:
        arrays.append(("labels", batch["labels"].numpy().astype(np.int32)))
    else:
        arrays += [("lens", batch["attention_mask"].sum(1).numpy().astype(np.int32)),
                   ("probe", batch["probe"].numpy())]
    arrays += [("loss", np.array([loss.item()], np.float32)), ("out", o.detach().numpy())]
    grads = [(n.replace(".default", ""), p.grad.numpy().copy()) for n, p in pm.named_parameters() if p.requires_grad]
    with torch.no_grad():
        loaded = PeftModel.from_pretrained(base_model(name), out).eval()
        _, o2 = run(name, loaded, batch)
    d = (o2 - o).abs().max().item()
    assert d < 1e-5, d
    arrays += [("out.loaded", o2.numpy()), ("n_trainable", np.array([n_trainable], np.int32))]
    arrays += [("grad." + n, gr) for n, gr in grads]
    save_golden(os.path.join(out, "golden.bin"), arrays)
    print(f"wrote {out}: loss {loss.item():.6f}, {len(grads)} gradients, {n_trainable} trainable, "
          f"|out| max {o.abs().max().item():.3f}, out.loaded within {d:.2g}")


def check(name, run_dir):
    hone = load_golden(os.path.join(run_dir, "hone_out.bin"))
    ids = torch.tensor(hone["input_ids"].astype(np.int64))
    pm = PeftModel.from_pretrained(base_model(name), run_dir).eval()
    assert pm.peft_config["default"].peft_type == peft.PeftType.IA3
    with torch.no_grad():
        if BASES[name][1] == "CAUSAL_LM":
            got = pm(input_ids=ids).logits.numpy()
            d = np.abs(got - hone["out"]).max()
        else:
            lens = hone["lens"]
            mask = torch.tensor((np.arange(ids.shape[1])[None, :] < lens[:, None]).astype(np.int64))
            got = pm(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
            d = max(np.abs(got[b, :lens[b]] - hone["out"][b, :lens[b]]).max() for b in range(len(lens)))
    # every vector of the file reached a module PEFT built from the config, and no module kept its init
    from safetensors.torch import load_file
    saved = load_file(os.path.join(run_dir, "adapter_model.safetensors"))
    live = {n.replace(".default", ""): p for n, p in pm.named_parameters() if "ia3_l" in n}
    same = sorted(saved) == sorted(live) and all(torch.equal(saved[n], live[n].data) for n in saved)
    print(f"PEFT {peft.__version__} loaded {run_dir} ({len(live)} ia3_l vectors, {'all' if same else 'NOT all'} "
          f"equal to the file's): outputs within {d:.3g} of hone's")
    return 0 if d <= 1e-4 and same else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/ia3"
    print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)
    torch.set_num_threads(1)
    for seed, name in enumerate(BASES):
        generate(name, out, 31 + seed)


if __name__ == "__main__":
    main()
