// model/model.c — loading a model (architecture picked from general.architecture), the KV cache and its step
// buffers, and the forward entry point that checks lengths and splits long inputs into chunks.
#include "io/hf.h"
#include "model/arch.h"
#include "tensor/nf4.h"
#include "tensor/nn.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

// One implementation per hn_arch, found by general.architecture.
static const hn_arch_impl *const arch_table[HN_ARCH_COUNT] = {
    [HN_ARCH_LLAMA] = &hn_arch_llama,
    [HN_ARCH_QWEN2] = &hn_arch_qwen2,
    [HN_ARCH_GPT2] = &hn_arch_gpt2,
    [HN_ARCH_BERT] = &hn_arch_bert,
};

const hn_arch_impl *hn_arch_of(const hn_model *m) { return arch_table[m->hp.arch]; }

hn_model_params hn_model_default_params(void) { return (hn_model_params){.mm_mode = HN_MM_FAST}; }

void hn_model_rope_table(const hn_model *m, float *cs, int n_pos) {
    const hn_hparams *hp = &m->hp;
    hn_rope_params p = {hp->rope_theta, hp->rope_linear > 0 ? hp->rope_linear : 1.0f, hp->rope_freqs};
    hn_rope_table_ex(cs, n_pos, hp->head_dim, &p);
}

static hn_status missing_key(const hn_model *m, const char *key) {
    return hn_fail(HN_ERR_FORMAT, "%s: required metadata key '%s' is missing", m->path, key);
}

hn_status hn_model_req_u32(const hn_model *m, const char *key, uint32_t *out) {
    if (!hn_gguf_find(&m->gguf, key)) return missing_key(m, key);
    return hn_gguf_get_u32(&m->gguf, key, out);
}

hn_status hn_model_opt_u32(const hn_model *m, const char *key, uint32_t *out) {
    return hn_gguf_find(&m->gguf, key) ? hn_gguf_get_u32(&m->gguf, key, out) : HN_OK;
}

hn_status hn_model_req_f32(const hn_model *m, const char *key, float *out) {
    if (!hn_gguf_find(&m->gguf, key)) return missing_key(m, key);
    return hn_gguf_get_f32(&m->gguf, key, out);
}

hn_status hn_model_opt_f32(const hn_model *m, const char *key, float *out) {
    return hn_gguf_find(&m->gguf, key) ? hn_gguf_get_f32(&m->gguf, key, out) : HN_OK;
}

hn_status hn_model_tensor(const hn_model *m, const char *name, int64_t in, int64_t out, bool required,
                          const hn_tensor **t) {
    *t = hn_gguf_tensor(&m->gguf, name);
    if (!*t) {
        if (!required) return HN_OK;
        return hn_fail(HN_ERR_FORMAT, "%s: required tensor '%s' is missing", m->path, name);
    }
    const hn_tensor *w = *t;
    if (w->ne[0] != in || w->ne[1] != (out ? out : 1) || w->ne[2] != 1 || w->ne[3] != 1) {
        if (out)
            return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s' has shape {%lld, %lld, %lld, %lld}, expected {%lld, %lld}",
                           m->path, name, (long long)w->ne[0], (long long)w->ne[1], (long long)w->ne[2],
                           (long long)w->ne[3], (long long)in, (long long)out);
        return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s' has shape {%lld, %lld, %lld, %lld}, expected {%lld}", m->path,
                       name, (long long)w->ne[0], (long long)w->ne[1], (long long)w->ne[2], (long long)w->ne[3],
                       (long long)in);
    }
    size_t rb;
    if (!hn_type_traits_of(w->type) || !hn_row_bytes(w->type, w->ne[0], &rb))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s (%d), which hone cannot compute with",
                       m->path, name, hn_dtype_name(w->type), (int)w->type);
    return HN_OK;
}

