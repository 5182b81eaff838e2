// tests/tiny_golden.h — reader for tests/data/tiny_llama/golden.bin (written by tools/reference/tiny_llama_ref.py,
// which documents every array): named f32/i32 arrays.
//
// Layout (little-endian): "HNGT", u32 version = 1, u32 n_arrays; per array: u32 name_len, name, u32 dtype
// (0 f32, 1 i32), u32 ndim, u32 dims[ndim] (PyTorch order, last dim contiguous), prod(dims) x 4 bytes.
//
//   tg_file g;
//   if (!tg_load(&g, "tests/data/tiny_llama/golden.bin")) ...;
//   const tg_array *a = tg_get(&g, "lora.grad.blk.0.attn_q.lora_b");  // a->f: (out, r) floats
//   tg_free(&g);
#ifndef HN_TINY_GOLDEN_H
#define HN_TINY_GOLDEN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/data.h"

#define TINY_DIR "tests/data/tiny_llama"

typedef struct {
    char *name;
    int dtype; // 0 f32, 1 i32
    int ndim;
    int64_t dims[8];
    int64_t n;
    float *f;   // dtype 0
    int32_t *i; // dtype 1
} tg_array;

typedef struct {
    int n;
    tg_array *a;
} tg_file;

static void tg_free(tg_file *g) {
    for (int k = 0; g->a && k < g->n; k++) free(g->a[k].name), free(g->a[k].f), free(g->a[k].i);
    free(g->a);
    g->a = NULL;
    g->n = 0;
}

static bool tg_load(tg_file *g, const char *path) {
    memset(g, 0, sizeof *g);
    FILE *fp = fopen(path, "rb");
    if (!fp) return false;
    char magic[4];
    uint32_t hdr[2];
    bool ok = fread(magic, 1, 4, fp) == 4 && !memcmp(magic, "HNGT", 4) && fread(hdr, 4, 2, fp) == 2 && hdr[0] == 1 &&
              hdr[1] < 100000 && (g->a = calloc(hdr[1] ? hdr[1] : 1, sizeof *g->a));
    for (uint32_t k = 0; ok && k < hdr[1]; k++) {
        tg_array *a = &g->a[k];
        uint32_t len, dt, nd;
        ok = fread(&len, 4, 1, fp) == 1 && len < 4096 && (a->name = calloc(len + 1, 1)) &&
             fread(a->name, 1, len, fp) == len && fread(&dt, 4, 1, fp) == 1 && dt < 2 && fread(&nd, 4, 1, fp) == 1 &&
             nd <= 8;
        if (!ok) break;
        g->n = (int)k + 1;
        a->dtype = (int)dt, a->ndim = (int)nd, a->n = 1;
        for (uint32_t d = 0; ok && d < nd; d++) {
            uint32_t v;
            ok = fread(&v, 4, 1, fp) == 1 && v < (1u << 24);
            a->dims[d] = v;
            a->n *= v;
        }
        ok = ok && a->n < (1 << 26);
        if (!ok) break;
        void *p = malloc((size_t)(a->n ? a->n : 1) * 4);
        if (dt) a->i = p;
        else a->f = p;
        ok = p && fread(p, 4, (size_t)a->n, fp) == (size_t)a->n;
    }
    fclose(fp);
    if (!ok) tg_free(g);
    return ok;
}

static const tg_array *tg_get(const tg_file *g, const char *name) {
    for (int k = 0; k < g->n; k++)
        if (!strcmp(g->a[k].name, name)) return &g->a[k];
    return NULL;
}

// The golden batch as an hn_batch over caller-owned ids/mask (at least B*T each): labels == -100 leave a token out
// of the loss, and mask[t] covers predicting ids[t] (so each row's first token is never in it). False when
// golden.bin lacks the arrays or the batch is larger than cap tokens.
static inline bool tg_batch(const tg_file *g, hn_batch *b, int32_t *ids, uint8_t *mask, int cap) {
    const tg_array *in = tg_get(g, "input_ids"), *lab = tg_get(g, "labels");
    if (!in || !lab || in->ndim != 2 || in->n != lab->n || in->n > cap) return false;
    int B = (int)in->dims[0], T = (int)in->dims[1];
    *b = (hn_batch){.B = B, .T = T, .ids = ids, .mask = mask};
    for (int i = 0; i < B * T; i++) {
        ids[i] = in->i[i];
        mask[i] = i % T != 0 && lab->i[i] != -100;
        b->n_loss += mask[i];
    }
    return true;
}

#endif
