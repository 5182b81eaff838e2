// tests/test_gpt2.c — GPT-2 (model/gpt2.c) on the tiny random model of tests/data/tiny_gpt2 (written by
// tools/reference/tiny_gpt2_ref.py as llama.cpp's GGUF, F16 matrices): logits against transformers (DESIGN.md
// section 7: max abs diff <= 1e-4) for a batch and for a row as long as the position table, the KV cache (one pass
// == token by token), greedy generation equal to transformers' generate, the PEFT LoRA golden step on c_attn,
// c_proj and c_fc (loss relative 1e-5, gradients 1e-4 x max(1, max |ref|)), a few SGD steps that follow PyTorch's
// losses down, PEFT's own adapter directory, the Hugging Face directory of the same model (io/hf.c), and one-line
// errors for broken files.
#include "adapt/lora.h"
#include "io/safetensors.h"
#include "tests/test.h"
#include "tests/tiny_golden.h"
#include "train/lm_objective.h"

#include <math.h>
#include <unistd.h>

#define GPT2_DIR "tests/data/tiny_gpt2"
#define GPT2_GGUF GPT2_DIR "/tiny_gpt2.gguf"

static const tg_array *need(const tg_file *g, const char *name) {
    const tg_array *a = tg_get(g, name);
    if (!a) fprintf(stderr, "golden.bin: no array %s\n", name);
    CHECK(a != NULL, "golden array %s", name);
    return a;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

// All-token logits of each row of ids (rows of T) in a fresh cache against ref (rows, T, V): the max abs diff.
static double logits_diff(hn_model *m, const int32_t *ids, int rows, int T, const float *ref) {
    int V = m->hp.n_vocab;
    double md = 0;
    for (int r = 0; r < rows; r++) {
        hn_kv_cache *kv = hn_kv_cache_create(m, T);
        float *lg = NULL;
        CHECK(kv && hn_model_forward(m, kv, ids + r * T, T, HN_LOGITS_ALL, &lg) == HN_OK, "forward: %s", hn_errmsg());
        for (int i = 0; lg && i < T * V; i++) md = fmax(md, fabs(lg[i] - ref[(size_t)r * T * V + i]));
        if (!lg) md = INFINITY;
        hn_kv_cache_destroy(kv);
    }
    return md;
}

static void test_logits(hn_model *m, const tg_file *g) {
    const hn_hparams *hp = &m->hp;
    CHECK(hp->arch == HN_ARCH_GPT2 && hp->n_layer == 2 && hp->n_embd == 64 && hp->n_head == 4 && hp->n_ff == 256 &&
              hp->n_ctx_train == 64 && hp->n_vocab == 301 && fabsf(hp->norm_eps - 1e-5f) < 1e-9f,
          "hparams: arch %d, %d layers, n_embd %d, %d heads, n_ff %d, ctx %d, vocab %d", hp->arch, hp->n_layer,
          hp->n_embd, hp->n_head, hp->n_ff, hp->n_ctx_train, hp->n_vocab);
    CHECK(m->output.w == m->tok_embd && m->pos_embd && m->tok, "tied head, position table, tokenizer");
    const tg_array *in = need(g, "input_ids"), *ref = need(g, "base.logits");
    if (!in || !ref) return;
    double md = logits_diff(m, in->i, (int)in->dims[0], (int)in->dims[1], ref->f);
    CHECK(md <= 1e-4, "logits vs transformers: max abs diff %.3g", md);
    printf("logits (2 rows of 16) vs transformers: max abs diff %.2e\n", md);
    const tg_array *lin = need(g, "long.input_ids"), *lref = need(g, "long.logits");
    if (!lin || !lref) return;
    md = logits_diff(m, lin->i, 1, (int)lin->dims[1], lref->f);
    CHECK(md <= 1e-4, "logits of a 64-token row vs transformers: max abs diff %.3g", md);
    printf("logits (1 row of 64, the whole position table) vs transformers: max abs diff %.2e\n", md);

    // the KV cache: 64 tokens fed 1, 2, 3, ... at a time give the one-pass logits
    int T = (int)lin->dims[1], V = hp->n_vocab;
    hn_kv_cache *kv = hn_kv_cache_create(m, T);
    double mc = 0;
    for (int t0 = 0, n = 1; t0 < T; t0 += n, n++) {
        if (n > T - t0) n = T - t0;
        float *lg;
        CHECK(hn_model_forward(m, kv, lin->i + t0, n, HN_LOGITS_ALL, &lg) == HN_OK, "forward: %s", hn_errmsg());
        for (int i = 0; i < n * V; i++) mc = fmax(mc, fabs(lg[i] - lref->f[(size_t)t0 * V + i]));
    }
    CHECK(mc <= 1e-4, "cached pieces vs transformers: %.3g", mc);
    printf("logits through the KV cache in pieces of 1, 2, 3, ... tokens: max abs diff %.2e\n", mc);
    // a 65th position does not exist: a one-line error, not a read past the table
    int32_t one = 1;
    float *lg;
    hn_status s = hn_kv_cache_pos(kv) == T ? HN_ERR_RANGE : hn_model_forward(m, kv, &one, 1, HN_LOGITS_LAST, &lg);
    CHECK(s == HN_ERR_RANGE, "past the cache");
    hn_kv_cache_destroy(kv);
    kv = hn_kv_cache_create(m, 2 * T);
    int32_t *ids = calloc(2 * T, sizeof *ids);
    s = hn_model_forward(m, kv, ids, T + 1, HN_LOGITS_LAST, &lg);
    CHECK(s == HN_ERR_RANGE && strstr(hn_errmsg(), "position") && !strchr(hn_errmsg(), '\n'),
          "65 positions: %d %s", s, hn_errmsg());
    printf("65 tokens: %s\n", hn_errmsg());
    free(ids);
    hn_kv_cache_destroy(kv);
}

// The model's tokenizer (from the GGUF's tokenizer.ggml.* keys, or the HF directory's tokenizer.json) gives the ids
// of Hugging Face tokenizers for golden.bin's strings.
static void check_tokenizer(const hn_model *m, const tg_file *g, const char *label) {
    int k = 0, same = 0;
    for (;; k++) {
        char nt[32], ni[32];
        snprintf(nt, sizeof nt, "tok.%d.text", k);
        snprintf(ni, sizeof ni, "tok.%d.ids", k);
        const tg_array *text = tg_get(g, nt), *ref = tg_get(g, ni);
        if (!text || !ref) break;
        char buf[256];
        int64_t len = text->n < 255 ? text->n : 255;
        for (int64_t i = 0; i < len; i++) buf[i] = (char)text->i[i];
        buf[len] = 0;
        int32_t *ids = NULL;
        int64_t n = 0;
        hn_status s = m->tok ? hn_tokenizer_encode(m->tok, buf, len, HN_TOK_SPECIAL, &ids, &n) : HN_ERR_ARG;
        bool ok = !s && n == ref->n && !memcmp(ids, ref->i, (size_t)n * 4);
        CHECK(ok, "%s tokenizer on \"%s\": %lld ids, expected %lld", label, buf, (long long)n, (long long)ref->n);
        same += ok;
        free(ids);
    }
    CHECK(k >= 4, "golden.bin has %d tokenizer strings", k);
    printf("%s tokenizer: %d of %d strings give the ids of Hugging Face tokenizers\n", label, same, k);
}

// The Hugging Face directory of the same model (config.json, F16 model.safetensors with Conv1D weights,
// tokenizer.json) loads through io/hf.c's GPT-2 table into the same names: the same logits as the GGUF.
static void test_hf_dir(const tg_file *g) {
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    hn_model *m = NULL;
    CHECK(hn_model_load(&m, GPT2_DIR, &mp) == HN_OK, "load %s: %s", GPT2_DIR, hn_errmsg());
    const tg_array *in = need(g, "input_ids"), *ref = need(g, "base.logits");
    if (!m || !in || !ref) {
        hn_model_destroy(m);
        return;
    }
    CHECK(m->hp.arch == HN_ARCH_GPT2 && m->hp.n_ctx_train == 64 && m->hp.n_ff == 256, "hparams from config.json");
    check_tokenizer(m, g, "HF directory (tokenizer.json)");
    double md = logits_diff(m, in->i, (int)in->dims[0], (int)in->dims[1], ref->f);
    CHECK(md <= 1e-4, "HF directory logits vs transformers: %.3g", md);
    printf("the Hugging Face directory: logits max abs diff vs transformers %.2e\n", md);
    hn_model_destroy(m);
}

// Greedy decoding through the KV cache, one token at a time, equals transformers' generate(do_sample=False).
static void test_generate(hn_model *m, const tg_file *g) {
    const tg_array *pr = need(g, "gen.prompt"), *ref = need(g, "gen.tokens");
    if (!pr || !ref) return;
    int n = (int)ref->n;
    hn_kv_cache *kv = hn_kv_cache_create(m, 64);
    float *lg;
    int32_t tok, out[64];
    CHECK(hn_model_forward(m, kv, pr->i, (int)pr->n, HN_LOGITS_LAST, &lg) == HN_OK, "prompt: %s", hn_errmsg());
    for (int k = 0; k < n; k++) {
        out[k] = tok = argmax(lg, m->hp.n_vocab);
        if (k + 1 < n) CHECK(hn_model_forward(m, kv, &tok, 1, HN_LOGITS_LAST, &lg) == HN_OK, "step: %s", hn_errmsg());
    }
    int same = 0;
    while (same < n && out[same] == ref->i[same]) same++;
    CHECK(same == n, "greedy tokens: the first %d of %d equal transformers'", same, n);
    printf("greedy generation: %d of %d tokens equal transformers' generate\n", same, n);
    hn_kv_cache_destroy(kv);
}

static const hn_proj gpt2_projs[4] = {HN_PROJ_QKV, HN_PROJ_O, HN_PROJ_UP, HN_PROJ_DOWN};

// PEFT's adapter (golden.bin's lora.init arrays) attached to the model.
static hn_lora *attach_golden(hn_model *m, const tg_file *g) {
    hn_adapter *a;
    CHECK(hn_adapter_create(&a, 4, 8, false, 0, NULL, 0) == HN_OK, "adapter: %s", hn_errmsg());
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int k = 0; k < 4; k++) {
            char na[96], nb[96];
            snprintf(na, sizeof na, "lora.init.blk.%d.%s.lora_a", l, hn_proj_gguf_name(gpt2_projs[k]));
            snprintf(nb, sizeof nb, "lora.init.blk.%d.%s.lora_b", l, hn_proj_gguf_name(gpt2_projs[k]));
            const tg_array *A = need(g, na), *B = need(g, nb);
            hn_lora_module *md;
            if (!A || !B || hn_adapter_add(a, l, gpt2_projs[k], A->dims[1], B->dims[0], &md)) continue;
            memcpy(md->a, A->f, (size_t)A->n * 4);
            memcpy(md->b, B->f, (size_t)B->n * 4);
        }
    hn_lora *lo = NULL;
    CHECK(hn_lora_attach(&lo, m, a) == HN_OK, "attach: %s", hn_errmsg());
    hn_adapter_destroy(a);
    return lo;
}

