// adapt/rag_chunk.c — a document split into chunks for retrieval (adapt/rag.h hn_rag_chunk): paragraphs, then
// sentences, then words when one is still too long, packed greedily to a token budget, with the previous chunk's
// last units repeated at the start of the next up to the overlap.
#include "adapt/rag.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t start, end;
    int ntok;
} unit;

typedef struct {
    const hn_tokenizer *tok;
    const char *text;
    int max, overlap;
    unit *u;
    int n, cap;
    hn_status s;
} chunker;

static int count(chunker *c, int64_t a, int64_t b) {
    int32_t *ids = NULL;
    int64_t n = 0;
    if (!c->s) c->s = hn_tokenizer_encode(c->tok, c->text + a, b - a, 0, &ids, &n);
    free(ids);
    return (int)n;
}

static void push(chunker *c, int64_t a, int64_t b, int ntok) {
    if (c->s) return;
    if (c->n == c->cap) {
        unit *g = realloc(c->u, (size_t)(c->cap = c->cap ? 2 * c->cap : 64) * sizeof *g);
        if (!g) {
            c->s = hn_fail(HN_ERR_NOMEM, "out of memory splitting a document");
            return;
        }
        c->u = g;
    }
    c->u[c->n++] = (unit){a, b, ntok};
}

static bool space(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v'; }

// [a, b) less white space at both ends.
static void trim(const char *t, int64_t *a, int64_t *b) {
    while (*a < *b && space(t[*a])) (*a)++;
    while (*b > *a && space(t[*b - 1])) (*b)--;
}

// A sentence too long for one chunk: words (white space apart; a word over 32 bytes in slices of up to 32 bytes
// cut at character boundaries, so that unspaced scripts split too) packed into windows of the budget, each window
// starting `overlap` tokens before the previous one ended.
static void split_words(chunker *c, int64_t a, int64_t b) {
    unit *w = NULL;
    int nw = 0, cap = 0;
    for (int64_t i = a; i < b && !c->s;) {
        while (i < b && space(c->text[i])) i++;
        int64_t j = i;
        while (j < b && !space(c->text[j]) && j - i < 32) j++;
        if (j < b && !space(c->text[j])) // cut inside a word: back up to a character's first byte
            while (j > i + 1 && ((unsigned char)c->text[j] & 0xC0) == 0x80) j--;
        if (j == i) break;
        if (nw == cap) {
            unit *g = realloc(w, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *g);
            if (!g) {
                c->s = hn_fail(HN_ERR_NOMEM, "out of memory splitting a document");
                break;
            }
            w = g;
        }
        w[nw] = (unit){i, j, count(c, i, j)};
        nw++;
        i = j;
    }
    for (int i = 0; i < nw && !c->s;) {
        int j = i, tot = 0;
        while (j < nw && (j == i || tot + w[j].ntok <= c->max)) tot += w[j++].ntok;
        push(c, w[i].start, w[j - 1].end, tot);
        if (j == nw) break;
        int k = j, t = 0;
        while (k - 1 > i && t + w[k - 1].ntok <= c->overlap) t += w[--k].ntok;
        i = k;
    }
    free(w);
}

// The end of the sentence starting at i (before b): after . ! ? (and closing quotes or brackets) followed by white
// space, after a CJK full stop, exclamation or question mark, or at a line break.
static int64_t sentence_end(const char *t, int64_t i, int64_t b) {
    for (; i < b; i++) {
        if (t[i] == '\n') return i + 1;
        if (t[i] == '.' || t[i] == '!' || t[i] == '?') {
            int64_t j = i + 1;
            while (j < b && (t[j] == '"' || t[j] == '\'' || t[j] == ')' || t[j] == ']')) j++;
            if (j == b || space(t[j])) return j;
        }
        // U+3002 。 U+FF01 ！ U+FF1F ？ (E3 80 82, EF BC 81, EF BC 9F)
        const unsigned char *u = (const unsigned char *)t + i;
        if (i + 2 < b && ((u[0] == 0xE3 && u[1] == 0x80 && u[2] == 0x82) ||
                          (u[0] == 0xEF && u[1] == 0xBC && (u[2] == 0x81 || u[2] == 0x9F))))
            return i + 3;
    }
    return b;
}

static void paragraph(chunker *c, int64_t a, int64_t b) {
    trim(c->text, &a, &b);
    if (a == b) return;
    int n = count(c, a, b);
    if (n <= c->max) {
        push(c, a, b, n);
        return;
    }
    for (int64_t i = a; i < b && !c->s;) {
        int64_t e = sentence_end(c->text, i, b), sa = i, sb = e;
        trim(c->text, &sa, &sb);
        i = e;
        if (sa == sb) continue;
        int k = count(c, sa, sb);
        if (k <= c->max) push(c, sa, sb, k);
        else split_words(c, sa, sb);
    }
}

hn_status hn_rag_chunk(const hn_tokenizer *tok, const char *text, size_t len, int max_tokens, int overlap,
                       hn_rag_span **spans, int *n) {
    *spans = NULL, *n = 0;
    if (max_tokens < 16 || overlap < 0 || overlap >= max_tokens)
        return hn_fail(HN_ERR_ARG, "chunks: %d tokens with an overlap of %d; expected at least 16 tokens and an "
                                   "overlap below them", max_tokens, overlap);
    chunker c = {.tok = tok, .text = text, .max = max_tokens, .overlap = overlap};
    // Paragraphs: text between blank lines (a line break, optional white space, another line break).
    for (int64_t i = 0, start = 0; i <= (int64_t)len && !c.s; i++) {
        bool end = i == (int64_t)len;
        int64_t next = i + 1;
        if (!end && text[i] == '\n') {
            int64_t j = i + 1;
            while (j < (int64_t)len && text[j] != '\n' && space(text[j])) j++;
            if (j < (int64_t)len && text[j] == '\n') end = true, next = j + 1;
        }
        if (!end) continue;
        paragraph(&c, start, i);
        start = next, i = next - 1;
    }
    // Units packed greedily; the next chunk starts with the last units of this one that fit the overlap.
    hn_rag_span *out = NULL;
    int cap = 0;
    for (int i = 0; i < c.n && !c.s;) {
        int j = i, tot = 0;
        while (j < c.n && (j == i || tot + c.u[j].ntok <= c.max)) tot += c.u[j++].ntok;
        if (*n == cap) {
            hn_rag_span *g = realloc(out, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *g);
            if (!g) {
                c.s = hn_fail(HN_ERR_NOMEM, "out of memory splitting a document");
                break;
            }
            out = g;
        }
        out[(*n)++] = (hn_rag_span){c.u[i].start, c.u[j - 1].end, tot};
        if (j == c.n) break;
        int k = j, t = 0;
        while (k - 1 > i && t + c.u[k - 1].ntok <= c.overlap) t += c.u[--k].ntok;
        i = k;
    }
    free(c.u);
    if (c.s) {
        free(out);
        *n = 0;
        return c.s;
    }
    *spans = out;
    return HN_OK;
}
