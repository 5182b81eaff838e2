#!/usr/bin/env python3
"""The Qwen2 family's tokenizer beside tokenizers_hf_ref.py's: tests/data/tok_qwen2 and tests/data/tok_qwen2_gguf.

Trained here with `tokenizers` on the same excerpts of ../shared/data as tokenizers_hf_ref.py, and configured as
Qwen2's published tokenizer.json is: normalizer NFC, pre_tokenizer Sequence[Split(Regex <Qwen2's pattern: Llama 3's
with single digits>, Isolated), ByteLevel(use_regex=false)], BPE (merges applied, no ignore_merges), no
post-processor framing (Qwen2 adds no BOS), ByteLevel decoder; special tokens <|endoftext|>, <|im_start|>,
<|im_end|>. 1500 tokens.
    tok_qwen2/       tokenizer.json, tokenizer_config.json, golden.tsv, decode.tsv, pairs.tsv (formats of
                     tokenizers_hf_ref.py) on the hard-string corpus tests/data/tok_corpus.tsv
    tok_qwen2_gguf/  golden.tsv of the same vocabulary without its NFC normaliser — what a GGUF carries (GGUF has no
                     normaliser key; llama.cpp's qwen2 pre-tokenizer splits the text as it is) — and tokenizer.gguf,
                     the vocabulary as llama.cpp's converter writes it (tokenizer.ggml.pre "qwen2")
Regenerate (the corpus is tokenizers_hf_ref.py's, case i of tests/data/tok_corpus.tsv):
    /root/.cache/hone/refvenv/bin/python tools/reference/tokenizer_qwen2_ref.py [tests/data]
"""
import json
import os
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizers_hf_ref as ref  # noqa: E402

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def qwen2(text):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=1500, special_tokens=SPECIAL,
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                      show_progress=False))
    return tok, {"tokenizer_class": "Qwen2Tokenizer", "bos_token": None, "eos_token": "<|im_end|>",
                 "pad_token": "<|endoftext|>", "model_max_length": 32768}


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ref.HERE, "..", "..", "tests", "data")
    cases = ref.corpus_strings(os.path.join(outdir, "tokenizer_golden.tsv"))  # tok_corpus.tsv's cases, in order
    tok, cfg = qwen2(ref.training_text())
    d = ref.save(tok, outdir, "tok_qwen2", cfg)
    ref.write_golden(tok, cases, os.path.join(d, "golden.tsv"))
    ref.write_decode_golden(tok, cases, os.path.join(d, "decode.tsv"))
    ref.write_pair_golden(tok, cases, os.path.join(d, "pairs.tsv"))

    plain = Tokenizer.from_str(tok.to_str())
    plain.normalizer = None
    g = os.path.join(outdir, "tok_qwen2_gguf")
    os.makedirs(g, exist_ok=True)
    ref.write_golden(plain, cases, os.path.join(g, "golden.tsv"))
    plain.save(os.path.join(g, "tokenizer.json"))
    with open(os.path.join(g, "tokenizer_config.json"), "w") as f:  # write_gguf reads the special tokens here
        json.dump(dict(cfg, bos_token="<|endoftext|>"), f, indent=2)
    ref.write_gguf(g, "gpt2", "qwen2")
    os.remove(os.path.join(g, "tokenizer.json"))
    os.remove(os.path.join(g, "tokenizer_config.json"))
    differ = sum(a != b for a, b in zip(open(os.path.join(d, "golden.tsv")), open(os.path.join(g, "golden.tsv"))))
    print("tok_qwen2: %d cases; %d golden lines differ without NFC" % (len(cases), differ))


if __name__ == "__main__":
    main()
