// tests/test_tokenizer_hf.c — tokenizers from Hugging Face directories against `tokenizers` itself: the small
// tokenizer.json files of each family in tests/data/tok_*/ (GPT-2 byte-level BPE, Llama 3 style Split regex + ignore
// merges, Llama 2 byte-fallback BPE with the Prepend/Replace normaliser and with Metaspace, BERT WordPiece, and the
// same BERT vocabulary as a bare vocab.txt) and, when pulled, all-MiniLM-L6-v2's real one, each on the hard-string
// corpus (tests/data/tok_corpus.tsv; ids from tools/reference/tokenizers_hf_ref.py). Then decode round trips, the
// same tokenizers written to GGUF keys (llama also without merges, by scores) and to tokenizer.json and read back,
// and broken directories, each a one-line error naming the file and the field. With HONE_TOK_KEEP=DIR the written
// tokenizer.json directories are kept under DIR, for `tokenizers_hf_ref.py --check-export DIR` (Hugging Face loads
// them and gives the same ids).
#include "io/gguf.h"
#include "io/tokenizer.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CASES 4096

static char *cases[MAX_CASES];
static size_t case_len[MAX_CASES];
static int n_cases;

static size_t unhex(const char *h, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        sscanf(h + i, "%2x", &v);
        out[k++] = (char)v;
    }
    return k;
}

static bool load_corpus(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0 && n_cases < MAX_CASES) {
        if (line[0] == '#') continue;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        cases[n_cases] = malloc((size_t)n / 2 + 1);
        case_len[n_cases] = unhex(line, (size_t)n, cases[n_cases]);
        cases[n_cases][case_len[n_cases]] = '\0';
        n_cases++;
    }
    free(line);
    fclose(f);
    return n_cases > 0;
}

static void print_ids(const char *label, const int32_t *ids, int64_t n) {
    fprintf(stderr, "  %s (%lld):", label, (long long)n);
    for (int64_t i = 0; i < n && i < 60; i++) fprintf(stderr, " %d", ids[i]);
    fputs(n > 60 ? " ...\n" : "\n", stderr);
}

// A strict UTF-8 check written independently of the tokenizer.
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

// Every line of a golden file against tk; returns the number of lines compared.
static int check_golden(const hn_tokenizer *tk, const char *name, const char *golden) {
    FILE *f = fopen(golden, "r");
    CHECK(f != NULL, "%s: cannot open %s", name, golden);
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    int lines = 0, bad = 0;
    int32_t *want = malloc(200000 * sizeof *want);
    while (getline(&line, &cap, f) > 0) {
        if (line[0] == '#') continue;
        char mode[16];
        int idx, off;
        if (sscanf(line, "%15s %d%n", mode, &idx, &off) != 2 || idx < 0 || idx >= n_cases) {
            CHECK(false, "%s: bad golden line %.60s", golden, line);
            continue;
        }
        int64_t nw = 0;
        for (char *p = line + off, *end; nw < 200000; p = end) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            want[nw++] = (int32_t)v;
        }
        int flags = !strcmp(mode, "plain") ? 0 : !strcmp(mode, "framed") ? HN_TOK_SPECIAL | HN_TOK_ADD_SPECIAL
                                                                         : HN_TOK_SPECIAL;
        int32_t *ids;
        int64_t n;
        hn_status s = hn_tokenizer_encode(tk, cases[idx], (int64_t)case_len[idx], flags, &ids, &n);
        bool same = !s && n == nw && (n == 0 || !memcmp(ids, want, (size_t)n * sizeof *ids));
        if (!same && bad++ < 4) {
            fprintf(stderr, "%s: case %d (%s) \"%.80s\" differs from tokenizers (%s)\n", name, idx, mode, cases[idx],
                    s ? hn_errmsg() : "");
            print_ids("tokenizers", want, nw);
            if (!s) print_ids("hone", ids, n);
        }
        if (!s) free(ids);
        lines++;
    }
    CHECK(bad == 0, "%s: %d of %d golden lines differ", name, bad, lines);
    printf("%s: %d golden lines, %d differ\n", name, lines, bad);
    free(want);
    free(line);
    fclose(f);
    return lines;
}

