// io/wordpiece.c — the normaliser steps (BERT's and the simple ones of tokenizer.json), BERT's pre-tokenizer and the
// WordPiece model, as Hugging Face `tokenizers` defines them:
//
//   BertNormalizer  clean_text: drop NUL, U+FFFD and control characters (Cc Cf Co, but \t \n \r), every whitespace
//                   character becomes " "; handle_chinese_chars: a space either side of each CJK ideograph;
//                   strip_accents (default: as lowercase): NFD, then drop the non-spacing marks (Mn); lowercase.
//   BertPreTokenizer  split on whitespace (dropped) and around each punctuation character (ASCII punctuation or
//                   category P), which is a piece of its own.
//   WordPiece       per word, greedy longest match from the left; pieces after the first carry the "##" prefix; a word
//                   with a part no entry matches, or longer than max_input_chars_per_word characters, is one unk.
//
// Unicode properties come from utf8proc, corrected to `tokenizers`' older category tables (below). Lower-casing and NFD
// use utf8proc's current Unicode as `tokenizers` uses Rust's.
#include "io/tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

// `tokenizers` takes the categories from the unicode_categories crate's tables (Unicode 9), utf8proc from a newer
// Unicode. These are the code points whose category differs in a way BERT's rules see: assigned since (unassigned,
// so kept as ordinary characters, to Hugging Face), or moved between punctuation, marks and others. Found by running
// every code point through both (tools/reference/tokenizers_hf_ref.py writes tests/data/tok_bert_classes.tsv, which
// tests/test_tokenizer_hf.c checks in full).
enum { OLD_CN, OLD_P, OLD_MN };
static const struct {
    uint32_t lo, hi;
    uint8_t cat;
} tokenizers_category[] = {
    {0x61D, 0x61D, OLD_CN}, {0x7FD, 0x7FD, OLD_CN}, {0x890, 0x891, OLD_CN}, {0x898, 0x89F, OLD_CN},
    {0x8CA, 0x8E2, OLD_CN}, {0x9FD, 0x9FE, OLD_CN}, {0xA76, 0xA76, OLD_CN}, {0xAFA, 0xAFF, OLD_CN},
    {0xB55, 0xB55, OLD_CN}, {0xC04, 0xC04, OLD_CN}, {0xC3C, 0xC3C, OLD_CN}, {0xC77, 0xC77, OLD_CN},
    {0xC84, 0xC84, OLD_CN}, {0xD00, 0xD00, OLD_CN}, {0xD3B, 0xD3C, OLD_CN}, {0xD81, 0xD81, OLD_CN},
    {0xEBA, 0xEBA, OLD_CN}, {0xECE, 0xECE, OLD_CN}, {0x166D, 0x166D, OLD_P}, {0x1734, 0x1734, OLD_MN},
    {0x180F, 0x180F, OLD_CN}, {0x1885, 0x1886, OLD_CN}, {0x1ABF, 0x1ACE, OLD_CN}, {0x1B7D, 0x1B7E, OLD_CN},
    {0x1DF6, 0x1DFB, OLD_CN}, {0x2E43, 0x2E4F, OLD_CN}, {0x2E52, 0x2E5D, OLD_CN}, {0xA82C, 0xA82C, OLD_CN},
    {0xA8C5, 0xA8C5, OLD_CN}, {0xA8FF, 0xA8FF, OLD_CN}, {0xA9BD, 0xA9BD, OLD_CN}, {0x10D24, 0x10D27, OLD_CN},
    {0x10EAB, 0x10EAD, OLD_CN}, {0x10EFD, 0x10EFF, OLD_CN}, {0x10F46, 0x10F50, OLD_CN}, {0x10F55, 0x10F59, OLD_CN},
    {0x10F82, 0x10F89, OLD_CN}, {0x11070, 0x11070, OLD_CN}, {0x11073, 0x11074, OLD_CN}, {0x110C2, 0x110C2, OLD_CN},
    {0x110CD, 0x110CD, OLD_CN}, {0x111C9, 0x111C9, OLD_P}, {0x111CF, 0x111CF, OLD_CN}, {0x1123E, 0x1123E, OLD_CN},
    {0x11241, 0x11241, OLD_CN}, {0x1133B, 0x1133B, OLD_CN}, {0x11438, 0x1143F, OLD_CN}, {0x11442, 0x11444, OLD_CN},
    {0x11446, 0x11446, OLD_CN}, {0x1144B, 0x1144F, OLD_CN}, {0x1145A, 0x1145B, OLD_CN}, {0x1145D, 0x1145E, OLD_CN},
    {0x11660, 0x1166C, OLD_CN}, {0x116B9, 0x116B9, OLD_CN}, {0x1182F, 0x11837, OLD_CN}, {0x11839, 0x1183B, OLD_CN},
    {0x1193B, 0x1193C, OLD_CN}, {0x1193E, 0x1193E, OLD_CN}, {0x11943, 0x11946, OLD_CN}, {0x119D4, 0x119D7, OLD_CN},
    {0x119DA, 0x119DB, OLD_CN}, {0x119E0, 0x119E0, OLD_CN}, {0x119E2, 0x119E2, OLD_CN}, {0x11A01, 0x11A0A, OLD_CN},
    {0x11A33, 0x11A38, OLD_CN}, {0x11A3B, 0x11A47, OLD_CN}, {0x11A51, 0x11A56, OLD_CN}, {0x11A59, 0x11A5B, OLD_CN},
    {0x11A8A, 0x11A96, OLD_CN}, {0x11A98, 0x11A9C, OLD_CN}, {0x11A9E, 0x11AA2, OLD_CN}, {0x11B00, 0x11B09, OLD_CN},
    {0x11C30, 0x11C36, OLD_CN}, {0x11C38, 0x11C3D, OLD_CN}, {0x11C3F, 0x11C3F, OLD_CN}, {0x11C41, 0x11C45, OLD_CN},
    {0x11C70, 0x11C71, OLD_CN}, {0x11C92, 0x11CA7, OLD_CN}, {0x11CAA, 0x11CB0, OLD_CN}, {0x11CB2, 0x11CB3, OLD_CN},
    {0x11CB5, 0x11CB6, OLD_CN}, {0x11D31, 0x11D36, OLD_CN}, {0x11D3A, 0x11D3A, OLD_CN}, {0x11D3C, 0x11D3D, OLD_CN},
    {0x11D3F, 0x11D45, OLD_CN}, {0x11D47, 0x11D47, OLD_CN}, {0x11D90, 0x11D91, OLD_CN}, {0x11D95, 0x11D95, OLD_CN},
    {0x11D97, 0x11D97, OLD_CN}, {0x11EF3, 0x11EF4, OLD_CN}, {0x11EF7, 0x11EF8, OLD_CN}, {0x11F00, 0x11F01, OLD_CN},
    {0x11F36, 0x11F3A, OLD_CN}, {0x11F40, 0x11F40, OLD_CN}, {0x11F42, 0x11F4F, OLD_CN}, {0x11FFF, 0x11FFF, OLD_CN},
    {0x12FF1, 0x12FF2, OLD_CN}, {0x13430, 0x13440, OLD_CN}, {0x13447, 0x13455, OLD_CN}, {0x16E97, 0x16E9A, OLD_CN},
    {0x16F4F, 0x16F4F, OLD_CN}, {0x16FE2, 0x16FE2, OLD_CN}, {0x16FE4, 0x16FE4, OLD_CN}, {0x1CF00, 0x1CF2D, OLD_CN},
    {0x1CF30, 0x1CF46, OLD_CN}, {0x1E000, 0x1E006, OLD_CN}, {0x1E008, 0x1E018, OLD_CN}, {0x1E01B, 0x1E021, OLD_CN},
    {0x1E023, 0x1E024, OLD_CN}, {0x1E026, 0x1E02A, OLD_CN}, {0x1E08F, 0x1E08F, OLD_CN}, {0x1E130, 0x1E136, OLD_CN},
    {0x1E2AE, 0x1E2AE, OLD_CN}, {0x1E2EC, 0x1E2EF, OLD_CN}, {0x1E4EC, 0x1E4EF, OLD_CN}, {0x1E944, 0x1E94A, OLD_CN},
    {0x1E95E, 0x1E95F, OLD_CN},
};

