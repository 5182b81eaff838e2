// model/linear.c — the places methods attach (DESIGN.md section 10): the linear layer as model code sees it (the
// base weight through the op set, with whatever methods are attached before and after it; architecture files call
// only hn_linear_forward), and the list of attachments that put virtual positions before the input.
#include "model/model.h"

hn_var *hn_linear_forward(hn_ctx *c, const hn_linear *l, hn_var *x) {
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