// Hugging Face's decode of the framed ids (decode.tsv: CASE<TAB>HEX(text)) against hone's.
static void check_decode(const hn_tokenizer *tk, const char *name, const char *golden) {
    FILE *f = fopen(golden, "r");
    CHECK(f != NULL, "%s: cannot open %s", name, golden);
    if (!f) return;
    char *line = NULL, *want = NULL;
    size_t cap = 0;
    int lines = 0, bad = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        int idx, off;
        if (line[0] == '#' || sscanf(line, "%d%n", &idx, &off) != 1 || idx < 0 || idx >= n_cases) continue;
        while (line[off] == '\t') off++;
        want = realloc(want, (size_t)len);
        size_t wn = unhex(line + off, strcspn(line + off, "\r\n"), want);
        want[wn] = '\0';
        int32_t *ids;
        int64_t n;
        char *text = NULL;
        hn_status s = hn_tokenizer_encode(tk, cases[idx], (int64_t)case_len[idx], HN_TOK_SPECIAL | HN_TOK_ADD_SPECIAL,
                                          &ids, &n);
        if (!s) s = hn_tokenizer_decode(tk, ids, n, &text);
        if ((s || strcmp(text, want)) && bad++ < 3)
            fprintf(stderr, "%s: decode of case %d: \"%.80s\", tokenizers \"%.80s\"\n", name, idx, text ? text : "",
                    want);
        if (!s) free(ids);
        free(text);
        lines++;
    }
    CHECK(bad == 0 && lines > 100, "%s: %d of %d decodes differ from tokenizers'", name, bad, lines);
    free(line);
    free(want);
    fclose(f);
}

// Sentence pairs (pairs.tsv: MODE<TAB>I<TAB>ids<TAB>type ids for cases I and I + 1) against tokenizers'.
static int parse_ids(char *p, char **end, int32_t *out, int max) {
    int n = 0;
    for (;;) {
        while (*p == ' ') p++;
        if (*p < '0' || *p > '9' || n == max) break;
        out[n++] = (int32_t)strtol(p, &p, 10);
    }
    *end = p;
    return n;
}

static void check_pairs(const hn_tokenizer *tk, const char *name, const char *golden) {
    FILE *f = fopen(golden, "r");
    CHECK(f != NULL, "%s: cannot open %s", name, golden);
    if (!f) return;
    enum { MAXP = 20000 };
    int32_t *want = malloc(MAXP * sizeof *want), *want_t = malloc(MAXP * sizeof *want_t);
    char *line = NULL;
    size_t cap = 0;
    int lines = 0, bad = 0;
    while (getline(&line, &cap, f) > 0) {
        char mode[16], *p;
        int idx, off;
        if (line[0] == '#' || sscanf(line, "%15s %d%n", mode, &idx, &off) != 2 || idx < 0 || idx + 1 >= n_cases)
            continue;
        p = line + off;
        while (*p == '\t') p++;
        int nw = parse_ids(p, &p, want, MAXP);
        while (*p == '\t') p++;
        int nt = parse_ids(p, &p, want_t, MAXP);
        int32_t *ids, *types;
        int64_t n;
        int flags = HN_TOK_SPECIAL | (!strcmp(mode, "framed") ? HN_TOK_ADD_SPECIAL : 0);
        hn_status s = hn_tokenizer_encode_pair(tk, cases[idx], (int64_t)case_len[idx], cases[idx + 1],
                                               (int64_t)case_len[idx + 1], flags, &ids, &types, &n);
        bool same = !s && n == nw && nt == nw && (!n || (!memcmp(ids, want, (size_t)n * sizeof *ids) &&
                                                          !memcmp(types, want_t, (size_t)n * sizeof *types)));
        if (!same && bad++ < 3) {
            fprintf(stderr, "%s: pair %d (%s) differs from tokenizers (%s)\n", name, idx, mode, s ? hn_errmsg() : "");
            print_ids("tokenizers", want, nw);
            print_ids("tokenizers types", want_t, nt);
            if (!s) print_ids("hone", ids, n), print_ids("hone types", types, n);
        }
        if (!s) free(ids), free(types);
        lines++;
    }
    CHECK(bad == 0 && lines >= 100, "%s: %d of %d pairs differ from tokenizers'", name, bad, lines);
    free(want);
    free(want_t);
    free(line);
    fclose(f);
}

// decode(encode(s)) == s for every valid UTF-8 case (plain text: special-token text stays text).
static void check_round_trip(const hn_tokenizer *tk, const char *name, bool skip_leading_space) {
    int tried = 0, bad = 0;
    for (int i = 0; i < n_cases; i++) {
        if (!valid_utf8((const unsigned char *)cases[i], case_len[i]) || memchr(cases[i], '\0', case_len[i])) continue;
        if (skip_leading_space && cases[i][0] == ' ') continue;
        int32_t *ids;
        int64_t n;
        char *back = NULL;
        hn_status s = hn_tokenizer_encode(tk, cases[i], (int64_t)case_len[i], 0, &ids, &n);
        if (!s) s = hn_tokenizer_decode(tk, ids, n, &back);
        bool same = !s && strlen(back) == case_len[i] && !memcmp(back, cases[i], case_len[i]);
        if (!same && bad++ < 3)
            fprintf(stderr, "%s: round trip of case %d \"%.60s\" gave \"%.60s\"\n", name, i, cases[i],
                    back ? back : "");
        if (!s) free(ids);
        free(back);
        tried++;
    }
    CHECK(bad == 0, "%s: %d of %d round trips differ", name, bad, tried);
}

