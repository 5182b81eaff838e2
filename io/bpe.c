// io/bpe.c — encoding with a byte-level BPE tokenizer, the way Hugging Face `tokenizers` does for SmolLM2:
//
//   1. special tokens: control tokens (with HN_TOK_SPECIAL) and user-defined tokens (always) are cut out of the text
//      first, leftmost-longest, as Hugging Face's added tokens are;
//   2. pre-tokenizer `smollm` = Digits(individual_digits=true): every \p{N} character is its own piece; then the
//      GPT-2 split pattern on each remaining piece (ByteLevel with use_regex=true and no prefix space);
//   3. each piece's bytes start as one symbol each (their byte-alphabet tokens) and are merged, lowest merge rank
//      first (leftmost on ties), with a binary heap and a linked list: O(n log n) in the piece length.
//
// Invalid UTF-8 (Hugging Face's encode takes only valid text): every maximal invalid subsequence — a byte that cannot
// start a sequence, or a lead byte with the continuation bytes that were valid so far — becomes U+FFFD, the
// replacement character, before anything else. That is what Python's bytes.decode("utf-8", "replace") (and the
// WHATWG decoder) does, so hone's ids equal Hugging Face's ids for the text a lossy decode gives; the golden tests
// check this. Consequence: decode(encode(s)) == s only for valid UTF-8.
//
// A byte whose byte-alphabet token is missing from the vocabulary is dropped, as Hugging Face's BPE does when the
// model has no unk token, and as llama.cpp does. SmolLM2's vocabulary lacks the bytes 0x04 0x06 0x13 0x14 0x16 0x1D
// 0xC0 0xC1 and 0xF1 0xF2 0xF5-0xFF, so text with those control characters, or with code points U+40000-U+BFFFF
// (whose lead byte is 0xF1 or 0xF2), does not round-trip.
#include "io/tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

// Oniguruma's \s (what `tokenizers` uses): \t \n \v \f \r, space, U+0085 and the Z categories. PCRE2's own \s
// differs (no U+0085), so the class is spelled out.
#define WS "\\x{09}-\\x{0D}\\x{20}\\x{85}\\p{Z}"
static const char split_pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+"
                                    "|[" WS "]+(?![^" WS "])|[" WS "]+";