// Load-time quantization (hn_model_params.quantize): every 2-D `blk.N.*.weight` (the linear layers of every
// architecture; norms are 1-D) is replaced in the file's tensor table by an NF4 copy before the architecture binds
// its tensors, so the layers see NF4 weights like any other dtype. Embeddings and the output head stay as stored,
// as in QLoRA (bitsandbytes keeps lm_head). The file pages a replaced weight occupied are handed back to the
// kernel, or the original would stay resident beside its copy.
static hn_status quantize_linears(hn_model *m, hn_dtype type) {
    if (type != HN_NF4)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: load-time quantization to %s: expected nf4", m->path,
                       hn_dtype_name(type));
    double before = 0, after = 0;
    int count = 0, kept = 0;
    for (uint64_t i = 0; i < m->gguf.n_tensors; i++) {
        hn_tensor *t = &m->gguf.tensors[i];
        size_t len = strlen(t->name);
        if (strncmp(t->name, "blk.", 4) || len < 7 || strcmp(t->name + len - 7, ".weight") || t->ne[1] < 2 ||
            t->ne[2] != 1 || t->ne[3] != 1 || t->type == HN_NF4)
            continue;
        const hn_type_traits *tt = hn_type_traits_of(t->type);
        if (!tt || !tt->to_f32 || t->ne[0] % HN_NF4_BLOCK) { // NF4 rows are whole 64-blocks: this one stays
            kept++;
            continue;
        }
        hn_tensor q;
        hn_status s = hn_nf4_quantize(&q, t);
        if (s) return s; // those already replaced are freed with the model
        hn_nf4_state st;
        hn_nf4_state_of(&q, &st);
        before += (double)t->nbytes;
        after += (double)st.bytes;
        const uint8_t *map = m->gguf.map.data, *d = t->data;
        if (map && d >= map && d + t->nbytes <= map + m->gguf.map.size) {
            uintptr_t page = 4096, lo = ((uintptr_t)d + page - 1) & ~(page - 1),
                      hi = ((uintptr_t)d + t->nbytes) & ~(page - 1); // whole pages inside the tensor only
            if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
        }
        *t = q;
        count++;
    }
    if (kept)
        hn_warn("nf4: %d linear weights kept as stored (rows not a multiple of %d, or not a float type)", kept,
                HN_NF4_BLOCK);
    hn_info("nf4: %.0f MiB of linear weights -> %.0f MiB (%d tensors)", before / (1 << 20), after / (1 << 20), count);
    return HN_OK;
}

hn_status hn_model_load(hn_model **out, const char *model, const hn_model_params *params) {
    *out = NULL;
    hn_model_params p = params ? *params : hn_model_default_params();
    hn_model *m = hn_calloc(1, sizeof *m, "model");
    if (!m) return HN_ERR_NOMEM;
    m->mm_mode = p.mm_mode;
    hn_status s = hn_model_resolve(model, &m->path);
    if (s) {
        free(m);
        return s;
    }
    if ((s = hn_hf_is_dir(m->path) ? hn_hf_open(&m->gguf, m->path) : hn_gguf_open(&m->gguf, m->path))) {
        free(m->path);
        free(m);
        return s;
    }
    hn_gguf_str arch;
    if (!hn_gguf_find(&m->gguf, "general.architecture")) {
        s = missing_key(m, "general.architecture");
        goto fail;
    }
    if ((s = hn_gguf_get_str(&m->gguf, "general.architecture", &arch))) goto fail;
    int a = 0;
    while (a < HN_ARCH_COUNT && (!arch_table[a] || strlen(arch_table[a]->name) != arch.len ||
                                 memcmp(arch_table[a]->name, arch.str, arch.len)))
        a++;
    if (a == HN_ARCH_COUNT) {
        char known[128] = "";
        for (int i = 0; i < HN_ARCH_COUNT; i++)
            if (arch_table[i])
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", *known ? ", " : "",
                         arch_table[i]->name);
        s = hn_fail(HN_ERR_UNSUPPORTED, "%s: architecture '%.*s' is not supported (hone knows: %s)", m->path,
                    (int)(arch.len > 64 ? 64 : arch.len), arch.str, known);
        goto fail;
    }
    m->hp.arch = (hn_arch)a;
    if (p.quantize && (s = quantize_linears(m, p.quantize))) goto fail;
    if ((s = arch_table[a]->load(m))) goto fail;
    if (hn_hf_is_dir(m->path)) { // tokenizer.json (+ tokenizer_config.json) or vocab.txt
        if (hn_hf_has_tokenizer(m->path)) s = hn_tokenizer_from_hf_dir(&m->tok, m->path);
        else if (!p.allow_no_tokenizer)
            s = hn_fail(HN_ERR_NOTFOUND, "%s: no tokenizer: expected tokenizer.json or vocab.txt", m->path);
        if (s) goto fail;
    } else if ((hn_gguf_find(&m->gguf, "tokenizer.ggml.tokens") || !p.allow_no_tokenizer) &&
               (s = hn_tokenizer_from_gguf(&m->tok, &m->gguf))) {
        goto fail;
    }
    // A Hugging Face directory may pad its embedding past the tokenizer's vocabulary (ids above it never occur);
    // a GGUF has one token per row (hone convert pads the vocabulary as llama.cpp's converter does).
    int n_tok = m->tok ? hn_tokenizer_n_vocab(m->tok) : 0;
    if (m->tok && (hn_hf_is_dir(m->path) ? n_tok > m->hp.n_vocab : n_tok != m->hp.n_vocab)) {
        s = hn_fail(HN_ERR_FORMAT, "%s: the tokenizer has %d tokens but token_embd.weight has %d rows", m->path,
                    (int)hn_tokenizer_n_vocab(m->tok), m->hp.n_vocab);
        goto fail;
    }
    // A file without a template (a base model, an encoder) is not warned about here: the chat users say it when
    // they fall back to ChatML (hn_chat_detect warns about a template it does not recognise).
    if (m->hp.arch != HN_ARCH_BERT && hn_gguf_find(&m->gguf, "tokenizer.chat_template")) {
        m->chat = hn_chat_detect(&m->gguf, &m->default_system);
        hn_gguf_str t;
        m->has_chat = !hn_gguf_get_str(&m->gguf, "tokenizer.chat_template", &t) && hn_chat_known(t.str, t.len);
    }
    *out = m;
    return HN_OK;
