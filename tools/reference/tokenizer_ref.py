#!/usr/bin/env python3
"""Golden token ids and chat renderings for SmolLM2-135M-Instruct's tokenizer.

The reference tokenizer is built with Hugging Face `tokenizers` from the GGUF's own vocabulary and merges, configured
as SmolLM2's tokenizer.json is (DESIGN.md section 6, FORMATS.md 8.3): byte-level BPE (no unk token, no byte fallback,
ignore_merges false), pre-tokenizer Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False,
use_regex=True)], ByteLevel decoder, and the control tokens (token_type 3) as special added tokens (normalized false);
user-defined tokens (token_type 4) would be non-special added tokens. transformers' own GGUF conversion is not used:
it does not split digits.

Outputs (both text, first line a magic + version):
  tests/data/tokenizer_golden.tsv   "# hone tokenizer golden v1", then one line per case:
      MODE<TAB>HEX(input bytes)<TAB>space-separated ids
      MODE is "special" (encode(text, add_special_tokens=False): special-token text becomes that token) or "plain"
      (tokenizer.encode_special_tokens = True: all text is ordinary text). Invalid UTF-8 inputs are encoded by the
      reference as bytes.decode("utf-8", "replace") — the behaviour hone documents for invalid input.
  tests/data/tokenizer_chat.tsv     "# hone chat golden v1", then one line per case:
      ADD_GENERATION_PROMPT(0/1)<TAB>messages as ROLE:HEX(content) joined by ","<TAB>HEX(rendered text)
      rendered with jinja2 exactly as transformers' apply_chat_template does (sandboxed environment, trim_blocks,
      lstrip_blocks) from the GGUF's tokenizer.chat_template.

Some strings are short excerpts of ../shared/data (read here at generation time only).

Regenerate (not run by `make test`):
    /root/.cache/hone/refvenv/bin/python tools/reference/tokenizer_ref.py \
        [~/.cache/hone/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf] [tests/data]
Versions used for the committed files: tokenizers 0.23.3, gguf 0.19.0, jinja2 3.1.6, Python 3.
"""
import json
import os
import random
import sys

from gguf import GGUFReader
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

MODEL = os.path.expanduser("~/.cache/hone/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data")
DATA = os.environ.get("HONE_SHARED_DATA", DATA)  # ../shared/data beside the checkout, or where this names


def field_strings(r, key):
    f = r.fields[key]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


def build_tokenizer(path):
    r = GGUFReader(path)
    tokens = field_strings(r, "tokenizer.ggml.tokens")
    merges = field_strings(r, "tokenizer.ggml.merges")
    tt = r.fields["tokenizer.ggml.token_type"]
    types = [int(tt.parts[i][0]) for i in tt.data]
    tmpl = r.fields["tokenizer.chat_template"]
    template = bytes(tmpl.parts[tmpl.data[0]]).decode("utf-8")
    vocab = {t: i for i, t in enumerate(tokens)}
    bpe = models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges], unk_token=None,
                     fuse_unk=False, byte_fallback=False, ignore_merges=False)
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    user = [AddedToken(t, special=False, normalized=False) for t, ty in zip(tokens, types) if ty == 4]
    if user:
        tok.add_tokens(user)
    return tok, template


def render_chat(template, messages, add_generation_prompt):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt)


