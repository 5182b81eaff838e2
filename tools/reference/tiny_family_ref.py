#!/usr/bin/env python3
"""Tiny random models of the Llama family's variants as GGUF files, with transformers' logits as golden numbers.

Writes into tests/data/tiny_family/ (or the directory given as the first argument):
    qwen2.gguf          Qwen2ForCausalLM: q/k/v biases, grouped-query attention, tied embeddings; GGUF architecture
                        "qwen2", Q/K rows NOT permuted (llama.cpp's Qwen2 converter leaves them; its rope pairs
                        are the halves of each head, "neox")
    llama_linear.gguf   LlamaForCausalLM with rope_scaling {rope_type: linear, factor: 2}: llama.rope.scaling.type
                        "linear", llama.rope.scaling.factor 2; Q/K rows permuted as llama.cpp's Llama converter does
    llama3_rope.gguf    LlamaForCausalLM with Llama 3 rope scaling (factor 8, low_freq_factor 1, high_freq_factor 4,
                        original_max_position_embeddings 16): the per-pair factors as the tensor rope_freqs.weight,
                        computed as llama.cpp's converter computes them
    llama_tied/         LlamaForCausalLM with tied embeddings as a Hugging Face checkpoint (config.json +
                        model.safetensors in F16, no lm_head tensor)
    golden.bin          input_ids i32 (1, T); qwen2.logits, llama_linear.logits, llama3_rope.logits,
                        llama_tied.logits f32 (1, T, V)
All: 2 layers, hidden 64, 4 heads, 2 KV heads, head size 16, MLP 128, vocab 259 (256 byte-level tokens, 2 merges,
<|endoftext|>), matrices F16 in the GGUF (the reference model's weights are rounded to fp16 first, so both sides
compute on the same values), norms and biases F32, T = 40 positions (past the original context of 16, so that scaling matters),
initializer_range 0.2 and norm weights 1 + 0.1 N(0, 1) as tools/reference/tiny_llama_ref.py explains.
golden.bin's layout is tiny_llama_ref.py's (tests/tiny_golden.h reads it).

Regenerate (not run by `make test`):
    /root/.cache/hone/refvenv/bin/python tools/reference/tiny_family_ref.py [tests/data/tiny_family]
Versions used for the committed files: torch 2.15.0, transformers 5.24.0, gguf from the refvenv, numpy 2.4.6; fp32
on the CPU, eager attention, one thread.
"""
import copy
import math
import os
import struct
import sys

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

T = 40
SEED = 777
COMMON = dict(vocab_size=259, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, initializer_range=0.2,
              bos_token_id=258, eos_token_id=258)
LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 16, "rope_theta": 10000.0}


