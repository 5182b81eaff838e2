// io/bpe.c — encoding: the pipeline every tokenizer shares, and the two BPE models. As Hugging Face `tokenizers`:
//
//   1. special tokens: control and unknown tokens (with HN_TOK_SPECIAL) and user-defined tokens (always) are cut out
//      of the text first, leftmost-longest, as Hugging Face's added tokens are;
//   2. each piece of text between them is normalised (io/wordpiece.c: BERT's normaliser, Prepend, Replace, NFC...);
//   3. pre-tokenizer steps split it further, each step splitting every piece of the one before: regex splits (the
//      GPT-2 pattern of ByteLevel, the Split steps of tokenizer.json, SmolLM2's digits) through PCRE2, Metaspace,
//      BERT's whitespace and punctuation split;
//   4. the model turns each final piece into ids:
//      gpt2  the piece's bytes start as one symbol each (their byte-alphabet tokens) and are merged, lowest merge
//            rank first (leftmost on ties), with a binary heap and a linked list: O(n log n) in the piece length;
//      llama the same merge loop over characters: a character without a token becomes its <0xXX> byte tokens
//            (byte_fallback), or unk (consecutive unks fused into one);
//      bert  WordPiece (io/wordpiece.c).
//   5. the post-processor's framing: BOS / [CLS] first, EOS / [SEP] last (HN_TOK_ADD_BOS, HN_TOK_ADD_SPECIAL).
//
// Invalid UTF-8 (Hugging Face's encode takes only valid text): every maximal invalid subsequence — a byte that cannot
// start a sequence, or a lead byte with the continuation bytes that were valid so far — becomes U+FFFD, the
// replacement character, before anything else. That is what Python's bytes.decode("utf-8", "replace") (and the
// WHATWG decoder) does, so hone's ids equal Hugging Face's ids for the text a lossy decode gives; the golden tests
// check this. Consequence: decode(encode(s)) == s only for valid UTF-8.
//
// gpt2: a byte whose byte-alphabet token is missing from the vocabulary is dropped, as Hugging Face's BPE does when
// the model has no unk token, and as llama.cpp does (with a tokenizer.json unk_token it becomes unk, as there).
// SmolLM2's vocabulary lacks the bytes 0x04 0x06 0x13 0x14 0x16 0x1D 0xC0 0xC1 and 0xF1 0xF2 0xF5-0xFF, so text with
// those control characters, or with code points U+40000-U+BFFFF (whose lead byte is 0xF1 or 0xF2), does not
// round-trip.
#include "io/tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

// GPT-2's split pattern as tokenizer.json's ByteLevel applies it (Oniguruma syntax).
const char hn_gpt2_split_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// Oniguruma's \s (what `tokenizers` uses): \t \n \v \f \r, space, U+0085 and the Z categories. PCRE2's own \s
// differs (no U+0085 without UCP's \v, U+180E with it), so patterns are rewritten with the class spelled out.
#define WS "\\x{09}-\\x{0D}\\x{20}\\x{85}\\p{Z}"

// Oniguruma to PCRE2: \s and \S become the class above (inside a bracket, \s its members); the rest of the syntax
// tokenizer.json patterns use (\p{..}, (?i:..), (?!..), {m,n}) means the same in both. NULL for what cannot be
// rewritten (\S inside a bracket).
static char *translate(const char *p) {
    size_t n = strlen(p), cap = 8 * n + 64, o = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    int depth = 0; // inside [...]
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n) {
            char c = p[i + 1];
            const char *rep = NULL;
            if (c == 's') rep = depth ? WS : "[" WS "]";
            else if (c == 'S') rep = depth ? NULL : "[^" WS "]";
            if (c == 'S' && depth) {
                free(out);
                return NULL;
            }
            if (rep) {
                memcpy(out + o, rep, strlen(rep));
                o += strlen(rep);
            } else {
                out[o++] = p[i];
                out[o++] = c;
            }
            i++;
            continue;
        }
        if (p[i] == '[' && !depth) {
            depth = 1;
            out[o++] = p[i];
            if (i + 1 < n && p[i + 1] == '^') out[o++] = p[++i];
            if (i + 1 < n && p[i + 1] == ']') out[o++] = p[++i]; // a leading ] is a member
            continue;
        }
        if (p[i] == ']' && depth) depth = 0;
        out[o++] = p[i];
    }
    out[o] = '\0';
    return out;
}

