// tests/test_peft_compat.c — LoRA adapters cross between hone and PEFT on a real model, SmolLM2-135M-Instruct, both
// sides using the same weights: an F32 copy of the pulled Q4_1 GGUF (every tensor dequantized, as `hone quantize
// --type f32` writes it; made here in a temporary directory). tests/data/peft_compat/ holds
//   peft_adapter/   made by PEFT (tools/reference/peft_compat_ref.py): LoRA r=4, alpha 8, all linear layers of
//                   blocks 0, 7, 14, 22, 29 (layers_to_transform), random B, saved in fp16
//   hone_adapter/   made by hone (this program with --regenerate): LoRA r=2, alpha 4, rsLoRA, q/k/v_proj of every
//                   block, random B, written by hn_peft_write
//   logits.bin      transformers' logits for one token sequence: the base, base + peft_adapter, and base +
//                   hone_adapter loaded with PeftModel.from_pretrained (layout in the reference script)
// Checked (DESIGN.md section 7, real-model row): for each of the three, hone's EXACT path gives the same argmax at
// every position (a near-tie in the reference may flip), its logits at the reference's top-K ids and its
// log-sum-exp over the whole vocabulary are within 1e-3 of the reference's; both adapters move the logits far more
// than that (so a dropped or misplaced adapter cannot pass). q/k carry the rotary layout: transformers' GGUF loader
// un-permutes q/k rows, hone keeps GGUF order and permutes B's rows in hn_peft_read / hn_peft_write, so a wrong
// permutation fails here.
//
// Regeneration order (not part of `make test`; both steps need the pulled model):
//   1. build/tests/test_peft_compat --regenerate      writes tests/data/peft_compat/hone_adapter/ (seeded)
//   2. build/hone quantize smollm2-135m-instruct -o /tmp/SmolLM2-135M-Instruct.F32.gguf --type f32
//      /root/.cache/hone/refvenv/bin/python tools/reference/peft_compat_ref.py /tmp/SmolLM2-135M-Instruct.F32.gguf
//                                                      writes peft_adapter/ and logits.bin
#include "adapt/lora.h"
#include "model/model.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DATA "tests/data/peft_compat"
#define BOUND 1e-3

// Positions run and compared: all of logits.bin's, or under the sanitizers (slow kernels) the first 10 (the
// model is causal, so a prefix's logits are the same).
static uint32_t n_pos;

// logits.bin: char magic[4] = "HNPC"; u32 version = 1; u32 T; u32 K; u32 n_vocab; i32 ids[T]; then 3 records
// (base, peft_adapter, hone_adapter), each i32 top_i[T*K], f32 top_v[T*K] (descending), f32 lse[T].
enum { N_REC = 3 };
typedef struct {
    int32_t *top_i;
    float *top_v, *lse;
} ref_rec;
typedef struct {
    uint32_t T, K, V;
    int32_t *ids;
    ref_rec rec[N_REC];
    void *buf;
} ref_data;

static bool load_ref(ref_data *r, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char magic[4];
    uint32_t hdr[4];
    bool ok = fread(magic, 1, 4, f) == 4 && !memcmp(magic, "HNPC", 4) && fread(hdr, 4, 4, f) == 4 && hdr[0] == 1 &&
              hdr[1] > 0 && hdr[1] <= 4096 && hdr[2] >= 2 && hdr[2] <= 64 && hdr[3] > 0;
    if (ok) {
        r->T = hdr[1], r->K = hdr[2], r->V = hdr[3];
        size_t per = (size_t)r->T * r->K * 8 + r->T * 4, n = r->T * 4 + N_REC * per;
        r->buf = malloc(n);
        ok = r->buf && fread(r->buf, 1, n, f) == n && fgetc(f) == EOF;
        char *p = r->buf;
        r->ids = (int32_t *)p;
        p += r->T * 4;
        for (int i = 0; ok && i < N_REC; i++) {
            r->rec[i].top_i = (int32_t *)p, p += (size_t)r->T * r->K * 4;
            r->rec[i].top_v = (float *)p, p += (size_t)r->T * r->K * 4;
            r->rec[i].lse = (float *)p, p += (size_t)r->T * 4;
        }
    }
    fclose(f);
    return ok;
}

static hn_status fill_f32(void *user, void *dst, size_t nbytes) {
    const hn_tensor *t = user;
    if (t->type == HN_F32) memcpy(dst, t->data, nbytes);
    else hn_type_traits_of(t->type)->to_f32(t->data, dst, hn_nelem(t));
    return HN_OK;
}

