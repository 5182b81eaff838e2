// io/tokenizer.c — the vocabulary (built from any source), loading from GGUF metadata, decoding, and the lookups.
// Encoding is in io/bpe.c (pipeline, BPE) and io/wordpiece.c (BERT); tokenizer.json in io/hf_tokenizer.c.
//
// Every token is kept as the raw bytes it stands for, so that decoding is concatenation:
//   gpt2: a normal entry is written in GPT-2's byte-to-unicode alphabet (each byte one printable code point, "Ġ" for
//         a space); we map it back to bytes once, at load. An entry that is not in that alphabet — control tokens
//         such as "<|im_start|>", user-defined tokens, or a normal entry with other characters — stands for its own
//         UTF-8 text, as Hugging Face's ByteLevel decoder also does.
//   llama: "▁" stands for a space, "<0xXX>" (byte tokens) for that byte, anything else for its own text.
//   bert: a word-start entry stands for " " + itself, a continuation ("##ing") for itself less the prefix, control
//         tokens for their text; decoding drops the first space (the spacing of Hugging Face's WordPiece decoder
//         without its clean-up of spaces before punctuation).
#include "io/tokenizer_impl.h"

#include <stdio.h>
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

int hn_utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
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

int hn_utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
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

int32_t hn_tok_lookup(const hn_tokenizer *tk, const char *s, size_t n) {
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
    if (!tk->merges) return -1;
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

// "<0xAB>": the byte tokens of SentencePiece vocabularies.
static int byte_token(const char *p) {
    static const char hex[] = "0123456789ABCDEF";
    if (strlen(p) != 6 || memcmp(p, "<0x", 3) || p[5] != '>') return -1;
    const char *a = memchr(hex, p[3], 16), *b = memchr(hex, p[4], 16);
    return a && b && p[3] && p[4] ? (int)((a - hex) << 4 | (b - hex)) : -1;
}

// The bytes token i stands for (see the top of this file), written at tk->bytes + *boff.
static void token_bytes_of(hn_tokenizer *tk, int32_t i, const char *p, size_t len, const int16_t *u2b,
                           uint32_t *boff) {
    uint8_t *out = tk->bytes + *boff;
    size_t n = 0;
    uint8_t t = tk->type[i];
    bool plain = t == HN_TT_CONTROL || t == HN_TT_USER || t == HN_TT_UNKNOWN;
    if (tk->kind == HN_TOKENIZER_GPT2 && !plain) {
        const uint8_t *u = (const uint8_t *)p;
        for (size_t k = 0; k < len;) {
            uint32_t cp;
            int l = hn_utf8_next(u + k, len - k, &cp);
            if (!l || cp >= 324 || u2b[cp] < 0) {
                n = 0;
                break;
            }
            out[n++] = (uint8_t)u2b[cp];
            k += (size_t)l;
        }
        if (n || !len) {
            *boff += (uint32_t)n;
            return;
        }
    } else if (tk->kind == HN_TOKENIZER_LLAMA && !plain) {
        int b = byte_token(p);
        if (b >= 0) {
            out[n++] = (uint8_t)b;
        } else {
            for (size_t k = 0; k < len; k++) {
                if (k + 3 <= len && !memcmp(p + k, "\xE2\x96\x81", 3)) { // "▁"
                    out[n++] = ' ';
                    k += 2;
                } else {
                    out[n++] = (uint8_t)p[k];
                }
            }
        }
        *boff += (uint32_t)n;
        return;
    } else if (tk->kind == HN_TOKENIZER_BERT && !plain) {
        size_t pl = strlen(tk->wp_prefix);
        if (pl && len >= pl && !memcmp(p, tk->wp_prefix, pl) && len > pl) {
            memcpy(out, p + pl, len - pl);
            *boff += (uint32_t)(len - pl);
        } else {
            out[0] = ' ';
            memcpy(out + 1, p, len);
            *boff += (uint32_t)len + 1;
        }
        return;
    }
    memcpy(out, p, len);
    *boff += (uint32_t)len;
}

hn_status hn_tok_set_vocab(hn_tokenizer *tk, const char *const *pieces, const uint8_t *types, int32_t n,
                           const char *src) {
    if (n <= 0 || n > INT32_MAX / 2)
        return hn_fail(HN_ERR_FORMAT, "%s: the vocabulary has %d entries, expected 1 to %d", src, n, INT32_MAX / 2);
    tk->n_vocab = n;
    size_t piece_total = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t len = strlen(pieces[i]);
        if (len > 0xFFFF)
            return hn_fail(HN_ERR_FORMAT, "%s: vocabulary entry %d is %zu bytes long, expected at most 65535", src, i,
                           len);
        piece_total += len + 1;
    }
    if (piece_total > UINT32_MAX / 2)
        return hn_fail(HN_ERR_FORMAT, "%s: the vocabulary holds %zu bytes, expected under 2 GiB", src, piece_total);
    tk->pieces = hn_alloc(piece_total, "tokenizer pieces");
    tk->bytes = hn_alloc(piece_total + (size_t)n, "tokenizer bytes"); // at most one byte more than the entry (bert)
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
        size_t len = strlen(pieces[i]);
        tk->type[i] = types ? types[i] : HN_TT_NORMAL;
        tk->piece_off[i] = poff;
        memcpy(tk->pieces + poff, pieces[i], len + 1);
        poff += (uint32_t)len + 1;
        token_bytes_of(tk, i, pieces[i], len, u2b, &boff);
        tk->bytes_off[i + 1] = boff;

        uint64_t h = hash_bytes(pieces[i], len) & tk->piece_mask;
        while (tk->piece_slots[h]) {
            const char *q = tk->pieces + tk->piece_off[tk->piece_slots[h] - 1];
            if (strlen(q) == len && !memcmp(q, pieces[i], len)) break; // a duplicate entry: the first id wins
            h = (h + 1) & tk->piece_mask;
        }
        if (!tk->piece_slots[h]) tk->piece_slots[h] = (uint32_t)i + 1;
    }

    for (int b = 0; b < 256; b++) {
        char c[8];
        if (tk->kind == HN_TOKENIZER_GPT2) {
            tk->byte_id[b] = hn_tok_lookup(tk, c, (size_t)hn_utf8_put(b2u[b], c));
        } else {
            snprintf(c, sizeof c, "<0x%02X>", b);
            tk->byte_id[b] = hn_tok_lookup(tk, c, 6);
        }
    }
    return HN_OK;
}

