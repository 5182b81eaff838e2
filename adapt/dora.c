// adapt/dora.c — DoRA (Liu et al. 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation") on linear layers, as PEFT's
// LoraConfig(use_dora=True) computes it (peft 0.21.2, peft/tuners/lora/dora.py DoraLinearLayer and variants.py
// DoraLinearVariant): LoRA's A (r, in) and B (out, r) plus a trainable magnitude m (out), one per output feature.
// With s = alpha / r (alpha / sqrt(r) with rsLoRA), x' = dropout(x) and n = ||W + s B A||_row (one norm per output
// feature, over the input dimension), treated as a constant in the gradient (the paper's section 4.3; PEFT
// detaches it):
//     g = m / n,   y = base(x) + (g - 1) * (W x') + g * s * B A x'
// where W x' is base(x) without its bias when there is no dropout (PEFT takes it from the base result), and the
// base weight multiplied again on the dropped input when dropout is active (PEFT's F.linear(dropout(x), W)). Without
// dropout this is y = g * (W + s B A) x + bias, which is what merge writes: W' = g * (W + s B A) (rows).
//
// The base weight may be quantized and is never made dense: ||W_o||^2 is cached at attach from dequantized rows
// (hn_get_row), and per forward
//     n_o^2 = ||W_o||^2 + 2 s sum_k B[o,k] (W A^T)[o,k] + s^2 B_o (A A^T) B_o^T
// needs W A^T (r rows through the weight) and A A^T (r x r). n is recomputed only when A, B or s changed since the
// last forward (a copy of the A and B it came from is kept), so inference and evaluation pay for it once.
//
// The magnitude starts as ||W + s B A||_row with B = 0, i.e. ||W||_row (PEFT's update_layer); A as LoRA's
// (Kaiming-uniform, U(-1/sqrt(in), 1/sqrt(in))), B = 0. Tensors are named as PEFT saves them:
// base_model.model.<module path>.lora_A.weight, .lora_B.weight and .lora_magnitude_vector (shape [out], no .weight
// suffix in the file); B's rows and m of a Llama q/k projection are in GGUF's rotary order in memory (the model
// computes in that order) and in HF's order on disk (io/hf.h hn_hf_permute_rows); other architectures (Qwen2's
// halves rotation, GPT-2, BERT) keep HF's rows.
//
//   hn_method_config cfg = hn_method_default_config();
//   cfg.lora.r = 8, cfg.lora.alpha = 16;
//   hn_method *me;
//   if (hn_method_dora.attach_new(&me, m, &cfg)) ...;   // or hn_method_load(&me, m, dir) on a use_dora adapter
//   ... train hn_method_params(me) ...
//   hn_method_save(me, "run/adapter");                   // PEFT's directory, use_dora true
//
// The norm cache is per attachment and updated inside the forward: two forwards through the same model at once
// (threads) must not share a DoRA attachment.
#include "adapt/method.h"
#include "io/hf.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hn_dora hn_dora;

typedef struct {
    hn_linear_ext ext;
    hn_dora *owner;
    hn_linear *lin;
    int layer;
    hn_proj proj;
    int64_t in, out;
    hn_param A, B, M;       // A (r, in), B (out, r), M (out); B's rows and M in GGUF order
    double *w2;             // (out) ||W_o||^2 of the dequantized base rows
    float *inv_norm;        // (out) 1 / ||W + s B A||_o for seen_a, seen_b, seen_s (0 for a zero row)
    float *seen_a, *seen_b; // (r, in), (out, r): what inv_norm was computed from
    float seen_s;
    bool have_norm;
} dora_mod;

struct hn_dora {
    hn_method base;
    int r;
    float alpha, scale, mult, dropout; // scale: alpha / r (or / sqrt(r)); mult: set_scale's factor
    bool use_rslora;
    dora_mod *mods; // (n_mods), sorted by (layer, proj)
    int n_mods;
    float *pt;      // (r, max out) scratch: A W^T
    double *gram;   // (r, r) scratch: A A^T
    hn_param_list params;
};

extern const hn_method_ops hn_method_dora;

static float eff_scale(const hn_dora *d) { return d->scale * d->mult; }

// ---- the detached weight norm

