// model/generate.c — the generation loop: prompt pass, then sample / feed one token at a time, streaming text.
//
// Text is held back until it is safe to show: an incomplete UTF-8 character at the end waits for the bytes of the
// next token, and a tail that could be the beginning of a stop string waits until it is known not to be one. When a
// stop string appears, the text before it is emitted and the stop string is not.
#define _GNU_SOURCE // memmem
#include "model/sample.h"

#include <stdlib.h>
#include <string.h>

// Length of the longest suffix of s[0..n) that is a proper prefix of stop.
static size_t partial_stop(const char *s, size_t n, const char *stop) {
    size_t ls = strlen(stop);
    for (size_t k = ls - 1 < n ? ls - 1 : n; k > 0; k--)
        if (!memcmp(s + n - k, stop, k)) return k;
    return 0;
}

// Bytes at the end of s[0..n) that start a UTF-8 character whose continuation bytes have not arrived yet.
static size_t incomplete_utf8(const unsigned char *s, size_t n) {
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char c = s[n - back];
        if ((c & 0xC0) == 0x80) continue; // continuation byte: keep looking for the lead
        size_t need = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

typedef struct {
    char *buf; // text produced but not yet emitted
    size_t len, cap;
} pending;

static bool pending_add(pending *p, const char *s, size_t n) {
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap : 256;
        while (cap < p->len + n) cap *= 2;
        char *nb = realloc(p->buf, cap);
        if (!nb) return false;
        p->buf = nb, p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    return true;
}

// Emits the first n pending bytes; false if the consumer asked to stop.
static bool emit(pending *p, size_t n, const hn_generate_params *gp) {
    bool go = true;
    if (n && gp->on_text) go = gp->on_text(p->buf, n, gp->user);
    memmove(p->buf, p->buf + n, p->len - n);
    p->len -= n;
    return go;
}

hn_status hn_generate(hn_model *m, hn_kv_cache *kv, hn_sampler *s, const int32_t *prompt, int n_prompt,
                      const hn_generate_params *gp, hn_generate_stats *stats) {
    memset(stats, 0, sizeof *stats);
    stats->n_prompt = n_prompt;
    int n_predict = gp->n_predict < 0 ? hn_kv_cache_size(kv) : gp->n_predict;
    int32_t *hist = hn_calloc((size_t)n_prompt + n_predict + 1, sizeof *hist, "generation history");
    if (!hist) return HN_ERR_NOMEM;
    memcpy(hist, prompt, (size_t)n_prompt * sizeof *hist);
    int n_hist = n_prompt;
    pending pend = {0};
    float *logits;
    double t0 = hn_now();
    hn_status st = hn_model_forward(m, kv, prompt, n_prompt, HN_LOGITS_LAST, &logits);
    stats->prompt_s = hn_now() - t0;
    if (st) goto done;

    t0 = hn_now();
    bool go = true;
    while (go && stats->n_gen < n_predict) {
        int32_t id = hn_sampler_sample(s, logits, hist, n_hist);
        if (hn_tokenizer_is_eog(m->tok, id)) {
            stats->stopped_eog = true;
            break;
        }
        hist[n_hist++] = id;
        stats->n_gen++;
        char piece[256];
        int nb = hn_tokenizer_token_bytes(m->tok, id, piece, sizeof piece);
        if (nb > (int)sizeof piece) nb = sizeof piece; // no vocabulary entry is this long; keep what fits
        if (nb > 0 && !pending_add(&pend, piece, nb)) {
            st = hn_fail(HN_ERR_NOMEM, "generate: out of memory for the streamed text");
            break;
        }
        // A stop string anywhere in the pending text ends generation; the earliest one wins.
        size_t cut = SIZE_MAX;
        for (int i = 0; i < gp->n_stop; i++) {
            const char *hit = gp->stop[i][0] ? memmem(pend.buf, pend.len, gp->stop[i], strlen(gp->stop[i])) : NULL;
            if (hit && (size_t)(hit - pend.buf) < cut) cut = hit - pend.buf;
        }
        if (cut != SIZE_MAX) {
            emit(&pend, cut, gp);
            pend.len = 0;
            stats->stopped_string = true;
            break;
        }
        size_t hold = incomplete_utf8((const unsigned char *)pend.buf, pend.len);
        for (int i = 0; i < gp->n_stop; i++) {
            size_t h = gp->stop[i][0] ? partial_stop(pend.buf, pend.len, gp->stop[i]) : 0;
            hold = h > hold ? h : hold;
        }
        go = emit(&pend, pend.len - hold, gp);
        // The sampled token goes into the cache even when it is the last, so that a conversation can go on.
        if (hn_kv_cache_pos(kv) >= hn_kv_cache_size(kv)) break;
        if ((st = hn_model_forward(m, kv, &id, 1, HN_LOGITS_LAST, &logits))) break;
        if (hn_kv_cache_pos(kv) >= hn_kv_cache_size(kv)) break; // no room to feed another token
    }
    if (!st && pend.len) emit(&pend, pend.len, gp); // what is left at the end is shown as it is
    stats->decode_s = hn_now() - t0;
done:
    free(pend.buf);
    free(hist);
    return st;
}
