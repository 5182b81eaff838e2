// tests/test_method_switch.c — several adapters over one base (DESIGN.md section 9): every method of this build is
// attached to one tiny Llama (tests/data/tiny_llama) at once, its tensors moved off their initial values so that
// each changes the output; then, switching one on at a time (the others off), the logits equal those of a second
// copy of the model with that adapter alone attached, bit for bit (no cross-talk), and all off equals the bare
// base. The base's weights stay shared and unmodified: every weight slot still reads the file's tensor (nothing is
// copied), every tensor hashes the same afterwards, and the memory the adapters add is their own tensors (counted
// here and printed).
#include "adapt/method.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIR "tests/data/tiny_llama"
#define T 12

static const char *const names[] = {"lora",          "dora",           "ia3",
                                    "prompt-tuning", "p-tuning",       "prefix-tuning",
                                    "adapter-houlsby", "adapter-pfeiffer"};
enum { N_NAMES = sizeof names / sizeof names[0] };

static hn_model *load(void) {
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    mp.allow_no_tokenizer = true;
    hn_model *m = NULL;
    if (hn_model_load(&m, DIR, &mp)) fprintf(stderr, "load %s: %s\n", DIR, hn_errmsg());
    return m;
}

// Fresh adapter k on m, its tensors moved by a seeded N-ish(0, 0.3) so that it matters (the same draw on every
// model).
static hn_method *attach(hn_model *m, const hn_method_ops *ops, int k) {
    hn_method_config c = hn_method_default_config();
    c.seed = 7 + (uint64_t)k;
    c.lora.seed = c.seed;
    c.lora.targets = HN_LORA_ALL_LINEAR;
    c.num_virtual_tokens = 3;
    hn_method *me = NULL;
    if (ops->attach_new(&me, m, &c)) {
        fprintf(stderr, "%s: %s\n", ops->name, hn_errmsg());
        return NULL;
    }
    hn_rng r;
    hn_rng_seed(&r, 100 + (uint64_t)k);
    hn_param_list *pl = hn_method_params(me);
    for (int i = 0; i < pl->n; i++)
        for (int64_t j = 0; j < pl->items[i]->n; j++)
            pl->items[i]->data[j] += 0.3f * (hn_rng_f32(&r) + hn_rng_f32(&r) + hn_rng_f32(&r) - 1.5f);
    return me;
}

static bool logits(hn_model *m, float *out) {
    int32_t ids[T];
    for (int t = 0; t < T; t++) ids[t] = (int32_t)((t * 37 + 11) % m->hp.n_vocab);
    hn_kv_cache *kv = hn_kv_cache_create(m, 64);
    float *lg;
    bool ok = kv && !hn_model_forward(m, kv, ids, T, HN_LOGITS_ALL, &lg);
    if (ok) memcpy(out, lg, (size_t)T * (size_t)m->hp.n_vocab * sizeof *out);
    else fprintf(stderr, "forward: %s\n", hn_errmsg());
    hn_kv_cache_destroy(kv);
    return ok;
}

// Every weight slot's tensor, in hn_model_weights' order: attaching must not replace any (no copies of the base).
typedef struct {
    const hn_tensor *t[512];
    int n;
} slots;

static void note_slot(void *user, const hn_tensor **slot, int layer, hn_wrole role) {
    slots *s = user;
    if (s->n < 512) s->t[s->n++] = *slot;
}

static uint64_t hash_weights(const hn_model *m) {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < m->gguf.n_tensors; i++) {
        const unsigned char *p = m->gguf.tensors[i].data;
        for (size_t j = 0; j < m->gguf.tensors[i].nbytes; j++) h = (h ^ p[j]) * 1099511628211ull;
    }
    return h;
}

int main(void) {
    hn_model *m = load(), *solo = load();
    if (!m || !solo) return test_skip(DIR " cannot be loaded");
    const int64_t n = (int64_t)T * m->hp.n_vocab;
    float *base = malloc((size_t)n * sizeof *base), *got = malloc((size_t)n * sizeof *got),
          *want = malloc((size_t)n * sizeof *want);
    CHECK(base && got && want && logits(m, base), "base logits");
    uint64_t h0 = hash_weights(m);
    slots before = {0}, after = {0};
    hn_model_weights(m, note_slot, &before);

    hn_method *me[N_NAMES] = {0};
    const hn_method_ops *ops[N_NAMES] = {0};
    int present = 0;
    int64_t adapter_bytes = 0;
    for (int k = 0; k < N_NAMES; k++) {
        if (!(ops[k] = hn_method_find(names[k]))) {
            printf("%s: not in this build\n", names[k]);
            continue;
        }
        me[k] = attach(m, ops[k], k);
        CHECK(me[k] != NULL, "attach %s", names[k]);
        if (!me[k]) continue;
        hn_method_set_enabled(me[k], false);
        int64_t bytes = hn_param_count(hn_method_params(me[k])) * (int64_t)sizeof(float);
        printf("%-17s %8lld bytes of tensors\n", names[k], (long long)bytes);
        adapter_bytes += bytes;
        present++;
    }
    CHECK(present >= 2, "at least two methods in this build (%d)", present);
    hn_model_weights(m, note_slot, &after);
    CHECK(before.n > 0 && before.n == after.n && !memcmp(before.t, after.t, (size_t)before.n * sizeof *before.t),
          "every weight slot still reads the file's tensor (%d slots)", before.n);

    // All off: the bare base.
    CHECK(logits(m, got) && !memcmp(got, base, (size_t)n * sizeof *got), "every adapter off: the base's logits");
    for (int k = 0; k < N_NAMES; k++) {
        if (!me[k]) continue;
        hn_method_set_enabled(me[k], true);
        hn_method *alone = attach(solo, ops[k], k);
        bool ok = alone && logits(m, got) && logits(solo, want);
        double d = 0, moved = 0;
        for (int64_t i = 0; ok && i < n; i++) {
            d = fmax(d, fabs((double)got[i] - want[i]));
            moved = fmax(moved, fabs((double)got[i] - base[i]));
        }
        CHECK(ok && d == 0, "%s on among %d loaded: the logits of the model with it alone (max diff %g)", names[k],
              present, d);
        CHECK(ok && moved > 1e-3, "%s changes the output (max %g)", names[k], moved);
        hn_method_destroy(alone);
        hn_method_set_enabled(me[k], false);
    }
    CHECK(logits(m, got) && !memcmp(got, base, (size_t)n * sizeof *got), "every adapter off again: the base's logits");
    CHECK(hash_weights(m) == h0, "the base's weights are unmodified");
    int64_t model_bytes = 0;
    for (uint64_t i = 0; i < m->gguf.n_tensors; i++) model_bytes += (int64_t)m->gguf.tensors[i].nbytes;
    printf("%d adapters over one base: %lld bytes of adapter tensors beside the base's %lld\n", present,
           (long long)adapter_bytes, (long long)model_bytes);

    for (int k = 0; k < N_NAMES; k++) hn_method_destroy(me[k]);
    CHECK(logits(m, got) && !memcmp(got, base, (size_t)n * sizeof *got), "all detached: the base's logits");
    free(base), free(got), free(want);
    hn_model_destroy(m);
    hn_model_destroy(solo);
    return test_done();
}
