// adapt/unfreeze.c — trainable copies of the model's own weights in its slots (see unfreeze.h).
#include "adapt/unfreeze.h"
#include "io/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const hn_tensor *orig; // the file's tensor the copy stands for
    hn_tensor t;           // what the model's slots point at: F32, data = p.data, grad = p.grad while it trains
    hn_param p;
    int layer;             // where it acts (its first slot's layer)
    bool opened;           // unfrozen by hn_unfreeze_set_from at some point
} wcopy;

typedef struct {
    const hn_tensor **slot;
    const hn_tensor *orig;
} redirect;

struct hn_unfreeze {
    hn_model *m;
    wcopy *c;
    int n, cap;
    redirect *r; // every slot pointed at a copy, with what it held before
    int n_r, cap_r;
    hn_param_list params;
};

static wcopy *find(hn_unfreeze *u, const hn_tensor *orig) {
    for (int i = 0; i < u->n; i++)
        if (u->c[i].orig == orig) return &u->c[i];
    return NULL;
}

// ---- choosing ----

typedef struct {
    hn_unfreeze *u; // NULL: count only
    const hn_unfreeze_rule *rule;
    const hn_tensor **seen; // counting: the distinct tensors chosen so far
    int n, cap;
    hn_status s;
} choose_ctx;

static bool chosen(const hn_unfreeze_rule *r, const hn_tensor *t, int layer, hn_wrole role) {
    for (int i = 0; i < 4; i++)
        if (r->except[i] == t) return false;
    return layer >= r->from_layer && (r->roles & HN_UNFREEZE_ROLE(role));
}

static void count_one(void *user, const hn_tensor **slot, int layer, hn_wrole role) {
    choose_ctx *cx = user;
    if (cx->s || !chosen(cx->rule, *slot, layer, role)) return;
    for (int i = 0; i < cx->n; i++)
        if (cx->seen[i] == *slot) return;
    if (cx->n == cx->cap) {
        int cap = cx->cap ? 2 * cx->cap : 256;
        const hn_tensor **p = realloc(cx->seen, (size_t)cap * sizeof *p);
        if (!p) {
            cx->s = hn_fail(HN_ERR_NOMEM, "unfreeze: out of memory");
            return;
        }
        cx->seen = p, cx->cap = cap;
    }
    cx->seen[cx->n++] = *slot;
}

int hn_unfreeze_count(hn_model *m, const hn_unfreeze_rule *r) {
    choose_ctx cx = {.rule = r};
    hn_model_weights(m, count_one, &cx);
    free(cx.seen);
    return cx.s ? 0 : cx.n;
}

// An fp32 copy of t's values into p (named and shaped as t); grad allocated when trainable.
static hn_status copy_values(hn_param *p, const hn_tensor *t, bool trainable) {
    if (t->ndim > 2 || t->ne[2] != 1 || t->ne[3] != 1)
        return hn_fail(HN_ERR_UNSUPPORTED, "unfreeze: tensor %s has %d dimensions, expected 1 or 2", t->name, t->ndim);
    const hn_type_traits *tt = hn_type_traits_of(t->type);
    size_t row_bytes;
    if (!tt || !tt->to_f32 || !hn_row_bytes(t->type, t->ne[0], &row_bytes))
        return hn_fail(HN_ERR_UNSUPPORTED, "unfreeze: tensor %s of dtype %s cannot be made trainable", t->name,
                       hn_dtype_name(t->type));
    snprintf(p->name, sizeof p->name, "%s", t->name);
    p->ndim = t->ndim, p->ne[0] = t->ne[0], p->ne[1] = t->ne[1], p->n = t->ne[0] * t->ne[1];
    p->data = hn_alloc_aligned((size_t)p->n * sizeof(float), "trainable weight");
    p->grad = trainable ? hn_calloc((size_t)p->n, sizeof(float), "trainable weight gradient") : NULL;
    if (!p->data || (trainable && !p->grad)) return HN_ERR_NOMEM;
    for (int64_t r = 0; r < t->ne[1]; r++)
        tt->to_f32((const uint8_t *)t->data + (size_t)r * row_bytes, p->data + r * t->ne[0], t->ne[0]);
    return HN_OK;
}

