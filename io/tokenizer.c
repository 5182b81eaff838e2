// io/tokenizer.c — byte-level BPE (GGUF `tokenizer.ggml.model = gpt2`): loading the vocabulary and merges from GGUF
// metadata, decoding, and the lookups. Encoding (pre-tokenizer and merge loop) is in io/bpe.c.
//
// Every token is kept as the raw bytes it stands for. A normal token's vocabulary entry is written in GPT-2's
// byte-to-unicode alphabet (each byte one printable code point, "Ġ" for a space); we map it back to bytes once, at
// load, so that encoding and decoding work on bytes. An entry that is not in that alphabet — control tokens such as
// "<|im_start|>", user-defined tokens, or a normal entry with other characters — stands for its own UTF-8 text, as
// Hugging Face's ByteLevel decoder also does.
#include "io/tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

// GPT-2's bytes_to_unicode: the printable Latin-1 bytes map to themselves, the other 68 bytes (controls, space,
// 0x7F-0xA0, 0xAD) to U+0100 onwards in byte order.
static bool printable_byte(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

static void byte_unicode_tables(uint32_t b2u[256], int16_t u2b[324]) {
    for (int i = 0; i < 324; i++) u2b[i] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        b2u[b] = printable_byte(b) ? (uint32_t)b : 256u + (uint32_t)n++;
        u2b[b2u[b]] = (int16_t)b;
    }
}

// Decodes one UTF-8 sequence at s[0..n); returns its length and the code point, or 0 if it is not valid UTF-8.
static int utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (!len || (size_t)len > n || c > 0xF4) return 0;
    uint32_t v = c & (0x3F >> (len - 1));
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_cp[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

static int utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3; // the byte alphabet stays below U+0144
}

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull; // FNV-1a
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t table_size(uint64_t n) {
    uint64_t size = 16;
    while (size < 2 * n) size <<= 1;
    return size;
}

static int32_t piece_lookup(const hn_tokenizer *tk, const char *s, size_t n) {
    for (uint64_t h = hash_bytes(s, n) & tk->piece_mask;; h = (h + 1) & tk->piece_mask) {
        uint32_t slot = tk->piece_slots[h];
        if (!slot) return -1;
        const char *p = tk->pieces + tk->piece_off[slot - 1];
        if (strnlen(p, n + 1) == n && !memcmp(p, s, n)) return (int32_t)slot - 1;
    }
}

// Merge keys are stored + 1 so that the zeroed table reads as empty.
static uint64_t merge_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1; }
static uint64_t merge_hash(uint64_t key) { return (key * 0x9E3779B97F4A7C15ull) >> 17; }

int32_t hn_bpe_merge_find(const hn_tokenizer *tk, int32_t left, int32_t right, int32_t *rank) {
    uint64_t key = merge_key(left, right);
    for (uint64_t h = merge_hash(key) & tk->merge_mask;; h = (h + 1) & tk->merge_mask) {
        const hn_merge_slot *s = &tk->merges[h];
        if (!s->key) return -1;
        if (s->key == key) {
            *rank = s->rank;
            return s->id;
        }
    }
}

static const char *path_of(const hn_gguf *g) { return g->path ? g->path : "(gguf)"; }

// An optional token id: -1 when absent; out of range is a format error naming the key.
static hn_status optional_id(const hn_gguf *g, const char *key, int32_t n_vocab, int32_t *out) {
    *out = -1;
    if (!hn_gguf_find(g, key)) return HN_OK;
    uint32_t v;
    hn_status s = hn_gguf_get_u32(g, key, &v);
    if (s) return s;
    if (v >= (uint32_t)n_vocab)
        return hn_fail(HN_ERR_FORMAT, "%s: %s = %u is not a token id (the vocabulary has %d tokens)", path_of(g), key,
                       v, n_vocab);
    *out = (int32_t)v;
    return HN_OK;
}