// inv_norm = 1 / ||W + s B A||_row for the current A, B and s; nothing to do when they are the ones last seen.
static hn_status update_norm(hn_dora *d, dora_mod *md) {
    const float s = eff_scale(d);
    const int r = d->r;
    if (md->have_norm && md->seen_s == s && !memcmp(md->seen_a, md->A.data, (size_t)md->A.n * sizeof(float)) &&
        !memcmp(md->seen_b, md->B.data, (size_t)md->B.n * sizeof(float)))
        return HN_OK;
    // pt (r, out) = A W^T: row k holds (W A_k^T)_o for every output feature o
    hn_status st = hn_matmul(d->pt, md->A.data, md->lin->w, r, HN_MM_EXACT);
    if (st) return st;
    for (int j = 0; j < r; j++)
        for (int k = 0; k <= j; k++) {
            const float *aj = md->A.data + (int64_t)j * md->in, *ak = md->A.data + (int64_t)k * md->in;
            double acc = 0;
            for (int64_t i = 0; i < md->in; i++) acc += (double)aj[i] * ak[i];
            d->gram[j * r + k] = d->gram[k * r + j] = acc;
        }
    for (int64_t o = 0; o < md->out; o++) {
        const float *b = md->B.data + o * r;
        double cross = 0, quad = 0;
        for (int j = 0; j < r; j++) {
            cross += (double)b[j] * d->pt[(int64_t)j * md->out + o];
            double row = 0;
            for (int k = 0; k < r; k++) row += d->gram[j * r + k] * b[k];
            quad += (double)b[j] * row;
        }
        double n2 = md->w2[o] + 2.0 * s * cross + (double)s * s * quad;
        md->inv_norm[o] = n2 > 0 ? (float)(1.0 / sqrt(n2)) : 0.0f;
    }
    memcpy(md->seen_a, md->A.data, (size_t)md->A.n * sizeof(float));
    memcpy(md->seen_b, md->B.data, (size_t)md->B.n * sizeof(float));
    md->seen_s = s, md->have_norm = true;
    return HN_OK;
}

// ---- the op: out = y + (g - 1) * u + g * s * z, g = m / n (n constant)

typedef struct {
    hn_tape_rec rec;
    hn_var *y, *u, *z, *out; // u NULL: u = y - bias
    const dora_mod *md;
    const float *bias;       // (out) or NULL
    float *gbias;            // the bias's gradient when it trains (BitFit beside DoRA), else NULL
    float *g, *inv_norm;     // (out) each, in the arena: this forward's values
    float s;
} combine_rec;

static void combine_backward(hn_ctx *c, hn_tape_rec *rec) {
    combine_rec *r = (combine_rec *)rec;
    const float *dout = r->out->g;
    if (!dout) return;
    const int64_t N = r->out->rows, O = r->out->cols;
    const float *g = r->g, *b = r->bias;
    float *dy = r->y->rg ? hn_var_grad(c, r->y) : NULL, *du = r->u && r->u->rg ? hn_var_grad(c, r->u) : NULL;
    float *dz = r->z->rg ? hn_var_grad(c, r->z) : NULL, *dm = r->md->M.grad;
    if ((r->y->rg && !dy) || (r->u && r->u->rg && !du) || (r->z->rg && !dz)) return; // c->err is set
    for (int64_t n = 0; n < N; n++) {
        const float *go = dout + n * O, *yv = r->y->d + n * O, *zv = r->z->d + n * O;
        const float *uv = r->u ? r->u->d + n * O : NULL;
        for (int64_t o = 0; o < O; o++) {
            float base = uv ? uv[o] : yv[o] - (b ? b[o] : 0.0f);
            if (dm) dm[o] += go[o] * (base + r->s * zv[o]) * r->inv_norm[o];
            if (dz) dz[n * O + o] += g[o] * r->s * go[o];
            if (uv) {
                if (dy) dy[n * O + o] += go[o];
                if (du) du[n * O + o] += (g[o] - 1.0f) * go[o];
            } else {
                if (dy) dy[n * O + o] += g[o] * go[o];
                // y's own record gives the bias g * dout; the bias reaches the output with weight 1
                if (r->gbias) r->gbias[o] += (1.0f - g[o]) * go[o];
            }
        }
    }
}

