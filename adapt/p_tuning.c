// adapt/p_tuning.c — P-tuning (Liu et al. 2021, "GPT Understands, Too"; PEFT's PromptEncoderConfig) as the method
// "p-tuning" (hn_method_p_tuning, adapt/method.h). n virtual tokens at the input-embedding place, as prompt tuning
// puts them (adapt/prompt_tuning.h), but while training they are the output of a prompt encoder over n trainable
// embeddings (PEFT 0.21.2 tuners/p_tuning/model.py, PromptEncoder):
//     MLP (default):  Linear(C, H) -> ReLU -> Linear(H, H) -> ReLU -> Linear(H, C)
//     LSTM:           a 2-layer bidirectional LSTM(C -> H) (torch.nn.LSTM, gates i, f, g, o; no dropout between
//                     layers: encoder_dropout 0) -> Linear(2H, 2H) -> ReLU -> Linear(2H, C)
// H = encoder_hidden_size (hn_method_config.encoder_hidden_size; 0: the model's width C; PEFT has no default and
// needs it set). Trainable tensors are named as PEFT names them without the adapter name:
// prompt_encoder.embedding.weight (n, C), prompt_encoder.mlp_head.{0,2,4}.{weight,bias},
// prompt_encoder.lstm_head.{weight_ih,weight_hh,bias_ih,bias_hh}_l{0,1}[_reverse]. Initialised as PyTorch does: the
// embedding N(0, 1), Linear weights and biases U(-1/sqrt(in), 1/sqrt(in)), LSTM tensors U(-1/sqrt(H), 1/sqrt(H)).
//
// Saving discards the encoder, as PEFT does: prompt_embeddings is the encoder's output (get_prompt_embedding_to_save)
// and the config keeps the encoder's settings only as a record. A loaded P-tuning adapter is those embeddings as
// fixed virtual tokens, as PEFT's inference mode uses them (get_prompt: prompt_encoder.embedding.weight); its one
// trainable tensor is then the embeddings themselves. Cannot be merged.
#include "adapt/prompt_tuning.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const hn_method_ops hn_method_p_tuning;

enum { MAX_MLP = 6, N_LSTM = 16 }; // MLP: 3 Linear (LSTM's head: 2); LSTM: 2 layers x 2 directions x 4 tensors

typedef struct {
    hn_method base;
    hn_model_ext ext;
    int n, C, H;       // H: encoder_hidden_size (0: a loaded adapter whose config does not say)
    bool lstm, encoder; // encoder false: a loaded adapter, the embeddings are the virtual tokens themselves
    hn_param emb;      // (n, C)
    hn_param mlp[MAX_MLP]; // mlp_head.0.weight, .0.bias, .2.weight, .2.bias[, .4.weight, .4.bias]
    int n_mlp;
    hn_param lstm_w[N_LSTM]; // [4 * (2 * layer + reverse) + k], k: weight_ih, weight_hh, bias_ih, bias_hh
    hn_param_list params;
} p_tuning;

static float *grad_of(hn_param *p) { return p->frozen ? NULL : p->grad; }

// ---- ReLU, forward and backward

typedef struct {
    hn_tape_rec rec;
    hn_var *x, *y;
} relu_rec;

static void relu_backward(hn_ctx *c, hn_tape_rec *rec) {
    relu_rec *r = (relu_rec *)rec;
    if (!r->y->g || !hn_var_grad(c, r->x)) return;
    for (int64_t i = 0; i < r->x->rows * r->x->cols; i++)
        if (r->x->d[i] > 0) r->x->g[i] += r->y->g[i];
}

static hn_var *op_relu(hn_ctx *c, hn_var *x) {
    if (!x || c->err) return NULL;
    hn_var *y = hn_var_new(c, x->rows, x->cols);
    if (!y) return NULL;
    for (int64_t i = 0; i < x->rows * x->cols; i++) y->d[i] = x->d[i] > 0 ? x->d[i] : 0.0f;
    y->rg = x->rg;
    if (hn_grad_on(c, y->rg)) {
        relu_rec *r = hn_tape_push(c, relu_backward, sizeof *r);
        if (!r) return NULL;
        r->x = x, r->y = y;
    }
    return y;
}