static hn_status add_copy(hn_unfreeze *u, const hn_tensor *orig, int layer, hn_wrole role, bool trainable) {
    if (u->n == u->cap) return hn_fail(HN_ERR_ARG, "unfreeze: more weights than counted");
    wcopy *c = &u->c[u->n];
    memset(c, 0, sizeof *c);
    hn_status s = copy_values(&c->p, orig, trainable);
    if (s) {
        free(c->p.data), free(c->p.grad);
        return s;
    }
    u->n++;
    c->orig = orig, c->layer = layer;
    c->p.no_decay = role == HN_W_BIAS || role == HN_W_NORM || role == HN_W_NORM_BIAS;
    c->t = *orig;
    c->t.type = HN_F32, c->t.data = c->p.data, c->t.nbytes = (size_t)c->p.n * sizeof(float), c->t.owned = false;
    c->t.grad = c->p.grad;
    return HN_OK;
}

static void copy_one(void *user, const hn_tensor **slot, int layer, hn_wrole role) {
    choose_ctx *cx = user;
    if (cx->s || !chosen(cx->rule, *slot, layer, role) || find(cx->u, *slot)) return;
    cx->s = add_copy(cx->u, *slot, layer, role, true);
}

// Points every slot that holds a copied tensor (a tied head too) at its copy.
static void redirect_one(void *user, const hn_tensor **slot, int layer, hn_wrole role) {
    choose_ctx *cx = user;
    hn_unfreeze *u = cx->u;
    wcopy *c = find(u, *slot);
    if (cx->s || !c) return;
    if (u->n_r == u->cap_r) {
        int cap = u->cap_r ? 2 * u->cap_r : 64;
        redirect *r = realloc(u->r, (size_t)cap * sizeof *r);
        if (!r) {
            cx->s = hn_fail(HN_ERR_NOMEM, "unfreeze: out of memory");
            return;
        }
        u->r = r, u->cap_r = cap;
    }
    u->r[u->n_r++] = (redirect){slot, *slot};
    *slot = &c->t;
}

static hn_status alloc(hn_unfreeze **out, hn_model *m, int n) {
    hn_unfreeze *u = hn_calloc(1, sizeof *u, "unfreeze");
    if (!u) return HN_ERR_NOMEM;
    u->m = m, u->cap = n;
    u->c = hn_calloc((size_t)(n ? n : 1), sizeof *u->c, "unfreeze");
    if (!u->c) {
        free(u);
        return HN_ERR_NOMEM;
    }
    *out = u;
    return HN_OK;
}

// Redirects the slots and lists the params; frees u on failure.
static hn_status finish(hn_unfreeze **out, hn_unfreeze *u, hn_status s) {
    choose_ctx cx = {.u = u};
    if (!s) hn_model_weights(u->m, redirect_one, &cx), s = cx.s;
    for (int i = 0; i < u->n && !s; i++) s = hn_param_list_add(&u->params, &u->c[i].p);
    if (s) {
        hn_unfreeze_destroy(u);
        return s;
    }
    *out = u;
    return HN_OK;
}

hn_status hn_unfreeze_new(hn_unfreeze **out, hn_model *m, const hn_unfreeze_rule *r) {
    *out = NULL;
    int n = hn_unfreeze_count(m, r);
    if (n == 0)
        return hn_fail(HN_ERR_ARG, "%s: no weight at layer >= %d has the roles asked for", m->path, r->from_layer);
    hn_unfreeze *u;
    hn_status s = alloc(&u, m, n);
    if (s) return s;
    choose_ctx cx = {.u = u, .rule = r};
    hn_model_weights(m, copy_one, &cx);
    return finish(out, u, cx.s);
}

// ---- loading ----

typedef struct {
    hn_unfreeze *u;
    const hn_safetensors *f;
    const char *path;
    hn_status s;
} load_ctx;

