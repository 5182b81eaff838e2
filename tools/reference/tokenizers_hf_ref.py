#!/usr/bin/env python3
"""Small tokenizer.json tokenizers of each family, and Hugging Face `tokenizers`' ids for the hard-string corpus.

Each tokenizer is trained here with `tokenizers` on excerpts of ../shared/data (MANIFEST.md there; English prose,
Shakespeare, Chinese instructions) and configured exactly as its family's published tokenizer.json is:

  tok_gpt2     GPT-2: BPE (no unk), pre_tokenizer ByteLevel(add_prefix_space=false, use_regex=true), ByteLevel
               post-processor and decoder; special "<|endoftext|>". 2000 tokens.
  tok_gpt2_files  the same vocabulary as GPT-2's older vocab.json + merges.txt (no tokenizer.json); transformers'
               GPT2Tokenizer must encode it identically (checked here).
  tok_llama3   Llama 3 / Qwen2 style: pre_tokenizer Sequence[Split(Regex <Llama 3's pattern>, Isolated),
               ByteLevel(use_regex=false)], BPE with ignore_merges=true, TemplateProcessing "<|begin_of_text|> $A".
  tok_llama2   Llama 2 / TinyLlama (SentencePiece converted): normalizer Sequence[Prepend("▁"), Replace(" ", "▁")],
               no pre-tokenizer, BPE with byte_fallback=true, fuse_unk=true, unk "<unk>", the 256 "<0xXX>" tokens at
               ids 3-258, TemplateProcessing "<s> $A", decoder Sequence[Replace, ByteFallback, Fuse, Strip].
  tok_llama2_meta  the same vocabulary as newer transformers write it: no normalizer, pre_tokenizer
               Metaspace(prepend_scheme="first", split=false).
  tok_bert     BERT uncased: normalizer BertNormalizer(clean_text, handle_chinese_chars, strip_accents=None,
               lowercase), BertPreTokenizer, WordPiece (unk "[UNK]", "##", 100 chars), TemplateProcessing
               "[CLS] $A [SEP]", decoder WordPiece; also vocab.txt (the same vocabulary, one entry a line), which
               transformers' BertTokenizerFast must encode identically (checked here). 3000 tokens.

The inputs go to tests/data/tok_corpus.tsv: "# hone tokenizer corpus v1", then one HEX(input bytes) a line (case i
is line i after the header). Each directory gets tokenizer.json, tokenizer_config.json, golden.tsv, decode.tsv (Hugging Face's decode of the
framed ids of the first 150 cases, skip_special_tokens=False: CASE<TAB>HEX(text)), pairs.tsv (sentence pairs, see
write_pair_golden) and (but tok_llama2_meta)
tokenizer.gguf, the
same tokenizer as llama.cpp's converter writes it, vocab only (gguf package: tokenizer.ggml.model gpt2 with its pre
name and merges, llama with scores and no merges, bert in llama.cpp's phantom-space spelling):
    "# hone hf tokenizer golden v1", then MODE<TAB>CASE<TAB>space-separated ids, MODE one of
    special (encode(text, add_special_tokens=False)), plain (encode_special_tokens=True: special-token text is plain
    text) and framed (add_special_tokens=True: the post-processor's framing); every input in mode special, the first
    60 and those with "<" or "[" in all three (keeping each file under 300 KB).
The inputs are the hard-string corpus of tools/reference/tokenizer_ref.py, read back from tests/data/
tokenizer_golden.tsv (invalid UTF-8 inputs encoded as bytes.decode("utf-8", "replace"), as there), plus a few
strings aimed at BERT's normaliser and each family's special tokens.

tests/data/tok_bert_classes.tsv: what BERT's normaliser and pre-tokenizer do with every code point (see
bert_classes), which io/wordpiece.c must match in full (its table of categories `tokenizers` sees differently).

With a MiniLM directory (all-MiniLM-L6-v2, `hone pull all-minilm-l6-v2`, found at
$HONE_HOME/models/all-minilm-l6-v2/all-MiniLM-L6-v2 or given as the second argument) it also writes
tests/data/tok_minilm_golden.tsv (ids only; MiniLM's vocabulary is not copied into the repository).

Check hone's writer (hn_tokenizer_to_hf_dir): the test keeps what it wrote under HONE_TOK_KEEP, then this script
loads each directory with `tokenizers` and transformers' AutoTokenizer and compares ids (and decoding) with the
committed tokenizers on every case:
    mkdir -p /tmp/tokkeep && HONE_TOK_KEEP=/tmp/tokkeep build/test_tokenizer_hf
    /root/.cache/hone/refvenv/bin/python tools/reference/tokenizers_hf_ref.py --check-export /tmp/tokkeep

Regenerate (not run by `make test`):
    /root/.cache/hone/refvenv/bin/python tools/reference/tokenizers_hf_ref.py [tests/data] [MINILM_DIR]
Needs ../shared/data beside the checkout (or HONE_SHARED_DATA); it stops with a message where that is absent.
WordPiece training is not deterministic from run to run (ties between equally frequent pairs), so a rerun may give
another tok_bert vocabulary; its golden.tsv and vocab.txt always come from the same run.
Versions used for the committed files: tokenizers 0.23.3, transformers 5.24.0, gguf 0.19.0, Python 3.
"""
import json
import os
import sys

