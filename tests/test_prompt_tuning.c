// tests/test_prompt_tuning.c — prompt tuning and P-tuning (adapt/prompt_tuning.c, adapt/p_tuning.c) against PEFT
// (tools/reference/prompt_peft_ref.py, tests/data/prompt/), and the virtual-token machinery of model/model.c that
// they are the first users of:
// - the tiny Llama with PEFT's prompt tuning, P-tuning MLP and P-tuning LSTM, the tiny BERT with prompt tuning and
//   P-tuning MLP, each from PEFT's initial values: loss (relative diff <= 1e-5), the gradient of every trainable
//   tensor (max abs diff <= 1e-4 x max(1, max |ref|)), logits / hidden states (<= 1e-4), the saved prompt_embeddings,
//   and PEFT's saved directory loaded by hone giving PEFT's outputs after its own load; trainable counts equal
//   PEFT's print_trainable_parameters;
// - TEXT init equals the embedding rows PEFT picks (repeated and truncated);
// - save -> load round trips, set_enabled, destroy detaches;
// - the KV cache: greedy generation token by token with the cache equals recomputing the whole sequence each step
//   (on a fresh cache, and through hn_model_hidden), token for token, with virtual tokens attached (Llama, GPT-2);
// - the prompt encoders' backward (ReLU, LSTM) against finite differences;
// - broken inputs: one-line errors naming the file and the key or tensor.
// `test_prompt_tuning --write DIR` writes hone's adapters and logits for `prompt_peft_ref.py --check DIR`.
#include "adapt/prompt_tuning.h"
#include "io/safetensors.h"
#include "tests/test.h"
#include "tests/tiny_golden.h"
#include "train/lm_objective.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const hn_method_ops hn_method_p_tuning;

#define GOLD "tests/data/prompt"
#define BERT_DIR "tests/data/tiny_bert"

static hn_model *load_model(const char *dir) {
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    mp.allow_no_tokenizer = true;
    hn_model *m = NULL;
    CHECK(hn_model_load(&m, dir, &mp) == HN_OK, "load %s: %s", dir, hn_errmsg());
    return m;
}

static hn_method *attach(hn_model *m, const hn_method_ops *ops, int n, int H, bool lstm, uint64_t seed) {
    hn_method_config cfg = hn_method_default_config();
    cfg.num_virtual_tokens = n, cfg.encoder_hidden_size = H, cfg.encoder_lstm = lstm, cfg.seed = seed;
    hn_method *me = NULL;
    CHECK(ops->attach_new(&me, m, &cfg) == HN_OK, "%s attach_new: %s", ops->name, hn_errmsg());
    return me;
}

// Sets every trainable tensor from CASE.init.NAME; checks they are exactly PEFT's trainable tensors and counts.
static void set_init(hn_method *me, const tg_file *g, const char *cs) {
    hn_param_list *pl = hn_method_params(me);
    char name[256];
    int n_golden = 0;
    for (int k = 0; k < g->n; k++) n_golden += !strncmp(g->a[k].name, cs, strlen(cs)) && strstr(g->a[k].name, ".init.");
    CHECK(pl->n == n_golden, "%s: hone has %d trainable tensors, PEFT %d", cs, pl->n, n_golden);
    for (int i = 0; i < pl->n; i++) {
        hn_param *p = pl->items[i];
        snprintf(name, sizeof name, "%s.init.%s", cs, p->name);
        const tg_array *a = tg_get(g, name);
        CHECK(a && a->n == p->n, "%s: %s missing or %lld values (hone %lld)", cs, name, a ? (long long)a->n : 0LL,
              (long long)p->n);
        if (a && a->n == p->n) memcpy(p->data, a->f, (size_t)p->n * sizeof(float));
    }
    snprintf(name, sizeof name, "%s.trainable", cs);
    const tg_array *t = tg_get(g, name);
    CHECK(t && t->i[0] == hn_param_count(pl), "%s: %lld trainable values, PEFT's print_trainable_parameters %d", cs,
          (long long)hn_param_count(pl), t ? t->i[0] : -1);
}

