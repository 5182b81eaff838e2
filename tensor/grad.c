// tensor/grad.c — the step arena, the tape and its replay, gradient checkpointing and scopes (see grad.h).
#include "tensor/grad.h"

#include <stdlib.h>
#include <string.h>

struct hn_arena_chunk {
    uint8_t *p;
    size_t size;
};

#define ARENA_MIN_CHUNK ((size_t)4 << 20)

static bool chunk_alloc(struct hn_arena_chunk *ch, size_t size) {
    ch->p = hn_alloc_aligned(size, "step arena");
    ch->size = ch->p ? size : 0;
    return ch->p != NULL;
}

void *hn_arena_alloc(hn_arena *a, size_t bytes) {
    bytes = (bytes + 63) & ~(size_t)63;
    if (!bytes) bytes = 64;
    if (a->cur < a->n_chunks && a->used + bytes <= a->chunks[a->cur].size) {
        void *p = a->chunks[a->cur].p + a->used;
        a->used += bytes;
        return p;
    }
    int next = a->cur < a->n_chunks ? a->cur + 1 : a->cur;
    if (next == a->n_chunks) {
        if (a->n_chunks == a->cap_chunks) {
            int cap = a->cap_chunks ? 2 * a->cap_chunks : 16;
            struct hn_arena_chunk *c = realloc(a->chunks, (size_t)cap * sizeof *c);
            if (!c) {
                hn_fail(HN_ERR_NOMEM, "out of memory for the step arena's chunk list");
                return NULL;
            }
            a->chunks = c;
            a->cap_chunks = cap;
        }
        // Chunks double so that a step of any size needs few of them.
        size_t size = ARENA_MIN_CHUNK << (a->n_chunks < 8 ? a->n_chunks : 8);
        if (size < bytes) size = bytes;
        if (!chunk_alloc(&a->chunks[a->n_chunks], size)) {
            hn_fail(HN_ERR_NOMEM, "step arena: out of memory for %zu MiB of activations (%zu MiB held)",
                    size >> 20, hn_arena_size(a) >> 20);
            return NULL;
        }
        a->n_chunks++;
    } else if (a->chunks[next].size < bytes) {
        // A kept chunk too small for this request (the step grew): replace it.
        size_t size = bytes > 2 * a->chunks[next].size ? bytes : 2 * a->chunks[next].size;
        free(a->chunks[next].p);
        if (!chunk_alloc(&a->chunks[next], size)) {
            hn_fail(HN_ERR_NOMEM, "step arena: out of memory for %zu MiB of activations", size >> 20);
            return NULL;
        }
    }
    a->cur = next;
    a->used = bytes;
    size_t held = a->used;
    for (int i = 0; i < a->cur; i++) held += a->chunks[i].size;
    if (held > a->peak) a->peak = held;
    return a->chunks[next].p;
}

hn_arena_mark hn_arena_get_mark(const hn_arena *a) { return (hn_arena_mark){a->cur, a->used}; }

void hn_arena_reset(hn_arena *a, hn_arena_mark m) {
    a->cur = m.cur;
    a->used = m.used;
}

size_t hn_arena_size(const hn_arena *a) {
    size_t n = 0;
    for (int i = 0; i < a->n_chunks; i++) n += a->chunks[i].size;
    return n;
}

void hn_arena_deinit(hn_arena *a) {
    for (int i = 0; i < a->n_chunks; i++) free(a->chunks[i].p);
    free(a->chunks);
    memset(a, 0, sizeof *a);
}

hn_var *hn_op_fail(hn_ctx *c, hn_status s) {
    if (!c->err) c->err = s ? s : HN_ERR_ARG;
    return NULL;
}

static void *ctx_alloc(hn_ctx *c, size_t bytes) {
    if (c->err) return NULL;
    void *p = hn_arena_alloc(c->arena, bytes);
    if (!p) c->err = HN_ERR_NOMEM;
    return p;
}

hn_var *hn_var_wrap(hn_ctx *c, float *d, int64_t rows, int64_t cols, bool rg) {
    hn_var *v = ctx_alloc(c, sizeof *v);
    if (!v) return NULL;
    *v = (hn_var){.d = d, .rows = rows, .cols = cols, .rg = rg};
    return v;
}

hn_var *hn_var_new(hn_ctx *c, int64_t rows, int64_t cols) {
    size_t bytes;
    if (rows < 0 || cols < 0 || !hn_mul_ok((size_t)rows * (size_t)cols, sizeof(float), &bytes))
        return hn_op_fail(c, hn_fail(HN_ERR_ARG, "activation of %lld x %lld floats is too large", (long long)rows,
                                     (long long)cols));
    float *d = ctx_alloc(c, bytes);
    return d ? hn_var_wrap(c, d, rows, cols, false) : NULL;
}

float *hn_var_grad(hn_ctx *c, hn_var *v) {
    if (!v->g) {
        v->g = ctx_alloc(c, (size_t)(v->rows * v->cols) * sizeof(float));
        if (v->g) memset(v->g, 0, (size_t)(v->rows * v->cols) * sizeof(float));
    }
    return v->g;
}