// ---- one bidirectional LSTM layer over the sequence x (n, in): y (n, 2H) = [forward h_t | backward h_t] ----
// torch.nn.LSTM: z = W_ih x_t + b_ih + W_hh h_prev + b_hh (4H: i, f, g, o), i f o = sigmoid, g = tanh,
// c_t = f c_prev + i g, h_t = o tanh(c_t); h and c start at zero; the reverse direction runs t = n-1 .. 0.

typedef struct {
    hn_tape_rec rec;
    hn_var *x, *y;
    hn_param *w; // (2 directions x 4): weight_ih (4H, in), weight_hh (4H, H), bias_ih (4H), bias_hh (4H)
    int H;
    float *act, *cell; // (2, n, 4H) gate values after their activations; (2, n, H) cell states
} lstm_rec;

static float sigm(float z) { return 1.0f / (1.0f + expf(-z)); }

static void lstm_backward(hn_ctx *c, hn_tape_rec *rec) {
    lstm_rec *r = (lstm_rec *)rec;
    if (!r->y->g) return;
    const int64_t n = r->x->rows, in = r->x->cols, H = r->H, G = 4 * H;
    float *gx = r->x->rg ? hn_var_grad(c, r->x) : NULL;
    float *tmp = hn_arena_alloc(c->arena, (size_t)(2 * H + G) * sizeof(float));
    if (!tmp) {
        if (!c->err) c->err = HN_ERR_NOMEM;
        return;
    }
    float *dh_next = tmp, *dc_next = tmp + H, *dz = tmp + 2 * H;
    for (int d = 0; d < 2; d++) {
        hn_param *w = r->w + 4 * d;
        float *gwi = grad_of(&w[0]), *gwh = grad_of(&w[1]), *gbi = grad_of(&w[2]), *gbh = grad_of(&w[3]);
        memset(tmp, 0, (size_t)(2 * H) * sizeof(float));
        for (int64_t s = n - 1; s >= 0; s--) { // the forward's steps in reverse
            int64_t t = d ? n - 1 - s : s, tp = d ? t + 1 : t - 1; // tp: the step before (s > 0)
            const float *a = r->act + (d * n + t) * G, *ct = r->cell + (d * n + t) * H;
            const float *cp = s ? r->cell + (d * n + tp) * H : NULL, *hp = s ? r->y->d + tp * 2 * H + d * H : NULL;
            for (int64_t j = 0; j < H; j++) {
                float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j], tc = tanhf(ct[j]);
                float dh = r->y->g[t * 2 * H + d * H + j] + dh_next[j];
                float dc = dh * o * (1 - tc * tc) + dc_next[j];
                dz[j] = dc * g * i * (1 - i);
                dz[H + j] = cp ? dc * cp[j] * f * (1 - f) : 0.0f;
                dz[2 * H + j] = dc * i * (1 - g * g);
                dz[3 * H + j] = dh * tc * o * (1 - o);
                dc_next[j] = dc * f;
            }
            const float *xt = r->x->d + t * in;
            for (int64_t k = 0; k < G; k++) {
                if (gbi) gbi[k] += dz[k];
                if (gbh) gbh[k] += dz[k];
                if (gwi)
                    for (int64_t q = 0; q < in; q++) gwi[k * in + q] += dz[k] * xt[q];
                if (gwh && hp)
                    for (int64_t q = 0; q < H; q++) gwh[k * H + q] += dz[k] * hp[q];
            }
            if (gx)
                for (int64_t k = 0; k < G; k++)
                    for (int64_t q = 0; q < in; q++) gx[t * in + q] += w[0].data[k * in + q] * dz[k];
            for (int64_t q = 0; q < H; q++) dh_next[q] = 0;
            for (int64_t k = 0; k < G; k++)
                for (int64_t q = 0; q < H; q++) dh_next[q] += w[1].data[k * H + q] * dz[k];
        }
    }
}