static const hn_gguf_kv *string_array(const hn_gguf *g, const char *key, hn_status *s) {
    const hn_gguf_kv *kv = hn_gguf_find(g, key);
    *s = HN_OK;
    if (!kv) {
        *s = hn_fail(HN_ERR_FORMAT, "%s: %s is missing (a gpt2 tokenizer needs it)", path_of(g), key);
        return NULL;
    }
    if (kv->type != HN_GGUF_ARRAY || kv->arr_type != HN_GGUF_STRING) {
        *s = hn_fail(HN_ERR_FORMAT, "%s: %s has type %s, expected an array of strings", path_of(g), key,
                     hn_gguf_type_name(kv->type == HN_GGUF_ARRAY ? kv->arr_type : kv->type));
        return NULL;
    }
    return kv;
}

static bool is_int_type(hn_gguf_type t) {
    return t == HN_GGUF_U8 || t == HN_GGUF_I8 || t == HN_GGUF_U16 || t == HN_GGUF_I16 || t == HN_GGUF_U32 ||
           t == HN_GGUF_I32 || t == HN_GGUF_U64 || t == HN_GGUF_I64;
}

static hn_status load_vocab(hn_tokenizer *tk, const hn_gguf *g) {
    hn_status s;
    const hn_gguf_kv *tokens = string_array(g, "tokenizer.ggml.tokens", &s);
    if (!tokens) return s;
    if (tokens->arr_n == 0 || tokens->arr_n > INT32_MAX / 2)
        return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries, expected 1 to %d", path_of(g),
                       (unsigned long long)tokens->arr_n, INT32_MAX / 2);
    int32_t n = tk->n_vocab = (int32_t)tokens->arr_n;

    const hn_gguf_kv *types = hn_gguf_find(g, "tokenizer.ggml.token_type");
    if (types && (types->type != HN_GGUF_ARRAY || !is_int_type(types->arr_type)))
        return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.token_type has type %s, expected an array of integers",
                       path_of(g), hn_gguf_type_name(types->type == HN_GGUF_ARRAY ? types->arr_type : types->type));
    if (types && types->arr_n != tokens->arr_n)
        return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.token_type has %llu entries, expected %d (one per token)",
                       path_of(g), (unsigned long long)types->arr_n, n);

    size_t piece_total = 0;
    for (int32_t i = 0; i < n; i++) {
        hn_gguf_str p = hn_gguf_arr_str(tokens, (uint64_t)i);
        if (p.len > 0xFFFF)
            return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%d] is %llu bytes long, expected at most 65535",
                           path_of(g), i, (unsigned long long)p.len);
        if (memchr(p.str, '\0', p.len))
            return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%d] contains a NUL byte", path_of(g), i);
        piece_total += p.len + 1;
    }
    if (piece_total > UINT32_MAX)
        return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.tokens holds %zu bytes, expected under 4 GiB", path_of(g),
                       piece_total);
    tk->pieces = hn_alloc(piece_total, "tokenizer pieces");
    tk->bytes = hn_alloc(piece_total, "tokenizer bytes"); // a token never has more bytes than its entry
    tk->piece_off = hn_calloc((size_t)n, sizeof *tk->piece_off, "tokenizer piece offsets");
    tk->bytes_off = hn_calloc((size_t)n + 1, sizeof *tk->bytes_off, "tokenizer byte offsets");
    tk->type = hn_calloc((size_t)n, 1, "token types");
    tk->eog = hn_calloc((size_t)n, 1, "end-of-generation flags");
    tk->piece_mask = table_size((uint64_t)n) - 1;
    tk->piece_slots = hn_calloc(tk->piece_mask + 1, sizeof *tk->piece_slots, "vocabulary table");
    if (!tk->pieces || !tk->bytes || !tk->piece_off || !tk->bytes_off || !tk->type || !tk->eog || !tk->piece_slots)
        return HN_ERR_NOMEM;

    uint32_t b2u[256];
    int16_t u2b[324];
    byte_unicode_tables(b2u, u2b);
    uint32_t poff = 0, boff = 0;
    for (int32_t i = 0; i < n; i++) {
        hn_gguf_str p = hn_gguf_arr_str(tokens, (uint64_t)i);
        double t = types ? hn_gguf_arr_num(types, (uint64_t)i) : HN_TT_NORMAL;
        if (t < 0 || t > HN_TT_BYTE)
            return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.token_type[%d] = %g, expected 0 to 6", path_of(g), i, t);
        tk->type[i] = (uint8_t)t;
        tk->piece_off[i] = poff;
        memcpy(tk->pieces + poff, p.str, p.len);
        tk->pieces[poff + p.len] = '\0';
        poff += (uint32_t)p.len + 1;

        // A normal entry maps back through the byte alphabet; anything else stands for its own text.
        uint32_t start = boff;
        bool byte_level = tk->type[i] == HN_TT_NORMAL || tk->type[i] == HN_TT_BYTE || tk->type[i] == 0;
        const uint8_t *u = (const uint8_t *)p.str;
        for (size_t k = 0; byte_level && k < p.len;) {
            uint32_t cp;
            int len = utf8_next(u + k, p.len - k, &cp);
            if (!len || cp >= 324 || u2b[cp] < 0) byte_level = false;
            else tk->bytes[boff++] = (uint8_t)u2b[cp];
            k += len ? (size_t)len : 1;
        }
        if (!byte_level) {
            boff = start;
            memcpy(tk->bytes + boff, p.str, p.len);
            boff += (uint32_t)p.len;
        }
        tk->bytes_off[i + 1] = boff;

        uint64_t h = hash_bytes(p.str, p.len) & tk->piece_mask;
        while (tk->piece_slots[h]) {
            const char *q = tk->pieces + tk->piece_off[tk->piece_slots[h] - 1];
            if (strlen(q) == p.len && !memcmp(q, p.str, p.len)) break; // a duplicate entry: the first id wins
            h = (h + 1) & tk->piece_mask;
        }
        if (!tk->piece_slots[h]) tk->piece_slots[h] = (uint32_t)i + 1;
    }

    for (int b = 0; b < 256; b++) {
        char c[4];
        tk->byte_id[b] = piece_lookup(tk, c, (size_t)utf8_put(b2u[b], c));
    }
    return HN_OK;
}