static hn_tokenizer *load_dir(const char *dir) {
    hn_tokenizer *tk = NULL;
    hn_status s = hn_tokenizer_from_hf_dir(&tk, dir);
    CHECK(!s, "%s: %s", dir, hn_errmsg());
    return tk;
}

// tokenizer.gguf, written by the reference script with the gguf package as llama.cpp's converter writes the same
// tokenizer: the same ids through hone's GGUF loader.
static void check_reference_gguf(const char *name, hn_tokenizer_kind kind) {
    char path[300], golden[300];
    snprintf(path, sizeof path, "tests/data/%s/tokenizer.gguf", name);
    snprintf(golden, sizeof golden, "tests/data/%s/golden.tsv", name);
    hn_gguf g;
    hn_tokenizer *tk = NULL;
    hn_status s = hn_gguf_open(&g, path);
    if (!s && (s = hn_tokenizer_from_gguf(&tk, &g))) hn_gguf_close(&g);
    CHECK(!s, "%s: %s", path, hn_errmsg());
    if (s) return;
    char label[96];
    snprintf(label, sizeof label, "%s/tokenizer.gguf", name);
    check_golden(tk, label, golden);
    CHECK(hn_tokenizer_kind_of(tk) == kind, "%s: kind %d", path, hn_tokenizer_kind_of(tk));
    hn_tokenizer_destroy(tk);
    hn_gguf_close(&g);
}

// The tokenizer written as GGUF keys and read back: the same ids.
static void check_gguf_trip(const hn_tokenizer *tk, const char *name, const char *golden) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/hone_test_tokhf_%d.gguf", (int)getpid());
    hn_gguf_writer *w = hn_gguf_writer_create();
    hn_gguf_writer_set_str(w, "general.architecture", "llama");
    hn_status s = hn_tokenizer_to_gguf(tk, w);
    if (!s) s = hn_gguf_writer_write(w, path);
    hn_gguf_writer_destroy(w);
    CHECK(!s, "%s: to GGUF: %s", name, hn_errmsg());
    if (s) return;
    hn_gguf g;
    hn_tokenizer *back = NULL;
    s = hn_gguf_open(&g, path);
    if (!s) s = hn_tokenizer_from_gguf(&back, &g);
    CHECK(!s, "%s: from its GGUF: %s", name, hn_errmsg());
    if (!s) {
        char label[96];
        snprintf(label, sizeof label, "%s via GGUF", name);
        check_golden(back, label, golden);
        CHECK(hn_tokenizer_kind_of(back) == hn_tokenizer_kind_of(tk), "%s: kind changed", name);
        CHECK(hn_tokenizer_cls(back) == hn_tokenizer_cls(tk) && hn_tokenizer_sep(back) == hn_tokenizer_sep(tk) &&
                  hn_tokenizer_pad(back) == hn_tokenizer_pad(tk) && hn_tokenizer_bos(back) == hn_tokenizer_bos(tk),
              "%s: special ids changed through GGUF", name);
        hn_tokenizer_destroy(back);
        hn_gguf_close(&g);
    }
    unlink(path);
}

// llama without tokenizer.ggml.merges (as llama.cpp's converter writes SentencePiece models): hone merges by
// tokenizer.ggml.scores, as llama.cpp does; with the scores hn_tokenizer_to_gguf writes (minus each token's merge
// rank) the ids stay those of the BPE merges.
static void check_gguf_scores_only(const hn_tokenizer *tk, const char *name, const char *golden) {
    char path[256], path2[256];
    snprintf(path, sizeof path, "/tmp/hone_test_tokhf_%d.gguf", (int)getpid());
    snprintf(path2, sizeof path2, "/tmp/hone_test_tokhf_%d_nomerges.gguf", (int)getpid());
    hn_gguf_writer *w = hn_gguf_writer_create();
    hn_gguf_writer_set_str(w, "general.architecture", "llama");
    hn_status s = hn_tokenizer_to_gguf(tk, w);
    if (!s) s = hn_gguf_writer_write(w, path);
    hn_gguf_writer_destroy(w);
    hn_gguf g, g2;
    if (!s) s = hn_gguf_open(&g, path);
    CHECK(!s, "%s: %s", name, hn_errmsg());
    if (s) return;
    w = hn_gguf_writer_create();
    for (uint64_t i = 0; i < g.n_kv; i++)
        if (!(g.kv[i].key.len == 21 && !memcmp(g.kv[i].key.str, "tokenizer.ggml.merges", 21)))
            hn_gguf_writer_copy_kv(w, &g.kv[i]);
    s = hn_gguf_writer_write(w, path2);
    hn_gguf_writer_destroy(w);
    hn_gguf_close(&g);
    hn_tokenizer *back = NULL;
    if (!s) s = hn_gguf_open(&g2, path2);
    if (!s && (s = hn_tokenizer_from_gguf(&back, &g2))) hn_gguf_close(&g2);
    CHECK(!s, "%s without merges: %s", name, hn_errmsg());
    if (!s) {
        char label[96];
        snprintf(label, sizeof label, "%s via GGUF scores only", name);
        check_golden(back, label, golden);
        hn_tokenizer_destroy(back);
        hn_gguf_close(&g2);
    }
    unlink(path);
    unlink(path2);
}