static hn_var *op_lstm(hn_ctx *c, hn_var *x, hn_param *w, int H) {
    if (!x || c->err) return NULL;
    const int64_t n = x->rows, in = x->cols, G = 4 * (int64_t)H;
    hn_var *y = hn_var_new(c, n, 2 * H);
    float *act = hn_arena_alloc(c->arena, (size_t)(2 * n * G) * sizeof(float));
    float *cell = hn_arena_alloc(c->arena, (size_t)(2 * n * H) * sizeof(float));
    if (!y || !act || !cell) return hn_op_fail(c, HN_ERR_NOMEM);
    bool trainable = x->rg;
    for (int d = 0; d < 2; d++) {
        const hn_param *wd = w + 4 * d;
        for (int k = 0; k < 4; k++) trainable |= !wd[k].frozen;
        for (int64_t s = 0; s < n; s++) {
            int64_t t = d ? n - 1 - s : s, tp = d ? t + 1 : t - 1;
            float *a = act + (d * n + t) * G, *ct = cell + (d * n + t) * H;
            const float *xt = x->d + t * in, *hp = s ? y->d + tp * 2 * H + d * H : NULL;
            const float *cp = s ? cell + (d * n + tp) * H : NULL;
            for (int64_t k = 0; k < G; k++) {
                double z = (double)wd[2].data[k] + wd[3].data[k];
                for (int64_t q = 0; q < in; q++) z += (double)wd[0].data[k * in + q] * xt[q];
                if (hp)
                    for (int64_t q = 0; q < H; q++) z += (double)wd[1].data[k * H + q] * hp[q];
                a[k] = k >= 2 * H && k < 3 * H ? tanhf((float)z) : sigm((float)z);
            }
            for (int64_t j = 0; j < H; j++) {
                ct[j] = (cp ? a[H + j] * cp[j] : 0.0f) + a[j] * a[2 * H + j];
                y->d[t * 2 * H + d * H + j] = a[3 * H + j] * tanhf(ct[j]);
            }
        }
    }
    y->rg = trainable;
    if (hn_grad_on(c, y->rg)) {
        lstm_rec *r = hn_tape_push(c, lstm_backward, sizeof *r);
        if (!r) return NULL;
        r->x = x, r->y = y, r->w = w, r->H = H, r->act = act, r->cell = cell;
    }
    return y;
}

// ---- the encoder

static hn_var *linear(hn_ctx *c, hn_var *x, hn_param *w, hn_param *b) {
    hn_var *y = hn_op_matmul_f32(c, x, w->data, grad_of(w), w->ne[1]); // (rows, out)
    return hn_op_add_bias(c, y, b->data, grad_of(b));
}

static hn_var *pe_embed(hn_ctx *c, const hn_model *m, void *state) {
    (void)m;
    p_tuning *p = state;
    hn_var *x = hn_op_param(c, p->emb.data, grad_of(&p->emb), p->n, p->C); // (n, C)
    if (!p->encoder) return x;
    if (p->lstm) {
        x = op_lstm(c, op_lstm(c, x, p->lstm_w, p->H), p->lstm_w + 8, p->H); // (n, 2H)
        return linear(c, op_relu(c, linear(c, x, &p->mlp[0], &p->mlp[1])), &p->mlp[2], &p->mlp[3]);
    }
    x = op_relu(c, linear(c, x, &p->mlp[0], &p->mlp[1]));                    // (n, H)
    x = op_relu(c, linear(c, x, &p->mlp[2], &p->mlp[3]));                    // (n, H)
    return linear(c, x, &p->mlp[4], &p->mlp[5]);                             // (n, C)
}

static void pe_destroy(hn_method *me) {
    p_tuning *p = (p_tuning *)me;
    if (p->ext.embed) hn_model_detach(me->m, &p->ext);
    free(p->emb.data), free(p->emb.grad);
    for (int i = 0; i < MAX_MLP; i++) free(p->mlp[i].data), free(p->mlp[i].grad);
    for (int i = 0; i < N_LSTM; i++) free(p->lstm_w[i].data), free(p->lstm_w[i].grad);
    hn_param_list_deinit(&p->params);
    free(p);
}