static hn_status load_merges(hn_tokenizer *tk, const hn_gguf *g) {
    hn_status s;
    const hn_gguf_kv *merges = string_array(g, "tokenizer.ggml.merges", &s);
    if (!merges) return s;
    if (merges->arr_n > INT32_MAX / 2)
        return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.merges has %llu entries, expected fewer than %d",
                       path_of(g), (unsigned long long)merges->arr_n, INT32_MAX / 2);
    tk->n_merges = (int32_t)merges->arr_n;
    tk->merge_mask = table_size((uint64_t)tk->n_merges) - 1;
    tk->merges = hn_calloc(tk->merge_mask + 1, sizeof *tk->merges, "merge table");
    char *both = hn_alloc(2 * 65536, "merge buffer");
    if (!tk->merges || !both) {
        free(both);
        return HN_ERR_NOMEM;
    }
    for (int32_t r = 0; r < tk->n_merges; r++) {
        hn_gguf_str m = hn_gguf_arr_str(merges, (uint64_t)r);
        // "left right": the alphabet has no plain space (it is written "Ġ"), so the first space after the first
        // byte separates the two.
        const char *sp = m.len > 1 ? memchr(m.str + 1, ' ', m.len - 1) : NULL;
        size_t ln = sp ? (size_t)(sp - m.str) : 0, rn = sp ? m.len - ln - 1 : 0;
        if (!sp || rn == 0 || ln + rn > 2 * 65535) {
            free(both);
            return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.merges[%d] = \"%.*s\", expected \"LEFT RIGHT\"",
                           path_of(g), r, (int)(m.len > 64 ? 64 : m.len), m.str);
        }
        int32_t a = piece_lookup(tk, m.str, ln), b = piece_lookup(tk, sp + 1, rn);
        memcpy(both, m.str, ln);
        memcpy(both + ln, sp + 1, rn);
        int32_t ab = a >= 0 && b >= 0 ? piece_lookup(tk, both, ln + rn) : -1;
        if (ab < 0) {
            free(both);
            const char *what = a < 0 ? "its left part" : b < 0 ? "its right part" : "the merged token";
            return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.merges[%d] = \"%.*s\": %s is not in tokenizer.ggml.tokens",
                           path_of(g), r, (int)(m.len > 64 ? 64 : m.len), m.str, what);
        }
        uint64_t key = merge_key(a, b);
        uint64_t h = merge_hash(key) & tk->merge_mask;
        while (tk->merges[h].key && tk->merges[h].key != key) h = (h + 1) & tk->merge_mask;
        if (!tk->merges[h].key) tk->merges[h] = (hn_merge_slot){key, r, ab}; // a repeated pair keeps its first rank
    }
    free(both);
    return HN_OK;
}

