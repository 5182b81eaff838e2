// train/data_batch.c — held-out splits, and the loader: seeded epoch orders, padded or packed batches, a position
// that checkpoints save and restore.
#include "train/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Uniform in [0, k) (Lemire's multiply-shift; the bias for k << 2^64 is far below anything a shuffle could show).
static uint64_t below(hn_rng *r, uint64_t k) { return (uint64_t)(((unsigned __int128)hn_rng_u64(r) * k) >> 64); }

// Fisher-Yates over 0..n-1.
static void shuffle(int *order, int n, hn_rng *r) {
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)below(r, (uint64_t)i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

hn_status hn_dataset_split(hn_dataset *ds, hn_dataset *val, double frac, uint64_t seed) {
    memset(val, 0, sizeof *val);
    if (!(frac >= 0 && frac < 1)) return hn_fail(HN_ERR_ARG, "validation fraction %g: expected at least 0 and below 1", frac);
    if (!(val->path = strdup(ds->path ? ds->path : ""))) return hn_fail(HN_ERR_NOMEM, "out of memory");
    val->format = ds->format;
    if (frac == 0) return HN_OK;
    int n = ds->n, nv = (int)llround(frac * n);
    if (nv < 1) nv = 1;
    if (nv > n - 1) nv = n - 1;
    if (nv < 1) {
        hn_dataset_deinit(val);
        return hn_fail(HN_ERR_ARG, "%s: %d example%s: too few to hold out a validation share", ds->path, n,
                       n == 1 ? "" : "s");
    }
    int *order = hn_calloc((size_t)n, sizeof *order, "a split order");
    uint8_t *held = hn_calloc((size_t)n, 1, "a split");
    val->ex = hn_calloc((size_t)nv, sizeof *val->ex, "validation examples");
    if (!order || !held || !val->ex) {
        free(order);
        free(held);
        hn_dataset_deinit(val);
        return HN_ERR_NOMEM;
    }
    hn_rng r;
    hn_rng_seed(&r, seed);
    shuffle(order, n, &r);
    for (int i = 0; i < nv; i++) held[order[i]] = 1;
    int kt = 0;
    for (int i = 0; i < n; i++) {
        hn_example x = ds->ex[i];
        int64_t loss = 0;
        for (int j = 0; j < x.n; j++) loss += x.mask[j];
        if (held[i]) {
            val->ex[val->n++] = x;
            val->n_tokens += x.n;
            val->n_loss_tokens += loss;
            ds->n_tokens -= x.n;
            ds->n_loss_tokens -= loss;
        } else {
            ds->ex[kt++] = x;
        }
    }
    ds->n = kt;
    ds->n_loaded = kt;
    val->n_loaded = val->n;
    free(order);
    free(held);
    return HN_OK;
}

hn_loader_params hn_loader_default_params(void) {
    return (hn_loader_params){.batch = 4, .seq_len = 1024, .pack = false, .shuffle = true, .seed = 0, .pad_id = 0};
}

// The order of the epoch that starts now; pos.rng keeps the rng from before the draw.
static void start_epoch(hn_loader *ld) {
    memcpy(ld->pos.rng, ld->rng.s, sizeof ld->pos.rng);
    ld->pos.index = 0;
    if (ld->p.shuffle) shuffle(ld->order, ld->ds->n, &ld->rng);
    else
        for (int i = 0; i < ld->ds->n; i++) ld->order[i] = i;
}

hn_status hn_loader_init(hn_loader *ld, const hn_dataset *ds, const hn_loader_params *p) {
    memset(ld, 0, sizeof *ld);
    if (!ds || ds->n < 1) return hn_fail(HN_ERR_ARG, "loader: the dataset has no examples");
    if (p->batch < 1) return hn_fail(HN_ERR_ARG, "loader: batch %d: expected at least 1", p->batch);
    if (p->pack) {
        if (p->seq_len < 2) return hn_fail(HN_ERR_ARG, "loader: seq_len %d: expected at least 2", p->seq_len);
        for (int i = 0; i < ds->n; i++)
            if (ds->ex[i].n > p->seq_len)
                return hn_fail(HN_ERR_ARG, "loader: example %d has %d tokens, more than the packed row length %d", i,
                               ds->ex[i].n, p->seq_len);
    }
    ld->order = hn_calloc((size_t)ds->n, sizeof *ld->order, "a loader order");
    if (!ld->order) return HN_ERR_NOMEM;
    ld->ds = ds;
    ld->p = *p;
    hn_rng_seed(&ld->rng, p->seed);
    start_epoch(ld);
    return HN_OK;
}

void hn_loader_deinit(hn_loader *ld) {
    free(ld->order);
    memset(ld, 0, sizeof *ld);
}

hn_loader_pos hn_loader_get_pos(const hn_loader *ld) { return ld->pos; }

hn_status hn_loader_set_pos(hn_loader *ld, const hn_loader_pos *pos) {
    if (pos->epoch < 0 || pos->index < 0 || pos->index > ld->ds->n)
        return hn_fail(HN_ERR_ARG, "loader position: epoch %lld, example %lld: expected an example of 0..%d",
                       (long long)pos->epoch, (long long)pos->index, ld->ds->n);
    memcpy(ld->rng.s, pos->rng, sizeof ld->rng.s);
    start_epoch(ld);
    ld->pos.epoch = pos->epoch;
    ld->pos.index = pos->index;
    return HN_OK;
}

// Packing: from order[i], the examples that fill at most B rows of T tokens. Calls place(row, col, example) for
// each (when place is given) and returns the next i; *rows gets the rows used.
typedef void (*place_fn)(void *user, int row, int col, int ex);
static int64_t pack(const hn_dataset *ds, const int *order, int64_t i, int B, int T, int *rows, place_fn place,
                    void *user) {
    int row = 0, col = 0;
    while (i < ds->n) {
        int len = ds->ex[order[i]].n;
        if (col + len > T) {
            if (++row == B) break;
            col = 0;
        }
        if (place) place(user, row, col, order[i]);
        col += len;
        i++;
    }
    *rows = row == B ? B : row + (col > 0);
    return i;
}

int64_t hn_loader_count_batches(const hn_loader *ld, int64_t epochs) {
    const hn_dataset *ds = ld->ds;
    int n = ds->n, B = ld->p.batch;
    if (!ld->p.pack) return epochs * ((n + B - 1) / B);
    int *order = hn_calloc((size_t)n, sizeof *order, "a loader order");
    if (!order) return -1;
    hn_rng r;
    hn_rng_seed(&r, ld->p.seed);
    int64_t total = 0;
    for (int64_t e = 0; e < epochs; e++) {
        if (ld->p.shuffle) shuffle(order, n, &r);
        else
            for (int i = 0; i < n; i++) order[i] = i;
        int rows;
        for (int64_t i = 0; i < n; total++) i = pack(ds, order, i, B, ld->p.seq_len, &rows, NULL, NULL);
    }
    free(order);
    return total;
}

static hn_status reserve(hn_batch *b, int B, int T) {
    size_t need = (size_t)B * (size_t)T;
    if (need > b->cap) {
        free(b->ids);
        free(b->mask);
        free(b->seg);
        b->ids = hn_alloc(need * sizeof *b->ids, "batch ids");
        b->mask = hn_alloc(need, "a batch mask");
        b->seg = hn_alloc(need * sizeof *b->seg, "batch segments");
        b->cap = b->ids && b->mask && b->seg ? need : 0;
        if (!b->cap) return HN_ERR_NOMEM;
    }
    if (B > b->cap_rows) {
        free(b->len);
        b->len = hn_alloc((size_t)B * sizeof *b->len, "batch rows");
        b->cap_rows = b->len ? B : 0;
        if (!b->len) return HN_ERR_NOMEM;
    }
    return HN_OK;
}

typedef struct {
    hn_batch *b;
    const hn_dataset *ds;
    int last_row, seg;
} placer;

static void place(void *user, int row, int col, int ex) {
    placer *pl = user;
    hn_batch *b = pl->b;
    const hn_example *x = &pl->ds->ex[ex];
    if (row != pl->last_row) pl->last_row = row, pl->seg = 0;
    size_t at = (size_t)row * (size_t)b->T + (size_t)col;
    memcpy(b->ids + at, x->ids, (size_t)x->n * sizeof *x->ids);
    memcpy(b->mask + at, x->mask, (size_t)x->n);
    for (int j = 0; j < x->n; j++) b->seg[at + (size_t)j] = pl->seg;
    pl->seg++;
    b->len[row] = col + x->n;
    b->n_examples++;
}

hn_status hn_loader_next(hn_loader *ld, hn_batch *b) {
    const hn_dataset *ds = ld->ds;
    if (ld->pos.index >= ds->n) {
        ld->pos.epoch++;
        start_epoch(ld);
    }
    int B = ld->p.batch, T;
    int64_t i = ld->pos.index, next;
    if (ld->p.pack) {
        T = ld->p.seq_len;
        int rows;
        next = pack(ds, ld->order, i, B, T, &rows, NULL, NULL);
        B = rows;
    } else {
        next = i + B < ds->n ? i + B : ds->n;
        B = (int)(next - i);
        T = 1;
        for (int64_t k = i; k < next; k++)
            if (ds->ex[ld->order[k]].n > T) T = ds->ex[ld->order[k]].n;
    }
    hn_status st = reserve(b, B, T);
    if (st) return st;
    b->B = B;
    b->T = T;
    size_t bt = (size_t)B * (size_t)T;
    for (size_t k = 0; k < bt; k++) b->ids[k] = ld->p.pad_id;
    memset(b->mask, 0, bt);
    for (size_t k = 0; k < bt; k++) b->seg[k] = -1;
    memset(b->len, 0, (size_t)B * sizeof *b->len);
    b->n_examples = 0;
    placer pl = {b, ds, -1, 0};
    if (ld->p.pack) {
        int rows;
        pack(ds, ld->order, i, ld->p.batch, T, &rows, place, &pl);
    } else {
        for (int64_t k = i; k < next; k++) place(&pl, (int)(k - i), 0, ld->order[k]);
    }
    b->n_tokens = b->n_loss = 0;
    for (int r = 0; r < B; r++) b->n_tokens += b->len[r];
    for (size_t k = 0; k < bt; k++) b->n_loss += b->mask[k];
    b->epoch = ld->pos.epoch;
    ld->pos.index = next;
    b->epoch_end = next >= ds->n;
    return HN_OK;
}

void hn_batch_deinit(hn_batch *b) {
    free(b->ids);
    free(b->mask);
    free(b->seg);
    free(b->len);
    memset(b, 0, sizeof *b);
}
