// tensor/nn.c — fp32 kernels of the transformer block (see nn.h). Loops keep 16 independent partial sums so that the
// compiler vectorises them without reassociating floats; hot kernels are cloned per ISA (GCC target_clones, an ifunc
// picked once at load time), so there is one source and no #ifdef.
#include "tensor/nn.h"
#include "tensor/kernels.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define HN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define LANES 16

// Work below this many multiply-adds stays on the calling thread: an OpenMP region costs a few microseconds.
#define PAR_MIN_WORK 32768

static inline float dot(const float *a, const float *b, int64_t n) {
    float acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += a[i + j] * b[i + j];
    float s = 0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

// The vector exp of tensor/vmath*.c, the polynomial of hn_exp1 (GCC at -O2 leaves this loop scalar).
void hn_exp_inplace(float *x, int64_t n) { hn_vmath_active()->exp(x, x, n); }

HN_CLONES static void rmsnorm_row(float *y, const float *x, const float *w, int64_t C, float eps) {
    float ss = dot(x, x, C);
    float s = 1.0f / sqrtf(ss / (float)C + eps);
    for (int64_t i = 0; i < C; i++) y[i] = x[i] * s * w[i];
}

void hn_rmsnorm(float *y, const float *x, const float *w, int64_t T, int64_t C, float eps) {
#pragma omp parallel for num_threads(hn_threads_get()) if (T * C >= 4 * PAR_MIN_WORK)
    for (int64_t t = 0; t < T; t++) rmsnorm_row(y + t * C, x + t * C, w, C, eps);
}

void hn_rope_table_ex(float *cs, int n_pos, int head_dim, const hn_rope_params *p) {
    int half = head_dim / 2;
    double lin = p->linear > 0 ? p->linear : 1.0;
    for (int i = 0; i < half; i++) {
        double freq = pow((double)p->theta, -2.0 * i / head_dim) / lin;
        if (p->freq_factors) freq /= p->freq_factors[i];
        for (int q = 0; q < n_pos; q++) {
            double a = q * freq;
            cs[((int64_t)q * half + i) * 2 + 0] = (float)cos(a);
            cs[((int64_t)q * half + i) * 2 + 1] = (float)sin(a);
        }
    }
}

void hn_rope_table(float *cs, int n_pos, int head_dim, float theta) {
    hn_rope_table_ex(cs, n_pos, head_dim, &(hn_rope_params){theta, 1.0f, NULL});
}

HN_CLONES void hn_rope(float *x, int64_t T, int n_head, int head_dim, const float *cs, int pos0, bool neox) {
    int half = head_dim / 2;
    // Pair i is (x[i * step], x[i * step + off]): adjacent (step 2, off 1) or the halves (step 1, off hd/2).
    int step = neox ? 1 : 2, off = neox ? half : 1;
    for (int64_t t = 0; t < T; t++) {
        const float *c = cs + (pos0 + t) * (int64_t)head_dim; // half pairs of (cos, sin)
        for (int h = 0; h < n_head; h++) {
            float *v = x + (t * n_head + h) * head_dim;
            for (int i = 0; i < half; i++) {
                float a = v[i * step], b = v[i * step + off], co = c[2 * i], si = c[2 * i + 1];
                v[i * step] = a * co - b * si;
                v[i * step + off] = a * si + b * co;
            }
        }
    }
}

HN_CLONES void hn_softmax(float *x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += x[i + j] = hn_exp1(x[i + j] - mx);
    float s = 0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    for (; i < n; i++) s += x[i] = hn_exp1(x[i] - mx);
    float inv = 1.0f / s;
    for (i = 0; i < n; i++) x[i] *= inv;
}

HN_CLONES static void swiglu_range(float *y, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + hn_exp1(-g[i])) * u[i];
}

void hn_swiglu(float *y, const float *g, const float *u, int64_t n) {
    int nt = hn_threads_get();
    if (n < 8 * PAR_MIN_WORK || nt < 2) {
        swiglu_range(y, g, u, n);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int64_t per = (n + omp_get_num_threads() - 1) / omp_get_num_threads();
        int64_t a = per * omp_get_thread_num(), b = a + per < n ? a + per : n;
        if (a < b) swiglu_range(y + a, g + a, u + a, b - a);
    }
}

// Where one head's keys (or values) of positions 0, 1, ... lie: contiguous from base (table NULL), or in blocks of
// 2^shift positions, position s in block table[s >> shift] at base + table[...] * block + (s & mask) * hd.
typedef struct {
    const float *k, *v;
    const int32_t *table;
    int64_t block;
    int shift;
} kv_rows;

