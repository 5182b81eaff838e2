#!/usr/bin/env python3
"""A tiny random GPT-2 in Hugging Face layout and as llama.cpp's GGUF, a PEFT LoRA adapter, and golden numbers.

Writes into tests/data/tiny_gpt2/ (or the directory given as the first argument):
    config.json, model.safetensors       the base model (GPT2LMHeadModel, stored F16): 2 layers, n_embd 64, 4 heads,
                                         MLP 256, n_positions 64, vocab 301, gelu_new, layer_norm_epsilon 1e-5,
                                         head tied to wte
    tokenizer.json, tokenizer_config.json  a byte-level BPE trained by `tokenizers` on CORPUS below with GPT-2's
                                         tokenizer configuration: 256 byte tokens, 44 merges, <|endoftext|> (300)
    tiny_gpt2.gguf                       the same model in llama.cpp's GPT-2 layout (conversion/gpt2.py): token_embd,
                                         position_embd, blk.N.{attn_norm, attn_qkv, attn_output, ffn_norm, ffn_up,
                                         ffn_down}.{weight,bias}, output_norm; no output.weight (tied). Conv1D weights
                                         transposed to (out, in), i.e. ggml ne = {in, out}. Matrices F16, vectors F32.
                                         Tokenizer keys: tokenizer.ggml.model "gpt2", pre "gpt-2", tokens, token_type,
                                         merges, bos = eos = <|endoftext|>.
    peft_adapter/                        PEFT LoRA (r=4, lora_alpha=8, c_attn + c_proj + c_fc, dropout 0)
    golden.bin                           the numbers below

Deviations from defaults, on purpose:
  * initializer_range 0.2 (not 0.02), LayerNorm weights 1 + 0.1*N(0,1), LayerNorm and linear biases 0.1*N(0,1):
    logits of magnitude ~1-5 instead of ~0, so that a wrong split of c_attn, a missing bias or a transposed Conv1D
    moves them far more than the 1e-4 tolerance.
  * Every weight is rounded to F16 values first (the model then runs in fp32): the F16 files are exact, and the
    test data stays small (~240 KB per copy of the weights).
  * lora_B starts as N(0, 0.1^2) instead of PEFT's zeros, so that every lora_A gets a non-zero gradient.
  * fan_in_fan_out=True in LoraConfig: GPT-2's layers are Conv1D (weight (in, out)); PEFT needs the flag to merge.
    lora_A (r, in) and lora_B (out, r) are the same as for nn.Linear.

    hone_adapter_logits.bin              with --hone-adapter: PEFT's logits for hone_adapter/ (a PEFT directory that
                                         hone wrote: `build/tests/test_gpt2 --regenerate`), after checking that PEFT
                                         loaded every tensor of its file with the file's values

Regenerate (not run by `make test`), from the source root:
    /root/.cache/hone/refvenv/bin/python tools/reference/tiny_gpt2_ref.py [tests/data/tiny_gpt2]
    build/tests/test_gpt2 --regenerate     # hone_adapter/ (only when hone's PEFT writer changes)
    /root/.cache/hone/refvenv/bin/python tools/reference/tiny_gpt2_ref.py --hone-adapter [tests/data/tiny_gpt2]
Versions used for the committed files: torch 2.15.0, transformers 5.24.0, peft 0.21.2, gguf (gguf-py) from the
refvenv, tokenizers from the refvenv, numpy 2.4.6. fp32 on the CPU, eager attention, one thread.

golden.bin: the layout of tools/reference/tiny_llama_ref.py ("HNGT", version 1). Arrays (B = 2, T = 16, V = 301,
r = 4; M = a module's GGUF base name: blk.N.attn_qkv (c_attn), blk.N.attn_output (attn.c_proj), blk.N.ffn_up
(c_fc), blk.N.ffn_down (mlp.c_proj)):
    input_ids            i32 (B, T)
    labels               i32 (B, T)  = input_ids, except labels[0, :4] = -100 (ignored)
    base.logits          f32 (B, T, V)
    base.loss            f32 (1)
    long.input_ids       i32 (1, 64)   a row as long as n_positions
    long.logits          f32 (1, 64, V)
    gen.prompt           i32 (5)
    gen.tokens           i32 (16)  transformers' greedy continuation (generate, do_sample=False); the script checks
                                    that the best logit leads the second by more than 1e-3 at every step
    lora.logits          f32 (B, T, V)  base + the adapter
    lora.loss            f32 (1)
    lora.scale           f32 (1)  lora_alpha / r = 2
    lora.init.M.lora_a   f32 (r, in)
    lora.init.M.lora_b   f32 (out, r)   (attn_qkv: rows q | k | v, as c_attn's output features)
    lora.grad.M.lora_a / lora.grad.M.lora_b   d lora.loss / d A, d B
    tok.K.text, tok.K.ids  i32  TOK_TEXTS[K] as UTF-8 byte values, and its ids by `tokenizers` (special tokens
                                 recognised in the text)
    sgd.loss             f32 (6)  the loss before each of 5 plain SGD steps (lr 0.05) on the LoRA tensors, and after
The loss is transformers' causal-LM loss (mean over shifted positions whose label is not -100).
hone_adapter_logits.bin (same layout): input_ids i32 (2, 16) (fixed: seed 99), logits f32 (2, 16, V) of the
Hugging Face model in this directory with hone_adapter/ loaded by PeftModel.from_pretrained.
"""
import copy
import json
import os
import struct
import sys

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from transformers import GPT2Config, GPT2LMHeadModel