static hn_var *combine(hn_ctx *c, dora_mod *md, const hn_linear *l, hn_var *y, hn_var *u, hn_var *z, float s) {
    if (!y || !z || c->err) return NULL;
    const int64_t N = y->rows, O = y->cols;
    hn_var *out = hn_var_new(c, N, O);
    float *g = hn_arena_alloc(c->arena, (size_t)O * 2 * sizeof(float));
    if (!out || !g) return hn_op_fail(c, HN_ERR_NOMEM);
    float *inv = g + O;
    for (int64_t o = 0; o < O; o++) {
        inv[o] = md->inv_norm[o];
        g[o] = inv[o] > 0 ? md->M.data[o] * inv[o] : 1.0f; // a zero row of W + s B A stays zero whatever m is
    }
    const float *b = l->b && !u ? (const float *)l->b->data : NULL;
    for (int64_t n = 0; n < N; n++) {
        const float *yv = y->d + n * O, *zv = z->d + n * O, *uv = u ? u->d + n * O : NULL;
        float *ov = out->d + n * O;
        for (int64_t o = 0; o < O; o++) {
            if (uv) ov[o] = yv[o] + (g[o] - 1.0f) * uv[o] + g[o] * s * zv[o];
            else {
                float bo = b ? b[o] : 0.0f;
                ov[o] = g[o] * (yv[o] - bo + s * zv[o]) + bo;
            }
        }
    }
    out->rg = true; // the magnitude trains
    if (hn_grad_on(c, true)) {
        combine_rec *r = hn_tape_push(c, combine_backward, sizeof *r);
        if (!r) return NULL;
        r->y = y, r->u = u, r->z = z, r->out = out, r->md = md, r->bias = b, r->g = g, r->inv_norm = inv, r->s = s;
        r->gbias = b && l->b->grad ? l->b->grad : NULL;
    }
    return out;
}

static hn_var *dora_apply(hn_ctx *c, const hn_linear *l, void *state, hn_var *x, hn_var *y) {
    dora_mod *md = state;
    hn_dora *d = md->owner;
    if (!y || c->err) return NULL;
    hn_status st = update_norm(d, md);
    if (st) return hn_op_fail(c, st);
    const float s = eff_scale(d);
    hn_var *xd = hn_op_dropout(c, x, d->dropout);
    hn_var *h = hn_op_matmul_f32(c, xd, md->A.data, md->A.grad, d->r); // (N, r)
    hn_var *z = hn_op_matmul_f32(c, h, md->B.data, md->B.grad, md->out); // (N, out) = B A x'
    // PEFT: with active dropout the base term is the weight on the dropped input (no bias); otherwise base(x) - bias
    hn_var *u = xd && xd != x ? hn_op_linear(c, xd, l->w, NULL) : NULL;
    if (xd && xd != x && !u) return NULL;
    return combine(c, md, l, y, u, z, s);
}

// ---- creation

static hn_status init_param(hn_param *p, const char *path, const char *suffix, int ndim, int64_t rows, int64_t cols) {
    snprintf(p->name, sizeof p->name, "base_model.model.%s.%s", path, suffix);
    if (strlen(p->name) + 1 >= sizeof p->name) return hn_fail(HN_ERR_ARG, "DoRA: tensor name too long: %s", p->name);
    p->n = rows * cols;
    p->ndim = ndim;
    p->ne[0] = ndim == 1 ? rows : cols, p->ne[1] = ndim == 1 ? 1 : rows;
    p->data = hn_calloc((size_t)p->n, sizeof(float), "DoRA weights");
    p->grad = hn_calloc((size_t)p->n, sizeof(float), "DoRA gradients");
    return p->data && p->grad ? HN_OK : HN_ERR_NOMEM;
}

static void dora_destroy(hn_method *me) {
    hn_dora *d = (hn_dora *)me;
    if (!d) return;
    for (int i = 0; i < d->n_mods; i++) {
        dora_mod *md = &d->mods[i];
        if (md->ext.apply) hn_linear_detach(md->lin, &md->ext);
        hn_param *ps[3] = {&md->A, &md->B, &md->M};
        for (int k = 0; k < 3; k++) free(ps[k]->data), free(ps[k]->grad);
        free(md->w2), free(md->inv_norm), free(md->seen_a), free(md->seen_b);
    }
    hn_param_list_deinit(&d->params);
    free(d->mods), free(d->pt), free(d->gram);
    free(d);
}