static void check_grads(hn_method *me, const tg_file *g, const char *cs, const char *label) {
    hn_param_list *pl = hn_method_params(me);
    double worst = 0;
    for (int i = 0; i < pl->n; i++) {
        hn_param *p = pl->items[i];
        char name[256];
        snprintf(name, sizeof name, "%s.grad.%s", cs, p->name);
        const tg_array *a = tg_get(g, name);
        if (!a || a->n != p->n) {
            CHECK(0, "%s: %s missing", label, name);
            continue;
        }
        double mr = 0;
        for (int64_t j = 0; j < a->n; j++) mr = fmax(mr, fabs(a->f[j]));
        double md = max_diff(a->f, p->grad, p->n), tol = 1e-4 * fmax(1, mr);
        CHECK(md <= tol, "%s %s: max abs diff %.3g (tolerance %.3g)", label, name, md, tol);
        worst = fmax(worst, md / fmax(1, mr));
    }
    printf("%s: %d gradients, worst max abs diff / max(1, max |ref|) = %.2e (tolerance 1e-4)\n", label, pl->n, worst);
}

// ---- the Llama cases

typedef struct {
    int B, T;
    int32_t ids[64];
    uint8_t mask[64];
} llama_batch;

static bool get_batch(const tg_file *g, llama_batch *lb, hn_batch *b) {
    const tg_array *in = tg_get(g, "llama.input_ids"), *lab = tg_get(g, "llama.labels");
    if (!in || !lab || in->n > 64) return false;
    lb->B = (int)in->dims[0], lb->T = (int)in->dims[1];
    *b = (hn_batch){.B = lb->B, .T = lb->T, .ids = lb->ids, .mask = lb->mask};
    for (int i = 0; i < lb->B * lb->T; i++) {
        lb->ids[i] = in->i[i];
        lb->mask[i] = i % lb->T && lab->i[i] != -100; // PEFT's labels[:, 0] is -100: see the reference script
        b->n_loss += lb->mask[i];
    }
    return true;
}

// Logits (B, T, V) of every row, each on a fresh cache (the inference path).
static void llama_logits(hn_model *m, const llama_batch *lb, float *out) {
    const int V = m->hp.n_vocab;
    for (int r = 0; r < lb->B; r++) {
        hn_kv_cache *kv = hn_kv_cache_create(m, 64);
        float *lg;
        CHECK(kv && hn_model_forward(m, kv, lb->ids + r * lb->T, lb->T, HN_LOGITS_ALL, &lg) == HN_OK, "forward: %s",
              hn_errmsg());
        if (kv && lg) memcpy(out + (size_t)r * lb->T * V, lg, (size_t)lb->T * V * sizeof(float));
        hn_kv_cache_destroy(kv);
    }
}