// The golden LoRA step: loss and every lora_A / lora_B gradient against PEFT (DESIGN.md section 7), plain and
// checkpointed; then the logits with the adapter attached.
static void test_lora_golden(hn_model *m, const tg_file *g) {
    hn_lora *lo = attach_golden(m, g);
    if (!lo) return;
    int32_t ids[64];
    uint8_t mask[64];
    hn_batch b;
    CHECK(tg_batch(g, &b, ids, mask, 64), "golden.bin: no usable input_ids/labels");
    for (int ck = 0; ck < 2; ck++) {
        hn_lm_params lp = hn_lm_default_params();
        lp.mm = HN_MM_EXACT;
        lp.checkpoint = ck;
        hn_objective obj;
        CHECK(hn_lm_objective_init(&obj, m, hn_lora_params(lo), &lp) == HN_OK, "objective: %s", hn_errmsg());
        hn_param_zero_grads(obj.params);
        double sum = 0;
        int64_t n = 0;
        CHECK(obj.loss_grad(obj.user, &b, 1.0f / (float)b.n_loss, &sum, &n) == HN_OK, "loss_grad: %s", hn_errmsg());
        double loss = sum / (double)n, ref = need(g, "lora.loss")->f[0];
        CHECK(fabs(loss - ref) <= 1e-5 * fabs(ref), "loss %.8f vs PEFT %.8f", loss, ref);
        double worst = 0;
        int checked = 0;
        for (int l = 0; l < m->hp.n_layer; l++)
            for (int k = 0; k < 4; k++) {
                hn_param *P[2];
                if (!hn_lora_module_params(lo, l, gpt2_projs[k], &P[0], &P[1])) continue;
                for (int ab = 0; ab < 2; ab++) {
                    char name[96];
                    snprintf(name, sizeof name, "lora.grad.blk.%d.%s.lora_%c", l, hn_proj_gguf_name(gpt2_projs[k]),
                             ab ? 'b' : 'a');
                    const tg_array *ga = need(g, name);
                    if (!ga || ga->n != P[ab]->n) continue;
                    double md = 0, mr = 0;
                    for (int64_t i = 0; i < ga->n; i++) {
                        md = fmax(md, fabs(ga->f[i] - P[ab]->grad[i]));
                        mr = fmax(mr, fabs(ga->f[i]));
                    }
                    CHECK(md <= 1e-4 * fmax(1, mr), "%s: max abs diff %.3g (max |ref| %.3g)", name, md, mr);
                    worst = fmax(worst, md / fmax(1, mr));
                    checked++;
                }
            }
        CHECK(checked == 16, "checked %d LoRA gradients", checked);
        printf("LoRA golden step%s: loss %.7f vs PEFT %.7f (rel %.2e); %d gradients, worst max abs diff / max(1, "
               "max |ref|) %.2e\n", ck ? " (checkpointed)" : "", loss, ref, fabs(loss - ref) / ref, checked, worst);
        hn_lm_objective_deinit(&obj);
    }
    const tg_array *in = need(g, "input_ids"), *ref = need(g, "lora.logits");
    if (in && ref) {
        double md = logits_diff(m, in->i, (int)in->dims[0], (int)in->dims[1], ref->f);
        CHECK(md <= 1e-4, "LoRA logits: max abs diff %.3g", md);
        printf("logits with the adapter attached vs PEFT: max abs diff %.2e\n", md);
    }
    hn_lora_destroy(lo);
}