void *hn_tape_push(hn_ctx *c, void (*backward)(hn_ctx *c, hn_tape_rec *r), size_t size) {
    hn_tape_rec *r = ctx_alloc(c, size);
    if (!r) return NULL;
    memset(r, 0, size);
    r->backward = backward;
    r->prev = c->tape->last;
    c->tape->last = r;
    c->tape->n++;
    return r;
}

void hn_tape_reset(hn_tape *t) { memset(t, 0, sizeof *t); }

hn_status hn_backward(hn_ctx *c) {
    if (c->err) return c->err;
    for (hn_tape_rec *r = c->tape->last; r && !c->err; r = r->prev) r->backward(c, r);
    return c->err;
}

// ---- gradient checkpointing ----

typedef struct {
    hn_tape_rec rec;
    hn_block_fn fn;
    void *user;
    hn_var *x, *y;
    hn_rng rng; // the rng before the block ran, so that the recompute draws the same dropout masks
    bool has_rng;
} ckpt_rec;

static void ckpt_backward(hn_ctx *c, hn_tape_rec *rec) {
    ckpt_rec *r = (ckpt_rec *)rec;
    if (!r->y->g) return;
    if (r->x->rg && !hn_var_grad(c, r->x)) return; // x's gradient outlives the recompute: main arena
    hn_arena *main = c->arena;
    hn_tape *outer = c->tape, inner = {0};
    hn_rng now;
    if (r->has_rng) now = *c->rng, *c->rng = r->rng;
    hn_arena_mark mk = hn_arena_get_mark(c->scratch);
    c->arena = c->scratch;
    c->tape = &inner;
    hn_var *y = r->fn(c, r->user, r->x);
    if (y) {
        y->g = r->y->g;
        hn_backward(c);
    }
    c->arena = main;
    c->tape = outer;
    if (r->has_rng) *c->rng = now;
    hn_arena_reset(c->scratch, mk);
}

hn_var *hn_op_checkpoint(hn_ctx *c, hn_block_fn fn, void *user, hn_var *x) {
    if (!x || c->err) return NULL;
    if (!c->scratch) return hn_op_fail(c, hn_fail(HN_ERR_ARG, "gradient checkpointing needs a scratch arena"));
    hn_arena *main = c->arena;
    hn_tape *tape = c->tape;
    hn_rng before = c->rng ? *c->rng : (hn_rng){{0}};
    hn_arena_mark mk = hn_arena_get_mark(c->scratch);
    c->arena = c->scratch;
    c->tape = NULL;
    hn_var *y = fn(c, user, x);
    c->arena = main;
    c->tape = tape;
    hn_var *out = y ? hn_var_new(c, y->rows, y->cols) : NULL;
    if (out) {
        memcpy(out->d, y->d, (size_t)(y->rows * y->cols) * sizeof(float));
        out->rg = y->rg;
    }
    hn_arena_reset(c->scratch, mk);
    if (!out) return NULL;
    if (hn_grad_on(c, out->rg)) {
        ckpt_rec *r = hn_tape_push(c, ckpt_backward, sizeof *r);
        if (!r) return NULL;
        r->fn = fn, r->user = user, r->x = x, r->y = out, r->rng = before, r->has_rng = c->rng != NULL;
    }
    return out;
}

// ---- gradient scopes ----

// The backward meets the scope's end first: x's gradient is made in the main arena, then the block's records
// allocate from the scratch arena until the scope's start puts the main arena back and drops what they made.
typedef struct {
    hn_tape_rec rec;
    hn_var *x;
    hn_arena *main;
    hn_arena_mark mark;
} scope_rec;

static void scope_end_backward(hn_ctx *c, hn_tape_rec *rec) {
    scope_rec *r = (scope_rec *)rec;
    if (r->x->rg && !hn_var_grad(c, r->x)) return;
    r->main = c->arena;
    r->mark = hn_arena_get_mark(c->scratch);
    c->arena = c->scratch;
}

typedef struct {
    hn_tape_rec rec;
    scope_rec *end;
} scope_start_rec;

static void scope_start_backward(hn_ctx *c, hn_tape_rec *rec) {
    scope_rec *end = ((scope_start_rec *)rec)->end;
    if (!end->main) return; // the end's backward failed before switching
    c->arena = end->main;
    hn_arena_reset(c->scratch, end->mark);
}

hn_var *hn_op_scope(hn_ctx *c, hn_block_fn fn, void *user, hn_var *x) {
    if (!x || c->err) return NULL;
    if (!c->tape) return fn(c, user, x);
    if (!c->scratch) return hn_op_fail(c, hn_fail(HN_ERR_ARG, "a gradient scope needs a scratch arena"));
    scope_start_rec *start = hn_tape_push(c, scope_start_backward, sizeof *start);
    hn_var *y = start ? fn(c, user, x) : NULL;
    scope_rec *end = y ? hn_tape_push(c, scope_end_backward, sizeof *end) : NULL;
    if (!end) return NULL;
    end->x = x;
    start->end = end;
    return y;
}
