// tests/test_adapter.c — LoRA adapters in both layouts against what PEFT made (tests/data/tiny_llama/peft_adapter,
// written by tools/reference/tiny_llama_ref.py; golden.bin holds the same A/B with B's q/k rows in GGUF order, the
// layout is documented in that script and in tests/tiny_golden.h):
//   - PEFT's directory loads (config, names, shapes) and A/B equal the golden ones: B of q/k permuted on the way in;
//   - writing it back gives tensors bit-equal to PEFT's (un-permuted on the way out) and a config that reads back;
//   - the llama.cpp LoRA GGUF round trip (and its keys), rsLoRA's alpha for llama.cpp;
//   - the base record: the tiny model is accepted, another model (same shapes, other weights), another
//     architecture, other shapes, a missing layer are refused;
//   - broken adapter_config.json / safetensors / GGUF adapters give clear errors;
//   - the adapter merged into the tiny model (W + scale * B A in GGUF order) gives PEFT's logits within 1e-4.
#include "io/adapter.h"
#include "io/hf.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "test.h"
#include "tiny_golden.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PEFT_DIR TINY_DIR "/peft_adapter"
enum { N_HEAD = 4, N_HEAD_KV = 2 };

static char tmpdir[256];

static const tg_array *golden_ab(const tg_file *g, const char *what, const hn_lora_module *m, bool a) {
    char name[128];
    snprintf(name, sizeof name, "%s.blk.%d.%s.lora_%c", what, m->layer, hn_proj_gguf_name(m->proj), a ? 'a' : 'b');
    return tg_get(g, name);
}

static void test_peft_read(const tg_file *gold) {
    hn_adapter *a;
    hn_status s = hn_peft_read(&a, PEFT_DIR, N_HEAD, N_HEAD_KV);
    CHECK(!s, "%s", hn_errmsg());
    if (s) return;
    CHECK(a->r == 4 && a->alpha == 8 && !a->use_rslora && a->dropout == 0 && hn_adapter_scale(a) == 2.0f, "config");
    CHECK(a->n_modules == 14 && a->n_targets == 14, "14 modules, 14 targets: %d %d", a->n_modules, a->n_targets);
    CHECK(a->base_name && !strcmp(a->base_name, "hone-tiny-llama") && !a->base_hash, "base from PEFT's config");
    int equal = 0;
    for (int i = 0; i < a->n_modules; i++) {
        const hn_lora_module *m = &a->modules[i];
        const tg_array *ga = golden_ab(gold, "lora.init", m, true), *gb = golden_ab(gold, "lora.init", m, false);
        int64_t out = m->proj == HN_PROJ_K || m->proj == HN_PROJ_V ? 32 : m->proj >= HN_PROJ_GATE && m->proj <=
                      HN_PROJ_UP ? 128 : 64, in = m->proj == HN_PROJ_DOWN ? 128 : 64;
        CHECK(m->in == in && m->out == out, "layer %d %s: in %lld out %lld", m->layer, hn_proj_hf_name(m->proj),
              (long long)m->in, (long long)m->out);
        if (ga && gb && ga->n == 4 * m->in && gb->n == 4 * m->out)
            equal += !memcmp(ga->f, m->a, ga->n * 4) && !memcmp(gb->f, m->b, gb->n * 4);
    }
    CHECK(equal == 14, "A and B (GGUF row order) equal the golden ones for %d of 14 modules", equal);
    CHECK(hn_adapter_find(a, 1, HN_PROJ_DOWN) && !hn_adapter_find(a, 2, HN_PROJ_Q), "find");
    hn_adapter_destroy(a);
}

// Every tensor of two safetensors files equal (names, shapes, bytes).
static bool same_safetensors(const char *p1, const char *p2) {
    hn_safetensors x, y;
    if (hn_safetensors_open(&x, p1)) return false;
    if (hn_safetensors_open(&y, p2)) {
        hn_safetensors_close(&x);
        return false;
    }
    bool ok = x.n_tensors == y.n_tensors;
    for (size_t i = 0; ok && i < x.n_tensors; i++) {
        const hn_tensor *t = hn_safetensors_tensor(&y, x.names[i]);
        ok = t && t->type == x.tensors[i].type && !memcmp(t->ne, x.tensors[i].ne, sizeof t->ne) &&
             t->nbytes == x.tensors[i].nbytes && !memcmp(t->data, x.tensors[i].data, t->nbytes);
        if (!ok) fprintf(stderr, "tensor %s differs\n", x.names[i]);
    }
    hn_safetensors_close(&x);
    hn_safetensors_close(&y);
    return ok;
}