// The category `tokenizers` gives c where it differs from utf8proc's, else -1.
static int old_category(uint32_t c) {
    size_t lo = 0, hi = sizeof tokenizers_category / sizeof tokenizers_category[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < tokenizers_category[mid].lo) hi = mid;
        else if (c > tokenizers_category[mid].hi) lo = mid + 1;
        else return tokenizers_category[mid].cat;
    }
    return -1;
}

static bool is_ws(uint32_t c) { // Rust's char::is_whitespace (the White_Space property)
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static bool is_control(uint32_t c) {
    if (c == '\t' || c == '\n' || c == '\r' || old_category(c) >= 0) return false;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    // Cc, Cf, Co (Cs cannot occur in valid UTF-8); unassigned code points (Cn) are kept, as `tokenizers` keeps them
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CO;
}

static bool is_chinese(uint32_t c) { // BERT's "CJK Unified Ideographs" blocks
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static bool is_punct(uint32_t c) {
    if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                         (c >= 0x7B && c <= 0x7E);
    int old = old_category(c);
    if (old >= 0) return old == OLD_P;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

static bool is_mn(uint32_t c) {
    int old = old_category(c);
    return old >= 0 ? old == OLD_MN : utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_MN;
}

// A growing output buffer.
typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static bool put(buf *b, const void *s, size_t n) {
    if (!n) return true;
    if (b->n + n > b->cap) {
        size_t cap = 2 * b->cap + n + 64;
        uint8_t *q = realloc(b->p, cap);
        if (!q) return false;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return true;
}

static bool put_cp(buf *b, uint32_t c) {
    char u[4];
    return put(b, u, (size_t)hn_utf8_put(c, u));
}

// Lower case one character, Rust's char::to_lowercase: the simple mapping, but for U+0130 ("i̇").
static bool lower_cp(buf *b, uint32_t c) {
    if (c == 0x130) return put(b, "i\xCC\x87", 3);
    return put_cp(b, (uint32_t)utf8proc_tolower((utf8proc_int32_t)c));
}

// Unicode normal forms through utf8proc. s is valid UTF-8.
static hn_status normal_form(const uint8_t *s, size_t len, int options, buf *out) {
    utf8proc_uint8_t *r = NULL;
    utf8proc_ssize_t n = utf8proc_map(s, (utf8proc_ssize_t)len, &r, (utf8proc_option_t)(options | UTF8PROC_STABLE));
    if (n < 0) return hn_fail(HN_ERR_FORMAT, "tokenizer: utf8proc: %s", utf8proc_errmsg(n));
    out->n = 0;
    bool ok = put(out, r, (size_t)n);
    free(r);
    return ok ? HN_OK : HN_ERR_NOMEM;
}

// One step from `in` into `out` (emptied first).
static hn_status norm_step(const hn_norm_step *st, const buf *in, buf *out) {
    out->n = 0;
    const uint8_t *s = in->p;
    size_t len = in->n;
    switch (st->kind) {
    case HN_NORM_NFC: return normal_form(s, len, UTF8PROC_COMPOSE, out);
    case HN_NORM_NFD: return normal_form(s, len, UTF8PROC_DECOMPOSE, out);
    case HN_NORM_NFKC: return normal_form(s, len, UTF8PROC_COMPOSE | UTF8PROC_COMPAT, out);
    case HN_NORM_NFKD: return normal_form(s, len, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, out);
    case HN_NORM_PREPEND:
        if (len && !put(out, st->to, strlen(st->to))) return HN_ERR_NOMEM;
        return put(out, s, len) ? HN_OK : HN_ERR_NOMEM;
    case HN_NORM_REPLACE: {
        size_t fl = strlen(st->from), tl = strlen(st->to);
        for (size_t i = 0; i < len;) {
            if (fl && i + fl <= len && !memcmp(s + i, st->from, fl)) {
                if (!put(out, st->to, tl)) return HN_ERR_NOMEM;
                i += fl;
            } else {
                if (!put(out, s + i, 1)) return HN_ERR_NOMEM;
                i++;
            }
        }
        return HN_OK;
    }
    default: break;
    }
    // Character by character: BERT, Lowercase, StripAccents.
    bool bert = st->kind == HN_NORM_BERT;
    bool clean = bert && st->clean_text, chinese = bert && st->chinese;
    bool strip = bert ? st->strip_accents : st->kind == HN_NORM_STRIP_ACCENTS;
    bool lower = bert ? st->lowercase : st->kind == HN_NORM_LOWERCASE;
    buf a = {0}, d = {0};
    hn_status r = HN_OK;
    for (size_t i = 0; i < len;) { // clean text and CJK spacing
        uint32_t c;
        int k = hn_utf8_next(s + i, len - i, &c);
        if (!k) c = 0xFFFD, k = 1; // not reached: the text was made valid UTF-8
        i += (size_t)k;
        if (clean && (c == 0 || c == 0xFFFD || is_control(c))) continue;
        if (clean && is_ws(c)) c = ' ';
        bool ok = chinese && is_chinese(c) ? put(&a, " ", 1) && put_cp(&a, c) && put(&a, " ", 1) : put_cp(&a, c);
        if (!ok) {
            r = HN_ERR_NOMEM;
            goto done;
        }
    }
    const buf *cur = &a;
    if (strip && bert) { // BertNormalizer decomposes first; a bare StripAccents does not
        if ((r = normal_form(a.p ? a.p : (const uint8_t *)"", a.n, UTF8PROC_DECOMPOSE, &d))) goto done;
        cur = &d;
    }
    for (size_t i = 0; i < cur->n;) {
        uint32_t c;
        int k = hn_utf8_next(cur->p + i, cur->n - i, &c);
        if (!k) c = 0xFFFD, k = 1;
        i += (size_t)k;
        if (strip && is_mn(c)) continue;
        if (!(lower ? lower_cp(out, c) : put_cp(out, c))) {
            r = HN_ERR_NOMEM;
            goto done;
        }
    }
done:
    free(a.p);
    free(d.p);
    return r;
}

hn_status hn_tok_normalize(const hn_tokenizer *tk, const uint8_t *s, size_t len, bool skip_prepend, uint8_t **out,
                           size_t *out_len) {
    buf x = {0}, y = {0};
    *out = NULL;
    if (!put(&x, s, len) || !put(&x, "", 1)) { // a NUL after the text, so that x.p is never NULL
        free(x.p);
        return HN_ERR_NOMEM;
    }
    x.n = len;
    for (int i = 0; i < tk->n_norm && x.n; i++) { // every step keeps empty text empty
        if (skip_prepend && tk->norm[i].kind == HN_NORM_PREPEND) continue;
        hn_status st = norm_step(&tk->norm[i], &x, &y);
        if (st) {
            free(x.p);
            free(y.p);
            return st;
        }
        buf t = x;
        x = y;
        y = t;
    }
    free(y.p);
    *out = x.p;
    *out_len = x.n;
    return HN_OK;
}

hn_status hn_bert_pre_split(const uint8_t *s, size_t len, hn_piece_fn fn, void *user) {
    size_t from = 0;
    hn_status st = HN_OK;
    for (size_t i = 0; i < len && !st;) {
        uint32_t c;
        int k = hn_utf8_next(s + i, len - i, &c);
        if (!k) c = 0xFFFD, k = 1;
        bool ws = is_ws(c), p = !ws && is_punct(c);
        if (ws || p) {
            if (i > from) st = fn(user, s + from, i - from);
            if (!st && p) st = fn(user, s + i, (size_t)k);
            from = i + (size_t)k;
        }
        i += (size_t)k;
    }
    if (!st && from < len) st = fn(user, s + from, len - from);
    return st;
}

hn_status hn_wordpiece(const hn_tokenizer *tk, const uint8_t *s, size_t len, hn_status (*push)(void *, int32_t),
                       void *user) {
    size_t chars = 0;
    for (size_t i = 0; i < len; i++) chars += (s[i] & 0xC0) != 0x80;
    size_t pl = strlen(tk->wp_prefix);
    char small[512];
    char *cand = len + pl <= sizeof small ? small : hn_alloc(len + pl, "WordPiece candidate");
    if (!cand) return HN_ERR_NOMEM;
    memcpy(cand, tk->wp_prefix, pl);
    // The ids go to a scratch list first: a word with an unmatched part is one unk, not the parts found so far.
    int32_t stack[64], *ids = stack;
    size_t n_ids = 0, cap_ids = 64;
    bool bad = chars > (size_t)tk->wp_max_chars;
    hn_status st = HN_OK;
    for (size_t start = 0; start < len && !bad;) {
        int32_t id = -1;
        size_t end = len;
        while (end > start) {
            size_t off = start ? 0 : pl; // continuations are looked up with the prefix
            memcpy(cand + pl, s + start, end - start);
            id = hn_tok_lookup(tk, cand + off, end - start + pl - off);
            if (id >= 0) break;
            do end--; while (end > start && (s[end] & 0xC0) == 0x80);
        }
        if (id < 0) {
            bad = true;
            break;
        }
        if (n_ids == cap_ids) {
            int32_t *q = hn_alloc(2 * cap_ids * sizeof *q, "WordPiece ids");
            if (!q) {
                st = HN_ERR_NOMEM;
                break;
            }
            memcpy(q, ids, n_ids * sizeof *q);
            if (ids != stack) free(ids);
            ids = q;
            cap_ids *= 2;
        }
        ids[n_ids++] = id;
        start = end;
    }
    if (!st && bad) {
        if (tk->unk < 0)
            st = hn_fail(HN_ERR_FORMAT, "tokenizer: a word has no WordPiece match and the vocabulary has no unk token");
        else
            st = push(user, tk->unk);
    } else {
        for (size_t i = 0; i < n_ids && !st; i++) st = push(user, ids[i]);
    }
    if (ids != stack) free(ids);
    if (cand != small) free(cand);
    return st;
}