// What `hone quantize --type f32` writes: every float tensor as F32, the metadata carried over.
static hn_status write_f32_copy(const char *src, const char *dst) {
    hn_gguf g;
    hn_status s = hn_gguf_open(&g, src);
    if (s) return s;
    hn_gguf_writer *w = hn_gguf_writer_create();
    for (uint64_t i = 0; i < g.n_kv && !s; i++) s = hn_gguf_writer_copy_kv(w, &g.kv[i]);
    if (!s) s = hn_gguf_writer_set_u32(w, "general.file_type", 0);
    for (uint64_t i = 0; i < g.n_tensors && !s; i++) {
        const hn_tensor *t = &g.tensors[i];
        const hn_type_traits *tt = hn_type_traits_of(t->type);
        if (tt && tt->to_f32) s = hn_gguf_writer_add_tensor_fn(w, t->name, HN_F32, t->ndim, t->ne, fill_f32, (void *)t);
        else s = hn_gguf_writer_add_tensor(w, t->name, t->type, t->ndim, t->ne, t->data);
    }
    if (!s) s = hn_gguf_writer_write(w, dst);
    hn_gguf_writer_destroy(w);
    hn_gguf_close(&g);
    return s;
}

// hone's adapter for PEFT: fresh LoRA (PEFT's init for A) with B drawn uniform in [-0.1, 0.1), so that it matters.
static int regenerate(hn_model *m) {
    hn_lora_config cfg = hn_lora_default_config();
    cfg.r = 2, cfg.alpha = 4, cfg.use_rslora = true, cfg.seed = 2024;
    const char *t[] = {"q_proj", "k_proj", "v_proj"};
    hn_lora *lo;
    hn_adapter *a = NULL;
    if (hn_lora_parse_targets(t, 3, &cfg.targets) || hn_lora_attach_new(&lo, m, &cfg))
        return fprintf(stderr, "%s\n", hn_errmsg()), 1;
    hn_rng r;
    hn_rng_seed(&r, 4242);
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) {
            hn_param *A, *B;
            if (!hn_lora_module_params(lo, l, (hn_proj)p, &A, &B)) continue;
            for (int64_t i = 0; i < B->n; i++) B->data[i] = 0.2f * (hn_rng_f32(&r) - 0.5f);
        }
    hn_status s = hn_lora_export(lo, &a);
    if (!s) s = hn_peft_write(a, DATA "/hone_adapter", m->hp.n_head, m->hp.n_head_kv);
    if (s) fprintf(stderr, "%s\n", hn_errmsg());
    else printf("wrote %s/hone_adapter: %d modules, r %d\n", DATA, a->n_modules, a->r);
    hn_adapter_destroy(a);
    hn_lora_destroy(lo);
    return s ? 1 : 0;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

// hone's logits (T, V) against one reference record; returns the max abs diff over top-K logits and lse.
static double compare(const char *what, const float *lg, const ref_data *r, const ref_rec *rec) {
    double worst = 0, worst_lse = 0;
    int agree = 0;
    for (uint32_t t = 0; t < n_pos; t++) {
        const float *row = lg + (size_t)t * r->V;
        const int32_t *ti = rec->top_i + (size_t)t * r->K;
        const float *tv = rec->top_v + (size_t)t * r->K;
        int am = argmax(row, (int)r->V);
        bool ok = am == ti[0] || (tv[0] - tv[1] < 1e-3f && am == ti[1]);
        CHECK(ok, "%s: position %u: argmax %d, reference %d", what, t, am, ti[0]);
        agree += ok;
        for (uint32_t k = 0; k < r->K; k++) worst = fmax(worst, fabs((double)row[ti[k]] - tv[k]));
        double mx = row[am], sum = 0;
        for (uint32_t v = 0; v < r->V; v++) sum += exp((double)row[v] - mx);
        worst_lse = fmax(worst_lse, fabs(mx + log(sum) - rec->lse[t]));
    }
    printf("%s: argmax agrees at %d/%u positions; max abs diff top-%u logits %.3g, log-sum-exp %.3g (bound %g)\n",
           what, agree, n_pos, r->K, worst, worst_lse, BOUND);
    CHECK(worst <= BOUND && worst_lse <= BOUND, "%s: max abs diff %g, lse %g > %g", what, worst, worst_lse, BOUND);
    return fmax(worst, worst_lse);
}

