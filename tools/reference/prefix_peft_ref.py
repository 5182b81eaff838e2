#!/usr/bin/env python3
"""PEFT prefix tuning (PrefixTuningConfig, P-tuning v2) on the tiny random Llama (tests/data/tiny_llama: 2 layers,
4 heads, 2 KV heads, so token_dim is 2 x 16 = 32) and the tiny BERT (tests/data/tiny_bert, 4 heads of 16), with and
without the reparameterisation MLP (prefix_projection), for tests/test_prefix_tuning.c.

Cases (each its own directory under OUT, default tests/data/prefix):
    llama_plain   LlamaForCausalLM, CAUSAL_LM, num_virtual_tokens 4, no projection
    llama_proj    the same, num_virtual_tokens 3, prefix_projection, encoder_hidden_size 24
    bert_plain    BertModel (no pooler), FEATURE_EXTRACTION, num_virtual_tokens 5, no projection
    bert_proj     the same, num_virtual_tokens 3, prefix_projection, encoder_hidden_size 40
Every model is fp32 with eager attention in eval mode (no dropout), one thread, seeded. PEFT's own init (the
embedding N(0, 1), the MLP's Linear layers PyTorch's default) is kept.

Regenerate (not run by `make test`), from the source root:
    /root/.cache/hone/refvenv/bin/python tools/reference/prefix_peft_ref.py [OUT]
Versions used for the committed files: torch 2.15.0, transformers 5.24.0, peft 0.21.2 (printed when run), on the
CPU.

Each case's directory:
    adapter_config.json, adapter_model.safetensors   save_pretrained (base_model_name_or_path set to the base's
                                   directory name): one tensor, prompt_embeddings (n, num_layers * 2 * token_dim),
                                   the past key values as PEFT's get_prompt reads them (projected when the MLP was on)
    golden.bin                     tools/reference/tiny_llama_ref.py's layout ("HNGT", version 1):
        input_ids   i32 (B, T)     random token ids, right-padded with 0 past lens
        lens        i32 (B)        valid tokens per row (attention_mask = t < lens[b])
        trainable   i32 (1)        print_trainable_parameters()'s count
        init.NAME   f32            every trainable tensor before the step, NAME its named_parameters() name
                                   without ".default" (prompt_encoder.embedding.weight, prompt_encoder.transform.0.
                                   weight / .bias, prompt_encoder.transform.2.weight / .bias)
        grad.NAME   f32            d loss / d NAME
        loss        f32 (1)        Llama: transformers' causal-LM loss with labels = input_ids (-100 past lens);
                                   BERT: sum over valid tokens of last_hidden_state * probe
        labels      i32 (B, T)     Llama only
        logits      f32 (B, T, V)  Llama: the model in memory; BERT: hidden (B, T, C), last_hidden_state
        logits.loaded / hidden.loaded   the same after PeftModel.from_pretrained(dir) over a fresh base
        probe       f32 (B, T, C)  BERT only: N(0, 1)
        prompt_embeddings f32 (n, L*2*token_dim)   what save_pretrained wrote

Check mode: PEFT loads directories hone saved and gives hone's outputs:
    /root/.cache/hone/refvenv/bin/python tools/reference/prefix_peft_ref.py --check DIR
DIR holds subdirectories llama/ and bert/ (written by `build/test_prefix_tuning --check DIR`), each an adapter
directory with hone.bin (input_ids, lens and hone's logits or hidden, golden.bin's layout). Prints the largest
difference over the valid tokens and exits non-zero above 1e-4.
"""
import json
import os
import struct
import sys

import numpy as np
import peft
import torch
import transformers
from peft import PeftModel, PrefixTuningConfig, get_peft_model
from safetensors import safe_open
from transformers import BertModel, LlamaForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_bert_ref import save_golden  # noqa: E402

BASES = {"llama": "tests/data/tiny_llama", "bert": "tests/data/tiny_bert"}
CASES = {  # name: (base, num_virtual_tokens, prefix_projection, encoder_hidden_size, B, T, lens, seed)
    "llama_plain": ("llama", 4, False, None, 2, 10, [10, 7], 11),
    "llama_proj": ("llama", 3, True, 24, 2, 10, [10, 6], 12),
    "bert_plain": ("bert", 5, False, None, 2, 12, [12, 8], 13),
    "bert_proj": ("bert", 3, True, 40, 2, 12, [9, 12], 14),
}


def base_model(kind):
    cls = LlamaForCausalLM if kind == "llama" else BertModel
    kw = {} if kind == "llama" else {"add_pooling_layer": False}
    return cls.from_pretrained(BASES[kind], dtype=torch.float32, attn_implementation="eager", **kw).eval()


def run(model, kind, ids, lens, probe=None):
    """(loss, output) of the batch: Llama's causal-LM loss and logits, or BERT's probe loss and hidden states."""
    mask = (torch.arange(ids.shape[1])[None, :] < lens[:, None]).long()
    if kind == "llama":
        out = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100))
        return out.loss, out.logits
    h = model(input_ids=ids, attention_mask=mask).last_hidden_state
    loss = (h * probe * mask[:, :, None]).sum() if probe is not None else None
    return loss, h