static int cmp_special(const void *a, const void *b) {
    const hn_special *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

// Tokens matched in the text before it is split: control tokens (only with HN_TOK_SPECIAL) and user-defined tokens
// (always), as Hugging Face's added tokens are. Longest first, so that the first match at a position is the longest.
static hn_status load_special(hn_tokenizer *tk) {
    int n = 0;
    for (int32_t i = 0; i < tk->n_vocab; i++)
        n += (tk->type[i] == HN_TT_CONTROL || tk->type[i] == HN_TT_USER) && tk->bytes_off[i + 1] > tk->bytes_off[i];
    tk->special = hn_calloc(n ? (size_t)n : 1, sizeof *tk->special, "special tokens");
    if (!tk->special) return HN_ERR_NOMEM;
    for (int32_t i = 0; i < tk->n_vocab; i++) {
        uint32_t len = tk->bytes_off[i + 1] - tk->bytes_off[i];
        if ((tk->type[i] != HN_TT_CONTROL && tk->type[i] != HN_TT_USER) || !len) continue;
        tk->special[tk->n_special++] = (hn_special){i, len, tk->bytes + tk->bytes_off[i]};
        tk->special_first[tk->bytes[tk->bytes_off[i]]] = true;
    }
    qsort(tk->special, (size_t)tk->n_special, sizeof *tk->special, cmp_special);
    return HN_OK;
}

// End of generation: eos, the file's eot/eom ids, and the end-of-turn tokens of the common chat formats when the
// vocabulary has them as non-normal tokens.
static hn_status load_eog(hn_tokenizer *tk, const hn_gguf *g) {
    static const char *names[] = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end|>",
                                  "<end_of_turn>", "<|end_of_text|>", "<EOT>"};
    static const char *keys[] = {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"};
    if (tk->eos >= 0) tk->eog[tk->eos] = 1;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        int32_t id;
        hn_status s = optional_id(g, keys[k], tk->n_vocab, &id);
        if (s) return s;
        if (id >= 0) tk->eog[id] = 1;
    }
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        int32_t id = piece_lookup(tk, names[k], strlen(names[k]));
        if (id >= 0 && tk->type[id] != HN_TT_NORMAL) tk->eog[id] = 1;
    }
    return HN_OK;
}

static hn_status load(hn_tokenizer *tk, const hn_gguf *g) {
    hn_gguf_str model, pre;
    hn_status s = hn_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (s == HN_ERR_NOTFOUND) return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.model is missing", path_of(g));
    if (s) return s;
    if (model.len != 4 || memcmp(model.str, "gpt2", 4))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model = \"%.*s\" (hone reads \"gpt2\", byte-level BPE)",
                       path_of(g), (int)(model.len > 64 ? 64 : model.len), model.str);
    s = hn_gguf_get_str(g, "tokenizer.ggml.pre", &pre);
    if (s == HN_ERR_NOTFOUND) {
        hn_warn("%s: no tokenizer.ggml.pre; using the GPT-2 pre-tokenizer", path_of(g));
        pre = (hn_gguf_str){"gpt2", 4};
    } else if (s) {
        return s;
    }
    if (pre.len == 6 && !memcmp(pre.str, "smollm", 6)) tk->digits = true;
    else if (!(pre.len == 4 && !memcmp(pre.str, "gpt2", 4)))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre = \"%.*s\" (hone knows \"smollm\" and \"gpt2\")",
                       path_of(g), (int)(pre.len > 64 ? 64 : pre.len), pre.str);

    if ((s = load_vocab(tk, g)) || (s = load_merges(tk, g))) return s;
    if ((s = optional_id(g, "tokenizer.ggml.bos_token_id", tk->n_vocab, &tk->bos)) ||
        (s = optional_id(g, "tokenizer.ggml.eos_token_id", tk->n_vocab, &tk->eos)) ||
        (s = optional_id(g, "tokenizer.ggml.unknown_token_id", tk->n_vocab, &tk->unk)))
        return s;
    if (hn_gguf_find(g, "tokenizer.ggml.add_bos_token") &&
        (s = hn_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &tk->add_bos)))
        return s;
    if ((s = load_special(tk)) || (s = load_eog(tk, g))) return s;
    return hn_bpe_compile(tk);
}