fail:
    hn_model_destroy(m);
    return s;
}

static void linear_weights(hn_linear *l, int layer, hn_wrole role, hn_weight_fn fn, void *user) {
    if (l->w) fn(user, &l->w, layer, role);
    if (l->b) fn(user, &l->b, layer, role == HN_W_HEAD ? HN_W_HEAD : HN_W_BIAS);
}

void hn_model_weights(hn_model *m, hn_weight_fn fn, void *user) {
    const hn_tensor **before[] = {&m->tok_embd, &m->pos_embd, &m->type_embd, &m->embd_norm, &m->embd_norm_b};
    const hn_wrole before_role[] = {HN_W_EMBED, HN_W_EMBED, HN_W_EMBED, HN_W_NORM, HN_W_NORM_BIAS};
    for (int i = 0; i < 5; i++)
        if (*before[i]) fn(user, before[i], -1, before_role[i]);
    for (int l = 0; l < m->hp.n_layer; l++) {
        hn_layer *L = &m->layers[l];
        const hn_tensor **norms[] = {&L->attn_norm, &L->attn_norm_b, &L->ffn_norm, &L->ffn_norm_b};
        for (int i = 0; i < 4; i++)
            if (*norms[i]) fn(user, norms[i], l, i % 2 ? HN_W_NORM_BIAS : HN_W_NORM);
        hn_linear *lin[] = {&L->q, &L->k, &L->v, &L->qkv, &L->o, &L->gate, &L->up, &L->down};
        for (int i = 0; i < 8; i++) linear_weights(lin[i], l, HN_W_LINEAR, fn, user);
    }
    if (m->out_norm) fn(user, &m->out_norm, m->hp.n_layer, HN_W_NORM);
    if (m->out_norm_b) fn(user, &m->out_norm_b, m->hp.n_layer, HN_W_NORM_BIAS);
    linear_weights(&m->pooler, m->hp.n_layer, HN_W_LINEAR, fn, user); // BERT's, read by a classification head
    linear_weights(&m->output, m->hp.n_layer, HN_W_HEAD, fn, user);
}

void hn_model_destroy(hn_model *m) {
    if (!m) return;
    if (m->tok) hn_tokenizer_destroy(m->tok);
    free(m->default_system);
    free(m->layers);
    for (uint64_t i = 0; i < m->gguf.n_tensors; i++) hn_nf4_free(&m->gguf.tensors[i]); // no-op for the others
    hn_gguf_close(&m->gguf);
    free(m->path);
    free(m);
}