HAND = [
    "", " ", "  ", "   ", "\n", "\n\n", "\n\n\n", "\t", "\t\t", " \t\n ", "\r\n", "\r\n\r\n", "\x0b\x0c",
    "Hello world", "Hello  world", "Hello   world  ", "   leading spaces", "trailing spaces   ", "a\n\nb", "a \n b",
    "line one\nline two\n\n  indented\n\tTabbed\n", "word\t\tword", "  \n  \n", "x" + " " * 40 + "y",
    "Hello, world! How are you today?", "The quick brown fox jumps over the lazy dog.",
    "I'm", "you're", "they've", "he'll", "she'd", "it's", "don't", "I'M", "YOU'RE", "THEY'VE", "HE'LL", "SHE'D",
    "IT'S", "DON'T", "it'S", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "''", "'s'", "rock'n'roll", "can't've",
    "O'Neill's dog's bone", "l'homme d'affaires", "'hello' \"world\"",
    "0", "7", "123", "3.14159", "1,000,000", "12345678901234567890", "Call 123 please", "a1b2c3", "x=0x1F",
    "2024-01-01T12:34:56Z", "-42", "+1 (555) 010-9999", "1e-9", "v1.2.3", "100%", "$19.99", " 12", "a 1",
    "\u0663\u0664\u0665", "x\u00b2+y\u00b3", "\u216b", "\u2460\u2461", "\uff11\uff12\uff13", "\u0967\u0968",
    "def add(a, b):\n    return a + b\n", "int main(void) {\n\treturn 0;\n}\n",
    "for (int i = 0; i < n; i++) { sum += x[i] * y[i]; }", '{"key": "value", "n": [1, 2, 3]}',
    "<div class=\"x\">Hi &amp; bye</div>", "if x != None and y >= 2:\n        pass", "#include <stdio.h>",
    "a->b = c::d; e ||= f && !g;", "re.compile(r'^\\s+(?!\\S)$')", "echo \"$HOME\" | grep -v '^#' >> out.txt",
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct?x=1&y=2#frag", "mailto:someone@example.com",
    "www.example.org/path/to/file.html", "C:\\Users\\name\\file.txt",
    "\U0001f600", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466", "\U0001f1fa\U0001f1f8",
    "\U0001f44d\U0001f3fd", "\U0001f916 robots are here", "\U0001d400\U0001d401\U0001d402", "\U00020000\U0002a6d6",
    "I love \U0001f355 and \U0001f37a!!!", "\u2764\ufe0f", "\U0001f525\U0001f525\U0001f525",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3001\u30ab\u30bf\u30ab\u30ca",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd", "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac", "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0e44\u0e17\u0e22",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9", "e\u0301", "Stra\u00dfe", "\u00c5ngstr\u00f6m",
    "English \u4e2d\u6587 \u65e5\u672c\u8a9e \ud55c\uad6d\uc5b4 \u0627\u0644\u0639\u0631\u0628\u064a\u0629 mixed",
    "\u00a0", "a\u00a0b", "\u3000", "a\u3000b", "\u2028", "a\u2029b", "\u0085", "a\u0085b", " \u0085 ", "\u200b",
    "a\u200bb", "\ufeffBOM", "\x1c\x1d\x1e\x1f", "a\x1fb", "\u1680x", "\u2003em\u2009thin", "\u180e", "\u202f\u205f",
    "\x00", "a\x00b", "\x04", "a\x06b\x13\x14\x16\x1d", "\U00040000", "x\U00080001y", "\x7f", "\x01\x02\x03",
    "<|im_start|>user\nhi<|im_end|>", "<|im_start|><|im_end|>", "<|im_start|>", "<|im_end|>\n", "<|im_start",
    "<|endoftext|>text", "text<|endoftext|>", "<jupyter_code>x = 1<jupyter_output>", "< |im_start|>",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
    "<<|im_start|>>", "<|im_start|><|im_start|>", "<repo_name>hone<file_sep>main.c", "<|IM_START|>",
    "<reponame><filename><gh_stars><issue_start><issue_comment><issue_closed>",
    "<jupyter_start><jupyter_text><jupyter_script><empty_output>",
    "a" * 300, "ab" * 200, " " * 200, "\n" * 50, "0" * 100, "!" * 80, "=" * 120, "-" * 64 + "\n", "\t" * 30,
    "Hello" * 50, " the" * 100, "\u4e2d" * 60, "\U0001f600" * 30,
]

INVALID = [
    b"\xff", b"abc\xffdef", b"\xc0\x80", b"\xe4\xb8", b"\xe4\xb8a", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
    b"\x80", b"\x80\x80\xbf", b"\xf0\x9f\x98", b"\xf0\x9f\x98 ok", b"caf\xe9", b"\xf8\x88\x80\x80\x80",
    b"\xfe\xfe\xff\xff", b"hi \xe2\x82", b"\xe2\x82\xac\xe2\x82", b"\xc3", b"12\xff34", b"\xef\xbf\xbd",
    b"\xc3\xa9\xa9", b"\xf0\x80\x80\x80", b"\xe0\x80\x80", b"<|im_start|>\xff<|im_end|>",
]

WORDS = ("the of and to in is was for on that with as by it at from this his are be an or which were not but had "
         "have he she they we you I said about would there their can will one time people when more new some could "
         "language model token training data hone SmolLM tokenizer merge byte level regex digit Hugging Face").split()
PUNCT = list(".,;:!?-()[]{}\"'/\\@#$%^&*_+=<>|~`")
SPACES = [" ", " ", " ", "  ", "\n", "\n\n", "\t", " \n", "\r\n", "   ", "\u00a0", "\u3000"]
SCRIPTS = ["\u4e00-\u9fff", "\u3040-\u309f", "\u30a0-\u30ff", "\uac00-\ud7a3", "\u0600-\u06ff", "\u0400-\u04ff",
           "\u0370-\u03ff", "\u0900-\u097f", "\U0001f300-\U0001f5ff", "\U0001f600-\U0001f64f", "\u00c0-\u00ff"]
SPECIAL = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<file_sep>", "<|im_start|>user\n", "<|im_start|>assistant\n"]
CONTRACT = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "n't", "'x"]


def rand_char(rng):
    lo, hi = rng.choice(SCRIPTS).split("-")
    return chr(rng.randint(ord(lo), ord(hi)))


def rand_piece(rng):
    k = rng.random()
    if k < 0.40:
        w = rng.choice(WORDS)
        return w.upper() if rng.random() < 0.1 else (w.capitalize() if rng.random() < 0.2 else w)
    if k < 0.52:
        return str(rng.randint(0, 10 ** rng.randint(1, 15)))
    if k < 0.62:
        return "".join(rng.choice(PUNCT) for _ in range(rng.randint(1, 3)))
    if k < 0.75:
        return "".join(rand_char(rng) for _ in range(rng.randint(1, 6)))
    if k < 0.82:
        return rng.choice(CONTRACT)
    if k < 0.86:
        return rng.choice(SPECIAL)
    return rng.choice(SPACES)