static void llama_case(hn_model *m, const tg_file *g, const char *cs, const hn_method_ops *ops, int H, bool lstm,
                       const char *tmp) {
    llama_batch lb;
    hn_batch b;
    CHECK(get_batch(g, &lb, &b), "golden batch");
    hn_method *me = attach(m, ops, 5, H, lstm, 1);
    if (!me) return;
    set_init(me, g, cs);
    char name[600];
    for (int ck = 0; ck < 2; ck++) {
        hn_lm_params lp = hn_lm_default_params();
        lp.mm = HN_MM_EXACT, lp.checkpoint = ck;
        hn_objective obj;
        CHECK(hn_lm_objective_init(&obj, m, hn_method_params(me), &lp) == HN_OK, "objective: %s", hn_errmsg());
        hn_param_zero_grads(obj.params);
        double sum = 0;
        int64_t n = 0;
        CHECK(obj.loss_grad(obj.user, &b, 1.0f / (float)b.n_loss, &sum, &n) == HN_OK, "loss_grad: %s", hn_errmsg());
        snprintf(name, sizeof name, "%s.loss", cs);
        double loss = sum / (double)n, ref = tg_get(g, name)->f[0];
        CHECK(fabs(loss - ref) <= 1e-5 * fabs(ref), "%s: loss %.8f vs PEFT %.8f", cs, loss, ref);
        snprintf(name, sizeof name, "%s%s", cs, ck ? " checkpointed" : "");
        printf("%s: loss %.7f vs PEFT %.7f (rel diff %.2e)\n", name, loss, ref, fabs(loss - ref) / fabs(ref));
        check_grads(me, g, cs, name);
        hn_lm_objective_deinit(&obj);
    }
    const int64_t NV = (int64_t)lb.B * lb.T * m->hp.n_vocab;
    float *lg = malloc((size_t)NV * sizeof *lg), *lg2 = malloc((size_t)NV * sizeof *lg2);
    llama_logits(m, &lb, lg);
    snprintf(name, sizeof name, "%s.out", cs);
    const tg_array *ref = tg_get(g, name);
    double d = ref && ref->n == NV ? max_diff(lg, ref->f, NV) : 1e9;
    CHECK(d <= 1e-4, "%s: logits max abs diff %.3g", cs, d);
    printf("%s: logits (virtual tokens through the KV cache) within %.2e of PEFT's\n", cs, d);
    // save: PEFT's prompt_embeddings (P-tuning: the encoder's output)
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmp, cs);
    CHECK(hn_method_save(me, dir) == HN_OK, "save: %s", hn_errmsg());
    snprintf(name, sizeof name, "%s/adapter_model.safetensors", dir);
    hn_safetensors st;
    if (hn_safetensors_open(&st, name) == HN_OK) {
        const hn_tensor *t = hn_safetensors_tensor(&st, "prompt_embeddings");
        snprintf(name, sizeof name, "%s.prompt", cs);
        const tg_array *want = tg_get(g, name);
        CHECK(t && want && t->type == HN_F32 && t->ne[0] == m->hp.n_embd && t->ne[1] == 5 &&
                  max_diff(t->data, want->f, want->n) <= 1e-5,
              "%s: saved prompt_embeddings differ from PEFT's (%.3g)", cs,
              t && want ? max_diff(t->data, want->f, want->n) : -1.0);
        CHECK(st.n_tensors == 1 && hn_safetensors_meta(&st, "hone.base_hash"), "one tensor and the base record");
        hn_safetensors_close(&st);
    } else CHECK(0, "open saved %s: %s", name, hn_errmsg());
    hn_method_destroy(me);
    CHECK(!m->ext, "destroy detaches");
    // hone's saved directory loads back to the same logits (P-tuning: the encoder's output as fixed tokens)
    CHECK(hn_method_load(&me, m, dir) == HN_OK && me && me->ops == ops, "load hone's %s: %s", dir, hn_errmsg());
    if (me) {
        CHECK(hn_method_params(me)->n == 1 && hn_method_params(me)->items[0]->n == 5 * m->hp.n_embd,
              "loaded: only the embeddings are trainable");
        llama_logits(m, &lb, lg2);
        d = max_diff(lg, lg2, NV);
        CHECK(d <= 1e-5, "%s: save -> load logits differ by %.3g", cs, d);
        printf("%s: save -> load: logits within %.2e\n", cs, d);
        hn_method_destroy(me);
    }
    // PEFT's saved directory gives PEFT's logits after its own load
    snprintf(dir, sizeof dir, GOLD "/%s", cs);
    CHECK(hn_method_load(&me, m, dir) == HN_OK && me && me->ops == ops, "load PEFT's %s: %s", dir, hn_errmsg());
    if (me) {
        llama_logits(m, &lb, lg2);
        snprintf(name, sizeof name, "%s.out.loaded", cs);
        ref = tg_get(g, name);
        d = ref && ref->n == NV ? max_diff(lg2, ref->f, NV) : 1e9;
        CHECK(d <= 1e-4, "%s: PEFT's directory: logits max abs diff %.3g", cs, d);
        printf("%s: PEFT's saved directory loaded: logits within %.2e of PEFT's after from_pretrained\n", cs, d);
        hn_method_destroy(me);
    }
    free(lg), free(lg2);
}

// ---- the BERT cases: loss = sum over valid (b, t) of h . W

static double bert_step(hn_model *m, const tg_file *g, bool grad, float *hidden) {
    const tg_array *in = tg_get(g, "bert.input_ids"), *lens = tg_get(g, "bert.lens"), *w = tg_get(g, "bert.weights");
    const int B = (int)in->dims[0], T = (int)in->dims[1], C = m->hp.n_embd;
    hn_arena ar = {0}, sc = {0};
    hn_tape tape = {0};
    hn_ctx c = {.arena = &ar, .scratch = &sc, .tape = grad ? &tape : NULL, .mm = HN_MM_EXACT};
    hn_var *h = hn_model_hidden_ex(&c, m, in->i, lens->i, B, T, NULL, false);
    double loss = NAN;
    CHECK(h && h->rows == (int64_t)B * T && h->cols == C, "BERT hidden: %s", hn_errmsg());
    if (h) {
        loss = 0;
        float *gh = grad ? hn_var_grad(&c, h) : NULL;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < lens->i[b]; t++)
                for (int j = 0; j < C; j++) {
                    size_t i = ((size_t)b * T + t) * C + j;
                    loss += (double)h->d[i] * w->f[i];
                    if (gh) gh[i] = w->f[i];
                }
        if (grad) CHECK(hn_backward(&c) == HN_OK, "backward: %s", hn_errmsg());
        if (hidden) memcpy(hidden, h->d, (size_t)B * T * C * sizeof(float));
    }
    hn_tape_reset(&tape);
    hn_arena_deinit(&ar), hn_arena_deinit(&sc);
    return loss;
}

