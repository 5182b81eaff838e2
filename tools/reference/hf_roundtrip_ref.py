#!/usr/bin/env python3
"""Hugging Face checkpoints for hone's loader and converter tests: real torch.save files (good and broken) and
tiny random checkpoints with the logits transformers computes for them.

Writes into tests/data/hf_torch/ (or the directory given as the first argument):
    mixed.bin            torch.save of an OrderedDict that exercises the reader: f32 (3, 4), f16 (5,), bf16 (2, 2),
                         a transposed view (strides (1, 6)), a row slice (storage offset 6), the same tensor under two
                         names (one storage), an int64 buffer (skipped by hone), a 0-dim scalar, a 4-D tensor, an
                         nn.Parameter (pickled through torch._utils._rebuild_parameter)
    mixed.golden         HNGT arrays (format of tests/tiny_golden.h): every float tensor of mixed.bin as f32 values,
                         named as in the state dict, shape as PyTorch's
    evil_reduce.bin      a torch-style zip whose data.pkl calls os.system (GLOBAL 'posix system' + REDUCE)
    evil_eval.bin        data.pkl asks for builtins.eval through STACK_GLOBAL (protocol 4)
    evil_inst.bin        data.pkl uses the INST opcode
    bad_size.bin         mixed.bin with the storage data/0 four bytes short
    missing_data.bin     mixed.bin without the entry data/1
    deflated.bin         mixed.bin re-zipped with compression
    legacy.bin           torch.save(..., _use_new_zipfile_serialization=False): the pre-1.6 format (refused)
    tiny_llama_f16/      tests/data/tiny_llama's weights rounded to f16, saved as transformers 4's
                         save_pretrained(safe_serialization=False) did: pytorch_model.bin, and config.json
    tiny_llama_f16.golden  input_ids (2, 16) i32 and logits (2, 16, 256) f32: transformers in fp32 over the
                         f16-rounded weights (the loader must give these within 1e-4)


And into tests/data/hf_arch/ (beside the first directory): tiny random checkpoints of the other architectures the
loader maps (config.json + weights as transformers saves them), for the name tables and config readers:
    gpt2/                GPT2LMHeadModel (vocab 32, n_embd 16, 2 layers, 2 heads, n_positions 24): model.safetensors
                         with transformer.* names (Conv1D weights (in, out)), tied head
    bert/                BertModel (vocab 40, hidden 16, 2 layers, 2 heads, intermediate 24, 20 positions, 2 token
                         types) saved as sentence-transformers lays it out: model.safetensors + 1_Pooling/config.json
                         (CLS pooling)
    bert_bin/            the same weights as BertForMaskedLM's state dict would name them ("bert." prefix, cls.*
                         head) with TensorFlow's LayerNorm names (gamma / beta), in pytorch_model.bin
    bert_bin_sharded/    the same state dict in two torch.save shards + pytorch_model.bin.index.json
    distilbert/          DistilBertModel (vocab 40, dim 16, 2 layers, 2 heads, hidden_dim 24): model.safetensors

And into tests/data/hf_family/: qwen2/, llama3_rope/, llama_linear/ (hidden 32, 2 layers, 2 heads of 16, 1 KV head,
vocab 64; see family_checkpoints) with golden.bin = transformers' fp32 logits over 40 positions.

Regenerate (not run by `make test`):
    /root/.cache/hone/refvenv/bin/python tools/reference/hf_roundtrip_ref.py [tests/data/hf_torch]
Check `hone export` with transformers itself (writes nothing into tests/data):
    /root/.cache/hone/refvenv/bin/python tools/reference/hf_roundtrip_ref.py --hone build/hone
  converts tests/data/tiny_llama to GGUF and exports it back, exports tests/data/hf_arch/gpt2 and bert, loads each
  exported directory with transformers and asserts its outputs equal the original checkpoint's (max abs diff
  <= 1e-6; the exported weights are the same bytes, which tests/test_hf_roundtrip.c checks on every run); and,
  when SmolLM2-135M-Instruct is pulled, exports its GGUF and checks transformers' token ids, log-probabilities
  (<= 1e-4 from hone --exact; 3.4e-5 seen) and chat template on the export.
Versions used for the committed files: torch 2.15.0, transformers 5.24.0. Deterministic (fixed seeds, one thread).
"""
import collections
import json
import os
import pickle
import shutil
import struct
import sys
import zipfile

