// tensor/grad_pool.h — pooling a right-padded batch of hidden states to one row per sequence, with backward: the
// step from a model's per-token hidden states to a sequence classifier's input.
#ifndef HN_GRAD_POOL_H
#define HN_GRAD_POOL_H

#include "tensor/grad.h"

// Which token(s) of a row make its vector (the values of model/embed.h's hn_pool that have a backward here).
typedef enum { HN_GPOOL_MEAN = 1, HN_GPOOL_FIRST = 2, HN_GPOOL_LAST = 3 } hn_grad_pool;

// y (B, C) from h (B*T, C), row b's first lens[b] tokens valid (1..T): their mean, the first token ([CLS]) or the
// last valid token (a decoder's summary of the whole text). With a tape and h->rg, dh += the pooled rows' dy.
hn_var *hn_op_pool(hn_ctx *c, hn_var *h, int64_t B, int64_t T, const int32_t *lens, hn_grad_pool mode);

#endif