// Five plain SGD steps (lr 0.05) on the LoRA tensors follow PyTorch's losses, and lower the loss.
static void test_lora_sgd(hn_model *m, const tg_file *g) {
    const tg_array *ref = need(g, "sgd.loss");
    hn_lora *lo = attach_golden(m, g);
    if (!lo || !ref) return;
    int32_t ids[64];
    uint8_t mask[64];
    hn_batch b;
    tg_batch(g, &b, ids, mask, 64);
    hn_lm_params lp = hn_lm_default_params();
    lp.mm = HN_MM_EXACT;
    hn_objective obj;
    CHECK(hn_lm_objective_init(&obj, m, hn_lora_params(lo), &lp) == HN_OK, "objective: %s", hn_errmsg());
    hn_param_list *ps = hn_lora_params(lo);
    double losses[6], worst = 0;
    for (int step = 0; step < 6; step++) {
        hn_param_zero_grads(ps);
        double sum = 0;
        int64_t n = 0;
        CHECK(obj.loss_grad(obj.user, &b, 1.0f / (float)b.n_loss, &sum, &n) == HN_OK, "step: %s", hn_errmsg());
        losses[step] = sum / (double)n;
        worst = fmax(worst, fabs(losses[step] - ref->f[step]) / ref->f[step]);
        for (int i = 0; step < 5 && i < ps->n; i++)
            for (int64_t j = 0; j < ps->items[i]->n; j++) ps->items[i]->data[j] -= 0.05f * ps->items[i]->grad[j];
    }
    CHECK(worst <= 1e-4, "SGD losses vs PyTorch: worst relative diff %.3g", worst);
    CHECK(losses[5] < losses[0] - 1, "5 SGD steps: loss %.4f -> %.4f", losses[0], losses[5]);
    printf("5 SGD steps: loss %.4f -> %.4f (PyTorch %.4f -> %.4f), worst relative diff %.2e\n", losses[0], losses[5],
           ref->f[0], ref->f[5], worst);
    hn_lm_objective_deinit(&obj);
    hn_lora_destroy(lo);
}