static inline int64_t kv_at(const kv_rows *r, int64_t s, int hd) {
    if (!r->table) return s * hd;
    return r->table[s >> r->shift] * r->block + (s & ((1 << r->shift) - 1)) * hd;
}

// One query row of one head: out (hd) = softmax(q·K[0..S)^T * scale) · V[0..S). p is scratch of S floats. Paged
// or not, the sums run in the same order, so a paged cache gives the contiguous one's result bit for bit.
// `omp simd` makes GCC vectorise the hd-long loops at -O2 (its cheap cost model would leave them scalar: the trip
// count is not a compile-time constant and out could alias v).
HN_CLONES static void attend_row(float *restrict out, const float *restrict q, const kv_rows *kv, int64_t S, int hd,
                                 float scale, float *restrict p) {
    float mx = -INFINITY;
    for (int64_t s = 0; s < S; s++) {
        const float *restrict ks = kv->k + kv_at(kv, s, hd);
        float d = 0;
#pragma omp simd reduction(+ : d)
        for (int i = 0; i < hd; i++) d += q[i] * ks[i];
        p[s] = d * scale;
        mx = p[s] > mx ? p[s] : mx;
    }
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t s = 0; s < S; s++) sum += p[s] = hn_exp1(p[s] - mx);
    float inv = 1.0f / sum;
#pragma omp simd
    for (int d = 0; d < hd; d++) out[d] = 0;
    for (int64_t s = 0; s < S; s++) {
        float w = p[s] * inv;
        const float *restrict vs = kv->v + kv_at(kv, s, hd);
#pragma omp simd
        for (int d = 0; d < hd; d++) out[d] += w * vs[d];
    }
}

void hn_attention(float *out, const float *q, const float *k, const float *v, int64_t T, int pos0, int n_head,
                  int n_head_kv, int head_dim, int64_t kv_stride, float *scratch, int n_scratch) {
    int group = n_head / n_head_kv;
    float scale = 1.0f / sqrtf((float)head_dim);
    int64_t n_rows = T * n_head;
    // Work grows with the positions attended: about n_rows * (pos0 + T) * hd * 2 multiply-adds.
    int64_t work = n_rows * (int64_t)(pos0 + T) * head_dim * 2;
    int nt = hn_threads_get() < n_scratch ? hn_threads_get() : n_scratch;
    if (work < PAR_MIN_WORK) nt = 1;
    // Rows are (head, token) pairs; later tokens attend further, so hand them out dynamically.
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t r = 0; r < n_rows; r++) {
        int h = (int)(r % n_head);
        int64_t t = r / n_head;
        int kvh = h / group;
        float *p = scratch + (int64_t)omp_get_thread_num() * kv_stride;
        kv_rows kr = {k + kvh * kv_stride * head_dim, v + kvh * kv_stride * head_dim, NULL, 0, 0};
        attend_row(out + (t * n_head + h) * head_dim, q + (t * n_head + h) * head_dim, &kr, pos0 + t + 1, head_dim,
                   scale, p);
    }
}

void hn_attention_paged(float *out, const float *q, int64_t n, const int32_t *pos, const int32_t *const *tables,
                        const float *k, const float *v, int block_shift, int n_head, int n_head_kv, int head_dim,
                        float *scratch, int64_t scratch_stride, int n_scratch) {
    int group = n_head / n_head_kv;
    float scale = 1.0f / sqrtf((float)head_dim);
    const int64_t bs = (int64_t)1 << block_shift, block = (int64_t)n_head_kv * bs * head_dim;
    int64_t n_rows = n * n_head, work = 0;
    for (int64_t t = 0; t < n; t++) work += (int64_t)(pos[t] + 1) * n_head * head_dim * 2;
    int nt = hn_threads_get() < n_scratch ? hn_threads_get() : n_scratch;
    if (work < PAR_MIN_WORK) nt = 1;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t r = 0; r < n_rows; r++) {
        int h = (int)(r % n_head);
        int64_t t = r / n_head, kvh = h / group;
        float *p = scratch + (int64_t)omp_get_thread_num() * scratch_stride;
        kv_rows kr = {k + kvh * bs * head_dim, v + kvh * bs * head_dim, tables[t], block, block_shift};
        attend_row(out + (t * n_head + h) * head_dim, q + (t * n_head + h) * head_dim, &kr, pos[t] + 1, head_dim,
                   scale, p);
    }
}