// Max abs diff of the valid rows' hidden states.
static double bert_diff(const tg_file *g, const float *h, const float *ref, int C) {
    const tg_array *in = tg_get(g, "bert.input_ids"), *lens = tg_get(g, "bert.lens");
    const int B = (int)in->dims[0], T = (int)in->dims[1];
    double d = 0;
    for (int b = 0; b < B; b++)
        d = fmax(d, max_diff(h + (size_t)b * T * C, ref + (size_t)b * T * C, (int64_t)lens->i[b] * C));
    return d;
}

static void bert_case(hn_model *m, const tg_file *g, const char *cs, const hn_method_ops *ops, int H) {
    hn_method *me = attach(m, ops, 4, H, false, 1);
    if (!me) return;
    set_init(me, g, cs);
    hn_param_zero_grads(hn_method_params(me));
    const tg_array *in = tg_get(g, "bert.input_ids");
    const int64_t NH = in->n * m->hp.n_embd;
    float *h = malloc((size_t)NH * sizeof *h);
    char name[256];
    double loss = bert_step(m, g, true, h);
    snprintf(name, sizeof name, "%s.loss", cs);
    double ref = tg_get(g, name)->f[0];
    CHECK(fabs(loss - ref) <= 1e-5 * fabs(ref), "%s: loss %.8f vs PEFT %.8f", cs, loss, ref);
    printf("%s: loss %.7f vs PEFT %.7f (rel diff %.2e)\n", cs, loss, ref, fabs(loss - ref) / fabs(ref));
    check_grads(me, g, cs, cs);
    snprintf(name, sizeof name, "%s.out", cs);
    double d = bert_diff(g, h, tg_get(g, name)->f, m->hp.n_embd);
    CHECK(d <= 1e-4, "%s: hidden states max abs diff %.3g", cs, d);
    printf("%s: hidden states within %.2e of PEFT's\n", cs, d);
    hn_method_destroy(me);
    snprintf(name, sizeof name, GOLD "/%s", cs);
    CHECK(hn_method_load(&me, m, name) == HN_OK && me, "load PEFT's %s: %s", name, hn_errmsg());
    if (me) {
        bert_step(m, g, false, h);
        snprintf(name, sizeof name, "%s.out.loaded", cs);
        d = bert_diff(g, h, tg_get(g, name)->f, m->hp.n_embd);
        CHECK(d <= 1e-4, "%s: PEFT's directory: hidden states max abs diff %.3g", cs, d);
        printf("%s: PEFT's saved directory loaded: hidden states within %.2e\n", cs, d);
        hn_method_destroy(me);
    }
    free(h);
}

// ---- TEXT init

static void test_text_init(hn_model *bert, hn_model *llama, const tg_file *g) {
    static const struct {
        int n;
        const char *text;
    } cases[] = {{7, "the cat"}, {3, "The cat sat on the mat, hello world"}}; // the reference's TEXT_SHORT, _LONG
    for (int k = 0; k < 2; k++) {
        hn_method_config cfg = hn_method_default_config();
        cfg.num_virtual_tokens = cases[k].n, cfg.init_text = cases[k].text;
        hn_method *me = NULL;
        CHECK(hn_method_prompt_tuning.attach_new(&me, bert, &cfg) == HN_OK, "TEXT init: %s", hn_errmsg());
        char name[64];
        snprintf(name, sizeof name, "text.%d.prompt", cases[k].n);
        const tg_array *want = tg_get(g, name);
        hn_param *p = me ? hn_method_params(me)->items[0] : NULL;
        CHECK(p && want && want->n == p->n && !memcmp(p->data, want->f, (size_t)p->n * sizeof(float)),
              "TEXT init (%d tokens from \"%s\") differs from PEFT's embedding rows", cases[k].n, cases[k].text);
        hn_method_destroy(me);
    }
    hn_method_config cfg = hn_method_default_config();
    cfg.init_text = "hello";
    hn_method *me = NULL;
    CHECK(hn_method_prompt_tuning.attach_new(&me, llama, &cfg) == HN_ERR_ARG && !me && strstr(hn_errmsg(), "tokenizer"),
          "TEXT init without a tokenizer: %s", hn_errmsg());
    printf("TEXT init: the embedding rows of PEFT's ids, repeated (7 from 4) and cut (3)\n");
}