static bool same_modules(const hn_adapter *x, const hn_adapter *y) {
    if (x->n_modules != y->n_modules || x->r != y->r) return false;
    for (int i = 0; i < x->n_modules; i++) {
        const hn_lora_module *a = &x->modules[i], *b = &y->modules[i];
        if (a->layer != b->layer || a->proj != b->proj || a->in != b->in || a->out != b->out ||
            memcmp(a->a, b->a, (size_t)(x->r * a->in) * 4) || memcmp(a->b, b->b, (size_t)(x->r * a->out) * 4))
            return false;
    }
    return true;
}

static void test_round_trips(void) {
    hn_adapter *a, *back;
    if (hn_peft_read(&a, PEFT_DIR, N_HEAD, N_HEAD_KV)) return;
    char dir[300], p1[400];
    snprintf(dir, sizeof dir, "%s/peft_out", tmpdir);
    a->base_hash = 0x0123456789abcdefull;
    a->base_arch = strdup("llama");
    CHECK(!hn_peft_write(a, dir, N_HEAD, N_HEAD_KV), "peft write: %s", hn_errmsg());
    snprintf(p1, sizeof p1, "%s/adapter_model.safetensors", dir);
    CHECK(same_safetensors(PEFT_DIR "/adapter_model.safetensors", p1), "written tensors equal PEFT's");
    CHECK(!hn_peft_read(&back, dir, N_HEAD, N_HEAD_KV), "read back: %s", hn_errmsg());
    if (back) {
        CHECK(same_modules(a, back), "PEFT round trip: modules");
        CHECK(back->alpha == 8 && back->r == 4 && back->n_targets == 14 && back->base_hash == a->base_hash &&
              back->base_arch && !strcmp(back->base_arch, "llama") && !strcmp(back->base_name, "hone-tiny-llama"),
              "PEFT round trip: config and base record");
        hn_adapter_destroy(back);
    }
    // Wrong head counts permute B differently: the round trip still holds but the tensors differ from PEFT's.
    CHECK(!hn_peft_read(&back, PEFT_DIR, 2, 2), "read with other heads");
    if (back) {
        CHECK(!same_modules(a, back), "head counts matter");
        hn_adapter_destroy(back);
    }

    // llama.cpp LoRA GGUF.
    snprintf(p1, sizeof p1, "%s/adapter.gguf", tmpdir);
    CHECK(!hn_lora_gguf_write(a, p1), "gguf write: %s", hn_errmsg());
    hn_gguf g;
    if (!hn_gguf_open(&g, p1)) {
        hn_gguf_str t;
        float alpha;
        CHECK(!hn_gguf_get_str(&g, "general.type", &t) && t.len == 7 && !memcmp(t.str, "adapter", 7), "general.type");
        CHECK(!hn_gguf_get_str(&g, "adapter.type", &t) && t.len == 4 && !memcmp(t.str, "lora", 4), "adapter.type");
        CHECK(!hn_gguf_get_f32(&g, "adapter.lora.alpha", &alpha) && alpha == 8, "alpha");
        CHECK(hn_gguf_find(&g, "adapter.lora.alpha")->type == HN_GGUF_F32, "alpha is f32 (llama.cpp asserts it)");
        const hn_tensor *la = hn_gguf_tensor(&g, "blk.0.attn_k.weight.lora_a"),
                        *lb = hn_gguf_tensor(&g, "blk.0.attn_k.weight.lora_b");
        CHECK(la && lb && la->type == HN_F32 && la->ne[0] == 64 && la->ne[1] == 4 && lb->ne[0] == 4 && lb->ne[1] == 32,
              "lora_a ne {in, r}, lora_b ne {r, out}");
        hn_gguf_close(&g);
    } else {
        CHECK(0, "open written gguf: %s", hn_errmsg());
    }
    CHECK(!hn_lora_gguf_read(&back, p1), "gguf read: %s", hn_errmsg());
    if (back) {
        CHECK(same_modules(a, back), "GGUF round trip: modules");
        CHECK(back->alpha == 8 && !back->use_rslora && back->base_hash == a->base_hash && back->n_targets == 14 &&
              !strcmp(back->base_name, "hone-tiny-llama") && !strcmp(back->base_arch, "llama"), "GGUF round trip: config");
        hn_adapter_destroy(back);
    }
    // rsLoRA: llama.cpp gets alpha * sqrt(r) so that its alpha / r equals alpha / sqrt(r); hone reads back the exact.
    a->use_rslora = true;
    CHECK(!hn_lora_gguf_write(a, p1), "gguf write rslora");
    if (!hn_gguf_open(&g, p1)) {
        float alpha;
        CHECK(!hn_gguf_get_f32(&g, "adapter.lora.alpha", &alpha) && fabsf(alpha / 4 - 8 / 2.0f) < 1e-6f,
              "rslora alpha for llama.cpp: %g", alpha);
        hn_gguf_close(&g);
    }
    CHECK(!hn_lora_gguf_read(&back, p1) && back->use_rslora && back->alpha == 8 && hn_adapter_scale(back) == 4.0f,
          "rslora read back");
    hn_adapter_destroy(back);
    hn_adapter_destroy(a);
}

