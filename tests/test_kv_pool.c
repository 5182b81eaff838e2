// tests/test_kv_pool.c — the paged KV cache's blocks (serve/kv_pool.h) without a model's weights: allocation to
// exhaustion, reference counts, copy-on-write copies of every layer, the prefix cache (publish, lookup, a cached
// block revived, the least recently freed block taken first, a cached block forgotten when taken), the hash's
// inputs, and refused sizes.
#include "serve/kv_pool.h"
#include "test.h"

#include <string.h>

int main(void) {
    hn_model m = {0};
    m.hp.n_layer = 3, m.hp.n_head_kv = 2, m.hp.head_dim = 4;
    const int bs = 4;
    const int64_t per_block = 2LL * 3 * 2 * bs * 4 * (int64_t)sizeof(float); // k and v, every layer
    hn_kv_pool *p = hn_kv_pool_create(&m, per_block * 4 + per_block / 2, bs);
    CHECK(p != NULL, "create: %s", hn_errmsg());
    if (!p) return test_done();
    CHECK(hn_kv_pool_blocks(p) == 4 && hn_kv_pool_available(p) == 4 && hn_kv_pool_block_bytes(p) == per_block,
          "4 blocks of %lld bytes", (long long)per_block);

    int32_t b[5];
    for (int i = 0; i < 5; i++) b[i] = hn_kv_pool_alloc(p);
    CHECK(b[0] >= 0 && b[1] >= 0 && b[2] >= 0 && b[3] >= 0 && b[4] == -1, "four blocks, then none");
    CHECK(b[0] != b[1] && b[1] != b[2] && b[2] != b[3] && b[0] != b[3], "distinct blocks");
    CHECK(hn_kv_pool_in_use(p) == 4 && hn_kv_pool_available(p) == 0, "all in use");

    // Copy-on-write: b[0] shared by two, one of them copies it: the copy holds every layer's keys and values.
    hn_kv_pool_view v = hn_kv_pool_view_of(p);
    const int64_t bf = 2 * bs * 4; // one layer's block: n_head_kv * bs * head_dim
    for (int l = 0; l < 3; l++)
        for (int64_t i = 0; i < bf; i++) {
            v.k[((int64_t)l * 4 + b[0]) * bf + i] = (float)(l * 1000 + i);
            v.v[((int64_t)l * 4 + b[0]) * bf + i] = (float)(-l * 1000 - i);
        }
    hn_kv_pool_ref(p, b[0]);
    CHECK(hn_kv_pool_refs(p, b[0]) == 2, "two references");
    CHECK(hn_kv_pool_copy(p, b[0]) == -1 && hn_kv_pool_refs(p, b[0]) == 2, "no block left to copy into");
    hn_kv_pool_unref(p, b[3]);
    int32_t c = hn_kv_pool_copy(p, b[0]);
    CHECK(c == b[3] && hn_kv_pool_refs(p, b[0]) == 1 && hn_kv_pool_refs(p, c) == 1, "copy into the freed block");
    bool same = true;
    for (int l = 0; l < 3; l++)
        same &= !memcmp(v.k + ((int64_t)l * 4 + c) * bf, v.k + ((int64_t)l * 4 + b[0]) * bf, bf * sizeof(float)) &&
                !memcmp(v.v + ((int64_t)l * 4 + c) * bf, v.v + ((int64_t)l * 4 + b[0]) * bf, bf * sizeof(float));
    CHECK(same, "the copy holds every layer's keys and values");

    // The prefix cache: a published block, freed, is found again by its tokens and previous hash; another adapter
    // or another previous block does not find it.
    int32_t toks[4] = {5, 6, 7, 8}, other[4] = {5, 6, 7, 9};
    uint64_t h = hn_kv_pool_hash(0, toks, bs, 0);
    CHECK(h == hn_kv_pool_hash(0, toks, bs, 0) && h != hn_kv_pool_hash(0, toks, bs, 1) &&
          h != hn_kv_pool_hash(h, toks, bs, 0) && h != hn_kv_pool_hash(0, other, bs, 0), "the hash's inputs");
    hn_kv_pool_publish(p, b[1], h, 0, toks);
    hn_kv_pool_unref(p, b[1]);
    CHECK(hn_kv_pool_available(p) == 1 && hn_kv_pool_in_use(p) == 3, "a cached block is available");
    CHECK(hn_kv_pool_lookup(p, hn_kv_pool_hash(0, toks, bs, 1), 0, toks) == -1, "another adapter's hash: no hit");
    CHECK(hn_kv_pool_lookup(p, h, 0, other) == -1, "other tokens under the same hash: no hit");
    CHECK(hn_kv_pool_lookup(p, h, 0, toks) == b[1] && hn_kv_pool_refs(p, b[1]) == 1 && hn_kv_pool_in_use(p) == 4,
          "the cached block comes back into use");

    // Least recently freed first; taking a cached block forgets it.
    hn_kv_pool_unref(p, b[2]); // freed first
    hn_kv_pool_unref(p, b[1]); // cached, freed second
    CHECK(hn_kv_pool_alloc(p) == b[2], "the least recently freed block is taken first");
    CHECK(hn_kv_pool_alloc(p) == b[1], "then the cached one");
    CHECK(hn_kv_pool_lookup(p, h, 0, toks) == -1, "a cached block taken for other use is forgotten");

    hn_kv_pool_destroy(p);
    CHECK(!hn_kv_pool_create(&m, per_block * 4, 3) && strstr(hn_errmsg(), "power of two"), "block of 3: %s",
          hn_errmsg());
    CHECK(!hn_kv_pool_create(&m, per_block, bs) && strstr(hn_errmsg(), "at least 2"), "one block: %s", hn_errmsg());
    return test_done();
}