// ---- the KV cache with virtual tokens: greedy generation three ways

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static void test_kv_cache(hn_model *m, hn_method *me, const char *label) {
    enum { P = 4, GEN = 10 };
    const int V = m->hp.n_vocab;
    int32_t seq[P + GEN] = {17, 42, 5, 99};
    float *ref = malloc((size_t)V * sizeof *ref);
    hn_kv_cache *kv = hn_kv_cache_create(m, 64);
    float *lg;
    double worst_fresh = 0, worst_hidden = 0;
    int agree = 0;
    // the prompt one token at a time: the first call carries the virtual tokens
    for (int t = 0; t < P; t++) CHECK(hn_model_forward(m, kv, seq + t, 1, HN_LOGITS_LAST, &lg) == HN_OK, "%s", hn_errmsg());
    CHECK(hn_kv_cache_pos(kv) == P, "the cache counts the caller's %d tokens, not the virtual ones: %d", P,
          hn_kv_cache_pos(kv));
    for (int s = 0; s < GEN; s++) {
        int len = P + s;
        // (a) the cached step's logits (lg, from the last call)
        int tok = argmax(lg, V);
        // (b) the whole sequence on a fresh cache
        hn_kv_cache *fresh = hn_kv_cache_create(m, 64);
        float *fl;
        CHECK(hn_model_forward(m, fresh, seq, len, HN_LOGITS_LAST, &fl) == HN_OK, "%s", hn_errmsg());
        memcpy(ref, fl, (size_t)V * sizeof *ref);
        hn_kv_cache_destroy(fresh);
        worst_fresh = fmax(worst_fresh, max_diff(lg, ref, V));
        // (c) the training forward (hn_model_hidden) and the head
        hn_arena ar = {0}, sc = {0};
        hn_ctx c = {.arena = &ar, .scratch = &sc, .mm = HN_MM_EXACT};
        float *rope = malloc((size_t)len * m->hp.head_dim * sizeof *rope);
        hn_model_rope_table(m, rope, len);
        hn_var *h = hn_model_hidden(&c, m, seq, 1, len, rope, false);
        hn_var *last = h ? hn_var_wrap(&c, h->d + (int64_t)(len - 1) * m->hp.n_embd, 1, m->hp.n_embd, false) : NULL;
        hn_var *y = last ? hn_linear_forward(&c, &m->output, last) : NULL;
        CHECK(y, "hidden: %s", hn_errmsg());
        if (y) worst_hidden = fmax(worst_hidden, max_diff(lg, y->d, V));
        agree += y && tok == argmax(ref, V) && tok == argmax(y->d, V);
        free(rope);
        hn_arena_deinit(&ar), hn_arena_deinit(&sc);
        seq[len] = tok;
        CHECK(hn_model_forward(m, kv, seq + len, 1, HN_LOGITS_LAST, &lg) == HN_OK, "%s", hn_errmsg());
    }
    CHECK(agree == GEN && worst_fresh <= 1e-4 && worst_hidden <= 1e-4,
          "%s: cached generation vs recomputed: %d/%d tokens agree, logits %.3g (fresh cache), %.3g (hidden)", label,
          agree, GEN, worst_fresh, worst_hidden);
    printf("%s: %d greedy tokens with the KV cache = recomputed each step; logits within %.2e (fresh cache), %.2e "
           "(hn_model_hidden)\n", label, agree, worst_fresh, worst_hidden);
    // truncating back into the input and going on gives the same as before
    hn_kv_cache_truncate(kv, P); // positions count the caller's tokens
    CHECK(hn_model_forward(m, kv, seq + P, GEN - 1, HN_LOGITS_LAST, &lg) == HN_OK, "%s", hn_errmsg());
    hn_kv_cache *fresh = hn_kv_cache_create(m, 64);
    float *fl;
    CHECK(hn_model_forward(m, fresh, seq, P + GEN - 1, HN_LOGITS_LAST, &fl) == HN_OK, "%s", hn_errmsg());
    CHECK(max_diff(lg, fl, V) <= 1e-4, "%s: after truncate %.3g", label, max_diff(lg, fl, V));
    // switched off, a cache begun under the adapter refuses to go on; a new sequence is the base model's
    hn_method_set_enabled(me, false);
    CHECK(hn_model_forward(m, kv, seq, 1, HN_LOGITS_LAST, &lg) == HN_ERR_ARG && !strchr(hn_errmsg(), '\n'),
          "%s: a cache begun under the adapter, adapter off: %s", label, hn_errmsg());
    hn_kv_cache_truncate(kv, 0);
    CHECK(hn_model_forward(m, kv, seq, P, HN_LOGITS_LAST, &lg) == HN_OK && hn_kv_cache_pos(kv) == P, "off: %s",
          hn_errmsg());
    memcpy(ref, lg, (size_t)V * sizeof *ref);
    hn_method_set_enabled(me, true);
    hn_kv_cache_truncate(kv, 0);
    CHECK(hn_model_forward(m, kv, seq, P, HN_LOGITS_LAST, &lg) == HN_OK && max_diff(lg, ref, V) > 1e-3,
          "on again: the virtual tokens change the logits");
    hn_kv_cache_destroy(fresh);
    hn_kv_cache_destroy(kv);
    free(ref);
}