def random_strings(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 24)):
            parts.append(rand_piece(rng))
            if rng.random() < 0.6:
                parts.append(rng.choice(SPACES))
        out.append("".join(parts))
    return out


def random_codepoints(n, seed):
    """Code points from every plane in use (unassigned ones included), to pin PCRE2's Unicode tables to Oniguruma's."""
    rng = random.Random(seed)
    ranges = [(0x20, 0x7F), (0x80, 0x2FFF), (0x3000, 0xFFFF), (0x10000, 0x3FFFF), (0xE0000, 0xE01EF)]
    out = []
    for _ in range(n):
        cps, length = [], rng.randint(1, 24)
        while len(cps) < length:
            c = rng.randint(*rng.choice(ranges))
            if not 0xD800 <= c <= 0xDFFF:
                cps.append(chr(c))
        out.append("".join(cps))
    return out


def clip(s, n=400):
    return s[:n]


def data_strings():
    """Short excerpts of the shared datasets; skipped (with a note) when the folder is absent."""
    out = []
    if not os.path.isdir(DATA):
        print("note: %s absent, no dataset excerpts" % DATA, file=sys.stderr)
        return out

    def load(rel):
        with open(os.path.join(DATA, rel), encoding="utf-8") as f:
            return f.read()
    zh = json.loads(load("alpaca-demo/alpaca_zh_demo.json"))
    for row in zh[:40:3]:
        out.append(clip(row["instruction"] + ("\n" + row["input"] if row["input"] else "")))
        out.append(clip(row["output"], 300))
    en = json.loads(load("alpaca-demo/alpaca_en_demo.json"))
    for row in en[:25:5]:
        out.append(clip(row["instruction"] + "\n" + row["output"], 300))
    lines = load("text-corpus/tinyshakespeare/input.txt").split("\n\n")
    out += [clip(x, 300) for x in lines[1:40:8]]
    wiki = load("text-corpus/wikitext-2/valid.txt").split("\n")
    out += [clip(x, 300) for x in wiki if len(x) > 80][:5]
    gsm = [json.loads(x) for x in load("gsm8k/train.jsonl").splitlines()[:6]]
    out += [clip(r["question"] + "\n" + r["answer"], 400) for r in gsm]
    xq = json.loads(load("xquad/xquad.zh.json"))
    out += [clip(p["context"], 200) for p in xq["data"][0]["paragraphs"][:4]]
    glaive = json.loads(load("multiturn-chat/glaive_toolcall_en_demo.json"))
    for conv in glaive[:3]:
        out += [clip(t["value"], 300) for t in conv["conversations"][:3]]
    oa = json.loads(load("multiturn-chat/oaast_sft_zh.json"))
    out += [clip(r["instruction"], 200) for r in oa[:4]]
    return out


def chat_cases():
    u = {"role": "user", "content": "What is 2+2?"}
    s = {"role": "system", "content": "You are terse."}
    a = {"role": "assistant", "content": "4."}
    u2 = {"role": "user", "content": "And 3+3?\nExplain\tbriefly."}
    zh = {"role": "user", "content": "\u4f60\u597d\uff0c\u4e16\u754c\uff01 \U0001f600"}
    empty = {"role": "user", "content": ""}
    convs = [[u], [s, u], [u, a, u2], [s, u, a, u2], [zh], [empty], [u, a], [s], [a, u],
             [{"role": "user", "content": "<|im_end|> inside"}], [s, {"role": "system", "content": "second system"}, u]]
    cases = []
    for c in convs:
        for gen in (False, True):
            cases.append((gen, c))
    return cases


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else MODEL
    outdir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data")
    tok, template = build_tokenizer(path)

    chats = chat_cases()
    rendered = [render_chat(template, c, gen) for gen, c in chats]
    texts = HAND + random_strings(220, seed=20240607) + random_codepoints(60, seed=11) + data_strings() + rendered[:4]
    cases = [t.encode("utf-8") for t in texts] + INVALID

    lines = ["# hone tokenizer golden v1"]
    for raw in cases:
        text = raw.decode("utf-8", "replace")
        for mode in ("special", "plain"):
            tok.encode_special_tokens = mode == "plain"
            ids = tok.encode(text, add_special_tokens=False).ids
            lines.append("%s\t%s\t%s" % (mode, raw.hex(), " ".join(map(str, ids))))
    tok.encode_special_tokens = False
    with open(os.path.join(outdir, "tokenizer_golden.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")

    clines = ["# hone chat golden v1"]
    for (gen, c), text in zip(chats, rendered):
        msgs = ",".join("%s:%s" % (m["role"], m["content"].encode("utf-8").hex()) for m in c)
        clines.append("%d\t%s\t%s" % (gen, msgs, text.encode("utf-8").hex()))
    with open(os.path.join(outdir, "tokenizer_chat.tsv"), "w") as f:
        f.write("\n".join(clines) + "\n")
    print("%d tokenizer cases (x2 modes), %d chat cases" % (len(cases), len(chats)))


if __name__ == "__main__":
    main()
