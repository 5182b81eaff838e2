#!/usr/bin/env python3
"""Bottleneck adapters (adapt/bottleneck.c: hone's adapter-houlsby and adapter-pfeiffer) written by hand in PyTorch
over transformers' tiny Llama (tests/data/tiny_llama) and tiny BERT (tests/data/tiny_bert), with random weights, and
the numbers tests/test_bottleneck.c holds hone to (DESIGN.md section 7: loss relative 1e-5, gradients
1e-4 x max(1, max |ref|), logits / hidden states 1e-4).

The adapter, on the output z of a hooked module (a forward hook replaces the module's output):
    z' = z + up(f(down(z)))     down = nn.Linear(C, b), up = nn.Linear(b, C), f relu / gelu (erf) / silu / tanh
which is AdapterHub's Adapter (adapters' methods/modeling.py) with its default DoubleSeqBnConfig placement: after the
attention output projection and after the feed-forward output projection of every block, before the residual add
(and, in BERT, before the block's LayerNorm). adapter-houlsby hooks both, adapter-pfeiffer the feed-forward one only
(see adapt/bottleneck.c for how that relates to AdapterHub's SeqBnConfig). Hooked modules:
    Llama: model.layers.N.self_attn.o_proj, model.layers.N.mlp.down_proj
    BERT:  encoder.layer.N.attention.output.dense (BertSelfOutput.dense),
           encoder.layer.N.output.dense (BertOutput.dense)
Weights: down and up weights N(0, 0.2^2), biases N(0, 0.1^2) (not the zero init: every tensor must matter), seeded.

Cases (OUT/<case>/):
    llama_houlsby   relu, b 4 (64 / 16)      llama_pfeiffer  silu, b 8
    bert_houlsby    gelu, b 4                 bert_pfeiffer   tanh, b 6
Each case directory holds the adapter in hone's saved format (hone_adapter.json + adapter_model.safetensors, the
names of adapt/bottleneck.c: base_model.model.<module path as hn_method_module_path>.adapter_down.weight, ...; the
BERT paths get "bert." in front as BertForSequenceClassification names them; metadata format "pt" and
hone.base_architecture) and golden.bin (tools/reference/tiny_llama_ref.py's layout, "HNGT" version 1):
  Llama (B 2, T 16):
    input_ids   i32 (B, T)
    labels      i32 (B, T)   = input_ids, labels[0, :4] = -100
    loss        f32 (1)      LlamaForCausalLM's loss (mean next-token cross-entropy over labels != -100)
    logits      f32 (B, T, V)
  BERT (B 3, T 10):
    input_ids   i32 (B, T)   padded with 0 after lens[b] tokens
    lens        i32 (B)      10, 7, 4 (attention_mask = t < lens[b]; token types all 0)
    probe       f32 (B, T, C) N(0, 1), zero at padded positions
    loss        f32 (1)      sum(last_hidden_state * probe)
    hidden      f32 (B, T, C) BertModel's last_hidden_state
  both:
    grad.NAME   f32          d loss / d NAME for every adapter tensor, NAME as in adapter_model.safetensors

AdapterHub check mode: the same adapters (the case directories' tensors) in AdapterHub's own `adapters` library give
the outputs golden.bin holds: adapter-houlsby as DoubleSeqBnConfig, adapter-pfeiffer as BnConfig(mh_adapter=False,
output_adapter=True) (original_ln_before False); SeqBnConfig's outputs are printed beside them to show how far its
residual-stream input moves them. `adapters` pins transformers 4.57, so it runs on a side directory of packages over
the reference venv (none of it is needed by the tests):
    /root/.cache/hone/refvenv/bin/pip install --no-deps --target AH adapters==1.3.0 transformers==4.57.6 \
        'huggingface-hub>=0.34,<1.0' 'tokenizers>=0.22,<0.23'
    PYTHONPATH=AH /root/.cache/hone/refvenv/bin/python tools/reference/bottleneck_ref.py --adapterhub [OUT]
Exits non-zero when DoubleSeqBnConfig or BnConfig differs from golden.bin by more than 1e-4.

Regenerate (not run by `make test`), from the source root:
    /root/.cache/hone/refvenv/bin/python tools/reference/bottleneck_ref.py [OUT]
(OUT defaults to tests/data/bottleneck). Versions used for the committed files: torch 2.15.0, transformers 5.24.0,
safetensors 0.8.0 (printed when run); fp32 on the CPU, one thread, eager attention. A rerun writes the same
numbers; the order of the two metadata keys in a safetensors header may differ (safetensors keeps them in a hash map).
"""
import json
import os
import struct
import sys

