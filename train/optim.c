// train/optim.c — AdamW and global-norm gradient clipping (train/optim.h).
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

hn_adamw_params hn_adamw_default_params(void) {
    return (hn_adamw_params){.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
}

hn_status hn_adamw_init(hn_adamw *o, const hn_param_list *params, const hn_adamw_params *p) {
    memset(o, 0, sizeof *o);
    o->p = *p;
    o->params = params;
    o->off = hn_calloc((size_t)params->n + 1, sizeof *o->off, "the optimizer's param offsets");
    if (!o->off) return HN_ERR_NOMEM;
    for (int i = 0; i < params->n; i++) o->off[i + 1] = o->off[i] + params->items[i]->n;
    o->n_total = o->off[params->n];
    size_t n = o->n_total ? (size_t)o->n_total : 1;
    o->m = hn_calloc(n, sizeof(float), "AdamW's first moments");
    o->v = o->m ? hn_calloc(n, sizeof(float), "AdamW's second moments") : NULL;
    if (!o->v) {
        hn_adamw_deinit(o);
        return hn_fail(HN_ERR_NOMEM, "out of memory for AdamW's state (%lld values, %s)", (long long)o->n_total,
                       hn_errmsg());
    }
    return HN_OK;
}

void hn_adamw_deinit(hn_adamw *o) {
    free(o->m);
    free(o->v);
    free(o->off);
    memset(o, 0, sizeof *o);
}

void hn_adamw_step(hn_adamw *o, double lr) {
    o->t++;
    // The scalars are formed in double and applied in fp32, as torch does with Python floats on fp32 tensors.
    const double bc1 = 1.0 - pow(o->p.beta1, (double)o->t);
    const double bc2 = 1.0 - pow(o->p.beta2, (double)o->t);
    const float w1 = (float)(1.0 - o->p.beta1), b2 = (float)o->p.beta2, w2 = (float)(1.0 - o->p.beta2);
    const float step = (float)(-(lr / bc1)), bc2_sqrt = (float)sqrt(bc2), eps = (float)o->p.eps;
    for (int i = 0; i < o->params->n; i++) {
        const hn_param *pr = o->params->items[i];
        if (pr->frozen) continue; // its moments stay as they were
        float *x = pr->data, *m = o->m + o->off[i], *v = o->v + o->off[i];
        const float *g = pr->grad;
        const float decay = pr->no_decay ? 1.0f : (float)(1.0 - lr * o->p.weight_decay);
        const int64_t n = pr->n;
#pragma omp parallel for schedule(static) if (n > 32768)
        for (int64_t j = 0; j < n; j++) {
            float xj = x[j] * decay;
            // torch's lerp: m + w (g - m) for a weight below one half, else g - (g - m)(1 - w)
            m[j] = w1 < 0.5f ? m[j] + w1 * (g[j] - m[j]) : g[j] - (g[j] - m[j]) * (1.0f - w1);
            v[j] = v[j] * b2 + w2 * g[j] * g[j];
            float denom = sqrtf(v[j]) / bc2_sqrt + eps;
            x[j] = xj + step * m[j] / denom;
        }
    }
}

#define CLIP_BLOCK 4096

double hn_grad_clip(const hn_param_list *params, double max_norm) {
    double total = 0;
    for (int i = 0; i < params->n; i++) {
        const hn_param *pr = params->items[i];
        if (pr->frozen) continue;
        const float *g = pr->grad;
        const int64_t nb = (pr->n + CLIP_BLOCK - 1) / CLIP_BLOCK;
        double sum = 0;
        // Blocks of fixed size summed in order: the same bits whatever the thread count.
#pragma omp parallel for schedule(static) ordered if (nb > 8)
        for (int64_t b = 0; b < nb; b++) {
            int64_t lo = b * CLIP_BLOCK, hi = lo + CLIP_BLOCK < pr->n ? lo + CLIP_BLOCK : pr->n;
            double s = 0;
            for (int64_t j = lo; j < hi; j++) s += (double)g[j] * g[j];
#pragma omp ordered
            sum += s;
        }
        total += sum;
    }
    double norm = sqrt(total);
    if (max_norm > 0 && isfinite(norm)) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            const float c = (float)coef;
            for (int i = 0; i < params->n; i++) {
                if (params->items[i]->frozen) continue;
                float *g = params->items[i]->grad;
                for (int64_t j = 0; j < params->items[i]->n; j++) g[j] *= c;
            }
        }
    }
    return norm;
}