static hn_model *load_dir(const char *dir) {
    hn_model_params p = hn_model_default_params();
    p.mm_mode = HN_MM_EXACT;
    p.allow_no_tokenizer = true;
    hn_model *m = NULL;
    hn_model_load(&m, dir, &p);
    return m;
}

// The tiny model with BF16-rounded weights: same shapes and names, other weights.
static bool make_other_base(const char *dir) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp " TINY_DIR "/config.json '%s'/", dir, dir);
    if (system(cmd)) return false;
    hn_safetensors st;
    if (hn_safetensors_open(&st, TINY_DIR "/model.safetensors")) return false;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    float **c = calloc(st.n_tensors, sizeof *c);
    for (size_t i = 0; i < st.n_tensors; i++) {
        int64_t n = hn_nelem(&st.tensors[i]);
        c[i] = malloc(n * 4);
        for (int64_t k = 0; k < n; k++) c[i][k] = hn_bf16_to_f32(hn_f32_to_bf16(((float *)st.tensors[i].data)[k]));
        hn_safetensors_writer_add(w, st.names[i], HN_F32, st.tensors[i].ndim, st.tensors[i].ne, c[i]);
    }
    char p[400];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    bool ok = !hn_safetensors_writer_write(w, p);
    hn_safetensors_writer_destroy(w);
    for (size_t i = 0; i < st.n_tensors; i++) free(c[i]);
    free(c);
    hn_safetensors_close(&st);
    return ok;
}