import numpy as np
import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import BertModel, LlamaForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_bert_ref import save_golden  # noqa: E402

SEED = 4242
ACTS = {"relu": torch.relu, "gelu": torch.nn.functional.gelu, "silu": torch.nn.functional.silu, "tanh": torch.tanh}
CASES = [  # name, base, method, non_linearity, bottleneck
    ("llama_houlsby", "llama", "adapter-houlsby", "relu", 4),
    ("llama_pfeiffer", "llama", "adapter-pfeiffer", "silu", 8),
    ("bert_houlsby", "bert", "adapter-houlsby", "gelu", 4),
    ("bert_pfeiffer", "bert", "adapter-pfeiffer", "tanh", 6),
]


class Adapter(torch.nn.Module):
    def __init__(self, width, b, act, gen):
        super().__init__()
        self.down = torch.nn.Linear(width, b)
        self.up = torch.nn.Linear(b, width)
        self.act = ACTS[act]
        with torch.no_grad():
            for lin in (self.down, self.up):
                lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen) * 0.2)
                lin.bias.copy_(torch.randn(lin.bias.shape, generator=gen) * 0.1)

    def hook(self, module, args, out):
        return out + self.up(self.act(self.down(out)))


def sites(base, method, n_layer):
    """(module path in the base model, hone's saved module path) for every adapted module, by layer, o before down."""
    out = []
    for n in range(n_layer):
        if base == "llama":
            o, d = f"model.layers.{n}.self_attn.o_proj", f"model.layers.{n}.mlp.down_proj"
            names = [(o, o), (d, d)]
        else:
            o, d = f"encoder.layer.{n}.attention.output.dense", f"encoder.layer.{n}.output.dense"
            names = [(o, "bert." + o), (d, "bert." + d)]
        out += names if method == "adapter-houlsby" else names[1:]
    return out