B, T, R, ALPHA = 2, 16, 4, 8
SEED = 4321
VOCAB_SIZE = 300  # before <|endoftext|>: GPT-2's 256 byte tokens and 44 merges
# The corpus the vocabulary is trained on (DESIGN.md section 6: GPT-2's own vocabulary is not available offline).
CORPUS = [
    "The quick brown fox jumps over the lazy dog. The dog didn't move; the fox ran on.",
    "In the beginning there was the word, and the word was written in the sand of the shore.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "It's 2024 now: 3.14159 is pi, 2.71828 is e, and 1,000,000 is a million.",
    "Hello, world!  Two spaces, a tab\there, and a new line\nthen more text.",
    "We're going to the market; they've got apples, oranges and bananas there.",
    "A café in Zürich serves crème brûlée; naïve visitors ask for the menu in English.",
    "中文也可以：这是一个测试。 Emoji too: 🙂🚀 and symbols like © and €.",
    "def main():\n    return sum(x * x for x in range(10))  # code, with indentation",
    "Another sentence, the last one, to make the common pairs of English stand out clearly.",
] * 3
# Strings whose ids (Hugging Face tokenizers on the trained tokenizer) hone's tokenizers must reproduce.
TOK_TEXTS = ["The quick brown fox didn't jump.", "  leading spaces,\ttabs\n\nand 12345 digits",
             "café 中文 🙂 <|endoftext|> the end", "She's sure they'll see the shore's shells."]
HF_TO_GGUF = {"attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", "mlp.c_fc": "ffn_up",
              "mlp.c_proj": "ffn_down"}