// A param of (rows, cols) (cols 0: a vector of rows), zero, in p's list.
static hn_status new_param(p_tuning *p, hn_param *q, const char *name, int64_t rows, int64_t cols) {
    snprintf(q->name, sizeof q->name, "prompt_encoder.%s", name);
    q->n = rows * (cols ? cols : 1);
    q->ndim = cols ? 2 : 1;
    q->ne[0] = cols ? cols : rows, q->ne[1] = cols ? rows : 1;
    q->no_decay = !cols; // biases
    q->data = hn_calloc((size_t)q->n, sizeof(float), "P-tuning weights");
    q->grad = hn_calloc((size_t)q->n, sizeof(float), "P-tuning gradients");
    if (!q->data || !q->grad) return HN_ERR_NOMEM;
    return hn_param_list_add(&p->params, q);
}

// A detached instance (values zero): with the encoder's tensors when encoder.
static hn_status pe_new(p_tuning **out, hn_model *m, int n, int H, bool lstm, bool encoder) {
    *out = NULL;
    hn_status s = hn_prompt_check_n(m, "P-tuning", n);
    if (s) return s;
    if (encoder && (H < 1 || H > 65536))
        return hn_fail(HN_ERR_ARG, "P-tuning: encoder_hidden_size %d, expected 1 to 65536", H);
    p_tuning *p = hn_calloc(1, sizeof *p, "P-tuning");
    if (!p) return HN_ERR_NOMEM;
    p->base = (hn_method){&hn_method_p_tuning, m};
    p->n = n, p->C = m->hp.n_embd, p->H = H, p->lstm = lstm, p->encoder = encoder;
    const int64_t C = p->C;
    s = new_param(p, &p->emb, "embedding.weight", n, C);
    if (encoder && lstm) {
        char name[64];
        for (int l = 0; l < 2 && !s; l++)
            for (int d = 0; d < 2 && !s; d++) {
                static const char *const kinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
                int64_t in = l ? 2 * H : C, cols[4] = {in, H, 0, 0};
                for (int k = 0; k < 4 && !s; k++) {
                    snprintf(name, sizeof name, "lstm_head.%s_l%d%s", kinds[k], l, d ? "_reverse" : "");
                    s = new_param(p, &p->lstm_w[4 * (2 * l + d) + k], name, 4 * (int64_t)H, cols[k]);
                }
            }
        int64_t dims[2][2] = {{2 * H, 2 * H}, {C, 2 * H}}; // (out, in)
        for (int i = 0; i < 2 && !s; i++) {
            snprintf(name, sizeof name, "mlp_head.%d.weight", 2 * i);
            if (!(s = new_param(p, &p->mlp[2 * i], name, dims[i][0], dims[i][1]))) {
                snprintf(name, sizeof name, "mlp_head.%d.bias", 2 * i);
                s = new_param(p, &p->mlp[2 * i + 1], name, dims[i][0], 0);
            }
        }
        p->n_mlp = 4;
    } else if (encoder) {
        int64_t dims[3][2] = {{H, C}, {H, H}, {C, H}};
        char name[64];
        for (int i = 0; i < 3 && !s; i++) {
            snprintf(name, sizeof name, "mlp_head.%d.weight", 2 * i);
            if (!(s = new_param(p, &p->mlp[2 * i], name, dims[i][0], dims[i][1]))) {
                snprintf(name, sizeof name, "mlp_head.%d.bias", 2 * i);
                s = new_param(p, &p->mlp[2 * i + 1], name, dims[i][0], 0);
            }
        }
        p->n_mlp = 6;
    }
    if (s) {
        pe_destroy(&p->base);
        return s;
    }
    *out = p;
    return HN_OK;
}

static void pe_attach(p_tuning *p) {
    p->ext = (hn_model_ext){.method = "p-tuning", .n_virtual = p->n, .embed = pe_embed, .state = p};
    hn_model_attach(p->base.m, &p->ext);
}

static void uniform(hn_rng *r, hn_param *q, double bound) {
    for (int64_t i = 0; i < q->n; i++) q->data[i] = (float)((2.0 * hn_rng_f32(r) - 1.0) * bound);
}