def load_golden(path):
    out = {}
    with open(path, "rb") as f:
        assert f.read(4) == b"HNGT"
        _, n = struct.unpack("<II", f.read(8))
        for _ in range(n):
            (ln,) = struct.unpack("<I", f.read(4))
            name = f.read(ln).decode()
            dt, nd = struct.unpack("<II", f.read(8))
            dims = struct.unpack(f"<{nd}I", f.read(4 * nd))
            cnt = int(np.prod(dims)) if nd else 1
            out[name] = np.frombuffer(f.read(4 * cnt), np.int32 if dt else np.float32).reshape(dims)
    return out


def check(root):
    worst = 0.0
    for kind in ("llama", "bert"):
        d = os.path.join(root, kind)
        g = load_golden(os.path.join(d, "hone.bin"))
        ids, lens = torch.tensor(g["input_ids"]).long(), torch.tensor(g["lens"]).long()
        pm = PeftModel.from_pretrained(base_model(kind), d).eval()
        with torch.no_grad():
            _, out = run(pm, kind, ids, lens)
        want = g["logits" if kind == "llama" else "hidden"]
        diff = 0.0
        for b in range(ids.shape[0]):
            diff = max(diff, float(np.abs(out[b, : lens[b]].numpy() - want[b, : lens[b]]).max()))
        print(f"PEFT {peft.__version__} loaded hone's {d}: {'logits' if kind == 'llama' else 'hidden states'} "
              f"within {diff:.3g} of hone's")
        worst = max(worst, diff)
    return 0 if worst <= 1e-4 else 1


def make_case(out_root, name):
    kind, n, proj, enc, B, T, lens, seed = CASES[name]
    out = os.path.join(out_root, name)
    torch.manual_seed(seed)
    cfg = PrefixTuningConfig(task_type="CAUSAL_LM" if kind == "llama" else "FEATURE_EXTRACTION",
                             num_virtual_tokens=n, prefix_projection=proj, encoder_hidden_size=enc)
    pm = get_peft_model(base_model(kind), cfg)
    pm.eval()
    trainable = sum(p.numel() for p in pm.parameters() if p.requires_grad)
    pm.print_trainable_parameters()
    vocab = pm.get_base_model().config.vocab_size
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (B, T), generator=g)
    lens_t = torch.tensor(lens)
    ids = ids.masked_fill(torch.arange(T)[None, :] >= lens_t[:, None], 0)
    probe = torch.randn(B, T, pm.get_base_model().config.hidden_size, generator=g) if kind == "bert" else None
    params = [(n_.replace(".default", ""), p) for n_, p in pm.named_parameters() if p.requires_grad]
    arrays = [("input_ids", ids.numpy().astype(np.int32)), ("lens", np.array(lens, np.int32)),
              ("trainable", np.array([trainable], np.int32))]
    arrays += [("init." + n_, p.detach().numpy().copy()) for n_, p in params]
    loss, y = run(pm, kind, ids, lens_t, probe)
    loss.backward()
    arrays += [("grad." + n_, p.grad.numpy()) for n_, p in params]
    arrays.append(("loss", np.array([loss.item()], np.float32)))
    if kind == "llama":
        arrays.append(("labels", ids.masked_fill(torch.arange(T)[None, :] >= lens_t[:, None], -100).numpy()
                       .astype(np.int32)))
    else:
        arrays.append(("probe", probe.numpy()))
    what = "logits" if kind == "llama" else "hidden"
    arrays.append((what, y.detach().numpy()))

    os.makedirs(out, exist_ok=True)
    pm.save_pretrained(out)
    cfg_path = os.path.join(out, "adapter_config.json")
    c = json.load(open(cfg_path))
    c["base_model_name_or_path"] = os.path.basename(BASES[kind])
    json.dump(c, open(cfg_path, "w"), indent=2, sort_keys=True)
    if os.path.exists(os.path.join(out, "README.md")):  # PEFT's model card template: not needed
        os.remove(os.path.join(out, "README.md"))
    with torch.no_grad():
        loaded = PeftModel.from_pretrained(base_model(kind), out).eval()
        _, y_loaded = run(loaded, kind, ids, lens_t)
    # (get_prompt_embedding_to_save fails on a loaded projected adapter: its encoder is a plain embedding)
    saved = safe_open(os.path.join(out, "adapter_model.safetensors"), "np").get_tensor("prompt_embeddings")
    d = float(max(np.abs(y_loaded[b, : lens[b]].numpy() - y.detach()[b, : lens[b]].numpy()).max() for b in range(B)))
    assert d < 1e-5, d
    arrays.append((what + ".loaded", y_loaded.numpy()))
    arrays.append(("prompt_embeddings", saved))
    save_golden(os.path.join(out, "golden.bin"), arrays)
    print(f"wrote {out}: loss {loss.item():.6f}, {len(params)} trainable tensors ({trainable} values), "
          f"prompt_embeddings {saved.shape}, loaded within {d:.2g}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/prefix"
    print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)
    torch.set_num_threads(1)
    for name in CASES:
        make_case(out, name)


if __name__ == "__main__":
    main()
