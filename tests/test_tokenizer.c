// tests/test_tokenizer.c — SmolLM2's tokenizer against Hugging Face `tokenizers` (tests/data/tokenizer_golden.tsv,
// made by tools/reference/tokenizer_ref.py), round trips, special tokens, invalid UTF-8, and broken vocabularies in
// tiny GGUF files written here. The golden part skips (77) when the model has not been pulled; the tiny-GGUF part
// always runs.
#include "io/gguf.h"
#include "io/tokenizer.h"
#include "model/registry.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---- helpers ----

static size_t unhex(const char *h, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        sscanf(h + i, "%2x", &v);
        out[k++] = (char)v;
    }
    return k;
}

static void print_escaped(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n && i < 300; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f) fprintf(f, "\\x%02x", c);
        else fputc(c, f);
    }
    fputs(n > 300 ? "\"..." : "\"", f);
}

static void print_ids(FILE *f, const char *label, const int32_t *ids, int64_t n) {
    fprintf(f, "  %s (%lld):", label, (long long)n);
    for (int64_t i = 0; i < n && i < 80; i++) fprintf(f, " %d", ids[i]);
    fputs(n > 80 ? " ...\n" : "\n", f);
}

static bool same_ids(const int32_t *a, int64_t na, const int32_t *b, int64_t nb) {
    return na == nb && (na == 0 || !memcmp(a, b, (size_t)na * sizeof *a));
}