float *hn_arch_floats(const char *who, const char *what, int64_t n) {
    size_t bytes;
    if (n <= 0 || !hn_mul_ok((size_t)n, sizeof(float), &bytes)) {
        hn_fail(HN_ERR_NOMEM, "%s: %s of %lld floats is too large", who, what, (long long)n);
        return NULL;
    }
    return hn_alloc_aligned(bytes, what);
}

static float *fbuf(int64_t n, const char *what) { return hn_arch_floats("KV cache", what, n); }

hn_kv_cache *hn_kv_cache_create(const hn_model *m, int n_ctx) {
    const hn_hparams *hp = &m->hp;
    if (n_ctx <= 0 || n_ctx > (1 << 24)) {
        hn_fail(HN_ERR_ARG, "KV cache: context of %d tokens, expected 1 to %d", n_ctx, 1 << 24);
        return NULL;
    }
    hn_kv_cache *kv = hn_calloc(1, sizeof *kv, "KV cache");
    if (!kv) return NULL;
    kv->m = m;
    kv->reserve = hn_model_n_virtual(m); // room for the active attachment's virtual positions beside n_ctx
    n_ctx += kv->reserve;
    kv->n_ctx = n_ctx;
    kv->n_batch = n_ctx < 512 ? n_ctx : 512;
    int64_t KD = (int64_t)hp->n_head_kv * hp->head_dim;
    int64_t cache = (int64_t)hp->n_layer * KD * n_ctx;
    kv->n_scratch = omp_get_max_threads() > hn_threads_get() ? omp_get_max_threads() : hn_threads_get();
    if (!(kv->k = fbuf(cache, "keys")) || !(kv->v = fbuf(cache, "values")) ||
        !(kv->rope = fbuf((int64_t)n_ctx * hp->head_dim, "rope table")) ||
        !(kv->logits = fbuf(hp->n_vocab, "logits")) ||
        !(kv->scratch = fbuf((int64_t)kv->n_scratch * n_ctx, "attention scratch"))) {
        hn_kv_cache_destroy(kv);
        return NULL;
    }
    kv->logits_rows = 1;
    hn_model_rope_table(m, kv->rope, n_ctx);
    return kv;
}

void hn_kv_cache_destroy(hn_kv_cache *kv) {
    if (!kv) return;
    float *bufs[] = {kv->k, kv->v, kv->rope, kv->logits, kv->scratch};
    hn_arena_deinit(&kv->arena);
    hn_arena_deinit(&kv->blocks);
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(kv);
}

// The cache's first n_virt entries are the virtual positions of the attachment it began under; callers count
// their own tokens only.
int hn_kv_cache_pos(const hn_kv_cache *kv) { return kv->pos > kv->n_virt ? kv->pos - kv->n_virt : 0; }
int hn_kv_cache_size(const hn_kv_cache *kv) { return kv->n_ctx - (kv->pos ? kv->n_virt : kv->reserve); }

void hn_kv_cache_truncate(hn_kv_cache *kv, int pos) {
    if (pos <= 0) kv->pos = 0; // the virtual positions too: they are put back by the next forward
    else if (pos < hn_kv_cache_pos(kv)) kv->pos = pos + kv->n_virt;
}

// Layer l's entries [t0, t0 + n) between the cache's layout (one head's positions contiguous) and rows (n,
// n_head_kv * head_dim): into the cache when to_cache, out of it otherwise.
static void kv_rows(const hn_kv_cache *kv, int l, int t0, int n, float *k, float *v, bool to_cache) {
    const hn_hparams *hp = &kv->m->hp;
    const int hd = hp->head_dim;
    const int64_t KW = (int64_t)hp->n_head_kv * hd;
    for (int t = 0; t < n; t++)
        for (int h = 0; h < hp->n_head_kv; h++) {
            size_t at = (size_t)(l * KW * kv->n_ctx) + ((size_t)h * kv->n_ctx + t0 + t) * hd;
            float *ck = kv->k + at, *cv = kv->v + at, *rk = k + t * KW + h * hd, *rv = v + t * KW + h * hd;
            memcpy(to_cache ? ck : rk, to_cache ? rk : ck, hd * sizeof(float));
            memcpy(to_cache ? cv : rv, to_cache ? rv : cv, hd * sizeof(float));
        }
}

