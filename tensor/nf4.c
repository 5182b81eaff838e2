// tensor/nf4.c — NF4 quantization as bitsandbytes computes it on the CPU (quantize_4bit with blocksize 64 and
// compress_statistics, FORMATS.md section 6), dequantization for the type traits, and the registry that lets
// to_f32 find a tensor's statistics from a pointer into its codes (the layout is in tensor/nf4.h).
//
// bitsandbytes' arithmetic, step by step, because the test compares codes exactly:
//   - absmax[b] = max |x| over 64-block b; scaled = clamp(x * (1 / max(absmax, 1e-38)), -1, 1) (a reciprocal
//     and a product, as its default quantize_4bit does, not a division); the code is the number of midpoints
//     between adjacent NF4 values that lie strictly below `scaled` (torch.bucketize: a tie goes to the lower code).
//   - offset = mean(absmax); v = absmax - offset; per group of 256: absmax2 = max |v|, normed = v / absmax2 (a
//     division, as its C++ quantize_block does), code = the nearest entry of the dynamic map, a tie to the lower.
//   - dequantize: absmax = dynamic[q] * absmax2 then + offset (two fp32 roundings, no fused multiply-add), and
//     x = NF4[code] * absmax.
// The mean is summed in double and rounded once; torch sums in float, so the offset may differ from
// bitsandbytes' in the last bit (the test allows for it).
#include "tensor/nf4.h"
#include "tensor/kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

// FORMATS.md 6.1: bitsandbytes' hard-coded table (create_normal_map(offset=0.9677083, use_extra_value=True)).
const float hn_nf4_values[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f,
    1.0f,
};

static float g_mid[15];   // midpoints between adjacent NF4 values: the quantizer's bucket bounds
static float g_dyn[256];  // the signed dynamic map
static bool g_avx2;       // whole blocks through nf4_avx2.c (the CPU has AVX2 and HONE_SIMD allows it)
static pthread_once_t g_tables_once = PTHREAD_ONCE_INIT;

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

// create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8) in fp32 as torch computes it: for i = 0..6,
// the means of adjacent points of linspace(0.1, 1, 2^i + 1), times +-10^(i-6) (the scale rounded to fp32 first);
// then 0 and 1, sorted. torch's linspace takes step = (end - start) / (steps - 1) and fills the first half from
// start, the second from end, each point one fused multiply-add (plain a + b * c misses 24 of the 256 entries).
static void build_tables(void) {
    g_avx2 = hn_simd_active() >= HN_SIMD_AVX2;
    for (int i = 0; i < 15; i++) g_mid[i] = (hn_nf4_values[i] + hn_nf4_values[i + 1]) / 2.0f;
    int n = 0;
    for (int i = 0; i < 7; i++) {
        int steps = (1 << i) + 1, half = steps / 2;
        float start = 0.1f, end = 1.0f, step = (end - start) / (float)(steps - 1), b[65];
        for (int k = 0; k < steps; k++)
            b[k] = k < half ? fmaf(step, (float)k, start) : fmaf(-step, (float)(steps - k - 1), end);
        float scale = (float)pow(10.0, i - 6);
        for (int k = 0; k + 1 < steps; k++) {
            float mean = (b[k] + b[k + 1]) / 2.0f;
            g_dyn[n++] = scale * mean;
            g_dyn[n++] = -scale * mean;
        }
    }
    g_dyn[n++] = 0.0f;
    g_dyn[n++] = 1.0f;
    qsort(g_dyn, 256, sizeof(float), cmp_float);
}

const float *hn_nf4_dynamic_map(void) {
    pthread_once(&g_tables_once, build_tables);
    return g_dyn;
}

// ---- the registry: which allocation a pointer into NF4 codes belongs to ----
//
// Readers (to_f32 on any thread) take the current table with one atomic load and binary-search it; writers
// (quantize, free) build a new sorted table under a mutex and publish it. A replaced table may still be read, so
// it is kept until the registry is empty again, when no NF4 tensor is left for anyone to read.

typedef struct {
    uintptr_t lo, hi; // the codes: [lo, hi)
    const hn_nf4_state *st;
} reg_entry;

typedef struct reg_table {
    struct reg_table *retired; // older tables, freed together
    size_t n;
    reg_entry e[];
} reg_table;

static _Atomic(reg_table *) g_reg;
static reg_table *g_retired;
static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;

static const hn_nf4_state *reg_find(const void *p) {
    const reg_table *t = atomic_load_explicit(&g_reg, memory_order_acquire);
    if (!t) return NULL;
    uintptr_t a = (uintptr_t)p;
    size_t lo = 0, hi = t->n; // lo: the number of entries starting at or before a
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->e[mid].lo <= a) lo = mid + 1;
        else hi = mid;
    }
    return lo && a < t->e[lo - 1].hi ? t->e[lo - 1].st : NULL;
}