// ---- the encoders' backward against finite differences (loss = sum(out * R) over the virtual tokens)

static double embed_loss(hn_model *m, bool grad) {
    hn_arena ar = {0};
    hn_tape tape = {0};
    hn_ctx c = {.arena = &ar, .tape = grad ? &tape : NULL, .mm = HN_MM_EXACT};
    hn_var *y = m->ext->embed(&c, m, m->ext->state);
    double l = 0;
    float *gy = y && grad ? hn_var_grad(&c, y) : NULL;
    for (int64_t i = 0; y && i < y->rows * y->cols; i++) {
        float r = sinf(0.37f * (float)i + 1.0f);
        l += (double)y->d[i] * r;
        if (gy) gy[i] = r;
    }
    if (grad) hn_backward(&c);
    hn_tape_reset(&tape);
    hn_arena_deinit(&ar);
    return l;
}

static void test_fd(hn_model *m, bool lstm) {
    // A seed whose ReLU inputs all lie farther than the step from zero (seed 9's LSTM case has one within 1e-4).
    hn_method *me = attach(m, &hn_method_p_tuning, 3, 6, lstm, 10);
    if (!me) return;
    hn_param_list *pl = hn_method_params(me);
    hn_param_zero_grads(pl);
    embed_loss(m, true);
    double worst = 0;
    for (int i = 0; i < pl->n; i++) {
        hn_param *p = pl->items[i];
        for (int64_t j = 0; j < p->n; j += 1 + p->n / 7) {
            float keep = p->data[j], e = 1e-3f;
            p->data[j] = keep + e;
            double lp = embed_loss(m, false);
            p->data[j] = keep - e;
            double lm = embed_loss(m, false);
            p->data[j] = keep;
            double fd = (lp - lm) / (2.0 * e);
            double err = fabs(fd - p->grad[j]) / fmax(1, fabs(fd));
            CHECK(err <= 2e-3, "%s[%lld]: backward %g, central difference %g", p->name, (long long)j, p->grad[j], fd);
            worst = fmax(worst, err);
        }
    }
    printf("P-tuning %s encoder: backward within %.2e (relative) of central differences over %d tensors\n",
           lstm ? "LSTM" : "MLP", worst, pl->n);
    hn_method_destroy(me);
}

// ---- broken inputs

static json_t *good_config(void) {
    json_error_t err;
    return json_load_file(GOLD "/llama_pt/adapter_config.json", 0, &err);
}

// dir gets cfg (consumed) and a safetensors file with one tensor name of (rows, 64).
static void write_adapter(const char *dir, json_t *cfg, const char *tensor, int rows) {
    mkdir(dir, 0755);
    char path[600];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_dump_file(cfg, path, 0);
    json_decref(cfg);
    static float data[16 * 64];
    int64_t ne[2] = {64, rows};
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors_writer_add(w, tensor, HN_F32, 2, ne, data);
    hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
}

static void expect_error(hn_model *m, const char *dir, const char *what, const char *needle) {
    hn_method *me = NULL;
    hn_status s = hn_method_load(&me, m, dir);
    const char *msg = hn_errmsg();
    CHECK(s != HN_OK && !me && !strchr(msg, '\n') && strstr(msg, needle),
          "%s: status %d, message '%s' (expected one line with '%s')", what, s, msg, needle);
    if (me) hn_method_destroy(me);
}