pcre2_code *hn_tok_compile_regex(const char *pattern, bool oniguruma, const char *what) {
    char *p = oniguruma ? translate(pattern) : strdup(pattern);
    if (!p) {
        hn_fail(HN_ERR_UNSUPPORTED, "%s: the pattern \"%.60s\" uses \\S inside brackets, which hone cannot rewrite",
                what, pattern);
        return NULL;
    }
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    free(p);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        hn_fail(HN_ERR_UNSUPPORTED, "%s: PCRE2 cannot compile the pattern \"%.60s\": %s", what, pattern,
                (const char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); // without JIT support pcre2_match interprets: slower, same result
    return re;
}

hn_status hn_bpe_compile(hn_tokenizer *tk) {
    for (int i = 0; i < tk->n_pre; i++)
        if (tk->pre[i].kind == HN_PRE_SPLIT && !tk->pre[i].re &&
            !(tk->pre[i].re = hn_tok_compile_regex(tk->pre[i].pattern, true, "tokenizer: pre-tokenizer Split")))
            return HN_ERR_UNSUPPORTED;
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
    int32_t last_unk; // llama: the symbol that is an unk from the text (fuse_unk joins the next one to it)
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

// Runs the merge loop over e->sym[0..n) (a linked list in array order) and pushes the surviving ids.
static hn_status merge_and_push(enc *e, int32_t n) {
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

static hn_status reserve_syms(enc *e, size_t len) {
    if (len <= e->sym_cap) return HN_OK;
    size_t cap = len > 2 * e->sym_cap ? len : 2 * e->sym_cap;
    if (cap > INT32_MAX / 3) return hn_fail(HN_ERR_RANGE, "tokenizer: a %zu-byte word is too long", len);
    free(e->sym);
    free(e->heap);
    e->sym = hn_alloc(cap * sizeof *e->sym, "BPE symbols");
    e->heap = hn_alloc(3 * cap * sizeof *e->heap, "BPE merge queue"); // n - 1 pairs + 2 per merge
    e->sym_cap = e->sym && e->heap ? cap : 0;
    return e->sym_cap ? HN_OK : HN_ERR_NOMEM;
}

static void add_sym(enc *e, int32_t *n, int32_t id) {
    e->sym[*n] = (bpe_sym){id, *n - 1, *n + 1};
    (*n)++;
}

// ignore_merges (Llama 3): a pre-token that is a vocabulary entry is that token. The byte-level spelling is built
// in e's scratch buffer.
static int32_t whole_word(enc *e, const uint8_t *s, size_t len) {
    if (e->tk->kind != HN_TOKENIZER_GPT2) return hn_tok_lookup(e->tk, (const char *)s, len);
    char tmp[256];
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = e->tk->byte_id[s[i]];
        if (id < 0 || o + 4 > sizeof tmp) return -1;
        const char *p = hn_tokenizer_piece(e->tk, id);
        size_t pl = strlen(p);
        memcpy(tmp + o, p, pl);
        o += pl;
    }
    return hn_tok_lookup(e->tk, tmp, o);
}

// gpt2, one pre-token: bytes → byte-alphabet symbols → merges → ids.
static hn_status bpe_bytes(enc *e, const uint8_t *s, size_t len) {
    if (len == 1 && e->tk->byte_id[s[0]] >= 0) return push(e, e->tk->byte_id[s[0]]);
    int32_t whole = e->tk->ignore_merges ? whole_word(e, s, len) : -1;
    if (whole >= 0) return push(e, whole);
    hn_status st = reserve_syms(e, len);
    if (st) return st;
    const hn_tokenizer *tk = e->tk;
    int32_t n = 0, last_unk = -2;
    for (size_t i = 0; i < len; i++) {
        if (tk->byte_id[s[i]] >= 0) {
            add_sym(e, &n, tk->byte_id[s[i]]);
        } else if (tk->byte_unk && tk->unk >= 0 && !(tk->fuse_unk && last_unk == n - 1)) {
            add_sym(e, &n, tk->unk);
            last_unk = n - 1;
        } // else dropped (top of this file)
    }
    return merge_and_push(e, n);
}

// llama, one pre-token: characters → their tokens, or <0xXX> bytes, or unk → merges → ids.
static hn_status bpe_chars(enc *e, const uint8_t *s, size_t len) {
    const hn_tokenizer *tk = e->tk;
    int32_t whole = tk->ignore_merges ? hn_tok_lookup(tk, (const char *)s, len) : -1;
    if (whole >= 0) return push(e, whole);
    hn_status st = reserve_syms(e, len);
    if (st) return st;
    int32_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = (size_t)hn_utf8_next(s + i, len - i, &cp);
        if (!k) k = 1; // not reached: the text was made valid UTF-8
        int32_t id = hn_tok_lookup(tk, (const char *)s + i, k);
        if (id >= 0) {
            add_sym(e, &n, id);
        } else {
            bool bytes = tk->byte_fallback;
            for (size_t b = 0; b < k && bytes; b++) bytes = tk->byte_id[s[i + b]] >= 0;
            if (bytes) {
                for (size_t b = 0; b < k; b++) add_sym(e, &n, tk->byte_id[s[i + b]]);
            } else if (tk->unk >= 0 && !(tk->fuse_unk && n && e->sym[n - 1].id == tk->unk && e->last_unk == n - 1)) {
                add_sym(e, &n, tk->unk);
                e->last_unk = n - 1;
            }
        }
        i += k;
    }
    return merge_and_push(e, n);
}

static hn_status push_cb(void *user, int32_t id) { return push(user, id); }

static hn_status model(enc *e, const uint8_t *s, size_t len) {
    if (!len) return HN_OK;
    switch (e->tk->kind) {
    case HN_TOKENIZER_GPT2: return bpe_bytes(e, s, len);
    case HN_TOKENIZER_LLAMA: e->last_unk = -2; return bpe_chars(e, s, len);
    case HN_TOKENIZER_BERT: return hn_wordpiece(e->tk, s, len, push_cb, e);
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
    return HN_OK; // may be empty (a pattern such as "\s*"): the caller steps over it
}

// One character past an empty match at pos.
static size_t step_over(const uint8_t *s, size_t len, size_t pos) {
    pos++;
    while (pos < len && (s[pos] & 0xC0) == 0x80) pos++;
    return pos;
}

static hn_status pre_step(enc *e, int k, const uint8_t *s, size_t len, bool at_start);

typedef struct {
    enc *e;
    int k;
    bool at_start;
} step_ctx;

static hn_status next_cb(void *user, const uint8_t *s, size_t len) {
    step_ctx *c = user;
    hn_status st = pre_step(c->e, c->k, s, len, c->at_start);
    c->at_start = false;
    return st;
}

// A regex split: matches (Isolated) and the text between them are pieces; Removed drops the matches.
static hn_status split_regex(enc *e, int k, const uint8_t *s, size_t len, bool at_start) {
    const hn_pre_step *p = &e->tk->pre[k];
    size_t pos = 0, from = 0, ms = 0, me = 0;
    hn_status st = HN_OK;
    while (pos < len && !st) {
        st = next_match(e, p->re, s, len, pos, &ms, &me);
        if (st == HN_ERR_NOTFOUND) {
            st = HN_OK;
            break;
        }
        if (st) return st;
        if (me == ms) { // an empty match cuts nothing
            pos = step_over(s, len, ms);
            continue;
        }
        if (ms > from) st = pre_step(e, k + 1, s + from, ms - from, at_start && from == 0);
        if (!st && !p->removed) st = pre_step(e, k + 1, s + ms, me - ms, at_start && ms == 0);
        pos = from = me;
    }
    if (!st && from < len) st = pre_step(e, k + 1, s + from, len - from, at_start && from == 0);
    return st;
}

// Metaspace: spaces become "▁", one is prepended, and (split) each "▁" starts a new piece.
static hn_status metaspace(enc *e, int k, const uint8_t *s, size_t len, bool at_start) {
    const hn_pre_step *p = &e->tk->pre[k];
    bool prepend = (p->prepend_always || (p->prepend_first && at_start)) &&
                   s[0] != ' ' && !(len >= 3 && !memcmp(s, "\xE2\x96\x81", 3)); // not before a space
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++) spaces += s[i] == ' ';
    size_t cap = len + 2 * spaces + 3;
    uint8_t *buf = hn_alloc(cap, "metaspace piece");
    if (!buf) return HN_ERR_NOMEM;
    size_t o = 0;
    if (prepend) memcpy(buf, "\xE2\x96\x81", 3), o = 3;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') memcpy(buf + o, "\xE2\x96\x81", 3), o += 3;
        else buf[o++] = s[i];
    }
    hn_status st = HN_OK;
    if (!p->split) {
        st = pre_step(e, k + 1, buf, o, at_start);
    } else {
        size_t from = 0;
        for (size_t i = 1; i + 3 <= o && !st; i++)
            if (!memcmp(buf + i, "\xE2\x96\x81", 3)) {
                st = pre_step(e, k + 1, buf + from, i - from, at_start && from == 0);
                from = i;
                i += 2;
            }
        if (!st && from < o) st = pre_step(e, k + 1, buf + from, o - from, at_start && from == 0);
    }
    free(buf);
    return st;
}