hn_status hn_tok_alloc_merges(hn_tokenizer *tk, int64_t n) {
    if (n < 0 || n > INT32_MAX / 2)
        return hn_fail(HN_ERR_FORMAT, "tokenizer: %lld merges, expected fewer than %d", (long long)n, INT32_MAX / 2);
    free(tk->merges);
    tk->n_merges = 0;
    tk->merge_mask = table_size((uint64_t)n) - 1;
    tk->merges = hn_calloc(tk->merge_mask + 1, sizeof *tk->merges, "merge table");
    return tk->merges ? HN_OK : HN_ERR_NOMEM;
}

static void insert_merge(hn_tokenizer *tk, int32_t a, int32_t b, int32_t ab, int32_t rank) {
    uint64_t key = merge_key(a, b);
    uint64_t h = merge_hash(key) & tk->merge_mask;
    while (tk->merges[h].key && tk->merges[h].key != key) h = (h + 1) & tk->merge_mask;
    if (!tk->merges[h].key) { // a repeated pair keeps its first rank
        tk->merges[h] = (hn_merge_slot){key, rank, ab};
        tk->n_merges++;
    }
}

hn_status hn_tok_add_merge(hn_tokenizer *tk, const char *left, size_t ln, const char *right, size_t rn, int32_t rank,
                           const char *src, const char *field) {
    char small[512];
    char *both = ln + rn <= sizeof small ? small : hn_alloc(ln + rn, "merge buffer");
    if (!both) return HN_ERR_NOMEM;
    int32_t a = hn_tok_lookup(tk, left, ln), b = hn_tok_lookup(tk, right, rn);
    memcpy(both, left, ln);
    memcpy(both + ln, right, rn);
    int32_t ab = a >= 0 && b >= 0 ? hn_tok_lookup(tk, both, ln + rn) : -1;
    if (both != small) free(both);
    if (ab < 0) {
        const char *what = a < 0 ? "its left part" : b < 0 ? "its right part" : "the merged token";
        return hn_fail(HN_ERR_FORMAT, "%s: %s[%d] = \"%.*s %.*s\": %s is not in the vocabulary", src, field, rank,
                       (int)(ln > 40 ? 40 : ln), left, (int)(rn > 40 ? 40 : rn), right, what);
    }
    if ((uint64_t)tk->n_merges + 1 > (tk->merge_mask + 1) / 2) // the table was sized for fewer
        return hn_fail(HN_ERR_FORMAT, "%s: %s has more entries than were counted", src, field);
    insert_merge(tk, a, b, ab, rank);
    return HN_OK;
}