static hn_status pe_attach_new(hn_method **out, hn_model *m, const hn_method_config *cfg) {
    *out = NULL;
    p_tuning *p;
    int H = cfg->encoder_hidden_size ? cfg->encoder_hidden_size : m->hp.n_embd;
    hn_status s = pe_new(&p, m, cfg->num_virtual_tokens, H, cfg->encoder_lstm, true);
    if (s) return s;
    hn_rng r;
    hn_rng_seed(&r, cfg->seed);
    hn_prompt_randn(&r, p->emb.data, p->emb.n); // torch.nn.Embedding: N(0, 1)
    if (p->lstm)
        for (int i = 0; i < N_LSTM; i++) uniform(&r, &p->lstm_w[i], 1.0 / sqrt((double)H)); // LSTM.reset_parameters
    for (int i = 0; i < p->n_mlp; i += 2) { // nn.Linear: kaiming_uniform_(a=sqrt(5)) and its bias: 1/sqrt(fan_in)
        double bound = 1.0 / sqrt((double)p->mlp[i].ne[0]);
        uniform(&r, &p->mlp[i], bound), uniform(&r, &p->mlp[i + 1], bound);
    }
    pe_attach(p);
    *out = &p->base;
    return HN_OK;
}

static hn_status pe_load(hn_method **out, hn_model *m, const char *dir) {
    *out = NULL;
    json_t *cfg;
    float *prompt;
    int n;
    hn_status s = hn_prompt_read(m, dir, "P_TUNING", &cfg, &prompt, &n);
    if (s) return s;
    json_t *type = json_object_get(cfg, "encoder_reparameterization_type");
    json_t *hs = json_object_get(cfg, "encoder_hidden_size");
    const char *ty = json_is_string(type) ? json_string_value(type) : NULL;
    p_tuning *p = NULL;
    if (type && !json_is_null(type) && (!ty || (strcmp(ty, "MLP") && strcmp(ty, "LSTM"))))
        s = hn_fail(HN_ERR_FORMAT, "%s/adapter_config.json: 'encoder_reparameterization_type': expected \"MLP\" or "
                    "\"LSTM\"", dir);
    else if (hs && !json_is_null(hs) && (!json_is_integer(hs) || json_integer_value(hs) < 1 ||
                                         json_integer_value(hs) > 65536))
        s = hn_fail(HN_ERR_FORMAT, "%s/adapter_config.json: 'encoder_hidden_size': expected an integer from 1 to "
                    "65536 or null", dir);
    else if (!(s = pe_new(&p, m, n, json_is_integer(hs) ? (int)json_integer_value(hs) : 0, ty && !strcmp(ty, "LSTM"),
                          false)))
        memcpy(p->emb.data, prompt, (size_t)p->emb.n * sizeof(float));
    free(prompt);
    json_decref(cfg);
    if (s) return s;
    pe_attach(p);
    *out = &p->base;
    return HN_OK;
}

static hn_status pe_save(const hn_method *me, const char *dir) {
    const p_tuning *p = (const p_tuning *)me;
    // The encoder's output, computed without a tape (PEFT's get_prompt_embedding_to_save).
    hn_arena ar = {0};
    hn_ctx c = {.arena = &ar, .mm = HN_MM_EXACT};
    hn_var *y = pe_embed(&c, me->m, (void *)p);
    if (!y) {
        hn_arena_deinit(&ar);
        return c.err ? c.err : hn_fail(HN_ERR_NOMEM, "P-tuning: out of memory for the prompt");
    }
    json_t *cfg = hn_prompt_peft_config(me->m, "P_TUNING", p->n);
    json_object_set_new(cfg, "encoder_reparameterization_type", json_string(p->lstm ? "LSTM" : "MLP"));
    json_object_set_new(cfg, "encoder_hidden_size", p->H ? json_integer(p->H) : json_null());
    json_object_set_new(cfg, "encoder_num_layers", json_integer(2));
    json_object_set_new(cfg, "encoder_dropout", json_real(0.0));
    hn_status s = hn_prompt_save(me->m, cfg, y->d, p->n, dir);
    hn_arena_deinit(&ar);
    return s;
}

static hn_param_list *pe_params(hn_method *me) { return &((p_tuning *)me)->params; }
static void pe_set_enabled(hn_method *me, bool on) { ((p_tuning *)me)->ext.off = !on; }

const hn_method_ops hn_method_p_tuning = {
    .name = "p-tuning", .peft_type = "P_TUNING", .attach_new = pe_attach_new, .load = pe_load, .save = pe_save,
    .merge = NULL, .set_scale = NULL, .params = pe_params, .set_enabled = pe_set_enabled, .destroy = pe_destroy};