import numpy as np
import torch
from transformers import LlamaForCausalLM

SEED = 4
FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # zip entry times, so that the files do not change between runs


def write_golden(path, arrays):
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


def rezip(src, dst, drop=None, shorten=None, compress=False):
    """Copies the zip src to dst, leaving out the entry ending in `drop`, cutting 4 bytes off the one ending in
    `shorten`, or compressing every entry."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(
            dst, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if drop and info.filename.endswith(drop):
                continue
            if shorten and info.filename.endswith(shorten):
                data = data[:-4]
            zout.writestr(zipfile.ZipInfo(info.filename, date_time=FIXED_TIME), data,
                          zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)


def evil_zip(path, pkl):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in (("archive/data.pkl", pkl), ("archive/byteorder", b"little"), ("archive/version", b"3\n")):
            z.writestr(zipfile.ZipInfo(name, date_time=FIXED_TIME), data)


class Boom:
    def __reduce__(self):
        return (os.system, ("echo hone must never run this",))


def torch_files(out):
    torch.manual_seed(SEED)
    sd = collections.OrderedDict()
    sd["a.weight"] = torch.randn(3, 4)
    sd["b.half"] = torch.randn(5).half()
    sd["c.bf16"] = torch.randn(2, 2).bfloat16()
    base = torch.randn(4, 6)
    sd["d.transposed"] = base.t()
    sd["e.slice"] = base[1:3]
    sd["f.shared"] = sd["a.weight"]
    sd["g.position_ids"] = torch.arange(5)
    sd["h.scalar"] = torch.tensor(2.5)
    sd["i.four_d"] = torch.randn(2, 1, 3, 2)
    sd["j.param"] = torch.nn.Parameter(torch.randn(2, 3))
    mixed = os.path.join(out, "mixed.bin")
    torch.save(sd, mixed)
    arrays = [(k, v.detach().float().numpy()) for k, v in sd.items() if v.is_floating_point()]
    write_golden(os.path.join(out, "mixed.golden"), arrays)

    evil_zip(os.path.join(out, "evil_reduce.bin"), pickle.dumps(Boom(), protocol=2))
    # STACK_GLOBAL 'builtins' 'eval' + ("1",) REDUCE, protocol 4 framing
    p4 = (b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94\x8c\x011\x94"
          b"\x85\x94R\x94.")
    assert pickle.loads(p4) == 1
    evil_zip(os.path.join(out, "evil_eval.bin"), p4)
    evil_zip(os.path.join(out, "evil_inst.bin"), b"\x80\x02(ibuiltins\nlist\n.")
    rezip(mixed, os.path.join(out, "bad_size.bin"), shorten="/data/0")
    rezip(mixed, os.path.join(out, "missing_data.bin"), drop="/data/1")
    rezip(mixed, os.path.join(out, "deflated.bin"), compress=True)
    torch.save({"x": torch.ones(2)}, os.path.join(out, "legacy.bin"), _use_new_zipfile_serialization=False)


def tiny_llama_f16(out):
    src = os.path.join(os.path.dirname(out.rstrip("/")), "tiny_llama")
    model = LlamaForCausalLM.from_pretrained(src, torch_dtype=torch.float32)
    model.config._attn_implementation = "eager"
    model.eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    g = torch.Generator().manual_seed(SEED + 1)
    ids = torch.randint(0, model.config.vocab_size, (2, 16), generator=g)
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    # .half() also rounds buffers such as rotary inv_freq: save only after the fp32 logits are taken.
    d = os.path.join(out, "tiny_llama_f16")
    shutil.rmtree(d, ignore_errors=True)
    # transformers 5 writes only safetensors: save the state dict as transformers 4's save_pretrained(...,
    # safe_serialization=False) did (torch.save of a dict of the model's tensors to pytorch_model.bin).
    model.half().save_pretrained(d)
    for extra in ("generation_config.json", "model.safetensors"):
        if os.path.exists(os.path.join(d, extra)):
            os.remove(os.path.join(d, extra))
    torch.save(dict(model.state_dict()), os.path.join(d, "pytorch_model.bin"))
    write_golden(os.path.join(out, "tiny_llama_f16.golden"),
                 [("input_ids", ids.numpy().astype(np.int32)), ("logits", logits.numpy())])


def arch_checkpoints(root):
    from transformers import (BertConfig, BertModel, DistilBertConfig, DistilBertModel, GPT2Config,
                              GPT2LMHeadModel)
    torch.manual_seed(SEED + 2)
    for sub in ("gpt2", "bert", "bert_bin", "bert_bin_sharded", "distilbert"):
        shutil.rmtree(os.path.join(root, sub), ignore_errors=True)

    def save(model, sub):
        d = os.path.join(root, sub)
        model.save_pretrained(d)
        if os.path.exists(os.path.join(d, "generation_config.json")):
            os.remove(os.path.join(d, "generation_config.json"))
        return d

    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_embd=16, n_layer=2, n_head=2, n_positions=24))
    save(gpt2, "gpt2")
    bert = BertModel(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=24, max_position_embeddings=20, type_vocab_size=2),
                     add_pooling_layer=True)
    d = save(bert, "bert")
    os.makedirs(os.path.join(d, "1_Pooling"))
    with open(os.path.join(d, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 16, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False,
                   "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}, f, indent=2)
    d = save(bert, "bert_bin")
    os.remove(os.path.join(d, "model.safetensors"))
    sd = {}
    for k, v in bert.state_dict().items():
        k = "bert." + k
        if "LayerNorm" in k:
            k = k.replace(".weight", ".gamma").replace(".bias", ".beta")
        sd[k] = v
    sd["cls.predictions.bias"] = torch.zeros(40)
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))
    # The same state dict in two torch.save shards with pytorch_model.bin.index.json, as transformers 4 shards.
    d = save(bert, "bert_bin_sharded")
    os.remove(os.path.join(d, "model.safetensors"))
    names = list(sd)
    weight_map = {}
    for k, part in enumerate((names[: len(names) // 2], names[len(names) // 2:])):
        fname = f"pytorch_model-0000{k + 1}-of-00002.bin"
        torch.save({n: sd[n] for n in part}, os.path.join(d, fname))
        weight_map.update({n: fname for n in part})
    with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=2)
    distil = DistilBertModel(DistilBertConfig(vocab_size=40, dim=16, n_layers=2, n_heads=2, hidden_dim=24,
                                              max_position_embeddings=20))
    save(distil, "distilbert")


def check_export(hone):
    import subprocess
    import tempfile
    from transformers import AutoModel, AutoModelForCausalLM
    tmp = tempfile.mkdtemp(prefix="hone_export_")
    subprocess.run([hone, "convert", "tests/data/tiny_llama", "-o", f"{tmp}/llama.gguf", "--type", "f32"], check=True)
    cases = [("llama", f"{tmp}/llama.gguf", "tests/data/tiny_llama", AutoModelForCausalLM, 256),
             ("distilbert", "tests/data/hf_arch/distilbert", "tests/data/hf_arch/distilbert", AutoModel, 40),
             ("qwen2", "tests/data/hf_family/qwen2", "tests/data/hf_family/qwen2", AutoModelForCausalLM, 64),
             ("llama_linear", "tests/data/hf_family/llama_linear", "tests/data/hf_family/llama_linear",
              AutoModelForCausalLM, 64),
             ("gpt2", "tests/data/hf_arch/gpt2", "tests/data/hf_arch/gpt2", AutoModelForCausalLM, 32),
             ("bert", "tests/data/hf_arch/bert", "tests/data/hf_arch/bert", AutoModel, 40)]
    for name, src, orig, cls, vocab in cases:
        # 40 positions where the model has them (rotary scaling shows), else 8
        ids = torch.tensor([[1, 5, 9, 17, 3, 2, 30, 11] * (5 if vocab == 64 or name == "llama" else 1)])
        out = f"{tmp}/{name}_hf"
        subprocess.run([hone, "export", src, "-o", out], check=True)
        a, b = cls.from_pretrained(orig).eval(), cls.from_pretrained(out).eval()
        with torch.no_grad():
            oa, ob = a(input_ids=ids), b(input_ids=ids)
        ta = oa.logits if hasattr(oa, "logits") else oa.last_hidden_state
        tb = ob.logits if hasattr(ob, "logits") else ob.last_hidden_state
        d = (ta - tb).abs().max().item()
        print(f"{name}: transformers on the exported directory vs the original: max abs diff {d:.3g}")
        assert d <= 1e-6, name
    # A real model when it is pulled: SmolLM2-135M-Instruct (Q4_1 GGUF) exported, then read by transformers: the same
    # token ids as hone's tokenizer, log-probabilities as hone's exact path computes them from the GGUF.
    gguf = os.path.expanduser("~/.cache/hone/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
    if os.path.exists(gguf):
        from transformers import AutoTokenizer
        out = f"{tmp}/smollm2_hf"
        subprocess.run([hone, "export", gguf, "-o", out], check=True)
        text = "The capital of France is Paris. Brindlemere is a small town, 日本語 too!"
        rows = [json.loads(l) for l in subprocess.run([hone, "score", "-m", gguf, "--exact", "--json", text],
                                                      check=True, capture_output=True, text=True).stdout.splitlines()]
        rows = [r for r in rows if "id" in r]
        ids = [r["id"] for r in rows]
        tok = AutoTokenizer.from_pretrained(out)
        assert tok(text)["input_ids"] == ids, "token ids"
        model = AutoModelForCausalLM.from_pretrained(out).eval()
        with torch.no_grad():
            lp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
        d = max(abs(lp[i - 1, ids[i]].item() - rows[i]["logprob"]) for i in range(1, len(ids)))
        print(f"smollm2: transformers on the export vs hone --exact on the GGUF: same {len(ids)} ids, "
              f"max abs logprob diff {d:.3g}")
        assert d <= 1e-4
        assert "<|im_start|>assistant" in tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                                                  add_generation_prompt=True)
    shutil.rmtree(tmp)


def family_checkpoints(root):
    """Llama-family variants as HF directories with transformers' logits (golden.bin: input_ids (1, T) i32, logits
    (1, T, V) f32): qwen2 (q/k/v biases, tied head), llama3_rope (rope_type llama3: hone computes rope_freqs as
    llama.cpp's converter does) and llama_linear (rope_type linear, factor 4)."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    common = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, max_position_embeddings=64, rms_norm_eps=1e-5, initializer_range=0.2)
    variants = [
        ("qwen2", Qwen2ForCausalLM, Qwen2Config(**common, tie_word_embeddings=True, rope_theta=10000.0)),
        ("llama3_rope", LlamaForCausalLM, LlamaConfig(**common, tie_word_embeddings=False, rope_scaling={
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16}, rope_theta=500000.0)),
        ("llama_linear", LlamaForCausalLM, LlamaConfig(**common, tie_word_embeddings=False, rope_scaling={
            "rope_type": "linear", "factor": 4.0}, rope_theta=10000.0)),
    ]
    T = 40
    for k, (name, cls, cfg) in enumerate(variants):
        torch.manual_seed(SEED + 10 + k)
        model = cls(cfg).float()
        model.config._attn_implementation = "eager"
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if pname.endswith("norm.weight"):
                    p.copy_(1 + 0.1 * torch.randn_like(p))
                elif pname.endswith(".bias"):
                    p.copy_(0.5 * torch.randn_like(p))
        model.eval()
        d = os.path.join(root, name)
        shutil.rmtree(d, ignore_errors=True)
        model.save_pretrained(d)
        if os.path.exists(os.path.join(d, "generation_config.json")):
            os.remove(os.path.join(d, "generation_config.json"))
        ids = torch.randint(0, cfg.vocab_size, (1, T), generator=torch.Generator().manual_seed(SEED + 20 + k))
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        write_golden(os.path.join(d, "golden.bin"), [("input_ids", ids.numpy().astype(np.int32)),
                                                      ("logits", logits.numpy())])


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--hone":
        torch.set_num_threads(1)
        return check_export(sys.argv[2])
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/hf_torch"
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    torch_files(out)
    tiny_llama_f16(out)
    arch_root = os.path.join(os.path.dirname(out.rstrip("/")), "hf_arch")
    arch_checkpoints(arch_root)
    family_root = os.path.join(os.path.dirname(out.rstrip("/")), "hf_family")
    family_checkpoints(family_root)
    for d in (out, arch_root, family_root):
        for dirpath, _, files in sorted(os.walk(d)):
            for f in sorted(files):
                print(os.path.join(dirpath, f), os.path.getsize(os.path.join(dirpath, f)))


if __name__ == "__main__":
    main()