// A fresh LoRA by GPT-2's target names: the modules, PEFT's tensor names, the export's target_modules.
static void test_lora_targets(hn_model *m) {
    const char *t[] = {"c_attn", "c_proj", "c_fc"};
    hn_lora_config cfg = hn_lora_default_config();
    cfg.r = 4, cfg.alpha = 8;
    CHECK(hn_lora_parse_targets(t, 3, &cfg.targets) == HN_OK, "targets: %s", hn_errmsg());
    hn_lora *lo;
    CHECK(hn_lora_attach_new(&lo, m, &cfg) == HN_OK, "attach_new: %s", hn_errmsg());
    if (!lo) return;
    CHECK(hn_lora_params(lo)->n == 2 * 4 * m->hp.n_layer, "%d params", hn_lora_params(lo)->n);
    hn_param *A, *B;
    CHECK(hn_lora_module_params(lo, 1, HN_PROJ_QKV, &A, &B) && A->n == 4 * 64 && B->n == 192 * 4 &&
              !strcmp(A->name, "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight"),
          "c_attn module: %s", A->name);
    CHECK(hn_lora_module_params(lo, 0, HN_PROJ_DOWN, &A, &B) && A->n == 4 * 256 &&
              !strcmp(B->name, "base_model.model.transformer.h.0.mlp.c_proj.lora_B.weight"),
          "mlp.c_proj module: %s", B->name);
    CHECK(hn_lora_module_params(lo, 0, HN_PROJ_O, &A, &B) &&
              !strcmp(A->name, "base_model.model.transformer.h.0.attn.c_proj.lora_A.weight"),
          "attn.c_proj module: %s", A->name);
    hn_adapter *a = NULL;
    CHECK(hn_lora_export(lo, &a) == HN_OK && a->n_modules == 8 && a->n_targets == 3, "export: %s", hn_errmsg());
    if (a) {
        char joined[64] = "";
        for (int i = 0; i < a->n_targets; i++)
            snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s%s", i ? "," : "", a->targets[i]);
        CHECK(!strcmp(joined, "c_proj,c_fc,c_attn"), "export target_modules %s", joined);
        hn_adapter_destroy(a);
    }
    hn_lora_destroy(lo);
    CHECK(!m->layers[0].qkv.ext && !m->layers[1].down.ext, "destroy detaches");
    // Llama-only targets name nothing in GPT-2
    const char *q[] = {"q_proj", "gate_proj"};
    CHECK(hn_lora_parse_targets(q, 2, &cfg.targets) == HN_OK, "parse");
    CHECK(hn_lora_attach_new(&lo, m, &cfg) == HN_ERR_ARG && strstr(hn_errmsg(), "none of the target modules"),
          "q_proj on GPT-2: %s", hn_errmsg());
}