// The tokenizer written as tokenizer.json + tokenizer_config.json and read back: the same ids.
static void check_hf_trip(const hn_tokenizer *tk, const char *name, const char *golden) {
    char dir[1024], path[1100];
    const char *keep = getenv("HONE_TOK_KEEP");
    if (keep) snprintf(dir, sizeof dir, "%s/%s", keep, name);
    else snprintf(dir, sizeof dir, "/tmp/hone_test_tokhf_%d_%s", (int)getpid(), name);
    mkdir(dir, 0755);
    hn_status s = hn_tokenizer_to_hf_dir(tk, dir);
    CHECK(!s, "%s: to tokenizer.json: %s", name, hn_errmsg());
    if (!s) {
        hn_tokenizer *back = load_dir(dir);
        if (back) {
            char label[96];
            snprintf(label, sizeof label, "%s via tokenizer.json", name);
            check_golden(back, label, golden);
            hn_tokenizer_destroy(back);
        }
    }
    if (keep) return;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    unlink(path);
    rmdir(dir);
}

// lossless: decode(encode(s)) == s for valid UTF-8; 2: except a leading space, which Hugging Face's Metaspace
// (prepend_scheme "first") also drops when decoding. gguf_as: the directory whose goldens the GGUF copy must meet
// (NULL: the same).
static void family(const char *name, hn_tokenizer_kind kind, int lossless, const char *gguf_as) {
    char dir[256], golden[300], gguf_golden[300];
    snprintf(dir, sizeof dir, "tests/data/%s", name);
    snprintf(golden, sizeof golden, "%s/golden.tsv", dir);
    snprintf(gguf_golden, sizeof gguf_golden, "tests/data/%s/golden.tsv", gguf_as ? gguf_as : name);
    hn_tokenizer *tk = load_dir(dir);
    if (!tk) return;
    CHECK(hn_tokenizer_kind_of(tk) == kind, "%s: kind %d, expected %d", name, hn_tokenizer_kind_of(tk), kind);
    check_golden(tk, name, golden);
    char decode[300];
    snprintf(decode, sizeof decode, "%s/decode.tsv", dir);
    check_decode(tk, name, decode);
    snprintf(decode, sizeof decode, "%s/pairs.tsv", dir);
    check_pairs(tk, name, decode);
    if (lossless) check_round_trip(tk, name, lossless == 2);
    check_gguf_trip(tk, name, gguf_golden);
    if (kind == HN_TOKENIZER_LLAMA) check_gguf_scores_only(tk, name, gguf_golden);
    check_hf_trip(tk, name, golden);
    hn_tokenizer_destroy(tk);
}

// ---- broken directories ----

static bool write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fputs(text, f);
    return fclose(f) == 0;
}

static void expect_error(const char *what, const char *file, const char *text, hn_status want, const char *field) {
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "/tmp/hone_test_tokbad_%d", (int)getpid());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    write_file(path, text);
    hn_tokenizer *tk = NULL;
    hn_status s = hn_tokenizer_from_hf_dir(&tk, dir);
    const char *msg = hn_errmsg();
    // the message names the file (or, when no tokenizer file is there, the directory)
    const char *named = strcmp(file, "config.json") ? file : dir;
    CHECK(s == want && !tk && strstr(msg, named) && strstr(msg, field) && !strchr(msg, '\n'),
          "%s: status %s, message '%s' (expected %s naming %s and %s)", what, hn_status_name(s), msg,
          hn_status_name(want), file, field);
    hn_tokenizer_destroy(tk);
    unlink(path);
    rmdir(dir);
}

#define BPE_MODEL "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": "
#define BPE_HEAD "{" BPE_MODEL