static float *forward(hn_model *m, const ref_data *r) {
    hn_kv_cache *kv = hn_kv_cache_create(m, (int)n_pos);
    float *lg = NULL, *copy = NULL;
    if (kv && !hn_model_forward(m, kv, r->ids, (int)n_pos, HN_LOGITS_ALL, &lg)) {
        copy = malloc((size_t)n_pos * r->V * sizeof *copy);
        memcpy(copy, lg, (size_t)n_pos * r->V * sizeof *copy);
    }
    CHECK(copy, "forward: %s", hn_errmsg());
    hn_kv_cache_destroy(kv);
    return copy;
}

// How far the adapter moved the reference's logits from the base's (at the adapted top-K ids, where the base's
// top-K holds the same id): the test is only meaningful when this is far above BOUND.
static double moved(const ref_data *r, const float *base_lg, const ref_rec *rec) {
    double mv = 0;
    for (size_t i = 0; i < (size_t)n_pos * r->K; i++) {
        size_t t = i / r->K;
        mv = fmax(mv, fabs((double)base_lg[t * r->V + rec->top_i[i]] - rec->top_v[i]));
    }
    return mv;
}

static void check_adapter(hn_model *m, const ref_data *r, const float *base_lg, const char *dir, int rec,
                          bool want_hash) {
    hn_adapter *a = NULL;
    hn_lora *lo = NULL;
    hn_status s = hn_peft_read(&a, dir, m->hp.n_head, m->hp.n_head_kv);
    CHECK(!s, "%s: %s", dir, hn_errmsg());
    if (s) return;
    CHECK(!hn_adapter_check_base(a, &m->gguf, false), "%s on the F32 copy: %s", dir, hn_errmsg());
    CHECK(!want_hash || a->base_hash, "%s: hone's adapter records the base hash", dir);
    s = hn_lora_attach(&lo, m, a);
    CHECK(!s, "attach %s: %s", dir, hn_errmsg());
    if (!s) {
        float *lg = forward(m, r);
        double mv = moved(r, base_lg, &r->rec[rec]);
        printf("%s: %d modules, r %d, scale %g; moves the reference logits by up to %.3g\n", dir, a->n_modules, a->r,
               hn_adapter_scale(a), mv);
        CHECK(mv > 100 * BOUND, "%s barely changes the logits (%g)", dir, mv);
        if (lg) compare(dir, lg, r, &r->rec[rec]);
        free(lg);
        hn_lora_destroy(lo);
    }
    hn_adapter_destroy(a);
}

int main(int argc, char **argv) {
    bool regen = argc > 1 && !strcmp(argv[1], "--regenerate");
    char *src;
    if (hn_model_resolve("smollm2-135m-instruct", &src)) return test_skip(hn_errmsg());
    ref_data r = {0};
    if (!regen && !load_ref(&r, DATA "/logits.bin")) {
        free(src);
        fprintf(stderr, "cannot read %s/logits.bin (run from the source root)\n", DATA);
        return 1;
    }
    char dir[64] = "/tmp/hone_test_peft_compat_XXXXXX", f32[128];
    if (!mkdtemp(dir)) return fprintf(stderr, "mkdtemp failed\n"), 1;
    snprintf(f32, sizeof f32, "%s/SmolLM2-135M-Instruct.F32.gguf", dir);
    double t0 = hn_now();
    hn_status s = write_f32_copy(src, f32);
    free(src);
    hn_model *m = NULL;
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    if (!s) s = hn_model_load(&m, f32, &mp);
    unlink(f32); // the mapping stays valid
    rmdir(dir);
    if (s) return fprintf(stderr, "F32 copy: %s\n", hn_errmsg()), 1;
    n_pos = getenv("HONE_SANITIZED") && r.T > 10 ? 10 : r.T;
    printf("F32 copy written and loaded in %.1f s\n", hn_now() - t0);
    int rc;
    if (regen) {
        rc = regenerate(m);
    } else {
        CHECK(r.V == (uint32_t)m->hp.n_vocab, "reference vocabulary %u, model %d", r.V, m->hp.n_vocab);
        float *base = r.V == (uint32_t)m->hp.n_vocab ? forward(m, &r) : NULL;
        if (base) {
            compare("base", base, &r, &r.rec[0]);
            check_adapter(m, &r, base, DATA "/peft_adapter", 1, false);
            check_adapter(m, &r, base, DATA "/hone_adapter", 2, true);
        }
        free(base);
        rc = test_done();
    }
    hn_model_destroy(m);
    free(r.buf);
    return rc;
}