def train_tokenizer():
    """A byte-level BPE trained on CORPUS with GPT-2's tokenizer configuration (its tokenizer.json): ByteLevel
    pre-tokenizer (no prefix space, GPT-2's regex), ByteLevel post-processor and decoder, no normaliser, BPE without
    dropout or affixes, <|endoftext|> a special token appended last (as GPT-2's id 50256)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tk.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    tk.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tk.train_from_iterator(CORPUS, trainer)
    tk.add_special_tokens([AddedToken("<|endoftext|>", special=True)])
    vocab = tk.get_vocab()
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    assert None not in tokens and tokens[-1] == "<|endoftext|>" and len(tokens) == VOCAB_SIZE + 1
    merges = json.loads(tk.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    return tk, tokens, merges


def write_hf_tokenizer(out_dir, tk):
    tk.save(os.path.join(out_dir, "tokenizer.json"))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                   "unk_token": "<|endoftext|>", "model_max_length": 64, "add_prefix_space": False}, f, indent=2)


def write_gguf(path, model, cfg, tokens, merges):
    import gguf
    w = gguf.GGUFWriter(path, "gpt2")
    w.add_name("hone-tiny-gpt2")
    w.add_block_count(cfg.n_layer)
    w.add_context_length(cfg.n_positions)
    w.add_embedding_length(cfg.n_embd)
    w.add_feed_forward_length(4 * cfg.n_embd)
    w.add_head_count(cfg.n_head)
    w.add_layer_norm_eps(cfg.layer_norm_epsilon)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")  # llama.cpp's name for GPT-2's pre-tokenizer (src/llama-vocab.cpp)
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.NORMAL] * (len(tokens) - 1) + [gguf.TokenType.CONTROL])
    w.add_token_merges(merges)
    w.add_bos_token_id(len(tokens) - 1)
    w.add_eos_token_id(len(tokens) - 1)
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}

    def put(name, a):
        a = np.ascontiguousarray(a)
        w.add_tensor(name, a.astype(np.float16 if a.ndim == 2 else np.float32))

    put("token_embd.weight", sd["transformer.wte.weight"])
    put("position_embd.weight", sd["transformer.wpe.weight"])
    for i in range(cfg.n_layer):
        p = f"transformer.h.{i}."
        put(f"blk.{i}.attn_norm.weight", sd[p + "ln_1.weight"])
        put(f"blk.{i}.attn_norm.bias", sd[p + "ln_1.bias"])
        for hf, gg in HF_TO_GGUF.items():
            put(f"blk.{i}.{gg}.weight", sd[p + hf + ".weight"].T)  # Conv1D (in, out) -> (out, in)
            put(f"blk.{i}.{gg}.bias", sd[p + hf + ".bias"])
        put(f"blk.{i}.ffn_norm.weight", sd[p + "ln_2.weight"])
        put(f"blk.{i}.ffn_norm.bias", sd[p + "ln_2.bias"])
    put("output_norm.weight", sd["transformer.ln_f.weight"])
    put("output_norm.bias", sd["transformer.ln_f.bias"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def module_names(peft_model):
    out = []
    for name, mod in peft_model.named_modules():
        if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {}):
            parts = name.split(".")
            layer = int(parts[parts.index("h") + 1])
            kind = ".".join(parts[-2:])
            out.append((f"blk.{layer}.{HF_TO_GGUF[kind]}", mod))
    return out


def save_golden(path, arrays):
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


def check_hone_adapter(out_dir):
    """PEFT loads hone's adapter directory: every tensor, with the file's values; its logits for fixed ids."""
    from peft import PeftModel, get_peft_model_state_dict
    from safetensors.numpy import load_file
    torch.set_num_threads(1)
    model = GPT2LMHeadModel.from_pretrained(out_dir, dtype=torch.float32, attn_implementation="eager").eval()
    hone_dir = os.path.join(out_dir, "hone_adapter")
    pm = PeftModel.from_pretrained(model, hone_dir).eval()
    file = load_file(os.path.join(hone_dir, "adapter_model.safetensors"))
    sd = get_peft_model_state_dict(pm)
    assert set(sd) == set(file), (sorted(set(file) - set(sd))[:3], sorted(set(sd) - set(file))[:3])
    for k, v in file.items():
        assert np.array_equal(sd[k].float().numpy(), v.astype(np.float32)), k
    ids = torch.randint(0, model.config.vocab_size, (B, T), generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        lg = pm(input_ids=ids).logits
    path = os.path.join(out_dir, "hone_adapter_logits.bin")
    save_golden(path, [("input_ids", ids.numpy().astype(np.int32)), ("logits", lg.numpy())])
    with pm.disable_adapter(), torch.no_grad():
        base = pm(input_ids=ids).logits
    print(f"wrote {path}: {len(file) // 2} modules loaded by PEFT; the adapter moves the logits by up to "
          f"{(lg - base).abs().max().item():.3f}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--hone-adapter":
        check_hone_adapter(sys.argv[2] if len(sys.argv) > 2 else "tests/data/tiny_gpt2")
        return
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/data/tiny_gpt2"
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    tk, tokens, merges = train_tokenizer()
    V = len(tokens)
    cfg = GPT2Config(vocab_size=V, n_positions=64, n_embd=64, n_layer=2, n_head=4, n_inner=None,
                     activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     layer_norm_epsilon=1e-5, initializer_range=0.2, bos_token_id=V - 1, eos_token_id=V - 1,
                     tie_word_embeddings=True)
    model = GPT2LMHeadModel(cfg).float()
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
        for p in model.parameters():
            p.copy_(p.half().float())  # F16-exact values: the F16 files hold the model exactly
    model.eval()
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    copy.deepcopy(model).half().save_pretrained(out_dir, safe_serialization=True)
    write_hf_tokenizer(out_dir, tk)
    write_gguf(os.path.join(out_dir, "tiny_gpt2.gguf"), model, cfg, tokens, merges)

    g = torch.Generator().manual_seed(SEED + 1)
    ids = torch.randint(0, V, (B, T), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100
    arrays = [("input_ids", ids.numpy().astype(np.int32)), ("labels", labels.numpy().astype(np.int32))]
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels)
        arrays += [("base.logits", out.logits.numpy()), ("base.loss", np.array([out.loss.item()]))]
        long_ids = torch.randint(0, V, (1, cfg.n_positions), generator=g)
        arrays += [("long.input_ids", long_ids.numpy().astype(np.int32)),
                   ("long.logits", model(input_ids=long_ids).logits.numpy())]
        prompt = torch.tensor([[40, 266, 71, 259, 17]])
        gen = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=16, do_sample=False,
                             pad_token_id=V - 1)
        new = gen[0, prompt.shape[1]:]
        for k in range(new.shape[0]):  # no near-ties: a float rounding must not change the greedy choice
            lg = model(input_ids=gen[:, :prompt.shape[1] + k]).logits[0, -1]
            top = torch.topk(lg, 2).values
            assert top[0] - top[1] > 1e-3 and int(lg.argmax()) == int(new[k]), (k, top)
        arrays += [("gen.prompt", prompt[0].numpy().astype(np.int32)), ("gen.tokens", new.numpy().astype(np.int32))]

    for k, text in enumerate(TOK_TEXTS):
        arrays += [(f"tok.{k}.text", np.frombuffer(text.encode(), dtype=np.uint8).astype(np.int32)),
                   (f"tok.{k}.ids", np.array(tk.encode(text).ids, dtype=np.int32))]

    lcfg = LoraConfig(r=R, lora_alpha=ALPHA, target_modules=["c_attn", "c_proj", "c_fc"], lora_dropout=0.0,
                      bias="none", fan_in_fan_out=True, task_type="CAUSAL_LM")
    model.name_or_path = "hone-tiny-gpt2"
    pm = get_peft_model(model, lcfg)
    mods = module_names(pm)
    assert len(mods) == 4 * cfg.n_layer
    with torch.no_grad():
        for _, mod in mods:
            w = mod.lora_B["default"].weight
            w.copy_(0.1 * torch.randn(w.shape, generator=g))
    pm.save_pretrained(os.path.join(out_dir, "peft_adapter"))
    for extra in ("peft_adapter/README.md", "generation_config.json"):
        if os.path.exists(os.path.join(out_dir, extra)):
            os.remove(os.path.join(out_dir, extra))

    def lora_arrays(prefix, grad=False):
        res = []
        for base, mod in mods:
            a, b = mod.lora_A["default"].weight, mod.lora_B["default"].weight
            if grad:
                a, b = a.grad, b.grad
            res.append((f"{prefix}.{base}.lora_a", a.detach().numpy().copy()))
            res.append((f"{prefix}.{base}.lora_b", b.detach().numpy().copy()))
        return res

    pm.train()
    arrays += lora_arrays("lora.init")
    out = pm(input_ids=ids, labels=labels)
    out.loss.backward()
    arrays += [("lora.logits", out.logits.detach().numpy()), ("lora.loss", np.array([out.loss.item()])),
               ("lora.scale", np.array([ALPHA / R]))]
    arrays += lora_arrays("lora.grad", grad=True)

    params = [p for p in pm.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.05)
    losses = []
    for step in range(5):
        opt.zero_grad()
        loss = pm(input_ids=ids, labels=labels).loss
        losses.append(loss.item())
        loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(pm(input_ids=ids, labels=labels).loss.item())
    assert losses[-1] < losses[0]
    arrays += [("sgd.loss", np.array(losses))]

    path = os.path.join(out_dir, "golden.bin")
    save_golden(path, arrays)
    print(f"wrote {out_dir}: {len(arrays)} arrays; base loss {arrays[3][1][0]:.6f}, lora loss {losses[0]:.6f}, "
          f"after 5 SGD steps {losses[-1]:.6f}; |base logits| max {np.abs(arrays[2][1]).max():.3f}; "
          f"greedy {new.tolist()}")


if __name__ == "__main__":
    main()