hn_status hn_kv_cache_read(const hn_kv_cache *kv, int l, float *k, float *v) {
    const hn_hparams *hp = &kv->m->hp;
    if (l < 0 || l >= hp->n_layer) return hn_fail(HN_ERR_ARG, "KV cache: layer %d of %d", l, hp->n_layer);
    int n = hn_kv_cache_pos(kv);
    kv_rows(kv, l, kv->pos - n, n, k, v, false);
    return HN_OK;
}

// Puts the active attachment's key/value prefixes into the cache's first positions (a sequence that starts under
// prefix tuning): they are cached keys and values like any others.
hn_status hn_arch_prefix_kv(hn_ctx *c, const hn_model *m, const hn_model_ext *e, int l, hn_var **k, hn_var **v) {
    const int n = e->n_virtual;
    const int64_t KW = (int64_t)m->hp.n_head_kv * m->hp.head_dim;
    *k = *v = NULL;
    if (!e->attn_kv || !e->attn_kv(c, m, e->state, l, k, v) || !*k || !*v)
        return c->err ? c->err : hn_fail(HN_ERR_ARG, "%s: no key/value prefix for layer %d", e->method, l);
    if ((*k)->rows != n || (*v)->rows != n || (*k)->cols != KW || (*v)->cols != KW)
        return hn_fail(HN_ERR_ARG, "%s: layer %d's prefix is %lld x %lld; expected %d x %lld", e->method, l,
                       (long long)(*k)->rows, (long long)(*k)->cols, n, (long long)KW);
    return HN_OK;
}

void hn_arch_pool_put(const hn_model *m, const hn_kv_pool_view *pool, int l, const int32_t *table, int p,
                      const float *k, const float *v) {
    const int hd = m->hp.head_dim, KVH = m->hp.n_head_kv, shift = pool->block_shift;
    const int64_t bs = (int64_t)1 << shift, block = KVH * bs * hd;
    const int64_t at = (l * pool->n_blocks + table[p >> shift]) * block + (p & (bs - 1)) * hd;
    for (int h = 0; h < KVH; h++) {
        memcpy(pool->k + at + h * bs * hd, k + h * hd, hd * sizeof(float));
        memcpy(pool->v + at + h * bs * hd, v + h * hd, hd * sizeof(float));
    }
}

static hn_status fill_prefix(hn_model *m, hn_kv_cache *kv, const hn_model_ext *e) {
    for (int l = 0; l < m->hp.n_layer; l++) {
        hn_arena_reset(&kv->arena, (hn_arena_mark){0});
        hn_ctx c = {.arena = &kv->arena, .scratch = &kv->blocks, .mm = m->mm_mode};
        hn_var *k, *v;
        hn_status st = hn_arch_prefix_kv(&c, m, e, l, &k, &v);
        if (st) return st;
        kv_rows(kv, l, 0, e->n_virtual, k->d, v->d, true);
    }
    return HN_OK;
}

// Runs T <= kv->n_batch tokens at kv->pos (room already checked) through the architecture's body with the KV cache,
// and the output head over every row when logits covers T rows (`all`), the last row otherwise (logits NULL: no
// head, the chunk only fills the cache). Does not advance kv->pos.
static hn_status decoder_step(hn_model *m, const hn_arch_impl *impl, hn_kv_cache *kv, const int32_t *ids, int T,
                              bool all, float *logits) {
    hn_arena_reset(&kv->arena, (hn_arena_mark){0});
    hn_arena_reset(&kv->blocks, (hn_arena_mark){0});
    hn_ctx c = {.arena = &kv->arena, .scratch = &kv->blocks, .mm = m->mm_mode};
    hn_seq s = {.B = 1, .T = T, .pos0 = kv->pos, .rope = kv->rope, .kv = kv};
    hn_var *h = impl->hidden(&c, m, ids, &s); // (T, C)
    if (!h || !logits) return c.err;
    int64_t C = m->hp.n_embd, first = all ? 0 : T - 1;
    hn_var *rows = hn_var_wrap(&c, h->d + first * C, T - first, C, false);
    hn_var *y = hn_linear_forward(&c, &m->output, rows); // (rows, V)
    if (!y) return c.err;
    memcpy(logits, y->d, (size_t)(y->rows * y->cols) * sizeof(float));
    return HN_OK;
}

