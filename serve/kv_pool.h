// serve/kv_pool.h — the paged KV cache's memory (vLLM's PagedAttention pool): one allocation of fixed-size blocks,
// each holding block_tokens positions of keys and values for every layer. A sequence owns a table of block ids; a
// block is shared by reference count (a common prompt prefix between requests, the n samples of one request) and
// copied before a sharer writes into it (copy-on-write). A full block can be published under the hash of the
// tokens up to its end (and the adapter that computed it), so a later prompt that starts the same way takes it
// instead of recomputing it; a published block whose last user has gone stays cached until the pool needs it
// back (least recently freed first).
//
//   hn_kv_pool *p = hn_kv_pool_create(m, 256 << 20, 16);
//   int32_t b = hn_kv_pool_alloc(p);               // -1 when every block is in use
//   ... hn_kv_pool_view_of(p) goes to hn_model_forward_batch ...
//   hn_kv_pool_unref(p, b);                        // back to the pool at refs 0
#ifndef HN_KV_POOL_H
#define HN_KV_POOL_H

#include "model/model.h"

typedef struct hn_kv_pool hn_kv_pool;

// As many blocks of block_tokens (a power of two, 1..1024) positions as fit in bytes (at least 2). NULL +
// hn_errmsg on failure.
hn_kv_pool *hn_kv_pool_create(const hn_model *m, int64_t bytes, int block_tokens);
void hn_kv_pool_destroy(hn_kv_pool *p);
hn_kv_pool_view hn_kv_pool_view_of(const hn_kv_pool *p);
int hn_kv_pool_blocks(const hn_kv_pool *p);       // all of them
int hn_kv_pool_in_use(const hn_kv_pool *p);       // with refs > 0
int hn_kv_pool_available(const hn_kv_pool *p);    // free or cached (refs 0)
int hn_kv_pool_block_tokens(const hn_kv_pool *p);
int64_t hn_kv_pool_block_bytes(const hn_kv_pool *p);

// A block with refs 1 (a cached one is forgotten to make it), -1 when none is left.
int32_t hn_kv_pool_alloc(hn_kv_pool *p);
void hn_kv_pool_ref(hn_kv_pool *p, int32_t b);
void hn_kv_pool_unref(hn_kv_pool *p, int32_t b);
int hn_kv_pool_refs(const hn_kv_pool *p, int32_t b);
// A new block (refs 1) holding b's keys and values (every layer); b loses the caller's reference. -1 when none is
// left (b untouched).
int32_t hn_kv_pool_copy(hn_kv_pool *p, int32_t b);

// The prefix cache. The hash of a block's tokens after the hash of everything before it (0 for the first block),
// computed under an adapter (its id, never reused; 0: the base).
uint64_t hn_kv_pool_hash(uint64_t prev, const int32_t *tokens, int n, uint64_t adapter);
// The block published under hash whose tokens and previous hash are these, with one more reference; -1 if none.
int32_t hn_kv_pool_lookup(hn_kv_pool *p, uint64_t hash, uint64_t prev, const int32_t *tokens);
// Publishes full block b (its keys and values final) under hash; a block already published under it stays.
void hn_kv_pool_publish(hn_kv_pool *p, int32_t b, uint64_t hash, uint64_t prev, const int32_t *tokens);

#endif