def byte_tokens():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def permute_rows(w, n_head):
    """HF -> GGUF row order of q_proj / k_proj (llama.cpp convert_hf_to_gguf.py LlamaModel.permute)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_factors(cfg, head_dim):
    """rope_freqs.weight as llama.cpp's LlamaModel converter computes it from rope_scaling (float32)."""
    base = LLAMA3["rope_theta"]
    freqs = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    factor, lo, hi = LLAMA3["factor"], LLAMA3["low_freq_factor"], LLAMA3["high_freq_factor"]
    old = LLAMA3["original_max_position_embeddings"]
    lo_wl, hi_wl = old / lo, old / hi
    out = []
    for f in freqs.tolist():
        wl = 2 * math.pi / f
        if wl < hi_wl:
            out.append(1.0)
        elif wl > lo_wl:
            out.append(factor)
        else:
            smooth = (old / wl - lo) / (hi - lo)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_gguf(path, arch, model, cfg, permute, rope=None, freqs=None):
    import gguf
    w = gguf.GGUFWriter(path, arch)
    w.add_name("hone-tiny-" + os.path.basename(path)[:-5])
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    if rope:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope)
    tokens = byte_tokens()
    merges = [f"{tokens[ord('t')]} {tokens[ord('h')]}", f"{tokens[ord('e')]} {tokens[ord('r')]}"]
    tokens += [tokens[ord("t")] + tokens[ord("h")], tokens[ord("e")] + tokens[ord("r")], "<|endoftext|>"]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.NORMAL] * (len(tokens) - 1) + [gguf.TokenType.CONTROL])
    w.add_token_merges(merges)
    w.add_bos_token_id(len(tokens) - 1)
    w.add_eos_token_id(len(tokens) - 1)
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"].astype(np.float16))
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    if not cfg.tie_word_embeddings:
        w.add_tensor("output.weight", sd["lm_head.weight"].astype(np.float16))
    if freqs is not None:
        w.add_tensor("rope_freqs.weight", freqs)
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        w.add_tensor(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"])
        w.add_tensor(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        for hf, g in names.items():
            for kind in ("weight", "bias"):
                a = sd.get(p + hf + "." + kind)
                if a is None:
                    continue
                if permute and hf.endswith("q_proj"):
                    a = permute_rows(a, nh)
                if permute and hf.endswith("k_proj"):
                    a = permute_rows(a, nkv)
                w.add_tensor(f"blk.{i}.{g}.{kind}", np.ascontiguousarray(a.astype(np.float16 if a.ndim == 2 else np.float32)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def randomize_norms(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.5 * torch.randn_like(p))
            elif p.ndim == 2:
                p.copy_(p.half().float())  # stored as F16 in the GGUF: the reference computes on the same values
    model.config._attn_implementation = "eager"
    return model.float().eval()


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/data/tiny_family"
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    ids = torch.randint(0, 258, (1, T), generator=torch.Generator().manual_seed(SEED + 1))
    arrays = [("input_ids", ids.numpy().astype(np.int32))]

    qcfg = Qwen2Config(tie_word_embeddings=True, rope_theta=10000.0, **COMMON)
    qwen = randomize_norms(Qwen2ForCausalLM(qcfg))
    write_gguf(os.path.join(out_dir, "qwen2.gguf"), "qwen2", qwen, qcfg, permute=False)

    lcfg = LlamaConfig(tie_word_embeddings=False, rope_scaling={"rope_type": "linear", "factor": 2.0,
                                                                "rope_theta": 10000.0}, **COMMON)
    lin = randomize_norms(LlamaForCausalLM(lcfg))
    write_gguf(os.path.join(out_dir, "llama_linear.gguf"), "llama", lin, lcfg, permute=True, rope=2.0)

    l3cfg = LlamaConfig(tie_word_embeddings=False, rope_scaling=dict(LLAMA3), **COMMON)
    l3 = randomize_norms(LlamaForCausalLM(l3cfg))
    write_gguf(os.path.join(out_dir, "llama3_rope.gguf"), "llama", l3, l3cfg, permute=True,
               freqs=llama3_factors(l3cfg, 16))

    # A Llama with tied embeddings as a Hugging Face checkpoint (no lm_head in the file), F16 safetensors.
    tcfg = LlamaConfig(tie_word_embeddings=True, rope_theta=10000.0, **COMMON)
    tied = randomize_norms(LlamaForCausalLM(tcfg))
    with torch.no_grad():  # every parameter as the F16 file holds it (norms included)
        for p in tied.parameters():
            p.copy_(p.half().float())
    # A copy is halved for saving: halving the model itself would also round its rotary inv_freq buffer.
    copy.deepcopy(tied).half().save_pretrained(os.path.join(out_dir, "llama_tied"), safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(out_dir, "llama_tied", extra)):
            os.remove(os.path.join(out_dir, "llama_tied", extra))

    with torch.no_grad():
        for name, m in (("qwen2", qwen), ("llama_linear", lin), ("llama3_rope", l3), ("llama_tied", tied)):
            arrays.append((name + ".logits", m(input_ids=ids).logits.numpy()))
        # Scaling must matter: the same weights without it give other logits past the original context.
        for name, m in (("llama_linear", lin), ("llama3_rope", l3)):
            plain = LlamaForCausalLM(LlamaConfig(tie_word_embeddings=False, **COMMON))
            plain.load_state_dict(m.state_dict())
            plain.config._attn_implementation = "eager"
            d = (plain.float().eval()(input_ids=ids).logits - m(input_ids=ids).logits).abs().max().item()
            print("%s: max |logit change| without its rope scaling: %.3f" % (name, d))
            assert d > 0.1
    with open(os.path.join(out_dir, "golden.bin"), "wb") as f:
        f.write(b"HNGT" + struct.pack("<II", 1, len(arrays)))
        for name, a in arrays:
            a = np.ascontiguousarray(a)
            f.write(struct.pack("<I", len(name)) + name.encode())
            f.write(struct.pack("<II", 0 if a.dtype == np.float32 else 1, a.ndim) + struct.pack("<%dI" % a.ndim, *a.shape))
            f.write(a.astype(np.float32 if a.dtype == np.float32 else np.int32).tobytes())
    print("wrote", out_dir, [n for n, _ in arrays])


if __name__ == "__main__":
    main()