hn_status hn_model_forward(hn_model *m, hn_kv_cache *kv, const int32_t *ids, int T, hn_logits_mode mode,
                           float **logits) {
    *logits = NULL;
    if (kv->m != m) return hn_fail(HN_ERR_ARG, "forward: the KV cache belongs to another model");
    if (T <= 0) return hn_fail(HN_ERR_ARG, "forward: no tokens to run (T = %d)", T);
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= m->hp.n_vocab)
            return hn_fail(HN_ERR_RANGE, "forward: token id %d at index %d is outside the vocabulary [0, %d)",
                           (int)ids[t], t, m->hp.n_vocab);
    int64_t V = m->hp.n_vocab, rows = mode == HN_LOGITS_ALL ? T : 1;
    if (rows > kv->logits_rows) {
        float *nl = fbuf(rows * V, "logits");
        if (!nl) return HN_ERR_NOMEM;
        free(kv->logits);
        kv->logits = nl;
        kv->logits_rows = rows;
    }
    const hn_arch_impl *impl = arch_table[m->hp.arch];
    if (impl->encoder)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: a %s encoder has no language-model head to generate with; use hone "
                       "embed", m->path, impl->name);
    // Virtual positions: a sequence that starts under an attachment that puts them gets them first (key/value
    // prefixes straight into the cache, virtual tokens with the first chunk); one that goes on must be under the
    // attachment it started with.
    const hn_model_ext *e;
    hn_status st = hn_model_active_ext(m, &e);
    if (st) return st;
    if (kv->pos == kv->n_virt) kv->pos = 0; // no input tokens yet: start over under whatever is active now
    if (kv->pos && e != kv->virt)
        return hn_fail(HN_ERR_ARG, "forward: the KV cache holds a sequence begun under %s%s, not under %s%s; start "
                       "it again (truncate to 0)", kv->virt ? "the adapter " : "no adapter with virtual positions",
                       kv->virt ? kv->virt->method : "", e ? "the adapter " : "none", e ? e->method : "");
    int n_virt = kv->pos ? kv->n_virt : e ? e->n_virtual : 0, have = kv->pos ? kv->pos - kv->n_virt : 0;
    if (T > kv->n_ctx - n_virt - have) {
        const char *v = n_virt ? " (beside the adapter's virtual positions)" : "";
        if (have)
            return hn_fail(HN_ERR_RANGE, "%d tokens after the %d already in the context exceed its size of %d "
                           "tokens%s", T, have, kv->n_ctx - n_virt, v);
        return hn_fail(HN_ERR_RANGE, "input of %d tokens is longer than the context of %d tokens%s", T,
                       kv->n_ctx - n_virt, v);
    }
    if (!kv->pos) {
        kv->virt = e, kv->n_virt = n_virt;
        if (e && e->attn_kv) {
            if ((st = fill_prefix(m, kv, e))) return st;
            kv->pos = n_virt;
        }
    }
    int pos0 = kv->pos;
    for (int t0 = 0; t0 < T; t0 += kv->n_batch) {
        int n = T - t0 < kv->n_batch ? T - t0 : kv->n_batch;
        bool last_chunk = t0 + n == T;
        // LAST mode needs the head only on the final chunk; earlier chunks just fill the cache.
        float *out = mode == HN_LOGITS_ALL ? kv->logits + (int64_t)t0 * V : last_chunk ? kv->logits : NULL;
        hn_status s = decoder_step(m, impl, kv, ids + t0, n, mode == HN_LOGITS_ALL, out);
        if (s) {
            kv->pos = pos0; // the cache past pos0 may be half written: forget it
            return s;
        }
        kv->pos += n + (kv->pos == 0 && e && e->embed ? e->n_virtual : 0); // the virtual tokens ran with the first
    }
    *logits = kv->logits;
    return HN_OK;
}