static bool same_modules(const hn_adapter *a, const hn_adapter *b) {
    if (a->n_modules != b->n_modules || a->r != b->r || a->alpha != b->alpha) return false;
    for (int i = 0; i < a->n_modules; i++) {
        const hn_lora_module *x = &a->modules[i], *y = &b->modules[i];
        if (x->layer != y->layer || x->proj != y->proj || x->in != y->in || x->out != y->out ||
            memcmp(x->a, y->a, (size_t)(a->r * x->in) * 4) || memcmp(x->b, y->b, (size_t)(a->r * x->out) * 4))
            return false;
    }
    return true;
}

// PEFT's own GPT-2 adapter directory (fan_in_fan_out, transformer.h.N.attn.c_attn ...) read, attached (logits equal
// PEFT's), written back by hone (GPT-2 names again) and read again; the llama.cpp LoRA GGUF round trip too.
static void test_peft_files(hn_model *m, const tg_file *g) {
    hn_adapter *a = NULL, *b = NULL;
    CHECK(hn_peft_read(&a, GPT2_DIR "/peft_adapter", m->hp.n_head, m->hp.n_head_kv) == HN_OK, "peft read: %s",
          hn_errmsg());
    if (!a) return;
    CHECK(a->n_modules == 8 && a->r == 4 && a->alpha == 8, "%d modules, r %d, alpha %g", a->n_modules, a->r,
          (double)a->alpha);
    const hn_lora_module *md = hn_adapter_find(a, 1, HN_PROJ_DOWN);
    const tg_array *ref = need(g, "lora.init.blk.1.ffn_down.lora_b");
    CHECK(md && ref && md->in == 256 && md->out == 64 && !memcmp(md->b, ref->f, (size_t)ref->n * 4),
          "mlp.c_proj of layer 1 is down");
    md = hn_adapter_find(a, 0, HN_PROJ_QKV);
    CHECK(md && md->in == 64 && md->out == 192, "c_attn of layer 0 is the fused qkv");
    CHECK(hn_adapter_check_base(a, &m->gguf, false) == HN_OK, "check_base: %s", hn_errmsg());
    hn_lora *lo = NULL;
    CHECK(hn_lora_attach(&lo, m, a) == HN_OK, "attach: %s", hn_errmsg());
    const tg_array *in = need(g, "input_ids"), *lref = need(g, "lora.logits");
    if (lo && in && lref) {
        double d = logits_diff(m, in->i, (int)in->dims[0], (int)in->dims[1], lref->f);
        CHECK(d <= 1e-4, "logits with PEFT's adapter file: %.3g", d);
        printf("PEFT's GPT-2 adapter directory read and attached: logits max abs diff vs PEFT %.2e\n", d);
    }
    hn_lora_destroy(lo);

    char dir[64], path[96];
    snprintf(dir, sizeof dir, "/tmp/hone_test_gpt2_peft_%d", (int)getpid());
    CHECK(hn_peft_write(a, dir, m->hp.n_head, m->hp.n_head_kv) == HN_OK, "peft write: %s", hn_errmsg());
    CHECK(hn_peft_read(&b, dir, m->hp.n_head, m->hp.n_head_kv) == HN_OK && same_modules(a, b), "peft round trip: %s",
          hn_errmsg());
    hn_adapter_destroy(b);
    b = NULL;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors st;
    if (hn_safetensors_open(&st, path) == HN_OK) {
        CHECK(hn_safetensors_tensor(&st, "base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight") &&
                  hn_safetensors_tensor(&st, "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"),
              "hone writes GPT-2's PEFT names");
        hn_safetensors_close(&st);
    }
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    FILE *fp = fopen(path, "rb");
    char text[4096] = "";
    if (fp) text[fread(text, 1, sizeof text - 1, fp)] = 0, fclose(fp);
    CHECK(strstr(text, "\"fan_in_fan_out\": true") && strstr(text, "\"c_attn\""), "config: %s", text);
    remove(path);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    remove(path);
    rmdir(dir);

    snprintf(path, sizeof path, "/tmp/hone_test_gpt2_lora_%d.gguf", (int)getpid());
    CHECK(hn_lora_gguf_write(a, path) == HN_OK && hn_lora_gguf_read(&b, path) == HN_OK && same_modules(a, b),
          "LoRA GGUF round trip: %s", hn_errmsg());
    hn_adapter_destroy(b);
    remove(path);
    hn_adapter_destroy(a);
}