// A strict UTF-8 check written independently of io/bpe.c.
static bool valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return false;
        uint32_t cp = len == 1 ? c : c & (0x7F >> len);
        for (unsigned k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

// GPT-2's byte alphabet (the public mapping), to find which bytes a vocabulary lacks.
static uint32_t byte_char(int b) {
    static uint32_t map[256];
    if (!map['!']) {
        int n = 0;
        for (int i = 0; i < 256; i++) {
            bool printable = (i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE;
            map[i] = printable ? (uint32_t)i : 256u + (uint32_t)n++;
        }
    }
    return map[b];
}

static void byte_piece(int b, char *out) {
    uint32_t c = byte_char(b);
    if (c < 0x80) out[0] = (char)c, out[1] = 0;
    else out[0] = (char)(0xC0 | c >> 6), out[1] = (char)(0x80 | (c & 0x3F)), out[2] = 0;
}

// ---- the real model ----

static int golden(const hn_tokenizer *tk) {
    FILE *f = fopen("tests/data/tokenizer_golden.tsv", "r");
    CHECK(f != NULL, "tests/data/tokenizer_golden.tsv is missing (run from the source root)");
    if (!f) return 0;
    bool missing[256];
    for (int b = 0; b < 256; b++) {
        char p[4];
        byte_piece(b, p);
        missing[b] = hn_tokenizer_find(tk, p) < 0;
    }
    size_t cap = 1 << 20;
    char *line = malloc(cap), *text = malloc(cap);
    int32_t *want = malloc(cap * sizeof *want);
    int cases = 0, mismatches = 0, round_trips = 0, round_trip_fail = 0;
    CHECK(fgets(line, (int)cap, f) && !strcmp(line, "# hone tokenizer golden v1\n"), "golden file header: %s", line);
    while (fgets(line, (int)cap, f)) {
        char *mode = line, *hex = strchr(line, '\t'), *idstr = hex ? strchr(hex + 1, '\t') : NULL;
        CHECK(hex && idstr, "malformed golden line: %.60s", line);
        if (!hex || !idstr) break;
        *hex++ = 0;
        *idstr++ = 0;
        size_t n = unhex(hex, (size_t)(idstr - 1 - hex), text);
        int64_t nwant = 0;
        for (char *p = idstr, *end; (want[nwant] = (int32_t)strtol(p, &end, 10)), end != p; p = end) nwant++;
        int flags = !strcmp(mode, "special") ? HN_TOK_SPECIAL : 0;
        int32_t *ids;
        int64_t nids;
        hn_status s = hn_tokenizer_encode(tk, text, (int64_t)n, flags, &ids, &nids);
        CHECK(s == HN_OK, "encode: %s", hn_errmsg());
        if (s) continue;
        cases++;
        if (!same_ids(ids, nids, want, nwant)) {
            if (mismatches++ < 3) {
                fprintf(stderr, "mismatch (%s mode) on ", mode);
                print_escaped(stderr, text, n);
                fputc('\n', stderr);
                print_ids(stderr, "hone", ids, nids);
                print_ids(stderr, "reference", want, nwant);
            }
        }
        // decode(encode(s)) == s for valid UTF-8 made of bytes the vocabulary has.
        bool has_missing = false;
        for (size_t i = 0; i < n; i++) has_missing |= missing[(unsigned char)text[i]];
        if (valid_utf8((const unsigned char *)text, n) && !has_missing) {
            char *back = NULL, piece[256];
            size_t blen = 0; // the decoded length, counted by token: the text may hold NUL bytes
            for (int64_t i = 0; i < nids; i++) blen += (size_t)hn_tokenizer_token_bytes(tk, ids[i], piece, 0);
            round_trips++;
            if (hn_tokenizer_decode(tk, ids, nids, &back) || blen != n || memcmp(back, text, n)) {
                if (round_trip_fail++ < 3) {
                    fprintf(stderr, "round trip failed on ");
                    print_escaped(stderr, text, n);
                    fputc('\n', stderr);
                }
            }
            free(back);
        }
        free(ids);
    }
    fclose(f);
    printf("golden: %d cases, %d mismatches; round trips: %d, %d failed\n", cases, mismatches, round_trips,
           round_trip_fail);
    CHECK(cases >= 600, "only %d golden cases", cases);
    CHECK(mismatches == 0, "%d of %d golden cases differ from the reference", mismatches, cases);
    CHECK(round_trips >= 500 && round_trip_fail == 0, "%d of %d round trips failed", round_trip_fail, round_trips);
    free(line);
    free(text);
    free(want);
    return 0;
}

static int64_t enc(const hn_tokenizer *tk, const char *s, int64_t n, int flags, int32_t **ids) {
    int64_t k = -1;
    if (hn_tokenizer_encode(tk, s, n, flags, ids, &k)) {
        fprintf(stderr, "encode failed: %s\n", hn_errmsg());
        *ids = NULL;
        return -1;
    }
    return k;
}

static bool enc_equal(const hn_tokenizer *tk, const char *a, int64_t na, const char *b, int64_t nb, int flags) {
    int32_t *x, *y;
    int64_t nx = enc(tk, a, na, flags, &x), ny = enc(tk, b, nb, flags, &y);
    bool eq = nx >= 0 && ny >= 0 && same_ids(x, nx, y, ny);
    free(x);
    free(y);
    return eq;
}

static void real_model(const hn_tokenizer *tk) {
    CHECK(hn_tokenizer_n_vocab(tk) == 49152, "n_vocab %d", hn_tokenizer_n_vocab(tk));
    CHECK(hn_tokenizer_bos(tk) == 1 && hn_tokenizer_eos(tk) == 2, "bos %d eos %d", hn_tokenizer_bos(tk),
          hn_tokenizer_eos(tk));
    CHECK(!hn_tokenizer_wants_bos(tk), "SmolLM2's metadata does not ask for BOS");
    CHECK(hn_tokenizer_is_eog(tk, 2) && hn_tokenizer_is_eog(tk, 0) && !hn_tokenizer_is_eog(tk, 1) &&
              !hn_tokenizer_is_eog(tk, 100) && !hn_tokenizer_is_eog(tk, -1) && !hn_tokenizer_is_eog(tk, 49152),
          "end-of-generation set");
    CHECK(hn_tokenizer_find(tk, "<|im_start|>") == 1 && hn_tokenizer_find(tk, "Ġworld") == 905 &&
              hn_tokenizer_find(tk, "no such piece") == -1,
          "find");
    CHECK(hn_tokenizer_is_control(tk, 1) && !hn_tokenizer_is_control(tk, 300), "control tokens");
    CHECK(!strcmp(hn_tokenizer_piece(tk, 905), "Ġworld") && hn_tokenizer_piece(tk, 49152) == NULL, "piece");
    char buf[16];
    CHECK(hn_tokenizer_token_bytes(tk, 905, buf, sizeof buf) == 6 && !memcmp(buf, " world", 6), "token bytes");
    CHECK(hn_tokenizer_token_bytes(tk, 1, buf, sizeof buf) == 12 && !memcmp(buf, "<|im_start|>", 12),
          "a control token stands for its text");
    CHECK(hn_tokenizer_token_bytes(tk, 1, buf, 3) == 12 && !memcmp(buf, "<|i", 3), "token bytes, short buffer");
    CHECK(hn_tokenizer_token_bytes(tk, -1, buf, 16) == -1 && hn_tokenizer_token_bytes(tk, 49152, buf, 16) == -1,
          "token bytes out of range");

    // Special-token text: a token by default, plain text with --plain.
    const char *chat = "<|im_start|>user\nhi<|im_end|>";
    int32_t *sp, *pl;
    int64_t nsp = enc(tk, chat, -1, HN_TOK_SPECIAL, &sp), npl = enc(tk, chat, -1, 0, &pl);
    CHECK(nsp == 5 && sp[0] == 1 && sp[4] == 2, "special mode: %lld tokens", (long long)nsp);
    bool plain_has_special = false;
    for (int64_t i = 0; i < npl; i++) plain_has_special |= pl[i] == 1 || pl[i] == 2;
    CHECK(npl > nsp && !plain_has_special, "plain mode spells <|im_start|> out (%lld tokens)", (long long)npl);
    char *back1, *back2;
    CHECK(!hn_tokenizer_decode(tk, sp, nsp, &back1) && !strcmp(back1, chat), "decode of special mode");
    CHECK(!hn_tokenizer_decode(tk, pl, npl, &back2) && !strcmp(back2, chat), "decode of plain mode");
    free(back1);
    free(back2);
    free(sp);
    free(pl);

    // BOS: only when asked (SmolLM2's metadata does not ask).
    int32_t *b;
    int64_t nb = enc(tk, "hi", -1, HN_TOK_SPECIAL, &b);
    CHECK(nb == 1 && b[0] != 1, "no BOS by default");
    free(b);
    nb = enc(tk, "hi", -1, HN_TOK_SPECIAL | HN_TOK_ADD_BOS, &b);
    CHECK(nb == 1 && b[0] != 1, "HN_TOK_ADD_BOS: still no BOS, the metadata does not ask for one");
    free(b);
    nb = enc(tk, "", 0, 0, &b);
    CHECK(nb == 0 && b != NULL, "empty text: no tokens, a valid allocation");
    free(b);
    nb = enc(tk, "a\0b", 3, 0, &b);
    CHECK(nb == 3, "an explicit length passes a NUL byte (%lld tokens)", (long long)nb);
    free(b);

    // Invalid UTF-8: each maximal invalid subpart becomes U+FFFD (documented in io/bpe.c).
    CHECK(enc_equal(tk, "\xff", -1, "\xEF\xBF\xBD", -1, 0), "a lone 0xFF is U+FFFD");
    CHECK(enc_equal(tk, "a\xe4\xb8" "b", -1, "a\xEF\xBF\xBD" "b", -1, 0), "a truncated sequence is one U+FFFD");
    CHECK(enc_equal(tk, "\xed\xa0\x80", -1, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", -1, 0),
          "an encoded surrogate is three U+FFFD");
    CHECK(enc_equal(tk, "\xc0\x80", -1, "\xEF\xBF\xBD\xEF\xBF\xBD", -1, 0), "an overlong NUL is two U+FFFD");
    CHECK(enc_equal(tk, "x\xf0\x9f\x98", -1, "x\xEF\xBF\xBD", -1, 0), "truncated at the end");
    hn_rng rng;
    hn_rng_seed(&rng, 7);
    int fuzz_bad = 0;
    for (int t = 0; t < 500; t++) {
        char s[64];
        int n = (int)(hn_rng_u64(&rng) % sizeof s);
        for (int i = 0; i < n; i++) s[i] = (char)hn_rng_u64(&rng);
        int32_t *ids;
        int64_t k = enc(tk, s, n, HN_TOK_SPECIAL, &ids);
        char *d = NULL;
        if (k < 0 || hn_tokenizer_decode(tk, ids, k, &d) || !valid_utf8((unsigned char *)d, strlen(d))) fuzz_bad++;
        free(d);
        free(ids);
    }
    CHECK(fuzz_bad == 0, "%d of 500 random byte strings failed to encode to valid UTF-8", fuzz_bad);

    int32_t bad_ids[] = {5, 49152};
    char *out;
    CHECK(hn_tokenizer_decode(tk, bad_ids, 2, &out) == HN_ERR_ARG && out == NULL, "decode of an id out of range");

    // A long text: round trip and speed (printed, not asserted).
    size_t big = getenv("HONE_SANITIZED") ? 20000 : 200000;
    char *text = malloc(big + 50001);
    const char *src = "The 3 quick brown foxes (\xe7\x8b\x90\xe7\x8b\xb8) jumped over 1,024 lazy dogs; they'll rest.\n"
                      "    def f(x): return x ** 2  # \xf0\x9f\x98\x80\n";
    size_t sl = strlen(src);
    for (size_t i = 0; i < big; i++) text[i] = src[i % sl];
    while (big && (text[big - 1] & 0xC0) == 0x80) big--; // keep the cut on a character boundary
    if (big && (unsigned char)text[big - 1] >= 0xC0) big--;
    text[big] = 0;
    int32_t *ids;
    double t0 = hn_now();
    int64_t k = enc(tk, text, (int64_t)big, HN_TOK_SPECIAL, &ids);
    double dt = hn_now() - t0;
    printf("encoded %zu bytes into %lld tokens in %.3f s (%.0f tokens/s)\n", big, (long long)k, dt, k / dt);
    char *d = NULL;
    CHECK(k > 0 && !hn_tokenizer_decode(tk, ids, k, &d) && !strcmp(d, text), "a long text round-trips");
    free(d);
    free(ids);
    // No word is slow: one 50000-letter word (quadratic merging would take seconds).
    memset(text, 'a', 50000);
    for (int i = 0; i < 50000; i += 7) text[i] = "bcdefgh"[i % 7];
    t0 = hn_now();
    k = enc(tk, text, 50000, 0, &ids);
    printf("one 50000-byte word: %lld tokens in %.3f s\n", (long long)k, hn_now() - t0);
    CHECK(k > 0 && !hn_tokenizer_decode(tk, ids, k, &d) && strlen(d) == 50000 && !memcmp(d, text, 50000),
          "a long word round-trips");
    free(d);
    free(ids);
    free(text);
}

// ---- tiny vocabularies in GGUF files written here ----

typedef struct {
    const char *model, *pre;
    int n_extra;            // tokens after the 256 byte tokens
    const char *extra[8];
    int types_n;            // -1: as many as tokens
    const char *merges[8];
    int n_merges;
    int64_t bos;            // -1: absent
    bool add_bos;           // tokenizer.ggml.add_bos_token = true
    bool tokens_not_strings;
} tiny;

static char tiny_path[256];

static hn_status tiny_load(const tiny *t, hn_tokenizer **tk, hn_gguf *g) {
    const char *tokens[300];
    char bytes[256][4];
    int32_t types[300];
    int n = 0;
    for (int b = 0; b < 256; b++) {
        byte_piece(b, bytes[b]);
        tokens[n] = bytes[b];
        types[n++] = 1;
    }
    for (int i = 0; i < t->n_extra; i++) {
        tokens[n] = t->extra[i];
        types[n++] = t->extra[i][0] == '<' ? 3 : 1;
    }
    if (t->n_extra < 0) n = 0;
    hn_gguf_writer *w = hn_gguf_writer_create();
    hn_gguf_writer_set_str(w, "general.architecture", "llama");
    hn_gguf_writer_set_str(w, "tokenizer.ggml.model", t->model ? t->model : "gpt2");
    hn_gguf_writer_set_str(w, "tokenizer.ggml.pre", t->pre ? t->pre : "smollm");
    if (t->tokens_not_strings) hn_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", HN_GGUF_I32, types, (uint64_t)n);
    else hn_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", HN_GGUF_STRING, tokens, (uint64_t)n);
    hn_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", HN_GGUF_I32, types,
                           (uint64_t)(t->types_n >= 0 ? t->types_n : n));
    hn_gguf_writer_set_arr(w, "tokenizer.ggml.merges", HN_GGUF_STRING, t->merges, (uint64_t)t->n_merges);
    if (t->bos >= 0) hn_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos);
    if (t->add_bos) hn_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    hn_status s = hn_gguf_writer_write(w, tiny_path);
    hn_gguf_writer_destroy(w);
    if (s) return s;
    if ((s = hn_gguf_open(g, tiny_path))) return s;
    s = hn_tokenizer_from_gguf(tk, g);
    if (s) hn_gguf_close(g);
    return s;
}

static void expect_error(const char *what, const tiny *t, hn_status want, const char *key) {
    hn_tokenizer *tk = NULL;
    hn_gguf g;
    hn_status s = tiny_load(t, &tk, &g);
    CHECK(s == want && tk == NULL && strstr(hn_errmsg(), key), "%s: status %s, message '%s' (expected %s naming %s)",
          what, hn_status_name(s), hn_errmsg(), hn_status_name(want), key);
    if (!s) {
        hn_tokenizer_destroy(tk);
        hn_gguf_close(&g);
    }
}

static void tiny_tests(void) {
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tiny_path, sizeof tiny_path, "%s/hone_test_tok_%d.gguf", tmp, (int)getpid());

    // A working tiny vocabulary: merge ranks decide, not the longest vocabulary entry.
    tiny ok = {.n_extra = 5, .extra = {"ab", "abc", "Ġa", "bc", "<|im_start|>"}, .types_n = -1,
               .merges = {"a b", "ab c", "Ġ a", "b c"}, .n_merges = 4, .bos = 260};
    hn_tokenizer *tk;
    hn_gguf g;
    hn_status s = tiny_load(&ok, &tk, &g);
    CHECK(s == HN_OK, "tiny vocabulary: %s", hn_errmsg());
    if (!s) {
        int32_t *ids;
        int64_t n = enc(tk, "abc ab a bc<|im_start|>7", -1, HN_TOK_SPECIAL, &ids);
        // "abc" → ab+c → abc; " ab" → a+b first (rank 0) → Ġ,ab; " a" → Ġa; " bc" → Ġ,bc; special; "7".
        // The byte tokens are ids 0-255 in byte order (" " is 32), the extra tokens 256 onwards.
        int32_t want[] = {257, 32, 256, 258, 32, 259, 260, '7'};
        CHECK(n == 8 && same_ids(ids, n, want, 8), "tiny encode: %lld tokens", (long long)n);
        if (n >= 0 && !(n == 8 && same_ids(ids, n, want, 8))) print_ids(stderr, "got", ids, n);
        free(ids);
        n = enc(tk, "<|im_start|>", -1, 0, &ids);
        CHECK(n == 12, "tiny: plain mode spells the control token out (%lld)", (long long)n);
        free(ids);
        CHECK(hn_tokenizer_bos(tk) == 260 && hn_tokenizer_eos(tk) == -1 && !hn_tokenizer_is_eog(tk, 260),
              "tiny: bos, no eos");
        n = enc(tk, "a", -1, HN_TOK_ADD_BOS, &ids);
        CHECK(n == 1 && ids[0] == 'a' && !hn_tokenizer_wants_bos(tk), "tiny: no add_bos_token, no BOS");
        free(ids);
        hn_tokenizer_destroy(tk);
        hn_gguf_close(&g);
    }
    tiny with_bos = ok;
    with_bos.add_bos = true;
    if (!tiny_load(&with_bos, &tk, &g)) {
        int32_t *ids;
        int64_t n = enc(tk, "a", -1, HN_TOK_ADD_BOS, &ids);
        CHECK(n == 2 && ids[0] == 260 && ids[1] == 'a' && hn_tokenizer_wants_bos(tk), "add_bos_token: BOS first");
        free(ids);
        n = enc(tk, "a", -1, 0, &ids);
        CHECK(n == 1 && ids[0] == 'a', "add_bos_token, but the text does not start a sequence");
        free(ids);
        hn_tokenizer_destroy(tk);
        hn_gguf_close(&g);
    } else {
        CHECK(false, "tiny vocabulary with add_bos_token: %s", hn_errmsg());
    }

    tiny t = ok;
    t.types_n = 100;
    expect_error("token_type length", &t, HN_ERR_FORMAT, "tokenizer.ggml.token_type");
    t = ok;
    t.merges[1] = "ab x";
    expect_error("merge of a token that is not in the vocabulary", &t, HN_ERR_FORMAT, "tokenizer.ggml.merges[1]");
    t = ok;
    t.merges[2] = "abc";
    expect_error("merge without a space", &t, HN_ERR_FORMAT, "tokenizer.ggml.merges[2]");
    t = ok;
    t.merges[0] = "c d";
    expect_error("merge whose result is not in the vocabulary", &t, HN_ERR_FORMAT, "tokenizer.ggml.merges[0]");
    t = ok;
    t.n_extra = -1, t.types_n = 0, t.n_merges = 0, t.bos = -1;
    expect_error("empty vocabulary", &t, HN_ERR_FORMAT, "tokenizer.ggml.tokens");
    t = ok;
    t.bos = 261;
    expect_error("bos out of range", &t, HN_ERR_FORMAT, "tokenizer.ggml.bos_token_id");
    t = ok;
    t.model = "t5";
    expect_error("a Unigram vocabulary", &t, HN_ERR_UNSUPPORTED, "tokenizer.ggml.model");
    t = ok;
    t.pre = "deepseek-llm";
    expect_error("an unknown pre-tokenizer", &t, HN_ERR_UNSUPPORTED, "tokenizer.ggml.pre");
    t = ok;
    t.tokens_not_strings = true;
    expect_error("tokens that are not strings", &t, HN_ERR_FORMAT, "tokenizer.ggml.tokens");
    unlink(tiny_path);
}