from tokenizers import (AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors,
                        trainers, Regex)

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("HONE_SHARED_DATA", os.path.join(HERE, "..", "..", "..", "shared", "data"))
HONE_HOME = os.environ.get("HONE_HOME", os.path.expanduser("~/.cache/hone"))
MINILM = os.path.join(HONE_HOME, "models", "all-minilm-l6-v2", "all-MiniLM-L6-v2")

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

EXTRA = [
    "[CLS] hello [SEP]", "[MASK]", "a [MASK] b", "[cls]", "[UNK][PAD]", "<s>hello</s>", "<s> hello", " <s>", "<unk>",
    "<|endoftext|><|endoftext|>", "<|begin_of_text|>Hi", "HeLLo WoRLD", "ÀÉÎÕÜ àéîõü", "Ǆ ǅ ǆ", "İstanbul",
    "ﬁ ﬂ ﬃ", "ｆｕｌｌｗｉｄｔｈ", "Ⅻ ①", "naïve coöperate façade", "a\u0300\u0301\u0302b", "\u00ad soft\u00adhyphen",
    "tab\there", "x\x00y", "\ufffd", "中文字符和English混合", "日本語のテキスト", "한국어", "𠀀𪛖 𫜴", "\u3400\u4dbf",
    "don't stop-believing!!", "e.g., i.e.; etc...", "$100 + 20% = ?", "“quoted” ‘single’ «guillemets»", "—–-",
    "supercalifragilisticexpialidocious" * 4, "x" * 120, "ab" * 60 + " end", "wörd" * 30,
    "unbelievably unrecognizable antidisestablishmentarianism",
]


def corpus_strings(tsv):
    """The inputs of tokenizer_golden.tsv (bytes), in order, once each."""
    seen, out = set(), []
    with open(tsv) as f:
        for line in f:
            if line.startswith("#"):
                continue
            raw = bytes.fromhex(line.rstrip("\n").split("\t")[1])
            if raw not in seen:
                seen.add(raw)
                out.append(raw)
    for s in EXTRA:
        if s.encode() not in seen:
            seen.add(s.encode())
            out.append(s.encode())
    return out


def training_text():
    if not os.path.isdir(DATA):
        sys.exit("error: %s is absent; the training text comes from there (set HONE_SHARED_DATA)" % DATA)

    def load(rel):
        with open(os.path.join(DATA, rel), encoding="utf-8") as f:
            return f.read()
    lines = load("text-corpus/wikitext-2/valid.txt").split("\n")[:1500]
    lines += load("text-corpus/tinyshakespeare/input.txt").split("\n")[:3000]
    zh = json.loads(load("alpaca-demo/alpaca_zh_demo.json"))
    lines += [r["instruction"] + " " + r["output"] for r in zh[:150]]
    en = json.loads(load("alpaca-demo/alpaca_en_demo.json"))
    lines += [r["instruction"] + "\n" + r["output"] for r in en[:300]]
    return [x for x in lines if x.strip()]


