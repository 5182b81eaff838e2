// model/linear.c — the linear layer as model code sees it: the base weight through the op set, then whatever
// methods are attached (DESIGN.md section 10). Architecture files call only hn_linear_forward.
#include "model/model.h"

hn_var *hn_linear_forward(hn_ctx *c, const hn_linear *l, hn_var *x) {
    hn_var *y = hn_op_linear(c, x, l->w, l->b);
    for (const hn_linear_ext *e = l->ext; e && y; e = e->next) y = e->apply(c, l, e->state, x, y);
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