static void test_base(void) {
    hn_model *m = load_dir(TINY_DIR);
    hn_adapter *a;
    CHECK(m, "tiny model: %s", hn_errmsg());
    if (!m || hn_peft_read(&a, PEFT_DIR, m->hp.n_head, m->hp.n_head_kv)) {
        hn_model_destroy(m);
        return;
    }
    CHECK(!hn_adapter_check_base(a, &m->gguf, false), "PEFT's adapter (no hash) fits: %s", hn_errmsg());
    CHECK(!hn_adapter_set_base(a, &m->gguf) && a->base_hash && !strcmp(a->base_name, "tiny_llama") &&
          !strcmp(a->base_arch, "llama"), "set base");
    uint64_t h2;
    CHECK(!hn_adapter_base_hash(&m->gguf, &h2) && h2 == a->base_hash, "hash is stable");
    CHECK(!hn_adapter_check_base(a, &m->gguf, false), "own base accepted: %s", hn_errmsg());
    // Through a file written and read back.
    char dir[300];
    snprintf(dir, sizeof dir, "%s/peft_based", tmpdir);
    hn_adapter *b = NULL;
    CHECK(!hn_peft_write(a, dir, m->hp.n_head, m->hp.n_head_kv) && !hn_peft_read(&b, dir, m->hp.n_head, m->hp.n_head_kv),
          "%s", hn_errmsg());
    if (b) CHECK(!hn_adapter_check_base(b, &m->gguf, false), "read-back accepted: %s", hn_errmsg());
    hn_adapter_destroy(b);

    // Another model with the same shapes: refused by the hash, unless allowed.
    snprintf(dir, sizeof dir, "%s/other_base", tmpdir);
    CHECK(make_other_base(dir), "other base");
    hn_model *o = load_dir(dir);
    CHECK(o, "other base loads: %s", hn_errmsg());
    if (o) {
        CHECK(hn_adapter_check_base(a, &o->gguf, false) == HN_ERR_ARG && strstr(hn_errmsg(), "other weights") &&
              strstr(hn_errmsg(), "tiny_llama"), "other weights refused: %s", hn_errmsg());
        CHECK(!hn_adapter_check_base(a, &o->gguf, true), "allowed with allow_other_weights");
        hn_model_destroy(o);
    }
    // Another architecture, other shapes, a layer the model lacks.
    char *arch = a->base_arch;
    a->base_arch = "gpt2";
    CHECK(hn_adapter_check_base(a, &m->gguf, false) == HN_ERR_ARG && strstr(hn_errmsg(), "architecture gpt2"), "%s",
          hn_errmsg());
    a->base_arch = arch;
    a->modules[0].in = 32;
    CHECK(hn_adapter_check_base(a, &m->gguf, false) == HN_ERR_ARG && strstr(hn_errmsg(), "{32, "), "%s", hn_errmsg());
    a->modules[0].in = 64;
    a->modules[a->n_modules - 1].layer = 7;
    CHECK(hn_adapter_check_base(a, &m->gguf, false) == HN_ERR_ARG && strstr(hn_errmsg(), "blk.7."), "%s", hn_errmsg());
    a->modules[a->n_modules - 1].layer = 1;
    hn_adapter_destroy(a);
    hn_model_destroy(m);
}