static hn_status pre_step(enc *e, int k, const uint8_t *s, size_t len, bool at_start) {
    if (!len) return HN_OK;
    if (k == e->tk->n_pre) return model(e, s, len);
    switch (e->tk->pre[k].kind) {
    case HN_PRE_SPLIT: return split_regex(e, k, s, len, at_start);
    case HN_PRE_METASPACE: return metaspace(e, k, s, len, at_start);
    case HN_PRE_BERT: {
        step_ctx c = {e, k + 1, at_start};
        return hn_bert_pre_split(s, len, next_cb, &c);
    }
    case HN_PRE_PREFIX_SPACE: {
        if (s[0] == ' ') return pre_step(e, k + 1, s, len, at_start);
        uint8_t *buf = hn_alloc(len + 1, "prefixed piece");
        if (!buf) return HN_ERR_NOMEM;
        buf[0] = ' ';
        memcpy(buf + 1, s, len);
        hn_status st = pre_step(e, k + 1, buf, len + 1, at_start);
        free(buf);
        return st;
    }
    }
    return HN_OK;
}

// Text between special tokens: normalised, then pre-tokenized, then the model. at_start: it begins the input;
// cont: it continues text encoded before (HN_TOK_CONTINUE), so no prefix space is added to its start.
static hn_status segment(enc *e, const uint8_t *s, size_t len, bool at_start, bool cont) {
    if (cont) at_start = false;
    if (!e->tk->n_norm) return pre_step(e, 0, s, len, at_start);
    uint8_t *norm;
    size_t nlen;
    hn_status st = hn_tok_normalize(e->tk, s, len, cont, &norm, &nlen);
    if (st) return st;
    st = pre_step(e, 0, norm, nlen, at_start);
    free(norm);
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
            (tk->type[sp->id] == HN_TT_USER || (flags & HN_TOK_SPECIAL)))
            return sp;
    }
    return NULL;
}