// llama.cpp's SentencePiece BPE merges the adjacent pair whose joined text is the highest-scoring token (leftmost on
// ties). The same order as merge ranks: every way of writing a normal token as two tokens is a merge, ranked by the
// token's score, best first.
static const float *g_scores; // qsort has no context argument
static int cmp_score(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (g_scores[x] != g_scores[y]) return g_scores[x] > g_scores[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

hn_status hn_tok_merges_from_scores(hn_tokenizer *tk) {
    int32_t n = tk->n_vocab;
    int32_t *order = hn_calloc((size_t)n, sizeof *order, "score order");
    if (!order) return HN_ERR_NOMEM;
    int64_t pairs = 0;
    for (int32_t i = 0; i < n; i++) {
        order[i] = i;
        pairs += (int64_t)strlen(tk->pieces + tk->piece_off[i]);
    }
    g_scores = tk->scores;
    if (tk->scores) qsort(order, (size_t)n, sizeof *order, cmp_score);
    hn_status s = hn_tok_alloc_merges(tk, pairs);
    for (int32_t r = 0; r < n && !s; r++) {
        int32_t id = order[r];
        if (tk->type[id] != HN_TT_NORMAL) continue;
        const char *p = tk->pieces + tk->piece_off[id];
        size_t len = strlen(p);
        for (size_t k = 1; k < len; k++) {
            if (((uint8_t)p[k] & 0xC0) == 0x80) continue; // splits fall between characters
            int32_t a = hn_tok_lookup(tk, p, k), b = hn_tok_lookup(tk, p + k, len - k);
            if (a >= 0 && b >= 0 && tk->type[a] != HN_TT_CONTROL && tk->type[b] != HN_TT_CONTROL)
                insert_merge(tk, a, b, id, r);
        }
    }
    free(order);
    return s;
}

static int cmp_special(const void *a, const void *b) {
    const hn_special *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

// Tokens matched in the text before it is split: control and unknown tokens (only with HN_TOK_SPECIAL) and
// user-defined tokens (always), as Hugging Face's added tokens are and as llama.cpp matches them. Longest first, so
// that the first match at a position is the longest.
static bool matched_in_text(uint8_t type) {
    return type == HN_TT_CONTROL || type == HN_TT_USER || type == HN_TT_UNKNOWN;
}

static hn_status load_special(hn_tokenizer *tk) {
    int n = 0;
    for (int32_t i = 0; i < tk->n_vocab; i++)
        n += matched_in_text(tk->type[i]) && tk->bytes_off[i + 1] > tk->bytes_off[i];
    free(tk->special);
    tk->n_special = 0;
    memset(tk->special_first, 0, sizeof tk->special_first);
    tk->special = hn_calloc(n ? (size_t)n : 1, sizeof *tk->special, "special tokens");
    if (!tk->special) return HN_ERR_NOMEM;
    for (int32_t i = 0; i < tk->n_vocab; i++) {
        uint32_t len = tk->bytes_off[i + 1] - tk->bytes_off[i];
        if (!matched_in_text(tk->type[i]) || !len) continue;
        tk->special[tk->n_special++] = (hn_special){i, len, tk->bytes + tk->bytes_off[i]};
        tk->special_first[tk->bytes[tk->bytes_off[i]]] = true;
    }
    qsort(tk->special, (size_t)tk->n_special, sizeof *tk->special, cmp_special);
    return HN_OK;
}

hn_status hn_tok_finish(hn_tokenizer *tk) {
    // End of generation: eos and the end-of-turn tokens of the common chat formats when the vocabulary has them as
    // non-normal tokens (the GGUF loader adds the file's eot/eom ids).
    static const char *names[] = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end|>",
                                  "<end_of_turn>", "<|end_of_text|>", "<EOT>"};
    if (tk->eos >= 0) tk->eog[tk->eos] = 1;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        int32_t id = hn_tok_lookup(tk, names[k], strlen(names[k]));
        if (id >= 0 && tk->type[id] != HN_TT_NORMAL) tk->eog[id] = 1;
    }
    hn_status s = load_special(tk);
    return s ? s : hn_bpe_compile(tk);
}

// ---- GGUF ----

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

static const hn_gguf_kv *string_array(const hn_gguf *g, const char *key, const char *model, hn_status *s) {
    const hn_gguf_kv *kv = hn_gguf_find(g, key);
    *s = HN_OK;
    if (!kv) {
        *s = hn_fail(HN_ERR_FORMAT, "%s: %s is missing (a %s tokenizer needs it)", path_of(g), key, model);
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

// tokenizer.ggml.tokens (+ token_type, scores) into the vocabulary. A bert vocabulary is written llama.cpp's way
// ("▁word" starts a word, "ing" continues one); it is turned back into WordPiece's ("word", "##ing").
static hn_status load_vocab(hn_tokenizer *tk, const hn_gguf *g, const char *model) {
    hn_status s;
    const hn_gguf_kv *tokens = string_array(g, "tokenizer.ggml.tokens", model, &s);
    if (!tokens) return s;
    if (tokens->arr_n == 0 || tokens->arr_n > INT32_MAX / 2)
        return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries, expected 1 to %d", path_of(g),
                       (unsigned long long)tokens->arr_n, INT32_MAX / 2);
    int32_t n = (int32_t)tokens->arr_n;
    const hn_gguf_kv *types = hn_gguf_find(g, "tokenizer.ggml.token_type");
    if (types && (types->type != HN_GGUF_ARRAY || !is_int_type(types->arr_type)))
        return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.token_type has type %s, expected an array of integers",
                       path_of(g), hn_gguf_type_name(types->type == HN_GGUF_ARRAY ? types->arr_type : types->type));
    if (types && types->arr_n != tokens->arr_n)
        return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.token_type has %llu entries, expected %d (one per token)",
                       path_of(g), (unsigned long long)types->arr_n, n);
    const hn_gguf_kv *scores = hn_gguf_find(g, "tokenizer.ggml.scores");
    if (scores && (scores->type != HN_GGUF_ARRAY || scores->arr_type != HN_GGUF_F32 || scores->arr_n != tokens->arr_n))
        return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.scores is not an array of %d f32", path_of(g), n);

    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        hn_gguf_str p = hn_gguf_arr_str(tokens, (uint64_t)i);
        if (p.len > 0xFFFF)
            return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%d] is %llu bytes long, expected at most 65535",
                           path_of(g), i, (unsigned long long)p.len);
        if (memchr(p.str, '\0', p.len))
            return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%d] contains a NUL byte", path_of(g), i);
        total += p.len + 3;
    }
    char *buf = hn_alloc(total, "token strings");
    const char **pieces = hn_calloc((size_t)n, sizeof *pieces, "token list");
    uint8_t *tt = hn_calloc((size_t)n, 1, "token types");
    tk->scores = scores ? hn_calloc((size_t)n, sizeof *tk->scores, "token scores") : NULL;
    if (!buf || !pieces || !tt || (scores && !tk->scores)) {
        s = HN_ERR_NOMEM;
        goto done;
    }
    size_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        hn_gguf_str p = hn_gguf_arr_str(tokens, (uint64_t)i);
        double t = types ? hn_gguf_arr_num(types, (uint64_t)i) : HN_TT_NORMAL;
        if (t < 0 || t > HN_TT_BYTE) {
            s = hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.token_type[%d] = %g, expected 0 to 6", path_of(g), i, t);
            goto done;
        }
        tt[i] = (uint8_t)t;
        if (scores) tk->scores[i] = (float)hn_gguf_arr_num(scores, (uint64_t)i);
        pieces[i] = buf + off;
        if (tk->kind == HN_TOKENIZER_BERT && tt[i] != HN_TT_CONTROL) {
            if (p.len >= 3 && !memcmp(p.str, "\xE2\x96\x81", 3)) {
                p.str += 3;
                p.len -= 3;
            } else {
                memcpy(buf + off, "##", 2);
                off += 2;
            }
        }
        memcpy(buf + off, p.str, p.len);
        off += p.len;
        buf[off++] = '\0';
    }
    s = hn_tok_set_vocab(tk, pieces, tt, n, path_of(g));