static void write_file(const char *dir, const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static void test_broken(void) {
    char dir[300], cmd[800];
    snprintf(dir, sizeof dir, "%s/broken", tmpdir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp " PEFT_DIR "/adapter_model.safetensors '%s'/", dir, dir);
    CHECK(system(cmd) == 0, "mkdir");
    const char *good = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]";
    struct {
        const char *cfg, *needle;
        hn_status want;
    } cases[] = {
        {"{\"peft_type\": \"LORA\", \"lora_alpha\": 8}", "'r' is missing", HN_ERR_FORMAT},
        {"{\"peft_type\": \"LORA\", \"r\": \"4\"}", "'r': expected an integer", HN_ERR_FORMAT},
        {"{\"peft_type\": \"LORA\", \"r\": 0}", "'r': expected an integer", HN_ERR_FORMAT},
        {"{\"peft_type\": \"LORA\", \"r\": 4.5}", "'r': expected an integer", HN_ERR_FORMAT},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": \"8\"}", "'lora_alpha': expected a number", HN_ERR_FORMAT},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"lora_dropout\": 1.5}", "'lora_dropout'", HN_ERR_FORMAT},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"use_rslora\": \"yes\"}", "'use_rslora'", HN_ERR_FORMAT},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": 3}", "'target_modules'", HN_ERR_FORMAT},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": [3]}", "'target_modules'", HN_ERR_FORMAT},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"base_model_name_or_path\": 1}", "base_model_name_or_path",
         HN_ERR_FORMAT},
        {"{\"r\": 4}", "'peft_type'", HN_ERR_FORMAT},
        {"{\"peft_type\": \"IA3\", \"r\": 4}", "peft_type 'IA3'", HN_ERR_UNSUPPORTED},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"use_dora\": true}", "'use_dora'", HN_ERR_UNSUPPORTED},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"fan_in_fan_out\": true}", "'fan_in_fan_out'", HN_ERR_UNSUPPORTED},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"rank_pattern\": {\"q_proj\": 8}}", "'rank_pattern'", HN_ERR_UNSUPPORTED},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"modules_to_save\": [\"lm_head\"]}", "'modules_to_save'",
         HN_ERR_UNSUPPORTED},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"bias\": \"all\"}", "'bias'", HN_ERR_UNSUPPORTED},
        {"{\"peft_type\": \"LORA\", \"r\": 8}", "expected [r, in] with r = 8", HN_ERR_FORMAT},
        {"[1, 2]", "expected a JSON object", HN_ERR_FORMAT},
        {"{\"peft_type\": \"LORA\", \"r\": 4,}", "adapter_config.json: line 1", HN_ERR_FORMAT},
        {"", "adapter_config.json: line", HN_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(dir, "adapter_config.json", cases[i].cfg);
        hn_adapter *a = NULL;
        hn_status s = hn_peft_read(&a, dir, N_HEAD, N_HEAD_KV);
        CHECK(s == cases[i].want && !a && strstr(hn_errmsg(), cases[i].needle), "case %zu: %s: %s (%s)", i,
              cases[i].cfg, hn_errmsg(), hn_status_name(s));
        hn_adapter_destroy(a);
    }
    char cfg[256];
    snprintf(cfg, sizeof cfg, "%s}", good);
    write_file(dir, "adapter_config.json", cfg);
    hn_adapter *a = NULL;
    CHECK(!hn_peft_read(&a, dir, N_HEAD, N_HEAD_KV) && a->n_targets == 1, "minimal config: %s", hn_errmsg());
    hn_adapter_destroy(a);

    // Tensors: an A without its B, a LoRA on lm_head, a tensor that is not LoRA, and no file at all.
    char p[400];
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    float z[4 * 256] = {0};
    const char *names[][2] = {
        {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", "no matching lora_B"},
        {"base_model.model.lm_head.lora_A.weight", "q/k/v/o/gate/up/down"},
        {"base_model.model.model.layers.0.mlp.q_proj.lora_A.weight", "q/k/v/o/gate/up/down"},
        {"base_model.model.model.norm.weight", "not a LoRA A/B weight"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        hn_safetensors_writer *w = hn_safetensors_writer_create();
        hn_safetensors_writer_add(w, names[i][0], HN_F32, 2, (int64_t[]){64, 4}, z);
        hn_safetensors_writer_write(w, p);
        hn_safetensors_writer_destroy(w);
        CHECK(hn_peft_read(&a, dir, N_HEAD, N_HEAD_KV) && strstr(hn_errmsg(), names[i][1]), "%s: %s", names[i][0],
              hn_errmsg());
    }
    unlink(p);
    CHECK(hn_peft_read(&a, dir, N_HEAD, N_HEAD_KV) == HN_ERR_IO && strstr(hn_errmsg(), "adapter_model.safetensors"),
          "%s", hn_errmsg());
    CHECK(hn_peft_read(&a, "/nonexistent/dir", N_HEAD, N_HEAD_KV) == HN_ERR_IO, "missing dir: %s", hn_errmsg());

    // LoRA GGUFs that are not right.
    struct {
        const char *type, *atype, *ta, *tb;
        int64_t ra, rb;
        const char *needle;
    } g[] = {
        {"model", "lora", "blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b", 4, 4, "'general.type' is 'model'"},
        {"adapter", NULL, "blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b", 4, 4, "'adapter.type' is missing"},
        {"adapter", "lora", "blk.0.attn_q.weight.lora_a", "blk.0.attn_v.weight.lora_b", 4, 4, "no matching"},
        {"adapter", "lora", "blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b", 4, 2, "do not share a rank"},
        {"adapter", "lora", "blk.0.attn_q.weight.lora_a", "token_embd.weight.lora_b", 4, 4, "token_embd"},
        {"adapter", "lora", "blk.0.attn_q.weight", "blk.0.attn_q.weight.lora_b", 4, 4, "blk.0.attn_q.weight'"},
    };
    snprintf(p, sizeof p, "%s/bad.gguf", tmpdir);
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        hn_gguf_writer *w = hn_gguf_writer_create();
        hn_gguf_writer_set_str(w, "general.type", g[i].type);
        if (g[i].atype) hn_gguf_writer_set_str(w, "adapter.type", g[i].atype);
        hn_gguf_writer_add_tensor(w, g[i].ta, HN_F32, 2, (int64_t[]){64, g[i].ra}, z);
        hn_gguf_writer_add_tensor(w, g[i].tb, HN_F32, 2, (int64_t[]){g[i].rb, 64}, z);
        CHECK(!hn_gguf_writer_write(w, p), "write");
        hn_gguf_writer_destroy(w);
        CHECK(hn_lora_gguf_read(&a, p) && !a && strstr(hn_errmsg(), g[i].needle), "gguf case %zu: %s", i, hn_errmsg());
    }
    unlink(p);
}