// The modules of mask (bit layer * HN_PROJ_COUNT + proj) with A, B and M zero, ||W_o||^2 cached, attached.
static hn_status dora_create(hn_dora **out, hn_model *m, int r, float alpha, bool rs, float dropout,
                             const bool *mask) {
    *out = NULL;
    if (r < 1 || r > 65536 || !isfinite(alpha) || !(dropout >= 0 && dropout < 1))
        return hn_fail(HN_ERR_ARG, "DoRA: rank %d, alpha %g, dropout %g out of range (rank >= 1, dropout in [0, 1))",
                       r, (double)alpha, (double)dropout);
    int n = 0;
    for (int i = 0; i < m->hp.n_layer * HN_PROJ_COUNT; i++) n += mask[i];
    if (!n) return hn_fail(HN_ERR_ARG, "DoRA: none of the target modules is a linear layer of %s", m->path);
    hn_dora *d = hn_calloc(1, sizeof *d, "DoRA");
    if (!d) return HN_ERR_NOMEM;
    d->base = (hn_method){.ops = &hn_method_dora, .m = m};
    d->r = r, d->alpha = alpha, d->use_rslora = rs, d->dropout = dropout, d->mult = 1.0f;
    d->scale = rs ? alpha / sqrtf((float)r) : alpha / (float)r;
    d->mods = hn_calloc((size_t)n, sizeof *d->mods, "DoRA modules");
    d->gram = hn_calloc((size_t)r * r, sizeof *d->gram, "DoRA scratch");
    hn_status s = d->mods && d->gram ? HN_OK : HN_ERR_NOMEM;
    int64_t max_out = 0, max_in = 0;
    for (int i = 0; i < m->hp.n_layer * HN_PROJ_COUNT && !s; i++) {
        if (!mask[i]) continue;
        dora_mod *md = &d->mods[d->n_mods++];
        md->owner = d, md->layer = i / HN_PROJ_COUNT, md->proj = (hn_proj)(i % HN_PROJ_COUNT);
        md->lin = hn_method_linear(m, md->layer, md->proj);
        md->in = md->lin->w->ne[0], md->out = md->lin->w->ne[1];
        max_out = md->out > max_out ? md->out : max_out, max_in = md->in > max_in ? md->in : max_in;
        char path[160];
        hn_method_module_path(path, sizeof path, m, md->layer, md->proj);
        if ((s = init_param(&md->A, path, "lora_A.weight", 2, r, md->in)) ||
            (s = init_param(&md->B, path, "lora_B.weight", 2, md->out, r)) ||
            (s = init_param(&md->M, path, "lora_magnitude_vector", 1, md->out, 1)))
            break;
        md->w2 = hn_calloc((size_t)md->out, sizeof *md->w2, "DoRA norms");
        md->inv_norm = hn_calloc((size_t)md->out, sizeof(float), "DoRA norms");
        md->seen_a = hn_calloc((size_t)md->A.n, sizeof(float), "DoRA norms");
        md->seen_b = hn_calloc((size_t)md->B.n, sizeof(float), "DoRA norms");
        if (!md->w2 || !md->inv_norm || !md->seen_a || !md->seen_b) s = HN_ERR_NOMEM;
        if (!s && !((s = hn_param_list_add(&d->params, &md->A)) || (s = hn_param_list_add(&d->params, &md->B))))
            s = hn_param_list_add(&d->params, &md->M);
    }
    float *row = s ? NULL : hn_calloc((size_t)max_in, sizeof *row, "DoRA row");
    if (!s && !row) s = HN_ERR_NOMEM;
    if (!s && !(d->pt = hn_calloc((size_t)r * (size_t)max_out, sizeof *d->pt, "DoRA scratch"))) s = HN_ERR_NOMEM;
    for (int i = 0; i < d->n_mods && !s; i++) { // ||W_o||^2 from dequantized rows, once
        dora_mod *md = &d->mods[i];
        for (int64_t o = 0; o < md->out; o++) {
            hn_get_row(md->lin->w, o, row);
            double acc = 0;
            for (int64_t k = 0; k < md->in; k++) acc += (double)row[k] * row[k];
            md->w2[o] = acc;
        }
    }
    free(row);
    if (s) {
        dora_destroy(&d->base);
        return s;
    }
    for (int i = 0; i < d->n_mods; i++) {
        dora_mod *md = &d->mods[i];
        md->ext = (hn_linear_ext){.method = "dora", .apply = dora_apply, .state = md};
        hn_linear_attach(md->lin, &md->ext);
    }
    *out = d;
    return HN_OK;
}