done:
    free(buf);
    free(pieces);
    free(tt);
    return s;
}

static hn_status load_merges(hn_tokenizer *tk, const hn_gguf *g, const char *model) {
    hn_status s;
    const hn_gguf_kv *merges = string_array(g, "tokenizer.ggml.merges", model, &s);
    if (!merges) return s;
    if ((s = hn_tok_alloc_merges(tk, (int64_t)(merges->arr_n > INT32_MAX ? INT32_MAX : merges->arr_n)))) return s;
    for (int32_t r = 0; r < (int32_t)merges->arr_n; r++) {
        hn_gguf_str m = hn_gguf_arr_str(merges, (uint64_t)r);
        // "left right": the alphabet has no plain space (it is written "Ġ" or "▁"), so the first space after the
        // first byte separates the two.
        const char *sp = m.len > 1 ? memchr(m.str + 1, ' ', m.len - 1) : NULL;
        size_t ln = sp ? (size_t)(sp - m.str) : 0, rn = sp ? m.len - ln - 1 : 0;
        if (!sp || rn == 0)
            return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.merges[%d] = \"%.*s\", expected \"LEFT RIGHT\"",
                           path_of(g), r, (int)(m.len > 64 ? 64 : m.len), m.str);
        if ((s = hn_tok_add_merge(tk, m.str, ln, sp + 1, rn, r, path_of(g), "tokenizer.ggml.merges"))) return s;
    }
    return HN_OK;
}