hn_status hn_tokenizer_from_gguf(hn_tokenizer **out, const hn_gguf *g) {
    *out = NULL;
    hn_tokenizer *tk = hn_calloc(1, sizeof *tk, "tokenizer");
    if (!tk) return HN_ERR_NOMEM;
    hn_status s = load(tk, g);
    if (s) {
        hn_tokenizer_destroy(tk);
        return s;
    }
    *out = tk;
    return HN_OK;
}

void hn_tokenizer_destroy(hn_tokenizer *tk) {
    if (!tk) return;
    free(tk->pieces);
    free(tk->piece_off);
    free(tk->bytes);
    free(tk->bytes_off);
    free(tk->type);
    free(tk->eog);
    free(tk->piece_slots);
    free(tk->merges);
    free(tk->special);
    pcre2_code_free(tk->re_split);
    pcre2_code_free(tk->re_digit);
    free(tk);
}

int hn_tokenizer_token_bytes(const hn_tokenizer *tk, int32_t id, char *buf, int cap) {
    if (id < 0 || id >= tk->n_vocab) return -1;
    uint32_t n = tk->bytes_off[id + 1] - tk->bytes_off[id];
    if (cap > 0) memcpy(buf, tk->bytes + tk->bytes_off[id], n < (uint32_t)cap ? n : (size_t)cap);
    return (int)n;
}

hn_status hn_tokenizer_decode(const hn_tokenizer *tk, const int32_t *ids, int64_t n, char **out) {
    *out = NULL;
    size_t total = 1;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tk->n_vocab)
            return hn_fail(HN_ERR_ARG, "decode: token %lld is %d, expected 0 to %d", (long long)i, ids[i],
                           tk->n_vocab - 1);
        total += tk->bytes_off[ids[i] + 1] - tk->bytes_off[ids[i]];
    }
    char *s = hn_alloc(total, "decoded text");
    if (!s) return HN_ERR_NOMEM;
    size_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t len = tk->bytes_off[ids[i] + 1] - tk->bytes_off[ids[i]];
        memcpy(s + k, tk->bytes + tk->bytes_off[ids[i]], len);
        k += len;
    }
    s[k] = '\0';
    *out = s;
    return HN_OK;
}

const char *hn_tokenizer_piece(const hn_tokenizer *tk, int32_t id) {
    return id >= 0 && id < tk->n_vocab ? tk->pieces + tk->piece_off[id] : NULL;
}

int32_t hn_tokenizer_n_vocab(const hn_tokenizer *tk) { return tk->n_vocab; }
int32_t hn_tokenizer_bos(const hn_tokenizer *tk) { return tk->bos; }
int32_t hn_tokenizer_eos(const hn_tokenizer *tk) { return tk->eos; }
bool hn_tokenizer_wants_bos(const hn_tokenizer *tk) { return tk->add_bos && tk->bos >= 0; }
bool hn_tokenizer_is_eog(const hn_tokenizer *tk, int32_t id) { return id >= 0 && id < tk->n_vocab && tk->eog[id]; }
bool hn_tokenizer_is_control(const hn_tokenizer *tk, int32_t id) {
    return id >= 0 && id < tk->n_vocab && tk->type[id] == HN_TT_CONTROL;
}

int32_t hn_tokenizer_find(const hn_tokenizer *tk, const char *piece) {
    return piece ? piece_lookup(tk, piece, strlen(piece)) : -1;
}
