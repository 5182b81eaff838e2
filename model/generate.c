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

static bool buf_add(hn_textstream *ts, const char *s, size_t n) {
    if (ts->len + n > ts->cap) {
        size_t cap = ts->cap ? ts->cap : 256;
        while (cap < ts->len + n) cap *= 2;
        char *nb = realloc(ts->buf, cap);
        if (!nb) return false;
        ts->buf = nb, ts->cap = cap;
    }
    memcpy(ts->buf + ts->len, s, n);
    ts->len += n;
    return true;
}

hn_status hn_textstream_push(hn_textstream *ts, const char *bytes, size_t n, size_t *ready) {
    *ready = 0;
    if (ts->stopped) return HN_OK;
    if (n && !buf_add(ts, bytes, n)) return hn_fail(HN_ERR_NOMEM, "generate: out of memory for the streamed text");
    // A stop string anywhere in the pending text ends generation; the earliest one wins.
    size_t cut = SIZE_MAX;
    for (int i = 0; i < ts->n_stop; i++) {
        const char *hit = ts->stop[i][0] ? memmem(ts->buf, ts->len, ts->stop[i], strlen(ts->stop[i])) : NULL;
        if (hit && (size_t)(hit - ts->buf) < cut) cut = hit - ts->buf;
    }
    if (cut != SIZE_MAX) {
        ts->len = cut;
        ts->stopped = true;
        *ready = cut;
        return HN_OK;
    }
    size_t hold = incomplete_utf8((const unsigned char *)ts->buf, ts->len);
    for (int i = 0; i < ts->n_stop; i++) {
        size_t h = ts->stop[i][0] ? partial_stop(ts->buf, ts->len, ts->stop[i]) : 0;
        hold = h > hold ? h : hold;
    }
    *ready = ts->len - hold;
    return HN_OK;
}

void hn_textstream_take(hn_textstream *ts, size_t n) {
    memmove(ts->buf, ts->buf + n, ts->len - n);
    ts->len -= n;
}

void hn_textstream_deinit(hn_textstream *ts) {
    free(ts->buf);
    *ts = (hn_textstream){0};
}

// Shows the first n pending bytes; false if the consumer asked to stop.
static bool emit(hn_textstream *ts, size_t n, const hn_generate_params *gp) {
    bool go = true;
    if (n && gp->on_text) go = gp->on_text(ts->buf, n, gp->user);
    hn_textstream_take(ts, n);
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
    hn_textstream ts = {.stop = gp->stop, .n_stop = gp->n_stop};
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
        size_t ready;
        if ((st = hn_textstream_push(&ts, piece, nb > 0 ? (size_t)nb : 0, &ready))) break;
        go = emit(&ts, ready, gp);
        if (ts.stopped) {
            stats->stopped_string = true;
            break;
        }
        // The sampled token goes into the cache even when it is the last, so that a conversation can go on.
        if (hn_kv_cache_pos(kv) >= hn_kv_cache_size(kv)) break;
        if ((st = hn_model_forward(m, kv, &id, 1, HN_LOGITS_LAST, &logits))) break;
        if (hn_kv_cache_pos(kv) >= hn_kv_cache_size(kv)) break; // no room to feed another token
    }
    if (!st && ts.len) emit(&ts, ts.len, gp); // what is left at the end is shown as it is
    stats->decode_s = hn_now() - t0;
done:
    hn_textstream_deinit(&ts);
    free(hist);
    return st;
}
