// model/sample.c — choosing the next token. The order follows llama.cpp's default chain: repetition penalty, then
// top-k, top-p and min-p on the untempered distribution, then temperature, then a draw from the seeded rng.
// Temperature 0 is greedy: the argmax after the penalty (the lowest id on a tie).
#include "model/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float logit;
    int32_t id;
} cand;

struct hn_sampler {
    hn_sampler_params p;
    int n_vocab;
    hn_rng rng;
    float *logits; // (n_vocab) penalised copy of the caller's logits
    cand *c;       // (n_vocab) candidates, best first once sorted
    float *prob;   // (n_vocab)
    uint8_t *mark; // (n_vocab) tokens already penalised in this call; all zero between calls
};

hn_sampler_params hn_sampler_default_params(void) {
    return (hn_sampler_params){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f,
                               .repeat_last_n = 64, .seed = 0};
}

hn_sampler *hn_sampler_create(const hn_sampler_params *p, int n_vocab) {
    if (n_vocab < 1) {
        hn_fail(HN_ERR_ARG, "sampler: vocabulary of %d tokens", n_vocab);
        return NULL;
    }
    if (!(p->temp >= 0) || p->top_k < 0 || !(p->top_p > 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1) ||
        !(p->repeat_penalty > 0) || p->repeat_last_n < 0) {
        hn_fail(HN_ERR_ARG,
                "sampler: expected temp >= 0, top_k >= 0, 0 < top_p <= 1, 0 <= min_p <= 1, repeat_penalty > 0, "
                "repeat_last_n >= 0; got %g, %d, %g, %g, %g, %d",
                (double)p->temp, p->top_k, (double)p->top_p, (double)p->min_p, (double)p->repeat_penalty,
                p->repeat_last_n);
        return NULL;
    }
    hn_sampler *s = hn_calloc(1, sizeof *s, "sampler");
    if (!s) return NULL;
    s->p = *p;
    s->n_vocab = n_vocab;
    hn_rng_seed(&s->rng, p->seed);
    s->logits = hn_calloc(n_vocab, sizeof *s->logits, "sampler");
    s->c = hn_calloc(n_vocab, sizeof *s->c, "sampler");
    s->prob = hn_calloc(n_vocab, sizeof *s->prob, "sampler");
    s->mark = hn_calloc(n_vocab, 1, "sampler");
    if (!s->logits || !s->c || !s->prob || !s->mark) {
        hn_sampler_destroy(s);
        return NULL;
    }
    return s;
}

void hn_sampler_destroy(hn_sampler *s) {
    if (!s) return;
    free(s->logits);
    free(s->c);
    free(s->prob);
    free(s->mark);
    free(s);
}