static hn_status dora_attach_new(hn_method **out, hn_model *m, const hn_method_config *cfg) {
    *out = NULL;
    const hn_lora_config *lc = &cfg->lora;
    bool *mask = hn_calloc((size_t)m->hp.n_layer * HN_PROJ_COUNT, sizeof *mask, "DoRA modules");
    if (!mask) return HN_ERR_NOMEM;
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) // the targeted projections that this architecture has
            mask[l * HN_PROJ_COUNT + p] = lc->targets & (1u << p) && hn_method_linear(m, l, (hn_proj)p);
    hn_dora *d;
    hn_status s = dora_create(&d, m, lc->r, lc->alpha, lc->use_rslora, lc->dropout, mask);
    free(mask);
    if (s) return s;
    // A as LoRA draws it (PEFT's kaiming_uniform_(a=sqrt(5)): U(-1/sqrt(in), 1/sqrt(in))), module by module in
    // (layer, proj) order; the seed is the LoRA config's, or the method's when that is 0.
    hn_rng rng;
    hn_rng_seed(&rng, lc->seed ? lc->seed : cfg->seed);
    for (int i = 0; i < d->n_mods; i++) {
        dora_mod *md = &d->mods[i];
        float bound = 1.0f / sqrtf((float)md->in);
        for (int64_t j = 0; j < md->A.n; j++) md->A.data[j] = (2.0f * hn_rng_f32(&rng) - 1.0f) * bound;
        for (int64_t o = 0; o < md->out; o++) md->M.data[o] = (float)sqrt(md->w2[o]); // ||W + s 0 A||_row
    }
    *out = &d->base;
    return HN_OK;
}

// ---- loading PEFT's directory

static hn_status cfg_fail(const char *dir, const char *key, const char *want) {
    return hn_fail(HN_ERR_FORMAT, "%s/adapter_config.json: '%s': expected %s", dir, key, want);
}