def run(out_dir, case, base, method, act, b):
    gen = torch.Generator().manual_seed(SEED + len(case))
    if base == "llama":
        model = LlamaForCausalLM.from_pretrained("tests/data/tiny_llama", dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    else:
        model = BertModel.from_pretrained("tests/data/tiny_bert", dtype=torch.float32, add_pooling_layer=False,
                                          attn_implementation="eager").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    C, L = model.config.hidden_size, model.config.num_hidden_layers
    tensors = {}
    for path, saved in sites(base, method, L):
        ad = Adapter(C, b, act, gen)
        model.get_submodule(path).register_forward_hook(ad.hook)
        for part, lin in (("adapter_down", ad.down), ("adapter_up", ad.up)):
            for kind in ("weight", "bias"):
                tensors[f"base_model.model.{saved}.{part}.{kind}"] = getattr(lin, kind)
    arrays = []
    if base == "llama":
        B, T = 2, 16
        ids = torch.randint(0, model.config.vocab_size, (B, T), generator=gen)
        labels = ids.clone()
        labels[0, :4] = -100
        res = model(input_ids=ids, labels=labels)
        loss = res.loss
        arrays += [("input_ids", ids.numpy().astype(np.int32)), ("labels", labels.numpy().astype(np.int32))]
        out_arrays = [("logits", res.logits.detach().numpy())]
    else:
        B, T = 3, 10
        lens = torch.tensor([10, 7, 4])
        mask = (torch.arange(T)[None, :] < lens[:, None]).long()
        ids = torch.randint(1, model.config.vocab_size, (B, T), generator=gen) * mask
        probe = torch.randn(B, T, C, generator=gen) * mask[:, :, None]
        h = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        loss = (h * probe).sum()
        arrays += [("input_ids", ids.numpy().astype(np.int32)), ("lens", lens.numpy().astype(np.int32)),
                   ("probe", probe.numpy())]
        out_arrays = [("hidden", h.detach().numpy())]
    loss.backward()
    arrays += [("loss", np.array([loss.item()], dtype=np.float32))] + out_arrays
    arrays += [(f"grad.{name}", t.grad.numpy()) for name, t in tensors.items()]
    d = os.path.join(out_dir, case)
    os.makedirs(d, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, os.path.join(d, "adapter_model.safetensors"),
              metadata={"format": "pt", "hone.base_architecture": base})
    cfg = {"format": "hone-adapter", "version": 1, "method": method, "bottleneck": b, "non_linearity": act,
           "placement": ["attention_output", "ffn_output"] if method == "adapter-houlsby" else ["ffn_output"],
           "base_model_name_or_path": None}
    with open(os.path.join(d, "hone_adapter.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    save_golden(os.path.join(d, "golden.bin"), arrays)
    gmax = max(float(t.grad.abs().max()) for t in tensors.values())
    print(f"{case}: loss {loss.item():.6f}, {len(tensors)} tensors, max |grad| {gmax:.4g}")


def load_golden(path):
    """golden.bin (tiny_llama_ref.py's layout) as {name: numpy array}."""
    arrays = {}
    with open(path, "rb") as f:
        assert f.read(4) == b"HNGT"
        _, n = struct.unpack("<II", f.read(8))
        for _ in range(n):
            (ln,) = struct.unpack("<I", f.read(4))
            name = f.read(ln).decode()
            dt, nd = struct.unpack("<II", f.read(8))
            dims = struct.unpack(f"<{nd}I", f.read(4 * nd))
            count = int(np.prod(dims)) if nd else 1
            arrays[name] = np.frombuffer(f.read(4 * count), dtype=np.int32 if dt else np.float32).reshape(dims)
    return arrays


def adapterhub_check(out_dir):
    import adapters
    from adapters import BnConfig, DoubleSeqBnConfig, SeqBnConfig
    from safetensors.torch import load_file

    print(f"adapters {adapters.__version__}, transformers {transformers.__version__}, torch {torch.__version__}")
    worst = 0.0
    for case, base, method, act, b in CASES:
        d = os.path.join(out_dir, case)
        g = load_golden(os.path.join(d, "golden.bin"))
        ours = load_file(os.path.join(d, "adapter_model.safetensors"))
        configs = [("DoubleSeqBnConfig", DoubleSeqBnConfig, True)] if method == "adapter-houlsby" else [
            ("BnConfig(mh_adapter=False, output_adapter=True)",
             lambda **kw: BnConfig(mh_adapter=False, output_adapter=True, **kw), True),
            ("SeqBnConfig", SeqBnConfig, False)]
        for label, make, must_match in configs:
            if base == "llama":
                model = LlamaForCausalLM.from_pretrained("tests/data/tiny_llama", dtype=torch.float32,
                                                         attn_implementation="eager")
            else:
                model = BertModel.from_pretrained("tests/data/tiny_bert", dtype=torch.float32,
                                                  add_pooling_layer=False, attn_implementation="eager")
            adapters.init(model)
            C = model.config.hidden_size
            model.add_adapter("a", config=make(non_linearity=act, reduction_factor=C / b))
            model.set_active_adapters("a")
            model.eval()
            state = {}
            for name, t in ours.items():  # base_model.model.<hone path>.adapter_down.weight -> AdapterHub's
                path, part, kind = name[len("base_model.model."):].rsplit(".", 2)
                n = path.split(".")[2] if base == "llama" else path.split(".")[3]
                attn = path.endswith("o_proj") or path.endswith("attention.output.dense")
                if base == "llama":
                    where = f"model.layers.{n}.{'attention_adapters' if attn else 'output_adapters'}"
                else:
                    where = f"encoder.layer.{n}.{'attention.output' if attn else 'output'}"
                state[f"{where}.adapters.a.{part}{'.0' if part == 'adapter_down' else ''}.{kind}"] = t
            missing = model.load_state_dict(state, strict=False)
            assert not missing.unexpected_keys and not [k for k in missing.missing_keys if "adapters." in k], missing
            with torch.no_grad():
                ids = torch.from_numpy(g["input_ids"].astype(np.int64))
                if base == "llama":
                    got, want, valid = model(input_ids=ids).logits.numpy(), g["logits"], None
                else:
                    mask = (np.arange(ids.shape[1])[None, :] < g["lens"][:, None])
                    got = model(input_ids=ids, attention_mask=torch.from_numpy(mask.astype(np.int64)),
                                token_type_ids=torch.zeros_like(ids)).last_hidden_state.numpy()
                    want, valid = g["hidden"], mask
            diff = np.abs(got - want) if valid is None else np.abs(got - want)[valid]
            print(f"{case}: AdapterHub {label}: max abs diff from golden.bin {diff.max():.3g}")
            if must_match:
                worst = max(worst, float(diff.max()))
    return worst <= 1e-4


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--adapterhub":
        torch.set_num_threads(1)
        sys.exit(0 if adapterhub_check(sys.argv[2] if len(sys.argv) > 2 else "tests/data/bottleneck") else 1)
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/bottleneck"
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, safetensors {safetensors.__version__}")
    for case in CASES:
        run(out, *case)


if __name__ == "__main__":
    main()