static void test_broken(hn_model *llama, hn_model *bert, const char *tmp) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/broken", tmp);
    struct {
        const char *what, *key;
        json_t *val;
        const char *tensor, *peft_type;
        int rows;
        const char *needle;
    } cases[] = {
        {"missing tensor", NULL, NULL, "prompt_embedding", NULL, 5, "prompt_embeddings"},
        {"wrong shape", NULL, NULL, "prompt_embeddings", NULL, 6, "shape [6, 64]"},
        {"num_virtual_tokens not a number", "num_virtual_tokens", json_string("five"), "prompt_embeddings", NULL, 5,
         "'num_virtual_tokens'"},
        {"num_virtual_tokens 0", "num_virtual_tokens", json_integer(0), "prompt_embeddings", NULL, 5,
         "'num_virtual_tokens'"},
        {"token_dim", "token_dim", json_integer(32), "prompt_embeddings", NULL, 5, "'token_dim'"},
        {"prompt_tuning_init", "prompt_tuning_init", json_string("VOCAB"), "prompt_embeddings", NULL, 5,
         "'prompt_tuning_init'"},
        {"encoder-decoder", "num_transformer_submodules", json_integer(2), "prompt_embeddings", NULL, 5,
         "'num_transformer_submodules'"},
        {"task_type", "task_type", json_string("SEQ_2_SEQ_LM"), "prompt_embeddings", NULL, 5, "'task_type'"},
        {"unknown version", "peft_version", json_string("1.0.0"), "prompt_embeddings", NULL, 5, "'peft_version'"},
        {"encoder type", "encoder_reparameterization_type", json_string("GRU"), "prompt_embeddings", "P_TUNING", 5,
         "'encoder_reparameterization_type'"},
        {"encoder_hidden_size", "encoder_hidden_size", json_string("big"), "prompt_embeddings", "P_TUNING", 5,
         "'encoder_hidden_size'"},
        {"unknown peft_type", NULL, NULL, "prompt_embeddings", "PROMPT_TUNING_V9", 5, "'PROMPT_TUNING_V9'"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        json_t *cfg = good_config();
        if (cases[k].key) json_object_set_new(cfg, cases[k].key, cases[k].val);
        if (cases[k].peft_type) json_object_set_new(cfg, "peft_type", json_string(cases[k].peft_type));
        write_adapter(dir, cfg, cases[k].tensor, cases[k].rows);
        expect_error(llama, dir, cases[k].what, cases[k].needle);
        CHECK(!llama->ext, "%s: nothing left attached", cases[k].what);
    }
    // a CAUSAL_LM adapter on an encoder; a file that is not there
    write_adapter(dir, good_config(), "prompt_embeddings", 5);
    expect_error(bert, dir, "a CAUSAL_LM adapter on BERT", "FEATURE_EXTRACTION");
    char path[600];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    unlink(path);
    expect_error(llama, dir, "no safetensors", "adapter_model.safetensors");
    // configurations attach_new refuses
    hn_method_config cfg = hn_method_default_config();
    hn_method *me = NULL;
    cfg.num_virtual_tokens = 0;
    CHECK(hn_method_prompt_tuning.attach_new(&me, llama, &cfg) == HN_ERR_ARG && strstr(hn_errmsg(), "num_virtual"),
          "0 tokens: %s", hn_errmsg());
    cfg.num_virtual_tokens = 32; // BERT's 32 learned positions
    CHECK(hn_method_p_tuning.attach_new(&me, bert, &cfg) == HN_ERR_ARG && strstr(hn_errmsg(), "learned positions"),
          "32 tokens on BERT: %s", hn_errmsg());
    cfg.num_virtual_tokens = 4, cfg.encoder_hidden_size = -3;
    CHECK(hn_method_p_tuning.attach_new(&me, llama, &cfg) == HN_ERR_ARG && strstr(hn_errmsg(), "encoder_hidden_size"),
          "hidden -3: %s", hn_errmsg());
    CHECK(!me && !llama->ext && !bert->ext, "nothing attached");
    printf("broken adapters and configurations: one-line errors\n");
}

// ---- --write DIR: hone's adapters for the reference script's --check