static void broken(void) {
    expect_error("not JSON", "tokenizer.json", "{\"model\": [", HN_ERR_FORMAT, "not JSON");
    expect_error("JSON but not an object", "tokenizer.json", "[1, 2]", HN_ERR_FORMAT, "object");
    expect_error("unknown model type", "tokenizer.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}",
                 HN_ERR_UNSUPPORTED, "model.type");
    expect_error("no model", "tokenizer.json", "{\"normalizer\": null}", HN_ERR_FORMAT, "model");
    expect_error("missing vocab", "tokenizer.json", "{\"model\": {\"type\": \"WordPiece\"}}", HN_ERR_FORMAT,
                 "model.vocab");
    expect_error("a vocab id that is not a number", "tokenizer.json",
                 "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": \"x\"}}}", HN_ERR_FORMAT, "model.vocab");
    expect_error("a hole in the ids", "tokenizer.json",
                 "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0, \"b\": 2}}}", HN_ERR_FORMAT,
                 "model.vocab");
    expect_error("an id far past the vocabulary", "tokenizer.json",
                 "{\"added_tokens\": [{\"id\": 1000000000, \"content\": \"<x>\"}], " BPE_MODEL "[]}}", HN_ERR_FORMAT,
                 "model.vocab");
    expect_error("merge of an unknown token", "tokenizer.json", BPE_HEAD "[\"a c\"]}}", HN_ERR_FORMAT,
                 "model.merges[0]");
    expect_error("merge whose result is unknown", "tokenizer.json", BPE_HEAD "[\"b a\"]}}", HN_ERR_FORMAT,
                 "model.merges[0]");
    expect_error("merge without a space", "tokenizer.json", BPE_HEAD "[\"ab\"]}}", HN_ERR_FORMAT, "model.merges[0]");
    expect_error("merges not an array", "tokenizer.json", BPE_HEAD "{}}}", HN_ERR_FORMAT, "model.merges");
    expect_error("unknown normalizer", "tokenizer.json",
                 "{\"normalizer\": {\"type\": \"Precompiled\"}, " BPE_MODEL "[]}}", HN_ERR_UNSUPPORTED,
                 "normalizer.type");
    expect_error("unknown pre-tokenizer", "tokenizer.json",
                 "{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"UnicodeScripts\"}]}, "
                 BPE_MODEL "[]}}", HN_ERR_UNSUPPORTED, "pre_tokenizer.pretokenizers[0].type");
    expect_error("a regex PCRE2 refuses", "tokenizer.json",
                 "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"}, \"behavior\": "
                 "\"Isolated\"}, " BPE_MODEL "[]}}", HN_ERR_UNSUPPORTED, "Split");
    expect_error("unk token not in the vocabulary", "tokenizer.json",
                 "{\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"a\": 0}}}",
                 HN_ERR_FORMAT, "model.unk_token");
    expect_error("added token clashing with the vocabulary", "tokenizer.json",
                 "{\"added_tokens\": [{\"id\": 0, \"content\": \"<s>\", \"special\": true}], " BPE_MODEL "[]}}",
                 HN_ERR_FORMAT, "added_tokens[0]");
    expect_error("empty vocab.txt", "vocab.txt", "", HN_ERR_FORMAT, "empty");
    expect_error("tokenizer_config.json not JSON", "tokenizer_config.json", "{", HN_ERR_FORMAT, "not JSON");
    expect_error("no tokenizer file", "config.json", "{}", HN_ERR_NOTFOUND, "no tokenizer.json");
}

// Every code point c in "a" c "b" through BERT's normaliser and pre-tokenizer, classed as tests/data/
// tok_bert_classes.tsv has it from `tokenizers` (R removed, W whitespace, S split off, K kept), seen through a
// four-entry vocabulary: [UNK] a b ##b. Under the sanitizers every 13th code point.
static void check_bert_classes(void) {
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "/tmp/hone_test_tokcls_%d", (int)getpid());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    write_file(path, "[UNK]\na\nb\n##b\n");
    hn_tokenizer *tk = load_dir(dir);
    unlink(path);
    rmdir(dir);
    FILE *f = fopen("tests/data/tok_bert_classes.tsv", "r");
    CHECK(f && tk, "tests/data/tok_bert_classes.tsv or the tiny vocabulary is missing");
    if (!f || !tk) {
        if (f) fclose(f);
        hn_tokenizer_destroy(tk);
        return;
    }
    uint32_t step = getenv("HONE_SANITIZED") ? 13 : 1;
    unsigned lo, hi;
    char want, line[128];
    long checked = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || sscanf(line, "%x %x %c", &lo, &hi, &want) != 3) continue;
        for (uint32_t c = lo; c <= hi; c += step) {
            if (c >= 0xD800 && c <= 0xDFFF) continue;
            char text[8] = {'a'};
            size_t n = 1;
            if (c < 0x80) text[n++] = (char)c;
            else if (c < 0x800) text[n++] = (char)(0xC0 | c >> 6), text[n++] = (char)(0x80 | (c & 0x3F));
            else if (c < 0x10000)
                text[n++] = (char)(0xE0 | c >> 12), text[n++] = (char)(0x80 | ((c >> 6) & 0x3F)),
                text[n++] = (char)(0x80 | (c & 0x3F));
            else
                text[n++] = (char)(0xF0 | c >> 18), text[n++] = (char)(0x80 | ((c >> 12) & 0x3F)),
                text[n++] = (char)(0x80 | ((c >> 6) & 0x3F)), text[n++] = (char)(0x80 | (c & 0x3F));
            text[n++] = 'b';
            int32_t *ids;
            int64_t ni;
            if (hn_tokenizer_encode(tk, text, (int64_t)n, 0, &ids, &ni)) {
                bad++;
                continue;
            }
            char got = ni == 2 && ids[0] == 1 && ids[1] == 3   ? 'R'
                       : ni == 2 && ids[0] == 1 && ids[1] == 2 ? 'W'
                       : ni == 3 && ids[0] == 1 && ids[2] == 2 ? 'S'
                                                               : 'K';
            free(ids);
            if (got != want && bad++ < 5) fprintf(stderr, "U+%04X: tokenizers %c, hone %c\n", c, want, got);
            checked++;
        }
    }
    fclose(f);
    printf("BERT normaliser + pre-tokenizer: %ld code points, %ld differ from tokenizers\n", checked, bad);
    CHECK(bad == 0 && checked > 1000, "%ld of %ld code points differ", bad, checked);
    hn_tokenizer_destroy(tk);
}

