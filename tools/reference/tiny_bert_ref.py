#!/usr/bin/env python3
"""A tiny random BERT encoder in Hugging Face layout and as llama.cpp's GGUF, and golden hidden states.

Writes into tests/data/tiny_bert/ (or the directory given as the first argument):
    config.json, model.safetensors       BertModel with its pooler (pooler.dense, as a plain BERT checkpoint has
                                         it; BertForSequenceClassification classifies from it), stored F16: 2 layers,
                                         hidden 64, 4 heads, MLP 128 (gelu, the erf form), 32 positions, 2 token
                                         types, vocabulary below, layer_norm_eps 1e-12
    vocab.txt, tokenizer.json, tokenizer_config.json   a WordPiece vocabulary ([PAD] [UNK] [CLS] [SEP] [MASK], the
                                         letters, "##" continuations, a few words, punctuation, a few CJK characters),
                                         uncased, as BertTokenizerFast saves it
    tiny_bert.gguf                       the same model in llama.cpp's BERT layout (conversion/bert.py): token_embd,
                                         token_types, position_embd, token_embd_norm, blk.N.{attn_q, attn_k, attn_v,
                                         attn_output, attn_output_norm, ffn_up, ffn_down, layer_output_norm}.{weight,
                                         bias} (no pooler: llama.cpp's converter drops it); matrices F16, vectors
                                         F32; keys bert.* with attention.causal false,
                                         pooling_type 1 (mean); tokenizer.ggml.model "bert" with llama.cpp's spelling
                                         (word starts "\u2581word", continuations without "##", control tokens as
                                         they are) and the special token ids ([CLS] as bos_token_id, as llama.cpp
                                         writes it; sep, pad, unk, mask), add_bos_token and add_sep_token true
    texts.txt                            five lines of text for the text-level check (see TEXTS)
    distilbert/                          a DistilBertModel of the same sizes (no token types; its own random weights,
                                         same deviations), config.json + model.safetensors (F16) + the tokenizer
                                         files, and golden.bin with input_ids, lens and hidden for the same batch
    golden.bin                           the numbers below

Deviations from defaults, on purpose: initializer_range 0.2 (not 0.02), LayerNorm weights 1 + 0.1*N(0,1), biases
0.1*N(0,1), so that a missing bias, a wrong norm placement (pre vs post) or an unmasked pad key moves the outputs far
more than the 1e-4 tolerance. Every weight is rounded to F16 first (the model then runs in fp32), so both files are
exact and small.

Regenerate (not run by `make test`):
    /root/.cache/hone/refvenv/bin/python tools/reference/tiny_bert_ref.py [tests/data/tiny_bert]
Versions used for the committed files: torch 2.15.0, transformers 5.24.0, safetensors 0.8.0, gguf-py and tokenizers
from the refvenv, numpy 2.4.6. fp32 on the CPU, eager attention, one thread.

golden.bin: the layout of tools/reference/tiny_llama_ref.py ("HNGT", version 1). Arrays (B = 3, T = 12, C = 64):
    input_ids            i32 (B, T)  each row [CLS] ... [SEP] then [PAD] (id 0) up to T
    lens                 i32 (B)     valid tokens of each row: 12, 7, 3 (attention_mask = t < lens[b])
    hidden               f32 (B, T, C)  last_hidden_state of BertModel with that attention_mask, token_type_ids 0;
                                        rows past lens[b] are whatever transformers computes (not compared)
    pool.mean, pool.cls, pool.max, pool.last   f32 (B, C)  pooled over each row's valid tokens (sentence-transformers'
                                        definitions: mean of the valid rows, row 0, elementwise max, row lens[b]-1)
    pool.mean_norm       f32 (B, C)  pool.mean / max(||pool.mean||, 1e-12)
    text.ids             i32 (5, Tt)  the lines of texts.txt through the saved tokenizer (BertTokenizerFast,
                                      framed [CLS] ... [SEP], padded with [PAD] to the longest)
    text.pool.mean       f32 (5, C)   the model's mean over each line's valid tokens
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

B, T = 3, 12
# Lines of texts.txt: words in and out of the vocabulary, "##" continuations, case, accents, punctuation, CJK.
TEXTS = ["The cat sat on the mat.", "Hello, world! Embedding tokens", "你好世界 中文", "Dogs running? Café naïve",
         "xyz"]
LENS = [12, 7, 3]
SEED = 4321


def vocabulary():
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    words = ["the", "cat", "sat", "on", "mat", "dog", "run", "##es", "##ing", "##ed", "hello", "world", "embed",
             "##ding", "token"]
    punct = [".", ",", "!", "?", "'", "-"]
    cjk = ["你", "好", "世", "界", "中", "文"]
    return specials + letters + ["##" + c for c in letters] + words + punct + cjk


def write_tokenizer(out_dir, vocab):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    with open(os.path.join(out_dir, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    # Built with `tokenizers` itself: BertTokenizerFast(vocab_file=...) of transformers 5 ignores the file.
    tk = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tk.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                               lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    tk.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                      special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = BertTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                             cls_token="[CLS]", mask_token="[MASK]", do_lower_case=True, model_max_length=32)
    fast.save_pretrained(out_dir)
    assert len(Tokenizer.from_file(os.path.join(out_dir, "tokenizer.json")).get_vocab()) == len(vocab)
    for extra in ("special_tokens_map.json",):
        p = os.path.join(out_dir, extra)
        if os.path.exists(p):
            os.remove(p)


def write_gguf(path, model, cfg, vocab):
    import gguf
    w = gguf.GGUFWriter(path, "bert")
    w.add_name("hone-tiny-bert")
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_layer_norm_eps(cfg.layer_norm_eps)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_token_type_count(cfg.type_vocab_size)
    types = [gguf.TokenType.CONTROL if t.startswith("[") and t.endswith("]") else gguf.TokenType.NORMAL
             for t in vocab]
    toks = [t if ty == gguf.TokenType.CONTROL else (t[2:] if t.startswith("##") else "\u2581" + t)
            for t, ty in zip(vocab, types)]
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_unk_token_id(vocab.index("[UNK]"))
    w.add_sep_token_id(vocab.index("[SEP]"))
    w.add_pad_token_id(vocab.index("[PAD]"))
    w.add_bos_token_id(vocab.index("[CLS]"))  # llama.cpp keeps [CLS] as the BOS id (gguf-py has no cls key)
    w.add_add_bos_token(True)
    if hasattr(w, "add_add_sep_token"):
        w.add_add_sep_token(True)
    w.add_mask_token_id(vocab.index("[MASK]"))
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}

    def put(name, a):
        w.add_tensor(name, a.astype(np.float16 if a.ndim == 2 else np.float32))

    put("token_embd.weight", sd["embeddings.word_embeddings.weight"])
    put("token_types.weight", sd["embeddings.token_type_embeddings.weight"])
    put("position_embd.weight", sd["embeddings.position_embeddings.weight"])
    put("token_embd_norm.weight", sd["embeddings.LayerNorm.weight"])
    put("token_embd_norm.bias", sd["embeddings.LayerNorm.bias"])
    names = {"attention.self.query": "attn_q", "attention.self.key": "attn_k", "attention.self.value": "attn_v",
             "attention.output.dense": "attn_output", "attention.output.LayerNorm": "attn_output_norm",
             "intermediate.dense": "ffn_up", "output.dense": "ffn_down", "output.LayerNorm": "layer_output_norm"}
    for l in range(cfg.num_hidden_layers):
        for hf, gg in names.items():
            for part in ("weight", "bias"):
                put(f"blk.{l}.{gg}.{part}", sd[f"encoder.layer.{l}.{hf}.{part}"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def save_golden(path, arrays):
    with open(path, "wb") as f:
        f.write(b"HNGT" + struct.pack("<II", 1, len(arrays)))
        for name, a in arrays:
            a = np.ascontiguousarray(a)
            dt = 1 if a.dtype == np.int32 else 0
            a = a.astype(np.int32 if dt else np.float32)
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<II", dt, a.ndim))
            f.write(struct.pack(f"<{a.ndim}I", *a.shape))
            f.write(a.tobytes())


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/tiny_bert"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    vocab = vocabulary()
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=128, max_position_embeddings=32, type_vocab_size=2, hidden_act="gelu",
                     layer_norm_eps=1e-12, initializer_range=0.2, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0, pad_token_id=0)
    cfg._attn_implementation = "eager"
    model = BertModel(cfg, add_pooling_layer=False).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            p.copy_(p.half().float())  # exact in F16
    # The saved checkpoint has a pooler, drawn from its own generator so that every other weight (and the golden
    # numbers below) stay what they were before it was added: weight N(0, 0.2^2) (initializer_range), bias
    # 0.1 N(0, 1).
    pooled = BertModel(cfg, add_pooling_layer=True).eval()
    pooled.load_state_dict(model.state_dict(), strict=False)
    g = torch.Generator().manual_seed(SEED + 2)
    with torch.no_grad():
        pw, pb = pooled.pooler.dense.weight, pooled.pooler.dense.bias
        pw.copy_((0.2 * torch.randn(pw.shape, generator=g)).half().float())
        pb.copy_((0.1 * torch.randn(pb.shape, generator=g)).half().float())
    pooled.half().save_pretrained(out, safe_serialization=True)
    cfgj = json.load(open(os.path.join(out, "config.json")))
    write_tokenizer(out, vocab)
    write_gguf(os.path.join(out, "tiny_bert.gguf"), model, cfg, vocab)

    rng = np.random.default_rng(SEED)
    ids = np.zeros((B, T), np.int32)
    for b, n in enumerate(LENS):
        ids[b, 0] = vocab.index("[CLS]")
        ids[b, 1:n - 1] = rng.integers(5, len(vocab), n - 2)
        ids[b, n - 1] = vocab.index("[SEP]")
    lens = np.array(LENS, np.int32)
    mask = (np.arange(T)[None, :] < lens[:, None]).astype(np.int64)
    with torch.no_grad():
        hid = model(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask),
                    token_type_ids=torch.zeros(B, T, dtype=torch.long)).last_hidden_state.numpy()
    valid = mask[:, :, None].astype(bool)
    mean = (hid * valid).sum(1) / lens[:, None]
    mx = np.where(valid, hid, -np.inf).max(1)
    last = hid[np.arange(B), lens - 1]
    norm = mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    # Texts through the saved tokenizer (framed [CLS] ... [SEP], padded batch) and the model, mean-pooled.
    with open(os.path.join(out, "texts.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(TEXTS) + "\n")
    tok = BertTokenizerFast.from_pretrained(out)
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        th = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                   token_type_ids=torch.zeros_like(enc["input_ids"])).last_hidden_state.numpy()
    tm = enc["attention_mask"].numpy()[:, :, None]
    text_mean = (th * tm).sum(1) / tm.sum(1)
    save_golden(os.path.join(out, "golden.bin"), [
        ("input_ids", ids), ("lens", lens), ("hidden", hid), ("pool.mean", mean), ("pool.cls", hid[:, 0]),
        ("pool.max", mx), ("pool.last", last), ("pool.mean_norm", norm), ("text.ids", enc["input_ids"].numpy()),
        ("text.pool.mean", text_mean)])
    write_distilbert(os.path.join(out, "distilbert"), out, vocab, ids, lens, mask)
    print(f"wrote {out}: config {cfgj['hidden_size']}x{cfgj['num_hidden_layers']}, vocab {len(vocab)}")


def write_distilbert(out, tok_dir, vocab, ids, lens, mask):
    """The DistilBERT twin: same sizes and vocabulary, no token types, its own random weights; golden hidden states
    of the same padded batch."""
    import shutil
    from transformers import DistilBertConfig, DistilBertModel
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(SEED + 1)
    cfg = DistilBertConfig(vocab_size=len(vocab), dim=64, n_layers=2, n_heads=4, hidden_dim=128,
                           max_position_embeddings=32, activation="gelu", sinusoidal_pos_embds=False, dropout=0.0,
                           attention_dropout=0.0, initializer_range=0.2, pad_token_id=0)
    cfg._attn_implementation = "eager"
    model = DistilBertModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm.weight" in name or "LayerNorm.weight" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            p.copy_(p.half().float())
    model.half().save_pretrained(out, safe_serialization=True)
    model.float()
    for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_dir, f), os.path.join(out, f))
    with torch.no_grad():
        hid = model(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask)).last_hidden_state
    save_golden(os.path.join(out, "golden.bin"), [("input_ids", ids), ("lens", lens), ("hidden", hid.numpy())])


if __name__ == "__main__":
    main()