// r, lora_alpha, lora_dropout, use_rslora; keys that change what the adapter computes and that hone does not apply
// are refused rather than ignored.
static hn_status read_config(const char *dir, const hn_model *m, int *r, float *alpha, float *dropout, bool *rs) {
    json_t *c;
    hn_status s = hn_method_read_config(dir, "LORA", &c);
    if (s) return s;
    json_t *jr = json_object_get(c, "r"), *ja = json_object_get(c, "lora_alpha"),
           *jd = json_object_get(c, "lora_dropout"), *jrs = json_object_get(c, "use_rslora"),
           *fifo = json_object_get(c, "fan_in_fan_out"), *bias = json_object_get(c, "bias");
    if (!json_is_true(json_object_get(c, "use_dora"))) s = cfg_fail(dir, "use_dora", "true (a DoRA adapter)");
    else if (!json_is_integer(jr) || json_integer_value(jr) < 1 || json_integer_value(jr) > 65536)
        s = cfg_fail(dir, "r", "an integer rank from 1 to 65536");
    else if (ja && !json_is_number(ja)) s = cfg_fail(dir, "lora_alpha", "a number");
    else if (jd && !json_is_null(jd) && (!json_is_number(jd) || !(json_number_value(jd) >= 0) ||
                                         json_number_value(jd) >= 1))
        s = cfg_fail(dir, "lora_dropout", "a number in [0, 1)");
    else if (jrs && !json_is_boolean(jrs)) s = cfg_fail(dir, "use_rslora", "true or false");
    else if (fifo && !json_is_null(fifo) && !json_is_boolean(fifo)) s = cfg_fail(dir, "fan_in_fan_out", "true or false");
    else if (json_is_true(fifo) && m->hp.arch != HN_ARCH_GPT2)
        s = cfg_fail(dir, "fan_in_fan_out", "false (true is for GPT-2's Conv1D layers)");
    else if (bias && !json_is_null(bias) && (!json_is_string(bias) || strcmp(json_string_value(bias), "none")))
        s = cfg_fail(dir, "bias", "\"none\" (hone does not train biases with DoRA)");
    static const char *const must_be_false[] = {"lora_bias", "use_qalora"};
    for (size_t i = 0; !s && i < sizeof must_be_false / sizeof *must_be_false; i++) {
        json_t *v = json_object_get(c, must_be_false[i]);
        if (v && !json_is_false(v) && !json_is_null(v)) s = cfg_fail(dir, must_be_false[i], "false (hone has no such option)");
    }
    static const char *const must_be_empty[] = {"rank_pattern", "alpha_pattern", "modules_to_save",
                                                "layer_replication", "trainable_token_indices", "target_parameters"};
    for (size_t i = 0; !s && i < sizeof must_be_empty / sizeof *must_be_empty; i++) {
        json_t *v = json_object_get(c, must_be_empty[i]);
        if (v && !json_is_null(v) && !((json_is_object(v) && !json_object_size(v)) ||
                                        (json_is_array(v) && !json_array_size(v))))
            s = cfg_fail(dir, must_be_empty[i], "empty or null (hone does not support it)");
    }
    if (!s) {
        *r = (int)json_integer_value(jr);
        *alpha = ja ? (float)json_number_value(ja) : 8.0f; // PEFT's default lora_alpha
        *dropout = jd && !json_is_null(jd) ? (float)json_number_value(jd) : 0.0f;
        *rs = json_is_true(jrs);
    }
    json_decref(c);
    return s;
}

static const char *const suffixes[3] = {".lora_A.weight", ".lora_B.weight", ".lora_magnitude_vector"};

// t (any float dtype) into dst (n floats), its rows permuted into GGUF's order when heads > 0.
static hn_status copy_in(float *dst, const hn_tensor *t, int64_t rows, int64_t cols, int heads) {
    const hn_type_traits *tt = hn_type_traits_of(t->type);
    float *tmp = heads ? hn_alloc((size_t)(rows * cols) * sizeof *tmp, "DoRA tensor") : dst;
    if (!tmp) return HN_ERR_NOMEM;
    tt->to_f32(t->data, tmp, rows * cols);
    if (heads) {
        hn_hf_permute_rows(dst, tmp, rows, cols, heads, true);
        free(tmp);
    }
    return HN_OK;
}

static hn_status check_tensors(const hn_safetensors *st, const hn_model *m, bool *mask) {
    for (size_t i = 0; i < st->n_tensors; i++) {
        const char *name = st->names[i];
        int layer, k;
        hn_proj proj;
        for (k = 0; k < 3; k++)
            if (hn_method_parse_module(m, name, suffixes[k], &layer, &proj)) break;
        if (k == 3)
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: tensor '%s' is not a DoRA lora_A / lora_B / lora_magnitude_vector "
                           "of a linear layer of %s's blocks", st->path, name, m->path);
        hn_dtype t = st->tensors[i].type;
        if (t != HN_F32 && t != HN_F16 && t != HN_BF16)
            return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s': expected F32, F16 or BF16", st->path, name);
        mask[layer * HN_PROJ_COUNT + proj] = true;
    }
    return HN_OK;
}