// ---- fuzzing: mutated tokenizer.json files and random input bytes never crash ----

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return n ? (uint32_t)(rng_state % n) : 0;
}

// A small tokenizer.json that uses most of what the loader reads.
static const char fuzz_seed[] =
    "{\"added_tokens\": [{\"id\": 7, \"content\": \"<s>\", \"special\": true}, {\"id\": 8, \"content\": \"<u>\", "
    "\"special\": false, \"lstrip\": false}], \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": "
    "\"NFKC\"}, {\"type\": \"Prepend\", \"prepend\": \"_\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, "
    "\"content\": \"_\"}]}, \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
    "\"pattern\": {\"Regex\": \"\\\\p{N}|\\\\s+\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": "
    "\"Metaspace\", \"replacement\": \"\\u2581\", \"prepend_scheme\": \"first\", \"split\": true}]}, "
    "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", "
    "\"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], "
    "\"special_tokens\": {\"<s>\": {\"id\": \"<s>\", "
    "\"ids\": [7], \"tokens\": [\"<s>\"]}}}, \"model\": {\"type\": \"BPE\", \"unk_token\": \"u\", \"byte_fallback\": "
    "true, \"fuse_unk\": true, \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"_\": 3, \"_ab\": 4, \"u\": 5, "
    "\"<0x41>\": 6}, "
    "\"merges\": [\"a b\", [\"_\", \"ab\"]]}}";

static void fuzz_json(void) {
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "/tmp/hone_test_tokfuzz_%d", (int)getpid());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    static const char alphabet[] = "\"{}[],:09-a \\nu";
    size_t n = strlen(fuzz_seed);
    char *buf = malloc(2 * n + 1);
    int loaded = 0, refused = 0, bad_msg = 0;
    hn_tokenizer *tk = NULL;
    CHECK(write_file(path, fuzz_seed) && !hn_tokenizer_from_hf_dir(&tk, dir), "the fuzz seed loads: %s", hn_errmsg());
    hn_tokenizer_destroy(tk);
    for (int it = 0; it < 1500; it++) {
        memcpy(buf, fuzz_seed, n + 1);
        size_t len = n;
        for (int m = 0, k = 1 + (int)rnd(3); m < k; m++) {
            size_t at = rnd((uint32_t)len);
            switch (rnd(4)) {
            case 0: len = at; break;                                      // truncate
            case 1: buf[at] = alphabet[rnd(sizeof alphabet - 1)]; break; // replace a byte
            case 2: {                                                     // delete a span
                size_t span = 1 + rnd(8);
                if (at + span > len) span = len - at;
                memmove(buf + at, buf + at + span, len - at - span);
                len -= span;
                break;
            }
            default: { // duplicate a span
                size_t span = 1 + rnd(12);
                if (at + span > len) span = len - at;
                memmove(buf + at + span, buf + at, len - at);
                len += span;
            }
            }
            buf[len] = '\0';
        }
        FILE *f = fopen(path, "w");
        fwrite(buf, 1, len, f);
        fclose(f);
        tk = NULL;
        hn_status s = hn_tokenizer_from_hf_dir(&tk, dir);
        if (s) {
            refused++;
            bad_msg += !*hn_errmsg() || strchr(hn_errmsg(), '\n') != NULL;
            continue;
        }
        loaded++;
        static const char *texts[] = {"ab ab 12", "<s>a<u>b", "A\xff\xfe zz", ""};
        for (int t = 0; t < 4; t++) {
            int32_t *ids;
            int64_t ni;
            char *back;
            if (!hn_tokenizer_encode(tk, texts[t], -1, HN_TOK_SPECIAL | HN_TOK_ADD_SPECIAL, &ids, &ni)) {
                if (!hn_tokenizer_decode(tk, ids, ni, &back)) free(back);
                free(ids);
            }
        }
        hn_tokenizer_destroy(tk);
    }
    printf("fuzzed tokenizer.json: %d loaded, %d refused\n", loaded, refused);
    CHECK(bad_msg == 0 && refused > 0, "%d refusals without a one-line message", bad_msg);
    free(buf);
    unlink(path);
    rmdir(dir);
}

