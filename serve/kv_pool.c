// serve/kv_pool.c — the paged KV cache's blocks: reference counts, the free list (least recently freed first, so a
// cached block lives as long as possible), and the prefix cache's hash table (chained through the blocks).
#include "serve/kv_pool.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int refs;
    bool published;       // in the hash table under hash
    uint64_t hash, prev;  // the tokens' hash and the previous block's
    int32_t next_free, prev_free; // free list links (refs 0); -1 at the ends
    int32_t next_hash;    // hash chain
    bool on_free;
} block;

struct hn_kv_pool {
    int n_layer, n_blocks, bs, shift;
    int64_t block_floats; // one layer's block: n_head_kv * bs * head_dim
    float *k, *v;         // (n_layer, n_blocks, n_head_kv, bs, head_dim)
    block *b;
    int32_t *tokens;      // (n_blocks, bs): a published block's tokens
    int32_t free_head, free_tail;
    int n_free, in_use;
    int32_t *buckets;     // (n_buckets) hash chains' heads
    int n_buckets;
};

static void free_push(hn_kv_pool *p, int32_t i) { // at the tail: the most recently freed
    block *b = &p->b[i];
    b->prev_free = p->free_tail, b->next_free = -1, b->on_free = true;
    if (p->free_tail >= 0) p->b[p->free_tail].next_free = i;
    else p->free_head = i;
    p->free_tail = i;
    p->n_free++;
}

static void free_remove(hn_kv_pool *p, int32_t i) {
    block *b = &p->b[i];
    if (b->prev_free >= 0) p->b[b->prev_free].next_free = b->next_free;
    else p->free_head = b->next_free;
    if (b->next_free >= 0) p->b[b->next_free].prev_free = b->prev_free;
    else p->free_tail = b->prev_free;
    b->on_free = false;
    p->n_free--;
}

static void unpublish(hn_kv_pool *p, int32_t i) {
    block *b = &p->b[i];
    if (!b->published) return;
    for (int32_t *at = &p->buckets[b->hash % (uint64_t)p->n_buckets]; *at >= 0; at = &p->b[*at].next_hash)
        if (*at == i) {
            *at = b->next_hash;
            break;
        }
    b->published = false;
}

hn_kv_pool *hn_kv_pool_create(const hn_model *m, int64_t bytes, int block_tokens) {
    const hn_hparams *hp = &m->hp;
    int shift = 0;
    while (shift < 10 && (1 << shift) < block_tokens) shift++;
    if (block_tokens < 1 || (1 << shift) != block_tokens) {
        hn_fail(HN_ERR_ARG, "KV pool: %d tokens per block, expected a power of two from 1 to 1024", block_tokens);
        return NULL;
    }
    int64_t block_floats = (int64_t)hp->n_head_kv * block_tokens * hp->head_dim;
    int64_t per_block = 2 * (int64_t)hp->n_layer * block_floats * (int64_t)sizeof(float);
    int64_t n = bytes / per_block;
    if (n < 2 || n > (1 << 30)) {
        hn_fail(HN_ERR_ARG, "KV pool: %lld MiB holds %lld blocks of %d tokens (%.2f MiB each); expected at least 2",
                (long long)(bytes >> 20), (long long)n, block_tokens, (double)per_block / (1 << 20));
        return NULL;
    }
    hn_kv_pool *p = hn_calloc(1, sizeof *p, "KV pool");
    if (!p) return NULL;
    p->n_layer = hp->n_layer, p->n_blocks = (int)n, p->bs = block_tokens, p->shift = shift;
    p->block_floats = block_floats;
    p->n_buckets = 2 * p->n_blocks + 1;
    size_t half = (size_t)(per_block / 2) * (size_t)n;
    p->k = hn_alloc_aligned(half, "KV pool keys");
    p->v = p->k ? hn_alloc_aligned(half, "KV pool values") : NULL;
    p->b = hn_calloc((size_t)n, sizeof *p->b, "KV pool blocks");
    p->tokens = hn_calloc((size_t)n * block_tokens, sizeof *p->tokens, "KV pool tokens");
    p->buckets = hn_calloc((size_t)p->n_buckets, sizeof *p->buckets, "KV pool hash table");
    if (!p->k || !p->v || !p->b || !p->tokens || !p->buckets) {
        hn_kv_pool_destroy(p);
        return NULL;
    }
    for (int i = 0; i < p->n_buckets; i++) p->buckets[i] = -1;
    p->free_head = p->free_tail = -1;
    for (int32_t i = 0; i < p->n_blocks; i++) free_push(p, i);
    return p;
}