// Publishes a copy of the current table with `add` inserted (st non-NULL) or the entry of `remove` taken out.
static bool reg_update(const hn_nf4_state *add, const hn_nf4_state *remove) {
    pthread_mutex_lock(&g_reg_mu);
    reg_table *old = atomic_load_explicit(&g_reg, memory_order_relaxed);
    size_t n_old = old ? old->n : 0, n = n_old + (add ? 1 : 0) - (remove ? 1 : 0);
    reg_table *t = hn_alloc(sizeof *t + (n + 1) * sizeof(reg_entry), "NF4 registry");
    if (!t) {
        pthread_mutex_unlock(&g_reg_mu);
        return false;
    }
    t->retired = NULL;
    t->n = 0;
    reg_entry ne = {0};
    if (add) ne = (reg_entry){(uintptr_t)add->codes, (uintptr_t)add->codes + (size_t)(add->n / 2), add};
    bool placed = !add;
    for (size_t i = 0; i < n_old; i++) {
        if (old->e[i].st == remove) continue;
        if (!placed && ne.lo < old->e[i].lo) t->e[t->n++] = ne, placed = true;
        t->e[t->n++] = old->e[i];
    }
    if (!placed) t->e[t->n++] = ne;
    if (old) {
        old->retired = g_retired;
        g_retired = old;
    }
    if (t->n == 0) { // nothing left to look up: every table can go
        atomic_store_explicit(&g_reg, NULL, memory_order_release);
        for (reg_table *r = g_retired, *next; r; r = next) next = r->retired, free(r);
        g_retired = NULL;
        free(t);
    } else {
        atomic_store_explicit(&g_reg, t, memory_order_release);
    }
    pthread_mutex_unlock(&g_reg_mu);
    return true;
}

// ---- dequantization ----

// (The tables exist: a tensor is registered only after hn_nf4_quantize built them.)
static inline float block_absmax(const hn_nf4_state *st, int64_t b) {
    float a = g_dyn[st->qabsmax[b]] * st->absmax2[b / HN_NF4_GROUP];
    a += st->offset; // a separate rounding, as bitsandbytes' `absmax += offset`
    return a;
}

float hn_nf4_absmax(const hn_nf4_state *st, int64_t b) {
    pthread_once(&g_tables_once, build_tables);
    return block_absmax(st, b);
}

// Whole blocks go to the AVX2 kernels this many at a time, their scales computed here first.
#define SIMD_BLOCKS 32

// n elements from element e (even) on, whose codes start at q.
static void dequant(const hn_nf4_state *st, const uint8_t *q, int64_t e, float *dst, int64_t n) {
    while (n > 0) {
        if (g_avx2 && e % HN_NF4_BLOCK == 0 && n >= HN_NF4_BLOCK) {
            int64_t nb = n / HN_NF4_BLOCK < SIMD_BLOCKS ? n / HN_NF4_BLOCK : SIMD_BLOCKS;
            float sc[SIMD_BLOCKS];
            for (int64_t i = 0; i < nb; i++) sc[i] = block_absmax(st, e / HN_NF4_BLOCK + i);
            hn_nf4_dequant_avx2(q, sc, nb, dst);
            q += nb * HN_NF4_BLOCK / 2, e += nb * HN_NF4_BLOCK, dst += nb * HN_NF4_BLOCK, n -= nb * HN_NF4_BLOCK;
            continue;
        }
        int64_t b = e / HN_NF4_BLOCK, m = HN_NF4_BLOCK - e % HN_NF4_BLOCK;
        if (m > n) m = n;
        float a = block_absmax(st, b);
        for (int64_t j = 0; j + 1 < m; j += 2, q++) {
            dst[j] = hn_nf4_values[*q >> 4] * a;
            dst[j + 1] = hn_nf4_values[*q & 15] * a;
        }
        if (m & 1) dst[m - 1] = hn_nf4_values[*q >> 4] * a; // only at the very end of a call with odd n
        e += m;
        dst += m;
        n -= m;
    }
}

void hn_nf4_to_f32(const void *src, float *dst, int64_t n) {
    const hn_nf4_state *st = reg_find(src);
    if (!st) { // not inside a live NF4 tensor: make the misuse visible rather than read stray memory
        for (int64_t i = 0; i < n; i++) dst[i] = NAN;
        return;
    }
    dequant(st, src, ((const uint8_t *)src - st->codes) * 2, dst, n);
}