// Random bytes through every family: no crash; valid UTF-8 round-trips where the tokenizer is lossless.
static void fuzz_input(void) {
    static const char *dirs[] = {"tests/data/tok_gpt2", "tests/data/tok_llama3", "tests/data/tok_llama2",
                                 "tests/data/tok_llama2_meta", "tests/data/tok_bert"};
    static const char pool[][5] = {"a", " ", "\n", "\t", "1", "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80",
                                   "\xCC\x81",
                                   "'s", "<s>", "[SEP]", "\xFF", "\xE4", "\xE2\x96\x81", ".", "\xEF\xBF\xBD", "\x00"};
    for (int d = 0; d < 5; d++) {
        hn_tokenizer *tk = load_dir(dirs[d]);
        if (!tk) continue;
        int bad = 0;
        for (int it = 0; it < 400; it++) {
            char text[256]; // 40 pieces of at most 4 bytes, and a NUL
            size_t len = 0;
            for (int k = (int)rnd(40); k > 0; k--) {
                const char *p = pool[rnd(sizeof pool / sizeof pool[0])];
                size_t pl = p[0] ? strlen(p) : 1; // "\x00" is one NUL byte
                memcpy(text + len, p, pl);
                len += pl;
            }
            int32_t *ids;
            int64_t n;
            char *back = NULL;
            hn_status s = hn_tokenizer_encode(tk, text, (int64_t)len, HN_TOK_SPECIAL, &ids, &n);
            if (!s) s = hn_tokenizer_decode(tk, ids, n, &back);
            text[len] = '\0';
            // lossless: the byte-level and byte-fallback families on valid UTF-8, less special-token text and a
            // literal "▁" (SentencePiece's space: Hugging Face decodes it as " " too)
            bool lossless = d < 3 && valid_utf8((const unsigned char *)text, len) && !memchr(text, '\0', len) &&
                            !strstr(text, "<s>") && !(d == 2 && strstr(text, "\xE2\x96\x81"));
            if (s || (lossless && (strlen(back) != len || memcmp(back, text, len)))) {
                if (bad++ < 2)
                    fprintf(stderr, "%s: \"%s\" came back as \"%s\" (%s)\n", dirs[d], text, back ? back : "",
                            s ? hn_errmsg() : "");
            }
            if (!s) free(ids);
            free(back);
        }
        CHECK(bad == 0, "%s: %d of 400 random inputs failed or did not round-trip", dirs[d], bad);
        hn_tokenizer_destroy(tk);
    }
}