// --regenerate: writes GPT2_DIR/hone_adapter/, a PEFT directory made by hone (r 2, alpha 4, rsLoRA, c_attn, c_proj,
// c_fc; A from seed 11, B set to fixed non-zero values), which tools/reference/tiny_gpt2_ref.py --hone-adapter loads
// into PEFT and records PEFT's logits for (hone_adapter_logits.bin).
static int regenerate(hn_model *m) {
    const char *t[] = {"c_attn", "c_proj", "c_fc"};
    hn_lora_config cfg = hn_lora_default_config();
    cfg.r = 2, cfg.alpha = 4, cfg.use_rslora = true, cfg.seed = 11;
    hn_lora *lo = NULL;
    hn_adapter *a = NULL;
    hn_status s = hn_lora_parse_targets(t, 3, &cfg.targets);
    if (!s) s = hn_lora_attach_new(&lo, m, &cfg);
    for (int i = 0; !s && i < hn_lora_params(lo)->n; i++) {
        hn_param *p = hn_lora_params(lo)->items[i];
        if (strstr(p->name, "lora_B"))
            for (int64_t j = 0; j < p->n; j++) p->data[j] = 0.05f * sinf(0.7f * (float)j + (float)i);
    }
    if (!s) s = hn_lora_export(lo, &a);
    if (!s) s = hn_peft_write(a, GPT2_DIR "/hone_adapter", m->hp.n_head, m->hp.n_head_kv);
    if (s) fprintf(stderr, "regenerate: %s\n", hn_errmsg());
    else printf("wrote %s/hone_adapter: %d modules\n", GPT2_DIR, a->n_modules);
    hn_adapter_destroy(a);
    hn_lora_destroy(lo);
    return s ? 1 : 0;
}