static pcre2_code *compile(const char *pattern, const char *what) {
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        hn_fail(HN_ERR_UNSUPPORTED, "tokenizer: PCRE2 cannot compile the %s pattern at offset %zu: %s", what,
                (size_t)off, (const char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); // without JIT support pcre2_match interprets: slower, same result
    return re;
}

hn_status hn_bpe_compile(hn_tokenizer *tk) {
    if (!(tk->re_split = compile(split_pattern, "GPT-2 split"))) return HN_ERR_UNSUPPORTED;
    if (tk->digits && !(tk->re_digit = compile("\\p{N}", "digit"))) return HN_ERR_UNSUPPORTED;
    return HN_OK;
}

typedef struct {
    int32_t id; // -1 once merged into the symbol on its left
    int32_t prev, next;
} bpe_sym;

typedef struct {
    int32_t rank, pos, id;
} bpe_cand;

typedef struct {
    const hn_tokenizer *tk;
    int32_t *ids;
    int64_t n, cap;
    bpe_sym *sym;
    bpe_cand *heap;
    size_t sym_cap;
    int nheap;
    pcre2_match_data *md;
} enc;

static hn_status push(enc *e, int32_t id) {
    if (e->n == e->cap) {
        int64_t cap = e->cap ? 2 * e->cap : 64;
        int32_t *p = realloc(e->ids, (size_t)cap * sizeof *p);
        if (!p) return hn_fail(HN_ERR_NOMEM, "out of memory growing the token list to %lld ids", (long long)cap);
        e->ids = p;
        e->cap = cap;
    }
    e->ids[e->n++] = id;
    return HN_OK;
}

static bool cand_less(bpe_cand a, bpe_cand b) { return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos; }

static void heap_push(enc *e, bpe_cand c) {
    int i = e->nheap++;
    while (i > 0 && cand_less(c, e->heap[(i - 1) / 2])) {
        e->heap[i] = e->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    e->heap[i] = c;
}

static bpe_cand heap_pop(enc *e) {
    bpe_cand top = e->heap[0], last = e->heap[--e->nheap];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= e->nheap) break;
        if (c + 1 < e->nheap && cand_less(e->heap[c + 1], e->heap[c])) c++;
        if (!cand_less(e->heap[c], last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (e->nheap) e->heap[i] = last;
    return top;
}

static void consider(enc *e, int32_t left) {
    int32_t right = e->sym[left].next, rank;
    int32_t id = hn_bpe_merge_find(e->tk, e->sym[left].id, e->sym[right].id, &rank);
    if (id >= 0) heap_push(e, (bpe_cand){rank, left, id});
}

// One pre-token: bytes → byte-alphabet symbols → merges → ids.
static hn_status bpe(enc *e, const uint8_t *s, size_t len) {
    if (len == 1) return e->tk->byte_id[s[0]] >= 0 ? push(e, e->tk->byte_id[s[0]]) : HN_OK;
    if (len > e->sym_cap) {
        size_t cap = len > 2 * e->sym_cap ? len : 2 * e->sym_cap;
        if (cap > INT32_MAX / 3) return hn_fail(HN_ERR_RANGE, "tokenizer: a %zu-byte word is too long", len);
        free(e->sym);
        free(e->heap);
        e->sym = hn_alloc(cap * sizeof *e->sym, "BPE symbols");
        e->heap = hn_alloc(3 * cap * sizeof *e->heap, "BPE merge queue"); // n - 1 pairs + 2 per merge
        e->sym_cap = e->sym && e->heap ? cap : 0;
        if (!e->sym_cap) return HN_ERR_NOMEM;
    }
    int32_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = e->tk->byte_id[s[i]];
        if (id < 0) continue; // a byte the vocabulary lacks: dropped (see the top of this file)
        e->sym[n] = (bpe_sym){id, n - 1, n + 1};
        n++;
    }
    if (!n) return HN_OK;
    e->sym[n - 1].next = -1;
    e->nheap = 0;
    for (int32_t i = 0; i + 1 < n; i++) consider(e, i);
    while (e->nheap) {
        bpe_cand c = heap_pop(e);
        bpe_sym *l = &e->sym[c.pos];
        if (l->id < 0 || l->next < 0) continue;
        int32_t rank, id = hn_bpe_merge_find(e->tk, l->id, e->sym[l->next].id, &rank);
        if (id != c.id) continue; // stale: one side has been merged since this pair was queued
        bpe_sym *r = &e->sym[l->next];
        l->id = c.id;
        r->id = -1;
        l->next = r->next;
        if (l->next >= 0) e->sym[l->next].prev = c.pos;
        if (l->prev >= 0) consider(e, l->prev);
        if (l->next >= 0) consider(e, c.pos);
    }
    for (int32_t i = 0; i >= 0; i = e->sym[i].next) { // symbol 0 is always alive: merges keep the left symbol
        hn_status st = push(e, e->sym[i].id);
        if (st) return st;
    }
    return HN_OK;
}

// The next match of re in s[0..len) at or after pos: HN_OK with *ms, *me set, or HN_ERR_NOTFOUND when none.
static hn_status next_match(enc *e, const pcre2_code *re, const uint8_t *s, size_t len, size_t pos, size_t *ms,
                            size_t *me) {
    int rc = pcre2_match(re, s, len, pos, PCRE2_NO_UTF_CHECK, e->md, NULL);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) // e.g. the JIT stack limit: the interpreter has none
        rc = pcre2_match(re, s, len, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, e->md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) return HN_ERR_NOTFOUND;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return hn_fail(HN_ERR_RANGE, "tokenizer: PCRE2 match failed at byte %zu: %s", pos, (const char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
    *ms = ov[0];
    *me = ov[1];
    if (*me <= *ms) { // the pattern has no empty matches; guard anyway by taking one character
        *me = *ms + 1;
        while (*me < len && (s[*me] & 0xC0) == 0x80) (*me)++;
    }
    return HN_OK;
}

// The GPT-2 split of one piece; text the pattern does not cover (none, for valid UTF-8) is kept as its own piece.
static hn_status split(enc *e, const uint8_t *s, size_t len) {
    size_t pos = 0, ms, me;
    hn_status st = HN_OK;
    while (pos < len && !st) {
        st = next_match(e, e->tk->re_split, s, len, pos, &ms, &me);
        if (st == HN_ERR_NOTFOUND) return bpe(e, s + pos, len - pos);
        if (!st && ms > pos) st = bpe(e, s + pos, ms - pos);
        if (!st) st = bpe(e, s + ms, me - ms);
        pos = me;
    }
    return st;
}

// Text between special tokens: digits first (smollm), then the split pattern on what lies between them.
static hn_status pretokenize(enc *e, const uint8_t *s, size_t len) {
    if (!e->tk->digits) return split(e, s, len);
    size_t pos = 0, ms, me;
    hn_status st = HN_OK;
    while (pos < len && !st) {
        // ASCII digits are the common case; other \p{N} characters are left to PCRE2.
        size_t k = pos;
        while (k < len && s[k] < 0x80 && !(s[k] >= '0' && s[k] <= '9')) k++;
        if (k < len && s[k] < 0x80) {
            ms = k;
            me = k + 1;
        } else if (k < len) {
            st = next_match(e, e->tk->re_digit, s, len, k, &ms, &me);
            if (st == HN_ERR_NOTFOUND) return split(e, s + pos, len - pos);
            if (st) return st;
        } else {
            return split(e, s + pos, len - pos);
        }
        if (ms > pos) st = split(e, s + pos, ms - pos);
        if (!st) st = bpe(e, s + ms, me - ms);
        pos = me;
    }
    return st;
}

// Length of the valid UTF-8 sequence at s (1 to 4), or 0 with *bad = the length of the maximal invalid subpart
// (Unicode's "best practice" for U+FFFD substitution, W3C/WHATWG and Python alike).
static int utf8_seq(const uint8_t *s, size_t n, size_t *bad) {
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    int need;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else {
        *bad = 1;
        return 0;
    }
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n || s[i] < lo || s[i] > hi) {
            *bad = (size_t)i;
            return 0;
        }
        lo = 0x80, hi = 0xBF;
    }
    return need + 1;
}

// NULL when text is valid UTF-8; otherwise a malloc'd copy with U+FFFD for each maximal invalid subpart.
static hn_status sanitize(const uint8_t *text, size_t len, uint8_t **out, size_t *out_len) {
    *out = NULL;
    size_t i = 0, bad;
    while (i < len) {
        if (text[i] < 0x80) i++;
        else {
            int k = utf8_seq(text + i, len - i, &bad);
            if (!k) break;
            i += (size_t)k;
        }
    }
    if (i == len) return HN_OK;
    size_t cap;
    if (!hn_mul_ok(len, 3, &cap)) return hn_fail(HN_ERR_RANGE, "tokenizer: text of %zu bytes is too long", len);
    uint8_t *s = hn_alloc(cap, "sanitized text");
    if (!s) return HN_ERR_NOMEM;
    memcpy(s, text, i);
    size_t o = i;
    while (i < len) {
        int k = utf8_seq(text + i, len - i, &bad);
        if (k) {
            memcpy(s + o, text + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(s + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += bad;
        }
    }
    *out = s;
    *out_len = o;
    return HN_OK;
}

// The special token that starts at s (the longest), or NULL.
static const hn_special *special_at(const hn_tokenizer *tk, const uint8_t *s, size_t left, int flags) {
    for (int k = 0; k < tk->n_special; k++) {
        const hn_special *sp = &tk->special[k];
        if (sp->len <= left && sp->text[0] == s[0] && !memcmp(sp->text, s, sp->len) &&
            (tk->type[sp->id] != HN_TT_CONTROL || (flags & HN_TOK_SPECIAL)))
            return sp;
    }
    return NULL;
}

static hn_status encode(enc *e, const uint8_t *s, size_t len, int flags) {
    const hn_tokenizer *tk = e->tk;
    hn_status st = HN_OK;
    if ((flags & HN_TOK_ADD_BOS) && tk->add_bos && tk->bos >= 0 && (st = push(e, tk->bos))) return st;
    size_t start = 0;
    for (size_t i = 0; i < len && !st;) {
        const hn_special *sp = tk->special_first[s[i]] ? special_at(tk, s + i, len - i, flags) : NULL;
        if (!sp) {
            i++;
            continue;
        }
        if (i > start) st = pretokenize(e, s + start, i - start);
        if (!st) st = push(e, sp->id);
        i += sp->len;
        start = i;
    }
    if (!st && start < len) st = pretokenize(e, s + start, len - start);
    return st;
}

hn_status hn_tokenizer_encode(const hn_tokenizer *tk, const char *text, int64_t len, int flags, int32_t **ids,
                              int64_t *n) {
    *ids = NULL;
    *n = 0;
    if (!text && len) return hn_fail(HN_ERR_ARG, "tokenizer: encode was given no text");
    size_t ulen = len < 0 ? strlen(text) : (size_t)len;
    uint8_t *clean;
    size_t clean_len = ulen;
    hn_status st = sanitize((const uint8_t *)text, ulen, &clean, &clean_len);
    if (st) return st;
    enc e = {.tk = tk};
    e.md = pcre2_match_data_create_from_pattern(tk->re_split, NULL);
    if (!e.md) st = hn_fail(HN_ERR_NOMEM, "tokenizer: out of memory for PCRE2 match data");
    if (!st) st = encode(&e, clean ? clean : (const uint8_t *)text, clean_len, flags);
    if (!st && !e.ids) st = push(&e, 0), e.n = 0; // an empty result is still a valid allocation
    pcre2_match_data_free(e.md);
    free(e.sym);
    free(e.heap);
    free(clean);
    if (st) {
        free(e.ids);
        return st;
    }
    *ids = e.ids;
    *n = e.n;
    return HN_OK;
}