void hn_kv_pool_destroy(hn_kv_pool *p) {
    if (!p) return;
    free(p->k);
    free(p->v);
    free(p->b);
    free(p->tokens);
    free(p->buckets);
    free(p);
}

hn_kv_pool_view hn_kv_pool_view_of(const hn_kv_pool *p) {
    return (hn_kv_pool_view){p->k, p->v, p->n_blocks, p->shift};
}
int hn_kv_pool_blocks(const hn_kv_pool *p) { return p->n_blocks; }
int hn_kv_pool_in_use(const hn_kv_pool *p) { return p->in_use; }
int hn_kv_pool_available(const hn_kv_pool *p) { return p->n_free; }
int hn_kv_pool_block_tokens(const hn_kv_pool *p) { return p->bs; }
int64_t hn_kv_pool_block_bytes(const hn_kv_pool *p) {
    return 2 * p->n_layer * p->block_floats * (int64_t)sizeof(float);
}

int32_t hn_kv_pool_alloc(hn_kv_pool *p) {
    int32_t i = p->free_head;
    if (i < 0) return -1;
    free_remove(p, i);
    unpublish(p, i); // a cached block is forgotten when it is taken
    p->b[i].refs = 1;
    p->in_use++;
    return i;
}

void hn_kv_pool_ref(hn_kv_pool *p, int32_t i) {
    block *b = &p->b[i];
    if (b->on_free) { // a cached block comes back into use
        free_remove(p, i);
        p->in_use++;
    }
    b->refs++;
}

void hn_kv_pool_unref(hn_kv_pool *p, int32_t i) {
    block *b = &p->b[i];
    if (b->refs <= 0) return;
    if (--b->refs == 0) {
        p->in_use--;
        free_push(p, i); // published blocks stay in the hash table until taken
    }
}

int hn_kv_pool_refs(const hn_kv_pool *p, int32_t i) { return p->b[i].refs; }

int32_t hn_kv_pool_copy(hn_kv_pool *p, int32_t from) {
    int32_t to = hn_kv_pool_alloc(p);
    if (to < 0) return -1;
    for (int l = 0; l < p->n_layer; l++) {
        int64_t a = ((int64_t)l * p->n_blocks + from) * p->block_floats,
                z = ((int64_t)l * p->n_blocks + to) * p->block_floats;
        memcpy(p->k + z, p->k + a, (size_t)p->block_floats * sizeof(float));
        memcpy(p->v + z, p->v + a, (size_t)p->block_floats * sizeof(float));
    }
    hn_kv_pool_unref(p, from);
    return to;
}

// FNV-1a over the previous hash, the adapter's identity and the tokens.
uint64_t hn_kv_pool_hash(uint64_t prev, const int32_t *tokens, int n, uint64_t adapter) {
    uint64_t h = 1469598103934665603ull;
    uint64_t words[2] = {prev, adapter};
    const unsigned char *w = (const unsigned char *)words;
    for (size_t i = 0; i < sizeof words; i++) h = (h ^ w[i]) * 1099511628211ull;
    const unsigned char *t = (const unsigned char *)tokens;
    for (size_t i = 0; i < (size_t)n * sizeof *tokens; i++) h = (h ^ t[i]) * 1099511628211ull;
    return h ? h : 1;
}

int32_t hn_kv_pool_lookup(hn_kv_pool *p, uint64_t hash, uint64_t prev, const int32_t *tokens) {
    for (int32_t i = p->buckets[hash % (uint64_t)p->n_buckets]; i >= 0; i = p->b[i].next_hash) {
        const block *b = &p->b[i];
        if (b->hash == hash && b->prev == prev &&
            !memcmp(p->tokens + (int64_t)i * p->bs, tokens, (size_t)p->bs * sizeof *tokens)) {
            hn_kv_pool_ref(p, i);
            return i;
        }
    }
    return -1;
}

void hn_kv_pool_publish(hn_kv_pool *p, int32_t i, uint64_t hash, uint64_t prev, const int32_t *tokens) {
    block *b = &p->b[i];
    if (b->published) return;
    for (int32_t j = p->buckets[hash % (uint64_t)p->n_buckets]; j >= 0; j = p->b[j].next_hash)
        if (p->b[j].hash == hash && p->b[j].prev == prev) return; // the same prefix is cached already
    b->published = true, b->hash = hash, b->prev = prev;
    memcpy(p->tokens + (int64_t)i * p->bs, tokens, (size_t)p->bs * sizeof *tokens);
    int32_t *head = &p->buckets[hash % (uint64_t)p->n_buckets];
    b->next_hash = *head;
    *head = i;
}