// hone's adapter directory (above) in PEFT gives the logits hone gives with it.
static void test_hone_adapter_in_peft(hn_model *m) {
    tg_file r;
    if (!tg_load(&r, GPT2_DIR "/hone_adapter_logits.bin")) {
        CHECK(false, "cannot read %s/hone_adapter_logits.bin", GPT2_DIR);
        return;
    }
    const tg_array *in = need(&r, "input_ids"), *ref = need(&r, "logits");
    hn_adapter *a = NULL;
    hn_lora *lo = NULL;
    CHECK(hn_peft_read(&a, GPT2_DIR "/hone_adapter", m->hp.n_head, m->hp.n_head_kv) == HN_OK &&
              hn_lora_attach(&lo, m, a) == HN_OK,
          "hone_adapter: %s", hn_errmsg());
    if (lo && in && ref) {
        double md = logits_diff(m, in->i, (int)in->dims[0], (int)in->dims[1], ref->f);
        CHECK(md <= 1e-4, "hone's adapter: logits vs PEFT's with it: %.3g", md);
        printf("hone's GPT-2 adapter directory loaded by PEFT: logits max abs diff vs hone %.2e\n", md);
    }
    hn_lora_destroy(lo);
    hn_adapter_destroy(a);
    tg_free(&r);
}

// A copy of the tiny GGUF with one change: skip_key / skip_tensor left out, reshape's ne given to that tensor (same
// bytes), f16 stored as F16. Returns the path.
static const char *write_variant(const char *skip_key, const char *skip_tensor, const char *reshape,
                                 const int64_t *ne_new, const char *f16) {
    static char path[64]; // per process: the release and sanitizer builds may run at once
    snprintf(path, sizeof path, "/tmp/hone_test_gpt2_broken_%d.gguf", (int)getpid());
    hn_gguf src;
    CHECK(hn_gguf_open(&src, GPT2_GGUF) == HN_OK, "open: %s", hn_errmsg());
    hn_gguf_writer *w = hn_gguf_writer_create();
    for (uint64_t i = 0; i < src.n_kv; i++) {
        const hn_gguf_kv *kv = &src.kv[i];
        if (!skip_key || kv->key.len != strlen(skip_key) || memcmp(kv->key.str, skip_key, kv->key.len))
            hn_gguf_writer_copy_kv(w, kv);
    }
    uint16_t *half = NULL;
    for (uint64_t i = 0; i < src.n_tensors; i++) {
        const hn_tensor *t = &src.tensors[i];
        if (skip_tensor && !strcmp(t->name, skip_tensor)) continue;
        if (reshape && !strcmp(t->name, reshape)) {
            hn_gguf_writer_add_tensor(w, t->name, t->type, 2, ne_new, t->data);
        } else if (f16 && !strcmp(t->name, f16)) {
            half = malloc((size_t)t->ne[0] * 2);
            hn_type_traits_of(HN_F16)->from_f32(t->data, half, t->ne[0]);
            hn_gguf_writer_add_tensor(w, t->name, HN_F16, t->ndim, t->ne, half);
        } else {
            hn_gguf_writer_add_tensor(w, t->name, t->type, t->ndim, t->ne, t->data);
        }
    }
    CHECK(hn_gguf_writer_write(w, path) == HN_OK, "write %s: %s", path, hn_errmsg());
    hn_gguf_writer_destroy(w);
    free(half);
    hn_gguf_close(&src);
    return path;
}