int main(void) {
    if (!load_corpus("tests/data/tok_corpus.tsv")) {
        CHECK(false, "tests/data/tok_corpus.tsv is missing");
        return test_done();
    }
    family("tok_gpt2", HN_TOKENIZER_GPT2, 1, NULL);
    family("tok_llama3", HN_TOKENIZER_GPT2, 1, NULL);
    family("tok_llama2", HN_TOKENIZER_LLAMA, 1, NULL);
    // GGUF has no Metaspace "first": llama.cpp puts a "▁" before every piece of text, which is Llama 2's legacy
    // normaliser, so the same vocabulary through GGUF encodes as tok_llama2 does.
    family("tok_llama2_meta", HN_TOKENIZER_LLAMA, 2, "tok_llama2");
    family("tok_bert", HN_TOKENIZER_BERT, 0, NULL);
    // Qwen2 (tools/reference/tokenizer_qwen2_ref.py): NFC first, so not lossless; GGUF has no normaliser key, so
    // its copy meets the goldens of the same vocabulary without NFC (as llama.cpp splits the text as it is).
    family("tok_qwen2", HN_TOKENIZER_GPT2, 0, "tok_qwen2_gguf");

    check_reference_gguf("tok_gpt2", HN_TOKENIZER_GPT2);
    check_reference_gguf("tok_llama3", HN_TOKENIZER_GPT2);
    check_reference_gguf("tok_llama2", HN_TOKENIZER_LLAMA);
    check_reference_gguf("tok_bert", HN_TOKENIZER_BERT);
    check_reference_gguf("tok_qwen2_gguf", HN_TOKENIZER_GPT2);

    // GPT-2's vocab.json + merges.txt (the same vocabulary as tok_gpt2): the same ids.
    hn_tokenizer *tk = load_dir("tests/data/tok_gpt2_files");
    if (tk) {
        check_golden(tk, "tok_gpt2_files", "tests/data/tok_gpt2/golden.tsv");
        check_gguf_trip(tk, "tok_gpt2_files", "tests/data/tok_gpt2/golden.tsv");
        check_hf_trip(tk, "tok_gpt2_files", "tests/data/tok_gpt2/golden.tsv");
        hn_tokenizer_destroy(tk);
    }
    // vocab.txt alone: BertTokenizer's defaults give the same ids as the tokenizer.json with that vocabulary.
    tk = load_dir("tests/data/tok_bert_vocab");
    if (tk) {
        check_golden(tk, "tok_bert_vocab", "tests/data/tok_bert/golden.tsv");
        check_gguf_trip(tk, "tok_bert_vocab", "tests/data/tok_bert/golden.tsv");
        check_hf_trip(tk, "tok_bert_vocab", "tests/data/tok_bert/golden.tsv");
        CHECK(hn_tokenizer_cls(tk) == 2 && hn_tokenizer_sep(tk) == 3 && hn_tokenizer_pad(tk) == 0 &&
                  hn_tokenizer_unk(tk) == 1 && hn_tokenizer_mask(tk) == 4,
              "tok_bert_vocab: cls %d sep %d pad %d unk %d mask %d", hn_tokenizer_cls(tk), hn_tokenizer_sep(tk),
              hn_tokenizer_pad(tk), hn_tokenizer_unk(tk), hn_tokenizer_mask(tk));
        hn_tokenizer_destroy(tk);
    }
    broken();
    check_bert_classes();
    fuzz_json();
    fuzz_input();

    // all-MiniLM-L6-v2's real vocabulary (30522 entries), where `hone pull all-minilm-l6-v2` has fetched it.
    const char *home = getenv("HONE_HOME");
    char minilm[1024];
    if (home) snprintf(minilm, sizeof minilm, "%s/models/all-minilm-l6-v2/all-MiniLM-L6-v2", home);
    else snprintf(minilm, sizeof minilm, "%s/.cache/hone/models/all-minilm-l6-v2/all-MiniLM-L6-v2", getenv("HOME"));
    struct stat st;
    if (stat(minilm, &st) == 0) {
        tk = load_dir(minilm);
        if (tk && getenv("HONE_TOK_KEEP")) check_hf_trip(tk, "minilm", "tests/data/tok_minilm_golden.tsv");
        if (tk) {
            // io/tokenizer.h's example
            int32_t *ids;
            int64_t n;
            char *text = NULL;
            hn_status es = hn_tokenizer_encode(tk, "Hello world", -1, HN_TOK_SPECIAL | HN_TOK_ADD_SPECIAL, &ids, &n);
            if (!es) es = hn_tokenizer_decode(tk, ids, n, &text);
            CHECK(!es && n == 4 && ids[0] == 101 && ids[1] == 7592 && ids[2] == 2088 && ids[3] == 102 &&
                      !strcmp(text, "[CLS] hello world [SEP]"),
                  "the header's example: %s", es ? hn_errmsg() : text);
            if (!es) free(ids);
            free(text);
            check_golden(tk, "all-MiniLM-L6-v2", "tests/data/tok_minilm_golden.tsv");
            check_decode(tk, "all-MiniLM-L6-v2", "tests/data/tok_minilm_decode.tsv");
            check_pairs(tk, "all-MiniLM-L6-v2", "tests/data/tok_minilm_pairs.tsv");
            CHECK(hn_tokenizer_n_vocab(tk) == 30522 && hn_tokenizer_cls(tk) == 101 && hn_tokenizer_sep(tk) == 102 &&
                      hn_tokenizer_pad(tk) == 0,
                  "all-MiniLM-L6-v2: %d tokens, cls %d, sep %d, pad %d", hn_tokenizer_n_vocab(tk),
                  hn_tokenizer_cls(tk), hn_tokenizer_sep(tk), hn_tokenizer_pad(tk));
            hn_tokenizer_destroy(tk);
        }
    } else {
        printf("note: %s absent (hone pull all-minilm-l6-v2); MiniLM's vocabulary not checked\n", minilm);
    }
    for (int i = 0; i < n_cases; i++) free(cases[i]);
    return test_done();
}