// Each block's sum of code values times x, scaled by its absmax once: a different rounding from dequantizing
// first (the FAST paths' tolerance), half the products.
float hn_nf4_dot_f32(int64_t n, const void *w, const void *x) {
    const hn_nf4_state *st = reg_find(w);
    if (!st) return NAN;
    const uint8_t *q = w;
    const float *xf = x;
    int64_t e = (q - st->codes) * 2;
    float sum = 0.0f;
    while (n > 1) {
        if (g_avx2 && e % HN_NF4_BLOCK == 0 && n >= HN_NF4_BLOCK) {
            int64_t nb = n / HN_NF4_BLOCK < SIMD_BLOCKS ? n / HN_NF4_BLOCK : SIMD_BLOCKS;
            float sc[SIMD_BLOCKS];
            for (int64_t i = 0; i < nb; i++) sc[i] = block_absmax(st, e / HN_NF4_BLOCK + i);
            sum += hn_nf4_dot_avx2(q, sc, nb, xf);
            q += nb * HN_NF4_BLOCK / 2, e += nb * HN_NF4_BLOCK, xf += nb * HN_NF4_BLOCK, n -= nb * HN_NF4_BLOCK;
            continue;
        }
        int64_t m = HN_NF4_BLOCK - e % HN_NF4_BLOCK;
        if (m > n) m = n;
        float s0 = 0.0f, s1 = 0.0f;
        for (int64_t j = 0; j + 1 < m; j += 2, q++) {
            s0 += hn_nf4_values[*q >> 4] * xf[j];
            s1 += hn_nf4_values[*q & 15] * xf[j + 1];
        }
        sum += block_absmax(st, e / HN_NF4_BLOCK) * (s0 + s1);
        xf += m & ~(int64_t)1;
        e += m & ~(int64_t)1;
        n -= m & ~(int64_t)1;
    }
    if (n) sum += hn_nf4_values[*q >> 4] * block_absmax(st, e / HN_NF4_BLOCK) * xf[0];
    return sum;
}

// ---- quantization ----

// The allocation: this header, the group scales, the absmax codes, then (64-byte aligned) the codes.
typedef struct {
    hn_nf4_state st;
} nf4_header;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

// The NF4 code of a scaled value: how many bucket bounds lie strictly below it (15 independent comparisons: a
// bisection is shorter but each step waits for the last).
static inline uint8_t nf4_code(float s) {
    int q = 0;
    for (int i = 0; i < 15; i++) q += s > g_mid[i];
    return (uint8_t)q;
}

// The nearest entry of the dynamic map (ascending, [-0.99296875, 1]); a tie goes to the lower index. (bitsandbytes'
// C++ quantizer searches a copy whose entry 0 is -1, but the map its state keeps, and dequantization uses, has
// -0.99296875; either way everything below the first midpoint gets code 0.)
static uint8_t dyn_code(float v) {
    int lo = 0, hi = 255; // the last entry <= v, by bisection
    if (!(v >= g_dyn[0])) return 0;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (g_dyn[mid] <= v) lo = mid;
        else hi = mid - 1;
    }
    if (lo < 255 && fabsf(v - g_dyn[lo + 1]) < fabsf(v - g_dyn[lo])) lo++;
    return (uint8_t)lo;
}