// Broken files: each refused with one line naming the file and what is wrong.
static void test_broken(void) {
    const int64_t qkv_t[2] = {192, 64}, pos_short[2] = {64, 32};
    struct {
        const char *what, *skip_key, *skip_tensor, *reshape;
        const int64_t *ne;
        const char *f16, *expect;
    } cases[] = {
        {"missing bias", NULL, "blk.1.ffn_down.bias", NULL, NULL, NULL, "'blk.1.ffn_down.bias' is missing"},
        {"missing position table", NULL, "position_embd.weight", NULL, NULL, NULL, "'position_embd.weight' is missing"},
        {"c_attn not transposed", NULL, NULL, "blk.0.attn_qkv.weight", qkv_t, NULL,
         "'blk.0.attn_qkv.weight' has shape {192, 64, 1, 1}, expected {64, 192}"},
        {"short position table", NULL, NULL, "position_embd.weight", pos_short, NULL,
         "'position_embd.weight' has shape {64, 32, 1, 1}, expected {64, 64}"},
        {"missing key", "gpt2.context_length", NULL, NULL, NULL, NULL, "'gpt2.context_length' is missing"},
        {"missing epsilon", "gpt2.attention.layer_norm_epsilon", NULL, NULL, NULL, NULL,
         "'gpt2.attention.layer_norm_epsilon' is missing"},
        {"f16 norm bias", NULL, NULL, NULL, NULL, "blk.1.ffn_norm.bias", "'blk.1.ffn_norm.bias' is f16"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = write_variant(cases[i].skip_key, cases[i].skip_tensor, cases[i].reshape, cases[i].ne,
                                         cases[i].f16);
        hn_model *m = NULL;
        hn_status s = hn_model_load(&m, path, NULL);
        const char *msg = hn_errmsg();
        CHECK(s != HN_OK && !m && strstr(msg, path) && strstr(msg, cases[i].expect) && !strchr(msg, '\n'),
              "%s: status %d, message '%s'", cases[i].what, s, msg);
        printf("%-22s -> %s\n", cases[i].what, msg);
        hn_model_destroy(m);
        remove(path);
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    hn_threads_set(2);
    if (argc > 1 && !strcmp(argv[1], "--regenerate")) {
        hn_model *m = NULL;
        if (hn_model_load(&m, GPT2_GGUF, NULL)) return fprintf(stderr, "%s\n", hn_errmsg()), 1;
        int rc = regenerate(m);
        hn_model_destroy(m);
        return rc;
    }
    tg_file g;
    if (!tg_load(&g, GPT2_DIR "/golden.bin")) {
        CHECK(false, "cannot read %s/golden.bin", GPT2_DIR);
        return test_done();
    }
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    hn_model *m = NULL;
    CHECK(hn_model_load(&m, GPT2_GGUF, &mp) == HN_OK, "load %s: %s", GPT2_GGUF, hn_errmsg());
    if (m) {
        test_logits(m, &g);
        check_tokenizer(m, &g, "GGUF");
        test_generate(m, &g);
        test_lora_golden(m, &g);
        test_lora_sgd(m, &g);
        test_lora_targets(m);
        test_peft_files(m, &g);
        test_hone_adapter_in_peft(m);
        hn_model_destroy(m);
    }
    test_hf_dir(&g);
    test_broken();
    tg_free(&g);
    return test_done();
}
