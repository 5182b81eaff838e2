// model/linear.c — the places methods attach (DESIGN.md section 10): the linear layer as model code sees it (the
// base weight through the op set, with whatever methods are attached before and after it; architecture files call
// only hn_linear_forward), and the list of attachments that put virtual positions before the input.
#include "model/model.h"

#include <string.h>

// Rows [g->r0, g->r0 + g->n) of v as a var of their own (no copy).
static hn_var *rows_of(hn_ctx *c, hn_var *v, const hn_row_group *g) {
    return hn_var_wrap(c, v->d + g->r0 * v->cols, g->n, v->cols, false);
}

// Puts r (a hook's result for one group's rows) into those rows of dst, unless the hook wrote them in place.
static void put_rows(hn_var *dst, const hn_row_group *g, const hn_var *r) {
    float *at = dst->d + g->r0 * dst->cols;
    if (r->d != at) memcpy(at, r->d, (size_t)(g->n * dst->cols) * sizeof(float));
}

// Per-request adapters (serving): the step's rows come in groups by owner, and an attachment with an owner runs on
// its owner's rows only, one call per group; attachments without one run on every row. Inference only.
static hn_var *forward_grouped(hn_ctx *c, const hn_linear *l, hn_var *x) {
    if (c->tape) return hn_op_fail(c, hn_fail(HN_ERR_UNSUPPORTED, "linear: row groups have no backward"));
    hn_var *in = x; // the input after the pre hooks; copied before a group's rows change
    for (const hn_linear_ext *e = l->ext; e && in; e = e->next) {
        if (!e->pre || e->off) continue;
        if (!e->owner) {
            in = e->pre(c, l, e->state, in);
            continue;
        }
        for (int i = 0; i < c->n_groups && in; i++) {
            const hn_row_group *g = &c->groups[i];
            if (g->owner != e->owner) continue;
            if (in == x) {
                if (!(in = hn_var_new(c, x->rows, x->cols))) return NULL;
                memcpy(in->d, x->d, (size_t)(x->rows * x->cols) * sizeof(float));
            }
            hn_var *r = e->pre(c, l, e->state, rows_of(c, in, g));
            if (!r) return NULL;
            put_rows(in, g, r);
        }
    }
    hn_var *y = hn_op_linear(c, in, l->w, l->b);
    for (const hn_linear_ext *e = l->ext; e && y; e = e->next) {
        if (!e->apply || e->off) continue;
        if (!e->owner) {
            y = e->apply(c, l, e->state, in, y);
            continue;
        }
        for (int i = 0; i < c->n_groups; i++) {
            const hn_row_group *g = &c->groups[i];
            if (g->owner != e->owner) continue;
            hn_var *r = e->apply(c, l, e->state, rows_of(c, in, g), rows_of(c, y, g));
            if (!r) return NULL;
            put_rows(y, g, r);
        }
    }
    return y;
}

hn_var *hn_linear_forward(hn_ctx *c, const hn_linear *l, hn_var *x) {
    if (c->n_groups && l->ext && x) return forward_grouped(c, l, x);
    for (const hn_linear_ext *e = l->ext; e && x; e = e->next)
        if (e->pre && !e->off) x = e->pre(c, l, e->state, x);
    hn_var *y = hn_op_linear(c, x, l->w, l->b);
    for (const hn_linear_ext *e = l->ext; e && y; e = e->next)
        if (e->apply && !e->off) y = e->apply(c, l, e->state, x, y);
    return y;
}

void hn_linear_attach(hn_linear *l, hn_linear_ext *e) {
    e->next = NULL;
    hn_linear_ext **p = &l->ext;
    while (*p) p = &(*p)->next;
    *p = e;
}

void hn_linear_detach(hn_linear *l, hn_linear_ext *e) {
    for (hn_linear_ext **p = &l->ext; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            e->next = NULL;
            return;
        }
}

void hn_model_attach(hn_model *m, hn_model_ext *e) {
    e->next = NULL;
    hn_model_ext **p = &m->ext;
    while (*p) p = &(*p)->next;
    *p = e;
}

void hn_model_detach(hn_model *m, hn_model_ext *e) {
    for (hn_model_ext **p = &m->ext; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            e->next = NULL;
            return;
        }
}

hn_status hn_model_active_ext(const hn_model *m, const hn_model_ext **out) {
    *out = NULL;
    for (const hn_model_ext *e = m->ext; e; e = e->next) {
        if (e->off) continue;
        if (*out) {
            const char *a = (*out)->method, *b = e->method;
            *out = NULL;
            return hn_fail(HN_ERR_ARG, "%s: two adapters with virtual positions (%s and %s) are active at once; pick "
                           "one (--use NAME)", m->path, a, b);
        }
        *out = e;
    }
    return HN_OK;
}

int hn_model_n_virtual(const hn_model *m) {
    const hn_model_ext *e;
    return hn_model_active_ext(m, &e) || !e ? 0 : e->n_virtual;
}