hn_status hn_nf4_quantize(hn_tensor *dst, const hn_tensor *src) {
    memset(dst, 0, sizeof *dst);
    pthread_once(&g_tables_once, build_tables);
    const hn_type_traits *tt = hn_type_traits_of(src->type);
    const int64_t K = src->ne[0], rows = src->ne[1] * src->ne[2] * src->ne[3];
    size_t row_bytes;
    if (!tt || !tt->to_f32 || src->type == HN_NF4 || !hn_row_bytes(src->type, K, &row_bytes))
        return hn_fail(HN_ERR_UNSUPPORTED, "nf4: tensor '%s': dtype %s cannot be quantized to NF4", src->name,
                       hn_dtype_name(src->type));
    if (K <= 0 || K % HN_NF4_BLOCK || rows <= 0)
        return hn_fail(HN_ERR_UNSUPPORTED, "nf4: tensor '%s': ne[0] = %lld, expected a positive multiple of %d (the "
                       "NF4 block)", src->name, (long long)K, HN_NF4_BLOCK);
    const int64_t n = K * rows, nblocks = n / HN_NF4_BLOCK, ngroups = (nblocks + HN_NF4_GROUP - 1) / HN_NF4_GROUP;
    size_t off_scales = align64(sizeof(nf4_header)), off_q8 = off_scales + (size_t)ngroups * sizeof(float),
           off_codes = align64(off_q8 + (size_t)nblocks), total = off_codes + (size_t)(n / 2);
    uint8_t *mem = hn_alloc_aligned(total, "NF4 tensor");
    float *absmax = hn_alloc((size_t)nblocks * sizeof(float), "NF4 absmax");
    if (!mem || !absmax) {
        free(mem);
        free(absmax);
        return HN_ERR_NOMEM;
    }
    nf4_header *h = (nf4_header *)mem;
    uint8_t *codes = mem + off_codes, *q8 = mem + off_q8;
    float *scales = (float *)(mem + off_scales);
    h->st = (hn_nf4_state){.n = n, .nblocks = nblocks, .ngroups = ngroups, .codes = codes, .qabsmax = q8,
                           .absmax2 = scales, .bytes = total};

    // 4-bit codes and the absmax values, a row at a time (rows are whole blocks).
    const uint8_t *sd = src->data;
    bool failed = false;
    // A thread per 256K elements at most: a team that waits at the end costs more than a small tensor's work.
    int64_t nth = n >> 18;
    nth = nth < 1 ? 1 : nth > hn_threads_get() ? hn_threads_get() : nth > rows ? rows : nth;
#pragma omp parallel num_threads((int)nth)
    {
        float *row = hn_alloc((size_t)K * sizeof(float), "NF4 row");
        if (!row) {
#pragma omp atomic write
            failed = true;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            if (!row) continue;
            tt->to_f32(sd + (size_t)r * row_bytes, row, K);
            for (int64_t j0 = 0; j0 < K; j0 += HN_NF4_BLOCK) {
                const float *x = row + j0;
                float am = 0.0f; // (comparisons rather than fmaxf/fminf, which the compiler leaves as calls)
                for (int j = 0; j < HN_NF4_BLOCK; j++) am = fabsf(x[j]) > am ? fabsf(x[j]) : am;
                float inv = 1.0f / (am > 1e-38f ? am : 1e-38f); // torch: absmax.clamp(min=1e-38)
                uint8_t *out = codes + (r * K + j0) / 2;
                if (g_avx2) {
                    hn_nf4_codes_avx2(x, inv, g_mid, out);
                } else {
                    for (int j = 0; j < HN_NF4_BLOCK; j += 2) {
                        float s0 = x[j] * inv, s1 = x[j + 1] * inv; // clamping to [-1, 1] changes no code
                        out[j / 2] = (uint8_t)(nf4_code(s0) << 4 | nf4_code(s1));
                    }
                }
                absmax[(r * K + j0) / HN_NF4_BLOCK] = am;
            }
        }
        free(row);
    }
    if (failed) {
        free(mem);
        free(absmax);
        return HN_ERR_NOMEM;
    }

    // Double quantization of the absmax values.
    double sum = 0.0;
    for (int64_t b = 0; b < nblocks; b++) sum += absmax[b];
    const float offset = (float)(sum / (double)nblocks);
    h->st.offset = offset;
    for (int64_t g = 0; g < ngroups; g++) {
        int64_t b0 = g * HN_NF4_GROUP, b1 = b0 + HN_NF4_GROUP < nblocks ? b0 + HN_NF4_GROUP : nblocks;
        float a2 = 0.0f;
        for (int64_t b = b0; b < b1; b++) {
            absmax[b] -= offset;
            a2 = fmaxf(a2, fabsf(absmax[b]));
        }
        scales[g] = a2;
        // A group whose values all equal the mean has a2 = 0: any code dequantizes to the offset; take 0's.
        for (int64_t b = b0; b < b1; b++) q8[b] = a2 > 0.0f ? dyn_code(absmax[b] / a2) : 127;
    }
    free(absmax);

    if (!reg_update(&h->st, NULL)) {
        free(mem);
        return HN_ERR_NOMEM;
    }
    memcpy(dst->name, src->name, sizeof dst->name);
    dst->type = HN_NF4;
    dst->ndim = src->ndim;
    memcpy(dst->ne, src->ne, sizeof dst->ne);
    dst->data = codes;
    dst->nbytes = (size_t)(n / 2);
    dst->owned = false; // released by hn_nf4_free, never by free(data)
    return HN_OK;
}

bool hn_nf4_state_of(const hn_tensor *t, hn_nf4_state *out) {
    const hn_nf4_state *st = t && t->type == HN_NF4 ? reg_find(t->data) : NULL;
    if (!st || st->codes != t->data) return false;
    *out = *st;
    return true;
}

void hn_nf4_free(hn_tensor *t) {
    if (!t || t->type != HN_NF4) return;
    const hn_nf4_state *st = reg_find(t->data);
    if (st && st->codes == t->data) {
        // The header starts the allocation. If the registry cannot be rebuilt (no memory), keep the tensor
        // rather than leave an entry pointing at freed memory.
        if (reg_update(NULL, st)) free((void *)st);
    }
    memset(t, 0, sizeof *t);
}