hn_var *hn_arch_blocks(hn_ctx *c, const hn_model *m, const hn_seq *s, hn_block_fn fn, hn_var *x) {
    if (!x) return NULL;
    hn_block_args *args = hn_arena_alloc(c->arena, (size_t)m->hp.n_layer * sizeof *args);
    hn_seq *sc = args ? hn_arena_alloc(c->arena, sizeof *sc) : NULL;
    int32_t *lens = sc && s->lens ? hn_arena_alloc(c->arena, (size_t)s->B * sizeof *lens) : NULL;
    if (!sc || (s->lens && !lens)) return hn_op_fail(c, HN_ERR_NOMEM);
    *sc = *s;
    if (lens) memcpy(lens, s->lens, (size_t)s->B * sizeof *lens), sc->lens = lens;
    for (int l = 0; l < m->hp.n_layer && x; l++) {
        args[l] = (hn_block_args){m, sc, l};
        x = s->checkpoint || !c->tape ? hn_op_checkpoint(c, fn, &args[l], x) : hn_op_scope(c, fn, &args[l], x);
    }
    return hn_op_drop_rows(c, x, s->B, s->T, s->n_virt);
}

// s's valid lengths with n virtual positions before each row (in c's arena; NULL with c->err set).
static int32_t *shifted_lens(hn_ctx *c, const hn_seq *s, int n) {
    int32_t *lens = hn_arena_alloc(c->arena, (size_t)s->B * sizeof *lens);
    if (!lens) return hn_op_fail(c, HN_ERR_NOMEM), NULL;
    for (int b = 0; b < s->B; b++) lens[b] = s->lens[b] + n;
    return lens;
}

// A batch's virtual tokens (prompt tuning per sequence): row t's embedding becomes row virt[t] of the embeddings of
// the attachment owned by virt_owner[t]. Without a tape, in place.
static hn_var *batch_virtual(hn_ctx *c, const hn_model *m, const hn_step_batch *b, hn_var *x) {
    const void *owner = NULL;
    hn_var *p = NULL;
    for (int t = 0; t < b->n && x; t++) {
        if (b->virt[t] < 0) continue;
        if (!p || b->virt_owner[t] != owner) {
            owner = b->virt_owner[t];
            const hn_model_ext *e = m->ext;
            while (e && !(e->owner == owner && e->embed)) e = e->next;
            if (!e) return hn_op_fail(c, hn_fail(HN_ERR_ARG, "batch: row %d is a virtual token of no attached "
                                                 "adapter with virtual tokens", t));
            if (!(p = e->embed(c, m, e->state))) return NULL;
        }
        if (b->virt[t] >= p->rows)
            return hn_op_fail(c, hn_fail(HN_ERR_ARG, "batch: virtual token %d of %lld", (int)b->virt[t],
                                         (long long)p->rows));
        memcpy(x->d + (int64_t)t * x->cols, p->d + (int64_t)b->virt[t] * p->cols, (size_t)x->cols * sizeof(float));
    }
    return x;
}

hn_var *hn_arch_embed(hn_ctx *c, const hn_model *m, const hn_seq *s, hn_var *x, hn_seq *out) {
    *out = *s;
    if (s->batch) return x && s->batch->virt ? batch_virtual(c, m, s->batch, x) : x; // the engine places them
    const hn_model_ext *e;
    hn_status st = hn_model_active_ext(m, &e);
    if (st) return hn_op_fail(c, st);
    if (!x || !e || !e->embed || s->pos0) return x;
    const int n = e->n_virtual;
    hn_var *p = e->embed(c, m, e->state);
    if (!p) return c->err ? NULL : hn_op_fail(c, hn_fail(HN_ERR_ARG, "%s: no virtual tokens", e->method));
    if (s->lens && !(out->lens = shifted_lens(c, s, n))) return NULL;
    out->T = s->T + n, out->n_virt = n;
    return hn_op_prepend_rows(c, p, n, x, s->B, s->T);
}

// A batch over the paged pool: every token's key and value go to its position in its sequence's blocks, then each
// query attends to its sequence's positions [0, pos]. Inference only.
static hn_var *paged_attention(hn_ctx *c, const hn_block_args *a, hn_var *q, hn_var *k, hn_var *v) {
    if (!q || !k || !v || c->err) return NULL;
    const hn_hparams *hp = &a->m->hp;
    const hn_seq *s = a->s;
    const hn_step_batch *b = s->batch;
    const hn_kv_pool_view *pool = s->pool;
    const int hd = hp->head_dim, KVH = hp->n_head_kv;
    const int64_t layer = pool->n_blocks * KVH * ((int64_t)1 << pool->block_shift) * hd, KW = (int64_t)KVH * hd;
    hn_var *y = hn_var_new(c, b->n, (int64_t)hp->n_head * hd);
    if (!y) return NULL;
    for (int t = 0; t < b->n; t++)
        hn_arch_pool_put(a->m, pool, a->l, b->tables[t], b->pos[t], k->d + t * KW, v->d + t * KW);
    hn_attention_paged(y->d, q->d, b->n, b->pos, b->tables, pool->k + a->l * layer, pool->v + a->l * layer,
                       pool->block_shift, hp->n_head, KVH, hd, s->att_scratch, s->scratch_stride, s->n_scratch);
    return y;
}