// a before b: higher logit first, lower id on a tie (so the order, and hence sampling, is deterministic).
static inline bool better(cand a, cand b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

static int cmp_cand(const void *x, const void *y) {
    cand a = *(const cand *)x, b = *(const cand *)y;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

// Moves the k best of c[0..n) to c[0..k), sorted best first, with a min-heap of size k: O(n log k).
static void top_k_select(cand *c, int n, int k) {
    // Heap in c[0..k): the root is the worst of the kept candidates.
    for (int i = k / 2 - 1; i >= 0; i--)
        for (int j = i;;) {
            int w = j, l = 2 * j + 1, r = l + 1;
            if (l < k && better(c[w], c[l])) w = l;
            if (r < k && better(c[w], c[r])) w = r;
            if (w == j) break;
            cand t = c[j];
            c[j] = c[w], c[w] = t, j = w;
        }
    for (int i = k; i < n; i++) {
        if (!better(c[i], c[0])) continue;
        c[0] = c[i];
        for (int j = 0;;) {
            int w = j, l = 2 * j + 1, r = l + 1;
            if (l < k && better(c[w], c[l])) w = l;
            if (r < k && better(c[w], c[r])) w = r;
            if (w == j) break;
            cand t = c[j];
            c[j] = c[w], c[w] = t, j = w;
        }
    }
    qsort(c, k, sizeof *c, cmp_cand);
}

// prob[i] = softmax(c[i].logit / temp) over the first n candidates (sorted best first).
static void softmax_cands(const cand *c, int n, float temp, float *prob) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += prob[i] = expf((c[i].logit - c[0].logit) / temp);
    for (int i = 0; i < n; i++) prob[i] = (float)(prob[i] / sum);
}

// The draw without top-k, from only the best PREFIX candidates sorted (top_k_select) rather than all of a large
// vocabulary (a full sort of 49k candidates took milliseconds per token, and a serving step samples for every
// sequence): the masses that top-p and the draw need come from sums over every logit, and the walk stops inside the
// prefix almost always. false when it does not (a flat distribution): the caller sorts everything. The cuts are
// those of the full path; the no-cut draw normalises by a sum taken in id order, so it may differ from the full
// path's by rounding only.
#define PREFIX 256
static bool draw_from_prefix(hn_sampler *s, float r, int32_t *out) {
    const hn_sampler_params *p = &s->p;
    const int V = s->n_vocab;
    if (V <= 4 * PREFIX) return false;
    cand *c = s->c;
    top_k_select(c, V, PREFIX);
    const float top = c[0].logit;
    int n = PREFIX;
    bool cut = false;
    if (p->top_p < 1.0f) {
        double all = 0, cum = 0;
        for (int i = 0; i < V; i++) all += expf(s->logits[i] - top);
        int i = 0;
        while (i < PREFIX && (cum += expf(c[i].logit - top) / all) < p->top_p) i++;
        if (i == PREFIX) return false; // the nucleus reaches past the prefix
        n = i + 1, cut = true;
    }
    if (p->min_p > 0) {
        float lim = top + logf(p->min_p);
        int keep = 1;
        while (keep < n && c[keep].logit >= lim) keep++;
        if (keep == PREFIX) return false; // more may pass the cut beyond the prefix
        n = keep, cut = true;
    }
    if (cut) { // the kept candidates are all in the prefix: the full path's draw over them
        softmax_cands(c, n, p->temp, s->prob);
        double cum = 0;
        for (int i = 0; i < n; i++)
            if (r < (cum += s->prob[i])) return *out = c[i].id, true;
        return *out = c[n - 1].id, true;
    }
    double all = 0, cum = 0;
    for (int i = 0; i < V; i++) all += expf((s->logits[i] - top) / p->temp);
    for (int i = 0; i < PREFIX; i++)
        if (r < (cum += expf((c[i].logit - top) / p->temp) / all)) return *out = c[i].id, true;
    return false;
}

int32_t hn_sampler_sample(hn_sampler *s, const float *logits, const int32_t *recent, int n_recent) {
    const hn_sampler_params *p = &s->p;
    const int V = s->n_vocab;
    float *lg = s->logits;
    memcpy(lg, logits, (size_t)V * sizeof *lg);
    // llama.cpp's repetition penalty: each distinct recent token once, positive logits divided, negative multiplied.
    if (p->repeat_penalty != 1.0f && n_recent > 0) {
        int first = n_recent > p->repeat_last_n ? n_recent - p->repeat_last_n : 0;
        for (int i = first; i < n_recent; i++) {
            int32_t id = recent[i];
            if (id < 0 || id >= V || s->mark[id]) continue;
            s->mark[id] = 1;
            lg[id] = lg[id] > 0 ? lg[id] / p->repeat_penalty : lg[id] * p->repeat_penalty;
        }
        for (int i = first; i < n_recent; i++)
            if (recent[i] >= 0 && recent[i] < V) s->mark[recent[i]] = 0;
    }
    if (p->temp <= 0) {
        int32_t best = 0;
        for (int i = 1; i < V; i++)
            if (lg[i] > lg[best]) best = i;
        return best;
    }
    cand *c = s->c;
    for (int i = 0; i < V; i++) c[i] = (cand){lg[i], i};
    float r = hn_rng_f32(&s->rng);
    if (!(p->top_k > 0 && p->top_k < V)) { // most draws need only the best few hundred candidates sorted
        int32_t id;
        if (draw_from_prefix(s, r, &id)) return id;
        for (int i = 0; i < V; i++) c[i] = (cand){lg[i], i};
    }
    int n = V;
    if (p->top_k > 0 && p->top_k < V) {
        top_k_select(c, V, p->top_k);
        n = p->top_k;
    } else
        qsort(c, V, sizeof *c, cmp_cand);
    if (p->top_p < 1.0f) {
        softmax_cands(c, n, 1.0f, s->prob);
        double cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += s->prob[i];
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (p->min_p > 0) {
        // p_i >= min_p * p_max  <=>  logit_i >= logit_max + log(min_p); the best token always stays.
        float cut = c[0].logit + logf(p->min_p);
        int keep = 1;
        while (keep < n && c[keep].logit >= cut) keep++;
        n = keep;
    }
    softmax_cands(c, n, p->temp, s->prob);
    double cum = 0;
    for (int i = 0; i < n; i++) {
        cum += s->prob[i];
        if (r < cum) return c[i].id;
    }
    return c[n - 1].id; // r fell past the last bucket by rounding
}