// W + scale * B A for every module, in GGUF order, swapped into the tiny model's linear layers: the forward pass
// then computes what PEFT's model computes.
static void test_merged_logits(const tg_file *gold) {
    hn_model *m = load_dir(TINY_DIR);
    hn_adapter *a = NULL;
    if (!m || hn_peft_read(&a, PEFT_DIR, m->hp.n_head, m->hp.n_head_kv)) {
        CHECK(0, "%s", hn_errmsg());
        hn_model_destroy(m);
        return;
    }
    hn_tensor *merged = calloc(a->n_modules, sizeof *merged);
    float scale = hn_adapter_scale(a);
    for (int i = 0; i < a->n_modules; i++) {
        const hn_lora_module *mod = &a->modules[i];
        hn_layer *L = &m->layers[mod->layer];
        hn_linear *lin[HN_PROJ_COUNT] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
        const hn_tensor *w = lin[mod->proj]->w;
        hn_tensor *t = &merged[i];
        *t = *w;
        float *d = malloc(mod->in * mod->out * sizeof *d);
        hn_type_traits_of(w->type)->to_f32(w->data, d, mod->in * mod->out);
        for (int64_t o = 0; o < mod->out; o++)
            for (int k = 0; k < a->r; k++)
                for (int64_t j = 0; j < mod->in; j++)
                    d[o * mod->in + j] += scale * mod->b[o * a->r + k] * mod->a[k * mod->in + j];
        t->type = HN_F32, t->data = d, t->nbytes = mod->in * mod->out * sizeof *d;
        lin[mod->proj]->w = t;
    }
    const tg_array *ids = tg_get(gold, "input_ids"), *ref = tg_get(gold, "lora.logits");
    double worst = 0;
    int B = (int)ids->dims[0], T = (int)ids->dims[1], V = m->hp.n_vocab;
    for (int b = 0; b < B; b++) {
        hn_kv_cache *kv = hn_kv_cache_create(m, T);
        float *lg;
        CHECK(kv && !hn_model_forward(m, kv, ids->i + b * T, T, HN_LOGITS_ALL, &lg), "forward: %s", hn_errmsg());
        for (int64_t k = 0; kv && k < (int64_t)T * V; k++) {
            double dd = fabs((double)lg[k] - ref->f[(int64_t)b * T * V + k]);
            if (!(dd <= worst)) worst = dd;
        }
        hn_kv_cache_destroy(kv);
    }
    printf("adapter merged in GGUF order: max abs logit diff vs PEFT %.3g\n", worst);
    CHECK(worst <= 1e-4, "merged logits differ from PEFT's by %g", worst);
    for (int i = 0; i < a->n_modules; i++) free(merged[i].data);
    free(merged);
    hn_adapter_destroy(a);
    hn_model_destroy(m);
}

int main(void) {
    tg_file gold;
    if (!tg_load(&gold, TINY_DIR "/golden.bin")) {
        fprintf(stderr, "cannot read %s/golden.bin (run from the source root)\n", TINY_DIR);
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hone_test_adapter_%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmpdir);
    CHECK(system(cmd) == 0, "mkdir");
    test_peft_read(&gold);
    test_round_trips();
    test_base();
    test_broken();
    test_merged_logits(&gold);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK(system(cmd) == 0, "rm");
    tg_free(&gold);
    return test_done();
}