bool hn_tokenizer_has_special_text(const hn_tokenizer *tk, const char *text, size_t len) {
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0; i < len; i++)
        if (tk->special_first[s[i]] && special_at(tk, s + i, len - i, HN_TOK_SPECIAL)) return true;
    return false;
}

static hn_status encode(enc *e, const uint8_t *s, size_t len, int flags) {
    const hn_tokenizer *tk = e->tk;
    hn_status st = HN_OK;
    int32_t first = tk->kind == HN_TOKENIZER_BERT ? tk->cls : tk->bos;
    int32_t last = tk->kind == HN_TOKENIZER_BERT ? tk->sep : tk->eos;
    if ((flags & (HN_TOK_ADD_BOS | HN_TOK_ADD_SPECIAL)) && tk->add_bos && first >= 0 && (st = push(e, first)))
        return st;
    size_t start = 0;
    for (size_t i = 0; i < len && !st;) {
        const hn_special *sp = tk->special_first[s[i]] ? special_at(tk, s + i, len - i, flags) : NULL;
        if (!sp) {
            i++;
            continue;
        }
        if (i > start) st = segment(e, s + start, i - start, start == 0, start == 0 && (flags & HN_TOK_CONTINUE));
        if (!st) st = push(e, sp->id);
        i += sp->len;
        start = i;
    }
    if (!st && start < len)
        st = segment(e, s + start, len - start, start == 0, start == 0 && (flags & HN_TOK_CONTINUE));
    if (!st && (flags & HN_TOK_ADD_SPECIAL) && tk->add_eos && last >= 0) st = push(e, last);
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
    hn_status st = sanitize((const uint8_t *)(text ? text : ""), ulen, &clean, &clean_len);
    if (st) return st;
    enc e = {.tk = tk};
    e.md = pcre2_match_data_create(4, NULL); // only the whole match is read
    if (!e.md) st = hn_fail(HN_ERR_NOMEM, "tokenizer: out of memory for PCRE2 match data");
    if (!st) st = encode(&e, clean ? clean : (const uint8_t *)(text ? text : ""), clean_len, flags);
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

hn_status hn_tokenizer_encode_pair(const hn_tokenizer *tk, const char *a, int64_t alen, const char *b, int64_t blen,
                                   int flags, int32_t **ids, int32_t **type_ids, int64_t *n) {
    *ids = NULL;
    *n = 0;
    if (type_ids) *type_ids = NULL;
    int32_t *ia, *ib;
    int64_t na, nb;
    hn_status st = hn_tokenizer_encode(tk, a, alen, flags & HN_TOK_SPECIAL, &ia, &na);
    if (st) return st;
    if ((st = hn_tokenizer_encode(tk, b, blen, flags & HN_TOK_SPECIAL, &ib, &nb))) {
        free(ia);
        return st;
    }
    bool bert = tk->kind == HN_TOKENIZER_BERT, frame = flags & HN_TOK_ADD_SPECIAL;
    int32_t first = bert ? tk->cls : tk->bos, last = bert ? tk->sep : tk->eos;
    bool pre = frame && tk->add_bos && first >= 0, post = frame && tk->add_eos && last >= 0;
    // BERT: [CLS] a [SEP] | b [SEP]; others: BOS a EOS | BOS b EOS
    int64_t len_a = na + pre + post, len = len_a + nb + (!bert && pre) + post;
    int32_t *out = hn_calloc((size_t)len + 1, sizeof *out, "token pair");
    int32_t *types = type_ids ? hn_calloc((size_t)len + 1, sizeof *types, "token types") : NULL;
    if (!out || (type_ids && !types)) {
        free(ia), free(ib), free(out), free(types);
        return HN_ERR_NOMEM;
    }
    int64_t k = 0;
    if (pre) out[k++] = first;
    memcpy(out + k, ia, (size_t)na * sizeof *out), k += na;
    if (post) out[k++] = last;
    if (!bert && pre) out[k++] = first;
    memcpy(out + k, ib, (size_t)nb * sizeof *out), k += nb;
    if (post) out[k++] = last;
    for (int64_t i = len_a; types && i < len; i++) types[i] = 1;
    free(ia);
    free(ib);
    *ids = out;
    *n = len;
    if (type_ids) *type_ids = types;
    return HN_OK;
}