// The split regexes of the llama.cpp pre-tokenizer names hone knows, in Oniguruma's syntax as tokenizer.json writes
// them (io/bpe.c translates them for PCRE2).
static const char llama3_pattern[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char qwen2_pattern[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                                    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static hn_status add_split(hn_tokenizer *tk, const char *pattern) {
    hn_pre_step *p = &tk->pre[tk->n_pre++];
    *p = (hn_pre_step){.kind = HN_PRE_SPLIT, .pattern = strdup(pattern)};
    return p->pattern ? HN_OK : hn_fail(HN_ERR_NOMEM, "out of memory");
}

static hn_status gguf_pre(hn_tokenizer *tk, const hn_gguf *g) {
    hn_gguf_str pre;
    hn_status s = hn_gguf_get_str(g, "tokenizer.ggml.pre", &pre);
    if (s == HN_ERR_NOTFOUND) {
        hn_warn("%s: no tokenizer.ggml.pre; using the GPT-2 pre-tokenizer", path_of(g));
        pre = (hn_gguf_str){"gpt2", 4};
    } else if (s) {
        return s;
    }
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(pre.len < 31 ? pre.len : 31), pre.str);
    if (!strcmp(name, "smollm")) {
        if ((s = add_split(tk, "\\p{N}"))) return s;
        s = add_split(tk, hn_gpt2_split_pattern);
    } else if (!strcmp(name, "gpt2") || !strcmp(name, "gpt-2") || !strcmp(name, "default")) {
        s = add_split(tk, hn_gpt2_split_pattern);
    } else if (!strcmp(name, "llama-bpe") || !strcmp(name, "llama3")) {
        s = add_split(tk, llama3_pattern);
        tk->ignore_merges = true;
    } else if (!strcmp(name, "qwen2")) {
        s = add_split(tk, qwen2_pattern);
    } else {
        return hn_fail(HN_ERR_UNSUPPORTED,
                       "%s: tokenizer.ggml.pre = \"%.*s\" (hone knows \"smollm\", \"gpt2\", \"llama-bpe\", \"qwen2\")",
                       path_of(g), (int)(pre.len > 64 ? 64 : pre.len), pre.str);
    }
    if (!s && !(tk->pre_name = strdup(name))) s = hn_fail(HN_ERR_NOMEM, "out of memory");
    return s;
}

static hn_status optional_bool(const hn_gguf *g, const char *key, bool *out) {
    return hn_gguf_find(g, key) ? hn_gguf_get_bool(g, key, out) : HN_OK;
}

static hn_status load(hn_tokenizer *tk, const hn_gguf *g) {
    hn_gguf_str model;
    hn_status s = hn_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (s == HN_ERR_NOTFOUND) return hn_fail(HN_ERR_FORMAT, "%s: tokenizer.ggml.model is missing", path_of(g));
    if (s) return s;
    const char *m = NULL;
    if (model.len == 4 && !memcmp(model.str, "gpt2", 4)) tk->kind = HN_TOKENIZER_GPT2, m = "gpt2";
    else if (model.len == 5 && !memcmp(model.str, "llama", 5)) tk->kind = HN_TOKENIZER_LLAMA, m = "llama";
    else if (model.len == 4 && !memcmp(model.str, "bert", 4)) tk->kind = HN_TOKENIZER_BERT, m = "bert";
    else
        return hn_fail(HN_ERR_UNSUPPORTED,
                       "%s: tokenizer.ggml.model = \"%.*s\" (hone reads \"gpt2\", \"llama\" and \"bert\")", path_of(g),
                       (int)(model.len > 64 ? 64 : model.len), model.str);
    strcpy(tk->wp_prefix, "##");
    tk->wp_max_chars = 100;
    if (tk->kind == HN_TOKENIZER_GPT2 && (s = gguf_pre(tk, g))) return s;
    if ((s = load_vocab(tk, g, m))) return s;
    if (tk->kind == HN_TOKENIZER_GPT2 || (tk->kind == HN_TOKENIZER_LLAMA && hn_gguf_find(g, "tokenizer.ggml.merges")))
        s = load_merges(tk, g, m);
    else if (tk->kind == HN_TOKENIZER_LLAMA)
        s = hn_tok_merges_from_scores(tk), tk->merges_from_scores = true;
    if (s) return s;
    if ((s = optional_id(g, "tokenizer.ggml.bos_token_id", tk->n_vocab, &tk->bos)) ||
        (s = optional_id(g, "tokenizer.ggml.eos_token_id", tk->n_vocab, &tk->eos)) ||
        (s = optional_id(g, "tokenizer.ggml.unknown_token_id", tk->n_vocab, &tk->unk)) ||
        (s = optional_id(g, "tokenizer.ggml.seperator_token_id", tk->n_vocab, &tk->sep)) ||
        (s = optional_id(g, "tokenizer.ggml.padding_token_id", tk->n_vocab, &tk->pad)) ||
        (s = optional_id(g, "tokenizer.ggml.cls_token_id", tk->n_vocab, &tk->cls)) ||
        (s = optional_id(g, "tokenizer.ggml.mask_token_id", tk->n_vocab, &tk->mask)))
        return s;
    // llama.cpp's defaults: SentencePiece adds BOS; BERT frames with [CLS] (its "bos") and [SEP].
    tk->add_bos = tk->kind != HN_TOKENIZER_GPT2;
    tk->add_eos = tk->kind == HN_TOKENIZER_BERT;
    if ((s = optional_bool(g, "tokenizer.ggml.add_bos_token", &tk->add_bos)) ||
        (s = optional_bool(g, "tokenizer.ggml.add_eos_token", &tk->add_eos)))
        return s;
    if (tk->kind == HN_TOKENIZER_BERT) {
        // llama.cpp frames every BERT sequence as bos ... seperator whatever add_bos/add_eos say (add_sep_token is
        // about pairs), and calls [CLS] bos; hone keeps bos for decoders.
        tk->add_bos = tk->add_eos = true;
        if (tk->cls < 0) tk->cls = tk->bos;
        if (tk->sep < 0) tk->sep = tk->eos;
        tk->bos = tk->eos = -1;
        bool lower = true;
        if ((s = optional_bool(g, "tokenizer.ggml.normalizer.lowercase", &lower))) return s;
        tk->norm[tk->n_norm++] = (hn_norm_step){HN_NORM_BERT, true, true, lower, lower, NULL, NULL};
        tk->pre[tk->n_pre++] = (hn_pre_step){.kind = HN_PRE_BERT};
    }
    if (tk->kind == HN_TOKENIZER_LLAMA) {
        // SentencePiece as llama.cpp runs it: a space before every piece of text (at the start and after each
        // special token; add_space_prefix), spaces as "▁" — the Prepend + Replace normaliser of Llama 2's file.
        bool prefix = true;
        if ((s = optional_bool(g, "tokenizer.ggml.add_space_prefix", &prefix))) return s;
        char *sp = strdup("\xE2\x96\x81"), *sp2 = strdup("\xE2\x96\x81"), *space = strdup(" ");
        if (!sp || !sp2 || !space) {
            free(sp), free(sp2), free(space);
            return hn_fail(HN_ERR_NOMEM, "out of memory");
        }
        if (prefix) tk->norm[tk->n_norm++] = (hn_norm_step){.kind = HN_NORM_PREPEND, .to = sp};
        else free(sp);
        tk->norm[tk->n_norm++] = (hn_norm_step){.kind = HN_NORM_REPLACE, .from = space, .to = sp2};
        tk->byte_fallback = tk->fuse_unk = true;
        tk->strip_space = prefix;
    }
    int32_t id;
    if ((s = optional_id(g, "tokenizer.ggml.eot_token_id", tk->n_vocab, &id))) return s;
    if (id >= 0) tk->eog[id] = 1;
    if ((s = optional_id(g, "tokenizer.ggml.eom_token_id", tk->n_vocab, &id))) return s;
    if (id >= 0) tk->eog[id] = 1;
    hn_gguf_str tmpl;
    if (hn_gguf_find(g, "tokenizer.chat_template") && !hn_gguf_get_str(g, "tokenizer.chat_template", &tmpl) &&
        !(tk->chat_template = strndup(tmpl.str, tmpl.len)))
        return hn_fail(HN_ERR_NOMEM, "out of memory");
    return hn_tok_finish(tk);
}

hn_tokenizer *hn_tok_new(void) {
    hn_tokenizer *tk = hn_calloc(1, sizeof *tk, "tokenizer");
    if (!tk) return NULL;
    tk->bos = tk->eos = tk->unk = tk->cls = tk->sep = tk->pad = tk->mask = -1;
    return tk;
}

hn_status hn_tokenizer_from_gguf(hn_tokenizer **out, const hn_gguf *g) {
    *out = NULL;
    hn_tokenizer *tk = hn_tok_new();
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
    free(tk->scores);
    free(tk->piece_slots);
    free(tk->merges);
    free(tk->special);
    free(tk->pre_name);
    free(tk->chat_template);
    for (int i = 0; i < tk->n_norm; i++) {
        free(tk->norm[i].from);
        free(tk->norm[i].to);
    }
    for (int i = 0; i < tk->n_pre; i++) {
        pcre2_code_free(tk->pre[i].re);
        free(tk->pre[i].pattern);
    }
    free(tk);
}

int hn_tokenizer_token_bytes(const hn_tokenizer *tk, int32_t id, char *buf, int cap) {
    if (id < 0 || id >= tk->n_vocab) return -1;
    uint32_t n = tk->bytes_off[id + 1] - tk->bytes_off[id];
    if (cap > 0) memcpy(buf, tk->bytes + tk->bytes_off[id], n < (uint32_t)cap ? n : (size_t)cap);
    return (int)n;
}

// Hugging Face's WordPiece decoder (prefix "##", cleanup on): a token after the first is " " + token, or itself less
// the prefix when it continues a word; then each token is cleaned up: the space before . ? ! , goes, and so on.
static size_t wordpiece_token(const hn_tokenizer *tk, int32_t id, bool first, char *out) {
    const char *p = tk->pieces + tk->piece_off[id];
    size_t pl = strlen(tk->wp_prefix), n = 0;
    if (first) n = (size_t)sprintf(out, "%s", p);
    else if (pl && !strncmp(p, tk->wp_prefix, pl)) n = (size_t)sprintf(out, "%s", p + pl);
    else n = (size_t)sprintf(out, " %s", p);
    static const char *from[] = {" .", " ?", " !", " ,", " ' ", " n't", " 'm", " do not", " 's", " 've", " 're"};
    static const char *to[] = {".", "?", "!", ",", "'", "n't", "'m", " don't", "'s", "'ve", "'re"};
    for (size_t r = 0; r < sizeof from / sizeof from[0]; r++) { // each a replace-all over the token, in this order
        size_t fl = strlen(from[r]), tl = strlen(to[r]), o = 0;
        for (size_t i = 0; i < n;) {
            if (i + fl <= n && !memcmp(out + i, from[r], fl)) {
                memcpy(out + o, to[r], tl); // never longer than what it replaces, so in place
                o += tl, i += fl;
            } else {
                out[o++] = out[i++];
            }
        }
        n = o;
    }
    return n;
}

hn_status hn_tokenizer_decode(const hn_tokenizer *tk, const int32_t *ids, int64_t n, char **out) {
    *out = NULL;
    size_t total = 1;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tk->n_vocab)
            return hn_fail(HN_ERR_ARG, "decode: token %lld is %d, expected 0 to %d", (long long)i, ids[i],
                           tk->n_vocab - 1);
        total += tk->bytes_off[ids[i] + 1] - tk->bytes_off[ids[i]] + 8; // room for a space or a "##" prefix (bert)
    }
    char *s = hn_alloc(total, "decoded text");
    if (!s) return HN_ERR_NOMEM;
    size_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (tk->kind == HN_TOKENIZER_BERT) {
            k += wordpiece_token(tk, ids[i], i == 0, s + k);
            continue;
        }
        uint32_t len = tk->bytes_off[ids[i] + 1] - tk->bytes_off[ids[i]];
        const uint8_t *b = tk->bytes + tk->bytes_off[ids[i]];
        // SentencePiece: the space of the "▁" the normaliser prepended is dropped (its Strip decoder)
        bool first = i == 0 && len && b[0] == ' ' && tk->type[ids[i]] == HN_TT_NORMAL;
        if (first && tk->strip_space) b++, len--;
        memcpy(s + k, b, len);
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
hn_tokenizer_kind hn_tokenizer_kind_of(const hn_tokenizer *tk) { return tk->kind; }
int32_t hn_tokenizer_bos(const hn_tokenizer *tk) { return tk->bos; }
int32_t hn_tokenizer_eos(const hn_tokenizer *tk) { return tk->eos; }
int32_t hn_tokenizer_cls(const hn_tokenizer *tk) { return tk->cls; }
int32_t hn_tokenizer_sep(const hn_tokenizer *tk) { return tk->sep; }
int32_t hn_tokenizer_pad(const hn_tokenizer *tk) { return tk->pad; }
int32_t hn_tokenizer_unk(const hn_tokenizer *tk) { return tk->unk; }
int32_t hn_tokenizer_mask(const hn_tokenizer *tk) { return tk->mask; }
const char *hn_tokenizer_chat_template(const hn_tokenizer *tk) { return tk->chat_template; }
bool hn_tokenizer_wants_bos(const hn_tokenizer *tk) { return tk->add_bos && tk->bos >= 0; }
bool hn_tokenizer_is_eog(const hn_tokenizer *tk, int32_t id) { return id >= 0 && id < tk->n_vocab && tk->eog[id]; }
bool hn_tokenizer_is_control(const hn_tokenizer *tk, int32_t id) {
    return id >= 0 && id < tk->n_vocab && tk->type[id] == HN_TT_CONTROL;
}

int32_t hn_tokenizer_find(const hn_tokenizer *tk, const char *piece) {
    return piece ? hn_tok_lookup(tk, piece, strlen(piece)) : -1;
}