static int write_for_check(const char *out) {
    hn_model *m = load_model(TINY_DIR);
    tg_file g;
    if (!m || !tg_load(&g, GOLD "/golden.bin")) return 1;
    llama_batch lb;
    hn_batch b;
    if (!get_batch(&g, &lb, &b)) return 1;
    mkdir(out, 0755);
    char path[600];
    snprintf(path, sizeof path, "%s/ids.i32", out);
    FILE *fp = fopen(path, "wb");
    fwrite(lb.ids, 4, (size_t)lb.B * lb.T, fp);
    fclose(fp);
    const hn_method_ops *ops[2] = {&hn_method_prompt_tuning, &hn_method_p_tuning};
    const int64_t NV = (int64_t)lb.B * lb.T * m->hp.n_vocab;
    float *lg = malloc((size_t)NV * sizeof *lg);
    for (int k = 0; k < 2; k++) {
        hn_method *me = attach(m, ops[k], 6, 40, false, 11 + k);
        llama_logits(m, &lb, lg);
        snprintf(path, sizeof path, "%s/%s", out, ops[k]->name);
        CHECK(hn_method_save(me, path) == HN_OK, "save: %s", hn_errmsg());
        snprintf(path, sizeof path, "%s/%s/logits.f32", out, ops[k]->name);
        fp = fopen(path, "wb");
        fwrite(lg, 4, (size_t)NV, fp);
        fclose(fp);
        hn_method_destroy(me);
    }
    // BERT with TEXT init: the config's TEXT keys must load in PEFT too; the hidden states of bert.input_ids' row 0
    hn_model *bert = load_model(BERT_DIR);
    const tg_array *bin = tg_get(&g, "bert.input_ids"), *blens = tg_get(&g, "bert.lens");
    hn_method_config cfg = hn_method_default_config();
    cfg.num_virtual_tokens = 5, cfg.init_text = "the cat";
    hn_method *me = NULL;
    CHECK(bert && bin && blens && hn_method_prompt_tuning.attach_new(&me, bert, &cfg) == HN_OK, "BERT: %s",
          hn_errmsg());
    if (me) {
        const int T = blens->i[0], C = bert->hp.n_embd;
        hn_arena ar = {0}, sc = {0};
        hn_ctx c = {.arena = &ar, .scratch = &sc, .mm = HN_MM_EXACT};
        hn_var *h = hn_model_hidden(&c, bert, bin->i, 1, T, NULL, false);
        snprintf(path, sizeof path, "%s/prompt-tuning-text", out);
        CHECK(h && hn_method_save(me, path) == HN_OK, "BERT save: %s", hn_errmsg());
        snprintf(path, sizeof path, "%s/prompt-tuning-text/hidden.f32", out);
        if (h && (fp = fopen(path, "wb"))) fwrite(h->d, 4, (size_t)T * C, fp), fclose(fp);
        snprintf(path, sizeof path, "%s/prompt-tuning-text/ids.i32", out);
        if ((fp = fopen(path, "wb"))) fwrite(bin->i, 4, (size_t)T, fp), fclose(fp);
        hn_arena_deinit(&ar), hn_arena_deinit(&sc);
        hn_method_destroy(me);
    }
    hn_model_destroy(bert);
    printf("wrote %s: now run tools/reference/prompt_peft_ref.py --check %s\n", out, out);
    free(lg);
    tg_free(&g);
    hn_model_destroy(m);
    return test_done();
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write")) return write_for_check(argv[2]);
    tg_file g;
    if (!tg_load(&g, GOLD "/golden.bin")) return test_skip("no " GOLD "/golden.bin");
    hn_model *llama = load_model(TINY_DIR), *bert = load_model(BERT_DIR);
    if (!llama || !bert) return test_done();
    char tmp[] = "/tmp/hone_prompt_XXXXXX";
    CHECK(mkdtemp(tmp), "mkdtemp");
    CHECK(hn_method_find("prompt-tuning") == &hn_method_prompt_tuning &&
              hn_method_find("p-tuning") == &hn_method_p_tuning, "found by name");

    llama_case(llama, &g, "llama_pt", &hn_method_prompt_tuning, 0, false, tmp);
    llama_case(llama, &g, "llama_pe", &hn_method_p_tuning, 32, false, tmp);
    llama_case(llama, &g, "llama_lstm", &hn_method_p_tuning, 24, true, tmp);
    bert_case(bert, &g, "bert_pt", &hn_method_prompt_tuning, 0);
    bert_case(bert, &g, "bert_pe", &hn_method_p_tuning, 32);
    test_text_init(bert, llama, &g);

    hn_method *me = attach(llama, &hn_method_prompt_tuning, 5, 0, false, 3);
    if (me) test_kv_cache(llama, me, "prompt tuning");
    hn_method_destroy(me);
    me = attach(llama, &hn_method_p_tuning, 3, 16, true, 4);
    if (me) test_kv_cache(llama, me, "P-tuning LSTM");
    hn_method_destroy(me);
    hn_model *gpt2 = load_model("tests/data/tiny_gpt2"); // learned positions: the virtual tokens take 0..n-1
    me = gpt2 ? attach(gpt2, &hn_method_p_tuning, 4, 16, false, 5) : NULL;
    if (me) test_kv_cache(gpt2, me, "GPT-2 P-tuning MLP");
    hn_method_destroy(me);
    hn_model_destroy(gpt2);
    test_fd(llama, false);
    test_fd(llama, true);
    test_broken(llama, bert, tmp);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    tg_free(&g);
    hn_model_destroy(llama);
    hn_model_destroy(bert);
    return test_done();
}