def write_decode_golden(tok, cases, path):
    """decode(encode(text, add_special_tokens=True).ids, skip_special_tokens=False) for the first 150 cases:
    CASE<TAB>HEX(decoded text)."""
    lines = ["# hone hf decode golden v1"]
    for i, raw in enumerate(cases[:150]):
        ids = tok.encode(raw.decode("utf-8", "replace"), add_special_tokens=True).ids
        lines.append("%d\t%s" % (i, tok.decode(ids, skip_special_tokens=False).encode("utf-8").hex()))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_pair_golden(tok, cases, path):
    """Pairs (case i, case i + 1) for the first 80 cases: MODE<TAB>I<TAB>ids<TAB>type ids, MODE special (no framing)
    or framed (the post-processor's pair template)."""
    lines = ["# hone hf pair golden v1"]
    for i in range(80):
        a, b = cases[i].decode("utf-8", "replace"), cases[i + 1].decode("utf-8", "replace")
        for mode in ("special", "framed"):
            e = tok.encode(a, b, add_special_tokens=mode == "framed")
            lines.append("%s\t%d\t%s\t%s" % (mode, i, " ".join(map(str, e.ids)), " ".join(map(str, e.type_ids))))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def decode_goldens(outdir, cases, minilm):
    """decode.tsv beside each committed tokenizer.json (and tok_minilm_decode.tsv), from the files as written."""
    for name in ("tok_gpt2", "tok_llama3", "tok_llama2", "tok_llama2_meta", "tok_bert"):
        tok = Tokenizer.from_file(os.path.join(outdir, name, "tokenizer.json"))
        write_decode_golden(tok, cases, os.path.join(outdir, name, "decode.tsv"))
        write_pair_golden(tok, cases, os.path.join(outdir, name, "pairs.tsv"))
    if os.path.isdir(minilm):
        tok = Tokenizer.from_file(os.path.join(minilm, "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()
        write_decode_golden(tok, cases, os.path.join(outdir, "tok_minilm_decode.tsv"))
        write_pair_golden(tok, cases, os.path.join(outdir, "tok_minilm_pairs.tsv"))


def write_golden(tok, cases, path):
    """Every case in mode special; plain and framed for the first 60 and for those with "<" or "[" (specials)."""
    lines = ["# hone hf tokenizer golden v1"]
    for i, raw in enumerate(cases):
        text = raw.decode("utf-8", "replace")
        more = i < 60 or b"<" in raw or b"[" in raw
        for mode in ("special", "plain", "framed") if more else ("special",):
            tok.encode_special_tokens = mode == "plain"
            ids = tok.encode(text, add_special_tokens=mode == "framed").ids
            lines.append("%s\t%d\t%s" % (mode, i, " ".join(map(str, ids))))
    tok.encode_special_tokens = False
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def save(tok, outdir, name, config):
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return d


def gpt2(text):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=2000, special_tokens=["<|endoftext|>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                      show_progress=False))
    return tok, {"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                 "unk_token": "<|endoftext|>", "add_prefix_space": False, "model_max_length": 1024}


def llama3(text):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=1500, special_tokens=[
        "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                       pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                                       special_tokens=[("<|begin_of_text|>", bos)])
    return tok, {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
                 "eos_token": "<|eot_id|>", "model_max_length": 8192}


def llama2(text):
    """A SentencePiece-converted BPE: <unk> <s> </s>, then the 256 byte tokens, then the trained pieces."""
    t = Tokenizer(models.BPE())
    t.normalizer = normalizers.Replace(" ", "\u2581")
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    t.train_from_iterator(text, trainers.BpeTrainer(vocab_size=2000, limit_alphabet=300, show_progress=False))
    trained = json.loads(t.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for piece, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in trained["merges"]]

    def build(metaspace):
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
        if metaspace:
            tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
        else:
            tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
        # transformers' LlamaConverter writes this decoder either way
        tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s>:1 $B:1",
                                                           special_tokens=[("<s>", 1)])
        return tok
    config = {"tokenizer_class": "LlamaTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
              "add_bos_token": True, "add_eos_token": False, "legacy": False, "model_max_length": 2048}
    return build(False), build(True), config


def bert(text):
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                                lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.train_from_iterator(text, trainers.WordPieceTrainer(vocab_size=3000, limit_alphabet=400,
                                                            special_tokens=specials, show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tok, {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "unk_token": "[UNK]", "sep_token": "[SEP]",
                 "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]", "tokenize_chinese_chars": True,
                 "strip_accents": None, "model_max_length": 512}


def check_export(keep):
    """hone's tokenizer.json files, as Hugging Face loads them, against the committed ones."""
    from transformers import AutoTokenizer
    data = os.path.join(HERE, "..", "..", "tests", "data")
    with open(os.path.join(data, "tok_corpus.tsv")) as f:
        cases = [bytes.fromhex(x.strip()).decode("utf-8", "replace") for x in f if not x.startswith("#")]
    bad_dirs = 0
    for name in sorted(os.listdir(keep)):
        ref = MINILM if name == "minilm" else os.path.join(data, name)
        ours, theirs = Tokenizer.from_file(os.path.join(keep, name, "tokenizer.json")), \
            Tokenizer.from_file(os.path.join(ref, "tokenizer.json"))
        theirs.no_truncation()
        theirs.no_padding()
        auto = AutoTokenizer.from_pretrained(os.path.join(keep, name))
        bad = 0
        for c in cases:
            for framed in (False, True):
                want = theirs.encode(c, add_special_tokens=framed).ids
                bad += ours.encode(c, add_special_tokens=framed).ids != want
                bad += auto(c, add_special_tokens=framed)["input_ids"] != want
            bad += ours.decode(want) != theirs.decode(want)
        for i in range(80):  # pairs: ids and type ids
            e, w = ours.encode(cases[i], cases[i + 1]), theirs.encode(cases[i], cases[i + 1])
            bad += e.ids != w.ids or e.type_ids != w.type_ids
        print("%s: %d differences over %d cases (tokenizers, transformers, decode)" % (name, bad, len(cases)))
        bad_dirs += bad > 0
    sys.exit(1 if bad_dirs else 0)


def bert_classes(path):
    """What BertNormalizer + BertPreTokenizer do to each code point c in "a" c "b": R removed (control, mark),
    W whitespace (splits), S split off on its own (punctuation, CJK), K kept in the word. Run-length lines
    START<TAB>END<TAB>CLASS (hex); surrogates, which UTF-8 cannot carry, are K."""
    n = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    p = pre_tokenizers.BertPreTokenizer()

    def cls(c):
        pieces = [x for x, _ in p.pre_tokenize_str(n.normalize_str("a" + chr(c) + "b"))]
        if pieces == ["ab"]:
            return "R"
        if pieces == ["a", "b"]:
            return "W"
        return "S" if len(pieces) == 3 and pieces[0] == "a" and pieces[2] == "b" else "K"
    runs = []
    for c in range(0x110000):
        k = "K" if 0xD800 <= c <= 0xDFFF else cls(c)
        if runs and runs[-1][2] == k:
            runs[-1][1] = c
        else:
            runs.append([c, c, k])
    with open(path, "w") as f:
        f.write("# hone bert classes v1\n" + "".join("%x\t%x\t%s\n" % tuple(r) for r in runs))


def write_gguf(d, model, pre):
    """d/tokenizer.gguf: the same tokenizer as llama.cpp's converter writes it (vocab only), with the gguf package."""
    import gguf
    j = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
    cfg = json.load(open(os.path.join(d, "tokenizer_config.json")))
    vocab = dict(j["model"]["vocab"])
    special = {}
    for a in j["added_tokens"]:
        vocab[a["content"]] = a["id"]
        special[a["id"]] = a["special"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    unk = j["model"].get("unk_token")
    types = []
    for i, t in enumerate(tokens):
        if model == "llama" and t == unk:
            types.append(gguf.TokenType.UNKNOWN)
        elif i in special:
            types.append(gguf.TokenType.CONTROL if special[i] else gguf.TokenType.USER_DEFINED)
        elif model == "llama" and len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            types.append(gguf.TokenType.BYTE)
        else:
            types.append(gguf.TokenType.NORMAL)
    if model == "bert":  # llama.cpp's phantom-space spelling
        tokens = [t if ty == gguf.TokenType.CONTROL else t[2:] if t.startswith("##") else "\u2581" + t
                  for t, ty in zip(tokens, types)]
    w = gguf.GGUFWriter(os.path.join(d, "tokenizer.gguf"), "llama")
    w.add_tokenizer_model(model)
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    ids = {t: i for i, t in enumerate(tokens)}
    merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"].get("merges", [])]
    if model == "gpt2":
        w.add_token_merges(merges)
        w.add_bos_token_id(ids[cfg["bos_token"]])
        w.add_eos_token_id(ids[cfg["eos_token"]])
        w.add_add_bos_token(cfg["bos_token"] == "<|begin_of_text|>")
    elif model == "llama":
        # SentencePiece scores, no merges (as llama.cpp converts Llama 2): a merged token scores minus the rank of the
        # merge that makes it, so that llama.cpp's best-score-first merging is the BPE's.
        scores = [0.0] * len(tokens)
        for r, m in enumerate(merges):
            t = m.replace(" ", "", 1)
            if scores[ids[t]] == 0.0:
                scores[ids[t]] = -float(r + 1)
        w.add_token_scores(scores)
        w.add_unk_token_id(ids["<unk>"])
        w.add_bos_token_id(ids["<s>"])
        w.add_eos_token_id(ids["</s>"])
        w.add_add_bos_token(True)
        w.add_add_eos_token(False)
        w.add_add_space_prefix(True)
    else:
        w.add_bos_token_id(ids["[CLS]"])
        w.add_eos_token_id(ids["[SEP]"])
        w.add_sep_token_id(ids["[SEP]"])
        w.add_pad_token_id(ids["[PAD]"])
        w.add_unk_token_id(ids["[UNK]"])
        w.add_mask_token_id(ids["[MASK]"])
        w.add_add_bos_token(True)
        w.add_add_eos_token(True)
        w.add_bool("tokenizer.ggml.normalizer.lowercase", True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--check-export":
        return check_export(sys.argv[2])
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "tests", "data")
    minilm = sys.argv[2] if len(sys.argv) > 2 else MINILM
    cases = corpus_strings(os.path.join(outdir, "tokenizer_golden.tsv"))
    text = training_text()
    with open(os.path.join(outdir, "tok_corpus.tsv"), "w") as f:
        f.write("# hone tokenizer corpus v1\n" + "".join(raw.hex() + "\n" for raw in cases))

    tok, cfg = gpt2(text)
    write_golden(tok, cases, os.path.join(save(tok, outdir, "tok_gpt2", cfg), "golden.tsv"))
    # GPT-2's older files: vocab.json + merges.txt of the same vocabulary, which transformers' GPT2Tokenizer must
    # encode as the tokenizer.json does (checked here).
    gd = os.path.join(outdir, "tok_gpt2_files")
    os.makedirs(gd, exist_ok=True)
    model = json.loads(tok.to_str())["model"]
    with open(os.path.join(gd, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(model["vocab"], f, ensure_ascii=False)
    with open(os.path.join(gd, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join((m if isinstance(m, str) else " ".join(m)) + "\n" for m in model["merges"]))
    with open(os.path.join(gd, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                   "unk_token": "<|endoftext|>", "add_prefix_space": False}, f, indent=2)
    from transformers import GPT2Tokenizer
    gt = GPT2Tokenizer.from_pretrained(gd)
    for raw in cases:
        text_ = raw.decode("utf-8", "replace")
        assert gt(text_, add_special_tokens=False)["input_ids"] == tok.encode(text_, add_special_tokens=False).ids, raw
    tok, cfg = llama3(text)
    write_golden(tok, cases, os.path.join(save(tok, outdir, "tok_llama3", cfg), "golden.tsv"))
    tok, meta, cfg = llama2(text)
    write_golden(tok, cases, os.path.join(save(tok, outdir, "tok_llama2", cfg), "golden.tsv"))
    write_golden(meta, cases, os.path.join(save(meta, outdir, "tok_llama2_meta", cfg), "golden.tsv"))
    tok, cfg = bert(text)
    d = save(tok, outdir, "tok_bert", cfg)
    write_golden(tok, cases, os.path.join(d, "golden.tsv"))

    # vocab.txt alone: the same vocabulary, which transformers' BertTokenizerFast must encode the same way.
    vd = os.path.join(outdir, "tok_bert_vocab")
    os.makedirs(vd, exist_ok=True)
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    with open(os.path.join(vd, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(p + "\n" for p, _ in vocab))
    from transformers import BertTokenizer
    bt = BertTokenizer.from_pretrained(vd)  # the tokenizers-backed BertTokenizer of transformers 5
    for raw in cases:
        text_ = raw.decode("utf-8", "replace")
        a = bt(text_, add_special_tokens=True)["input_ids"]
        b = tok.encode(text_, add_special_tokens=True).ids
        assert a == b, (raw, a, b)

    decode_goldens(outdir, cases, minilm)
    write_gguf(os.path.join(outdir, "tok_gpt2"), "gpt2", "gpt2")
    write_gguf(os.path.join(outdir, "tok_llama3"), "gpt2", "llama-bpe")
    write_gguf(os.path.join(outdir, "tok_llama2"), "llama", "default")
    write_gguf(os.path.join(outdir, "tok_bert"), "bert", "default")

    bert_classes(os.path.join(outdir, "tok_bert_classes.tsv"))

    if os.path.isdir(minilm):
        mt = Tokenizer.from_file(os.path.join(minilm, "tokenizer.json"))
        mt.no_truncation()
        mt.no_padding()
        write_golden(mt, cases, os.path.join(outdir, "tok_minilm_golden.tsv"))
    else:
        print("note: %s absent, no MiniLM goldens" % minilm, file=sys.stderr)
    for name in ("tok_gpt2", "tok_llama3", "tok_llama2", "tok_llama2_meta", "tok_bert"):
        size = os.path.getsize(os.path.join(outdir, name, "tokenizer.json"))
        print("%s: tokenizer.json %d bytes" % (name, size))
    print("%d cases" % len(cases))


if __name__ == "__main__":
    main()
