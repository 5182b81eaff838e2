// tensor/param.c — lists of trainable tensors (tensor/param.h).
#include "tensor/param.h"

#include <stdlib.h>
#include <string.h>

hn_status hn_param_list_add(hn_param_list *l, hn_param *p) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->items[i]->name, p->name))
            return hn_fail(HN_ERR_ARG, "trainable tensor '%s' added twice", p->name);
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        hn_param **items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) return hn_fail(HN_ERR_NOMEM, "out of memory for the list of trainable tensors");
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = p;
    return HN_OK;
}

void hn_param_list_deinit(hn_param_list *l) {
    free(l->items);
    memset(l, 0, sizeof *l);
}

void hn_param_zero_grads(const hn_param_list *l) {
    for (int i = 0; i < l->n; i++) memset(l->items[i]->grad, 0, (size_t)l->items[i]->n * sizeof(float));
}

int64_t hn_param_count(const hn_param_list *l) {
    int64_t n = 0;
    for (int i = 0; i < l->n; i++) n += l->items[i]->n;
    return n;
}