static void load_one(void *user, const hn_tensor **slot, int layer, hn_wrole role) {
    load_ctx *lx = user;
    const hn_tensor *w = *slot, *t = hn_safetensors_tensor(lx->f, w->name);
    if (lx->s || !t || find(lx->u, w)) return;
    if (t->type != HN_F32 || t->ne[0] != w->ne[0] || t->ne[1] != w->ne[1] || t->ne[2] != 1 || t->ne[3] != 1) {
        lx->s = hn_fail(HN_ERR_FORMAT, "%s: '%s' is %s [%lld, %lld], expected F32 [%lld, %lld] as the model's",
                        lx->path, w->name, hn_dtype_name(t->type), (long long)t->ne[1], (long long)t->ne[0],
                        (long long)w->ne[1], (long long)w->ne[0]);
        return;
    }
    if ((lx->s = add_copy(lx->u, t, layer, role, false))) return;
    wcopy *c = &lx->u->c[lx->u->n - 1];
    c->orig = w; // the model's tensor it stands for (add_copy took the file's values)
    snprintf(c->t.name, sizeof c->t.name, "%s", w->name);
}

hn_status hn_unfreeze_load(hn_unfreeze **out, hn_model *m, const char *path) {
    *out = NULL;
    hn_safetensors f;
    hn_status s = hn_safetensors_open(&f, path);
    if (s) return s;
    hn_unfreeze *u = NULL;
    if (f.n_tensors == 0) s = hn_fail(HN_ERR_FORMAT, "%s: no tensors, expected the trained weights", path);
    if (!s) s = alloc(&u, m, (int)f.n_tensors);
    if (!s) {
        load_ctx lx = {.u = u, .f = &f, .path = path};
        hn_model_weights(m, load_one, &lx);
        s = lx.s;
        for (size_t i = 0; i < f.n_tensors && !s; i++) { // every tensor of the file must have found its weight
            bool found = false;
            for (int k = 0; k < u->n && !found; k++) found = !strcmp(u->c[k].p.name, f.names[i]);
            if (!found) s = hn_fail(HN_ERR_FORMAT, "%s: '%s' is not a weight of %s", path, f.names[i], m->path);
        }
        s = finish(out, u, s);
    }
    hn_safetensors_close(&f);
    return s;
}

// ---- the rest ----

void hn_unfreeze_destroy(hn_unfreeze *u) {
    if (!u) return;
    for (int i = u->n_r - 1; i >= 0; i--) *u->r[i].slot = u->r[i].orig;
    for (int i = 0; i < u->n; i++) free(u->c[i].p.data), free(u->c[i].p.grad);
    hn_param_list_deinit(&u->params);
    free(u->r), free(u->c), free(u);
}

hn_param_list *hn_unfreeze_params(hn_unfreeze *u) { return &u->params; }

void hn_unfreeze_set_from(hn_unfreeze *u, int layer) {
    for (int i = 0; i < u->n; i++) {
        wcopy *c = &u->c[i];
        bool on = c->layer >= layer && c->p.grad;
        c->p.frozen = !on;
        c->t.grad = on ? c->p.grad : NULL;
        c->opened = c->opened || on;
    }
}

int64_t hn_unfreeze_n_trainable(const hn_unfreeze *u) {
    int64_t n = 0;
    for (int i = 0; i < u->n; i++) n += u->c[i].t.grad ? u->c[i].p.n : 0;
    return n;
}

hn_status hn_unfreeze_save(const hn_unfreeze *u, const char *path) {
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    if (!w) return HN_ERR_NOMEM;
    hn_status s = hn_safetensors_writer_set_meta(w, "format", "pt");
    for (int i = 0; i < u->n && !s; i++) {
        const hn_param *p = &u->c[i].p;
        if (!p->frozen || u->c[i].opened) s = hn_safetensors_writer_add(w, p->name, HN_F32, p->ndim, p->ne, p->data);
    }
    if (!s) s = hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    return s;
}