// SmolLM2's tokenizer written as tokenizer.json (Digits + ByteLevel) and as GGUF keys, read back: the same goldens.
static void written_back(const hn_tokenizer *tk) {
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "/tmp/hone_test_tok_%d_hf", (int)getpid());
    mkdir(dir, 0755);
    hn_tokenizer *back = NULL;
    hn_status s = hn_tokenizer_to_hf_dir(tk, dir);
    if (!s) s = hn_tokenizer_from_hf_dir(&back, dir);
    CHECK(!s, "SmolLM2 through tokenizer.json: %s", hn_errmsg());
    if (back) {
        printf("through tokenizer.json: ");
        golden(back);
        CHECK(hn_tokenizer_chat_template(back) && hn_tokenizer_eos(back) == hn_tokenizer_eos(tk),
              "chat template and eos kept");
        hn_tokenizer_destroy(back);
    }
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    unlink(path);
    rmdir(dir);

    snprintf(path, sizeof path, "/tmp/hone_test_tok_%d_keys.gguf", (int)getpid());
    hn_gguf_writer *w = hn_gguf_writer_create();
    hn_gguf_writer_set_str(w, "general.architecture", "llama");
    s = hn_tokenizer_to_gguf(tk, w);
    if (!s) s = hn_gguf_writer_write(w, path);
    hn_gguf_writer_destroy(w);
    hn_gguf g;
    back = NULL;
    if (!s && !(s = hn_gguf_open(&g, path)) && (s = hn_tokenizer_from_gguf(&back, &g))) hn_gguf_close(&g);
    CHECK(!s, "SmolLM2 through GGUF keys: %s", hn_errmsg());
    if (back) {
        printf("through GGUF keys: ");
        golden(back);
        hn_tokenizer_destroy(back);
        hn_gguf_close(&g);
    }
    unlink(path);
}

int main(void) {
    tiny_tests();
    char *path;
    if (hn_model_resolve("smollm2-135m-instruct", &path)) {
        printf("model absent (%s): skipping the SmolLM2 part\n", hn_errmsg());
        return test_failed ? test_done() : test_skip("smollm2-135m-instruct not pulled");
    }
    hn_gguf g;
    hn_tokenizer *tk = NULL;
    hn_status s = hn_gguf_open(&g, path);
    CHECK(s == HN_OK, "open %s: %s", path, hn_errmsg());
    if (!s) {
        double t0 = hn_now();
        s = hn_tokenizer_from_gguf(&tk, &g);
        printf("tokenizer loaded in %.3f s\n", hn_now() - t0);
        CHECK(s == HN_OK, "tokenizer: %s", hn_errmsg());
    }
    if (tk) {
        golden(tk);
        real_model(tk);
        written_back(tk);
        hn_tokenizer_destroy(tk);
    }
    if (!s || tk) hn_gguf_close(&g);
    free(path);
    return test_done();
}