hn_var *hn_arch_attention(hn_ctx *c, const hn_block_args *a, hn_var *q, hn_var *k, hn_var *v, bool causal) {
    const hn_hparams *hp = &a->m->hp;
    const hn_seq *s = a->s;
    const int hd = hp->head_dim, H = hp->n_head, KVH = hp->n_head_kv;
    if (s->batch) return paged_attention(c, a, q, k, v);
    if (s->kv) {
        hn_kv_cache *kv = s->kv;
        int64_t per_layer = (int64_t)KVH * hd * kv->n_ctx;
        hn_kv_slot slot = {kv->k + a->l * per_layer, kv->v + a->l * per_layer, kv->n_ctx, kv->scratch,
                           kv->n_scratch};
        return hn_op_attention(c, q, k, v, s->B, s->T, H, KVH, hd, &slot, s->pos0);
    }
    const hn_model_ext *e = s->prefix;
    if (!e) return hn_op_attention_ex(c, q, k, v, s->B, s->T, H, KVH, hd, causal, s->lens);
    if (!q || !k || !v || c->err) return NULL;
    // The prefixes before each row's keys and values; queries get zero rows there (their outputs are dropped), so
    // that the row's query t sees the prefix and, causally, keys up to t.
    const int n = e->n_virtual;
    hn_var *pk = NULL, *pv = NULL;
    if (!e->attn_kv(c, a->m, e->state, a->l, &pk, &pv) || !pk || !pv)
        return c->err ? NULL : hn_op_fail(c, hn_fail(HN_ERR_ARG, "%s: no prefix for layer %d", e->method, a->l));
    int32_t *lens = s->lens ? shifted_lens(c, s, n) : NULL;
    if (s->lens && !lens) return NULL;
    hn_var *y = hn_op_attention_ex(c, hn_op_prepend_rows(c, NULL, n, q, s->B, s->T),
                                   hn_op_prepend_rows(c, pk, n, k, s->B, s->T),
                                   hn_op_prepend_rows(c, pv, n, v, s->B, s->T), s->B, s->T + n, H, KVH, hd, causal,
                                   lens);
    return hn_op_drop_rows(c, y, s->B, s->T + n, n);
}

hn_var *hn_model_hidden_ex(hn_ctx *c, const hn_model *m, const int32_t *ids, const int32_t *lens, int B, int T,
                           const float *rope, bool checkpoint) {
    if (c->err) return NULL;
    if (B <= 0 || T <= 0) return hn_op_fail(c, hn_fail(HN_ERR_ARG, "hidden: %d rows of %d tokens", B, T));
    hn_seq s = {.B = B, .T = T, .pos0 = 0, .rope = rope, .kv = NULL, .checkpoint = checkpoint, .lens = lens};
    const hn_model_ext *e;
    hn_status st = hn_model_active_ext(m, &e);
    if (st) return hn_op_fail(c, st);
    if (e) { // virtual positions: the input starts after them, so the caller's table (T positions) is too short
        float *cs = hn_arena_alloc(c->arena, (size_t)(T + e->n_virtual) * m->hp.head_dim * sizeof *cs);
        if (!cs) return hn_op_fail(c, HN_ERR_NOMEM);
        hn_model_rope_table(m, cs, T + e->n_virtual);
        s.rope = cs;
        if (e->attn_kv) s.prefix = e, s.pos0 = e->n_virtual;
    }
    return arch_table[m->hp.arch]->hidden(c, m, ids, &s);
}

hn_var *hn_model_hidden(hn_ctx *c, const hn_model *m, const int32_t *ids, int B, int T, const float *rope,
                        bool checkpoint) {
    return hn_model_hidden_ex(c, m, ids, NULL, B, T, rope, checkpoint);
}