static hn_status dora_load(hn_method **out, hn_model *m, const char *dir) {
    *out = NULL;
    int r = 0;
    float alpha = 0, dropout = 0;
    bool rs = false;
    hn_status s = read_config(dir, m, &r, &alpha, &dropout, &rs);
    if (s) return s;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors st;
    if ((s = hn_safetensors_open(&st, path))) return s;
    bool *mask = hn_calloc((size_t)m->hp.n_layer * HN_PROJ_COUNT, sizeof *mask, "DoRA modules");
    hn_dora *d = NULL;
    if (!mask) s = HN_ERR_NOMEM;
    if (!s) s = hn_method_check_base(&st, m);
    if (!s) s = check_tensors(&st, m, mask);
    if (!s && !st.n_tensors) s = hn_fail(HN_ERR_FORMAT, "%s: no DoRA tensors", path);
    if (!s) s = dora_create(&d, m, r, alpha, rs, dropout, mask);
    for (int i = 0; !s && i < d->n_mods; i++) {
        dora_mod *md = &d->mods[i];
        hn_param *ps[3] = {&md->A, &md->B, &md->M};
        for (int k = 0; k < 3 && !s; k++) {
            const hn_param *p = ps[k];
            const hn_tensor *t = hn_safetensors_tensor(&st, p->name);
            if (!t) {
                s = hn_fail(HN_ERR_FORMAT, "%s: no tensor '%s' (DoRA needs lora_A, lora_B and lora_magnitude_vector "
                            "for every adapted module)", path, p->name);
                break;
            }
            int64_t rows = p->ndim == 1 ? p->ne[0] : p->ne[1], cols = p->ndim == 1 ? 1 : p->ne[0];
            if (t->ndim != p->ndim || t->ne[0] != p->ne[0] || (p->ndim == 2 && t->ne[1] != p->ne[1])) {
                char got[64];
                if (t->ndim == 1) snprintf(got, sizeof got, "[%lld]", (long long)t->ne[0]);
                else if (t->ndim == 2) snprintf(got, sizeof got, "[%lld, %lld]", (long long)t->ne[1], (long long)t->ne[0]);
                else snprintf(got, sizeof got, "%d dimensions", t->ndim);
                if (p->ndim == 1)
                    s = hn_fail(HN_ERR_FORMAT, "%s: '%s' has shape %s, expected [%lld] (one magnitude per output "
                                "feature)", path, p->name, got, (long long)rows);
                else
                    s = hn_fail(HN_ERR_FORMAT, "%s: '%s' has shape %s, expected [%lld, %lld] (r = %d)", path, p->name,
                                got, (long long)rows, (long long)cols, r);
                break;
            }
            int heads = k ? hn_method_permuted_heads(m, md->proj) : 0;
            if (heads && rows % (2 * heads)) {
                s = hn_fail(HN_ERR_ARG, "%s: '%s' has %lld rows, not a multiple of 2 x %d heads", path, p->name,
                            (long long)rows, heads);
                break;
            }
            s = copy_in(p->data, t, rows, cols, heads);
        }
    }
    hn_safetensors_close(&st);
    free(mask);
    if (s) {
        if (d) dora_destroy(&d->base);
        return s;
    }
    *out = &d->base;
    return HN_OK;
}

// ---- saving PEFT's directory

static hn_status write_config(const hn_dora *d, const char *dir) {
    const hn_model *m = d->base.m;
    json_t *c = hn_method_peft_config(m, "LORA"), *tm = json_array();
    for (int i = 0; i < d->n_mods; i++) { // the module paths, as PEFT writes "all-linear" out
        char path[160];
        hn_method_module_path(path, sizeof path, m, d->mods[i].layer, d->mods[i].proj);
        json_array_append_new(tm, json_string(path));
    }
    json_object_set_new(c, "r", json_integer(d->r));
    json_object_set_new(c, "lora_alpha", d->alpha == floorf(d->alpha) && fabsf(d->alpha) < 1e9f
                                             ? json_integer((json_int_t)d->alpha) : json_real(d->alpha));
    json_object_set_new(c, "lora_dropout", json_real(d->dropout));
    json_object_set_new(c, "target_modules", tm);
    json_object_set_new(c, "use_rslora", json_boolean(d->use_rslora));
    json_object_set_new(c, "use_dora", json_true());
    json_object_set_new(c, "bias", json_string("none"));
    json_object_set_new(c, "lora_bias", json_false());
    json_object_set_new(c, "fan_in_fan_out", json_boolean(m->hp.arch == HN_ARCH_GPT2)); // Conv1D: PEFT sets it
    json_object_set_new(c, "init_lora_weights", json_true());
    json_object_set_new(c, "modules_to_save", json_null());
    json_object_set_new(c, "layers_to_transform", json_null());
    json_object_set_new(c, "layers_pattern", json_null());
    json_object_set_new(c, "rank_pattern", json_object());
    json_object_set_new(c, "alpha_pattern", json_object());
    return hn_method_write_config(c, dir);
}

static hn_status dora_save(const hn_method *me, const char *dir) {
    const hn_dora *d = (const hn_dora *)me;
    const hn_model *m = me->m;
    hn_status s = hn_mkdir_p(dir);
    if (s) return s;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    if (!w) return HN_ERR_NOMEM;
    float **hf = hn_calloc((size_t)d->n_mods * 2, sizeof *hf, "DoRA tensors"); // un-permuted B and M of q/k
    if (!hf) s = HN_ERR_NOMEM;
    for (int i = 0; i < d->n_mods && !s; i++) {
        const dora_mod *md = &d->mods[i];
        int heads = hn_method_permuted_heads(m, md->proj);
        const hn_param *ps[3] = {&md->A, &md->B, &md->M};
        for (int k = 0; k < 3 && !s; k++) {
            const hn_param *p = ps[k];
            const float *data = p->data;
            if (k && heads) { // back to HF's row order
                int64_t rows = md->out, cols = k == 1 ? d->r : 1;
                float **slot = &hf[2 * i + k - 1];
                if (!(*slot = hn_alloc((size_t)p->n * sizeof(float), "DoRA tensor"))) {
                    s = HN_ERR_NOMEM;
                    break;
                }
                hn_hf_permute_rows(*slot, p->data, rows, cols, heads, false);
                data = *slot;
            }
            s = hn_safetensors_writer_add(w, p->name, HN_F32, p->ndim, p->ne, data);
        }
    }
    if (!s) s = hn_safetensors_writer_set_meta(w, "format", "pt");
    if (!s) s = hn_method_write_base(w, m);
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (!s) s = hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    for (int i = 0; hf && i < 2 * d->n_mods; i++) free(hf[i]);
    free(hf);
    if (!s) s = write_config(d, dir);
    return s;
}

// ---- the rest of the interface

static const dora_mod *find(const hn_dora *d, int layer, hn_proj proj) {
    for (int i = 0; i < d->n_mods; i++)
        if (d->mods[i].layer == layer && d->mods[i].proj == proj) return &d->mods[i];
    return NULL;
}

// W' = m / ||W + s B A||_row * (W + s B A), the norm taken from the dense rows themselves (PEFT's merge_safe); a
// module DoRA does not adapt keeps its weight.
static hn_status dora_merge(const hn_method *me, int layer, hn_proj proj, float *dense) {
    const hn_dora *d = (const hn_dora *)me;
    const dora_mod *md = find(d, layer, proj);
    if (!md) return HN_OK;
    const int r = d->r;
    const float s = eff_scale(d);
#pragma omp parallel for num_threads(hn_threads_get())
    for (int64_t o = 0; o < md->out; o++) {
        float *w = dense + o * md->in;
        for (int k = 0; k < r; k++) {
            float b = s * md->B.data[o * r + k];
            const float *a = md->A.data + (int64_t)k * md->in;
            for (int64_t i = 0; i < md->in; i++) w[i] += b * a[i];
        }
        double n2 = 0;
        for (int64_t i = 0; i < md->in; i++) n2 += (double)w[i] * w[i];
        if (n2 > 0) {
            float g = (float)(md->M.data[o] / sqrt(n2));
            for (int64_t i = 0; i < md->in; i++) w[i] *= g;
        }
    }
    return HN_OK;
}

static void dora_set_scale(hn_method *me, float scale) { ((hn_dora *)me)->mult = scale; }
static hn_param_list *dora_params(hn_method *me) { return &((hn_dora *)me)->params; }

static void dora_set_enabled(hn_method *me, bool on) {
    hn_dora *d = (hn_dora *)me;
    for (int i = 0; i < d->n_mods; i++) d->mods[i].ext.off = !on;
}

const hn_method_ops hn_method_dora = {
    .name = "dora",
    .peft_type = "LORA",
    .attach_new = dora_attach_new,
    .load = dora_load,
    .save = dora_save,
    .merge = dora_merge,
    .set_scale = dora_set_scale,
    .params = dora_params,
    .set_enabled = dora_set_enabled,
    .destroy = dora_destroy,
};
