// model/bert.c — BERT-style encoders (BERT, MiniLM, DistilBERT): the sum of token, learned position and token-type
// embeddings through a LayerNorm, then post-norm blocks: x = LN(x + attention(x)), x = LN(x + MLP(x)), with
// bidirectional attention (padded keys masked per row), biases on every linear layer, and a GELU (erf) MLP. The
// output is the last block's hidden state, one vector per token; sentence pooling is model/embed.c's.
//
// Names and keys are llama.cpp's (general.architecture "bert"): token_embd, position_embd, token_types,
// token_embd_norm, blk.N.attn_q/k/v, attn_output, attn_output_norm, ffn_up, ffn_down, layer_output_norm; a
// DistilBERT maps onto them without token_types. The post-norms sit in hn_layer's attn_norm / ffn_norm (the norm
// of the attention and of the MLP sub-block; applied after the residual, not before).
#include "model/arch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hn_status bert_load(hn_model *m) {
    hn_hparams *hp = &m->hp;
    uint32_t n_layer, n_embd, n_ff, n_head, n_ctx, pooling = 0;
    float eps = 1e-12f;
    hn_status s;
    if ((s = hn_model_req_u32(m, "bert.block_count", &n_layer)) ||
        (s = hn_model_req_u32(m, "bert.embedding_length", &n_embd)) ||
        (s = hn_model_req_u32(m, "bert.feed_forward_length", &n_ff)) ||
        (s = hn_model_req_u32(m, "bert.attention.head_count", &n_head)) ||
        (s = hn_model_req_u32(m, "bert.context_length", &n_ctx)) ||
        (s = hn_model_opt_u32(m, "bert.pooling_type", &pooling)) ||
        (s = hn_model_opt_f32(m, "bert.attention.layer_norm_epsilon", &eps)))
        return s;
    const hn_gguf_kv *causal = hn_gguf_find(&m->gguf, "bert.attention.causal");
    bool is_causal = false;
    if (causal && (s = hn_gguf_get_bool(&m->gguf, "bert.attention.causal", &is_causal))) return s;
    if (is_causal)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: bert.attention.causal is true; hone's BERT encoder is bidirectional",
                       m->path);
    if (n_layer < 1 || n_layer > 4096 || n_embd < 1 || n_embd > 1 << 16 || n_ff < 1 || n_ff > 1 << 18 ||
        n_head < 1 || n_head > n_embd || n_embd % n_head || n_ctx < 1 || n_ctx > 1 << 20)
        return hn_fail(HN_ERR_FORMAT,
                       "%s: implausible sizes: block_count %u, embedding_length %u (must split into head_count %u "
                       "heads), feed_forward_length %u, context_length %u",
                       m->path, n_layer, n_embd, n_head, n_ff, n_ctx);
    if (!(eps > 0 && eps < 1))
        return hn_fail(HN_ERR_FORMAT, "%s: bert.attention.layer_norm_epsilon %g out of range", m->path, (double)eps);
    if (pooling > 3)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: bert.pooling_type %u, expected 0 (none), 1 (mean), 2 (cls) or 3 (last)",
                       m->path, pooling);
    const hn_tensor *emb = hn_gguf_tensor(&m->gguf, "token_embd.weight");
    if (!emb) return hn_fail(HN_ERR_FORMAT, "%s: required tensor 'token_embd.weight' is missing", m->path);
    if (emb->ne[1] < 1 || emb->ne[1] > (1 << 24))
        return hn_fail(HN_ERR_FORMAT, "%s: token_embd.weight has %lld rows, expected 1 to %d", m->path,
                       (long long)emb->ne[1], 1 << 24);
    *hp = (hn_hparams){.arch = HN_ARCH_BERT, .n_vocab = (int)emb->ne[1], .n_embd = (int)n_embd,
                       .n_layer = (int)n_layer, .n_head = (int)n_head, .n_head_kv = (int)n_head,
                       .head_dim = (int)(n_embd / n_head), .n_ff = (int)n_ff, .n_ctx_train = (int)n_ctx,
                       .norm_eps = eps};
    m->pooling = (int)pooling;
    int64_t C = n_embd, F = n_ff, V = hp->n_vocab;
    const hn_tensor *types = hn_gguf_tensor(&m->gguf, "token_types.weight");
    int64_t n_types = types ? types->ne[1] : 0;
    if ((s = hn_model_tensor(m, "token_embd.weight", C, V, true, &m->tok_embd)) ||
        (s = hn_model_tensor(m, "position_embd.weight", C, n_ctx, true, &m->pos_embd)) ||
        (s = hn_model_tensor(m, "token_types.weight", C, n_types ? n_types : 1, false, &m->type_embd)) ||
        (s = hn_model_tensor(m, "token_embd_norm.weight", C, 0, true, &m->embd_norm)) ||
        (s = hn_model_tensor(m, "token_embd_norm.bias", C, 0, true, &m->embd_norm_b)) ||
        (s = hn_model_tensor(m, "cls.weight", C, C, false, &m->pooler.w)) ||
        (s = hn_model_tensor(m, "cls.bias", C, 0, false, &m->pooler.b)))
        return s;
    if (!m->pooler.w != !m->pooler.b || (m->pooler.b && m->pooler.b->type != HN_F32))
        return hn_fail(HN_ERR_FORMAT, "%s: the pooler needs both cls.weight and cls.bias (f32); found %s%s", m->path,
                       m->pooler.w ? "the weight" : "no weight", m->pooler.b ? (m->pooler.b->type == HN_F32 ?
                       ", the bias" : ", a bias that is not f32") : ", no bias");
    m->layers = hn_calloc(n_layer, sizeof *m->layers, "layers");
    if (!m->layers) return HN_ERR_NOMEM;
    for (uint32_t l = 0; l < n_layer; l++) {
        hn_layer *L = &m->layers[l];
        struct {
            const char *name;
            int64_t in, out;
            const hn_tensor **w, **b;
        } want[] = {
            {"attn_q", C, C, &L->q.w, &L->q.b},          {"attn_k", C, C, &L->k.w, &L->k.b},
            {"attn_v", C, C, &L->v.w, &L->v.b},          {"attn_output", C, C, &L->o.w, &L->o.b},
            {"ffn_up", C, F, &L->up.w, &L->up.b},        {"ffn_down", F, C, &L->down.w, &L->down.b},
            {"attn_output_norm", C, 0, &L->attn_norm, &L->attn_norm_b},
            {"layer_output_norm", C, 0, &L->ffn_norm, &L->ffn_norm_b},
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%u.%s.weight", l, want[i].name);
            if ((s = hn_model_tensor(m, name, want[i].in, want[i].out, true, want[i].w))) return s;
            snprintf(name, sizeof name, "blk.%u.%s.bias", l, want[i].name);
            if ((s = hn_model_tensor(m, name, want[i].out ? want[i].out : want[i].in, 0, true, want[i].b))) return s;
        }
    }
    // Norm weights and biases are read as plain floats; so are the linear layers' biases.
    for (uint32_t l = 0; l <= n_layer; l++) {
        const hn_tensor *vecs[10] = {m->embd_norm, m->embd_norm_b};
        if (l < n_layer) {
            const hn_layer *L = &m->layers[l];
            const hn_tensor *v[10] = {L->attn_norm, L->attn_norm_b, L->ffn_norm, L->ffn_norm_b, L->q.b,
                                      L->k.b,       L->v.b,         L->o.b,      L->up.b,       L->down.b};
            memcpy(vecs, v, sizeof v);
        }
        for (int i = 0; i < 10; i++)
            if (vecs[i] && vecs[i]->type != HN_F32)
                return hn_fail(HN_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; hone expects norm weights and biases in f32",
                               m->path, vecs[i]->name, hn_dtype_name(vecs[i]->type));
    }
    return HN_OK;
}

// One post-norm block. Padded keys are masked; padded queries are computed like the others and ignored by pooling.
static hn_var *bert_block(hn_ctx *c, void *user, hn_var *x) {
    const hn_block_args *a = user;
    const hn_hparams *hp = &a->m->hp;
    const hn_layer *L = &a->m->layers[a->l];
    hn_var *q = hn_linear_forward(c, &L->q, x), *k = hn_linear_forward(c, &L->k, x),
           *v = hn_linear_forward(c, &L->v, x);                                         // (N, C)
    hn_var *att = hn_arch_attention(c, a, q, k, v, false);
    x = hn_op_add(c, x, hn_linear_forward(c, &L->o, att));
    x = hn_op_layernorm(c, x, L->attn_norm->data, L->attn_norm_b->data, L->attn_norm->grad, L->attn_norm_b->grad,
                        hp->norm_eps);
    hn_var *h = hn_op_gelu(c, hn_linear_forward(c, &L->up, x), false);                 // (N, F)
    x = hn_op_add(c, x, hn_linear_forward(c, &L->down, h));
    return hn_op_layernorm(c, x, L->ffn_norm->data, L->ffn_norm_b->data, L->ffn_norm->grad, L->ffn_norm_b->grad,
                           hp->norm_eps);
}

static hn_var *bert_hidden(hn_ctx *c, const hn_model *m, const int32_t *ids, const hn_seq *s0) {
    const hn_hparams *hp = &m->hp;
    if (s0->kv)
        return hn_op_fail(c, hn_fail(HN_ERR_UNSUPPORTED, "%s: a BERT encoder runs whole inputs, without a KV cache",
                                     m->path));
    hn_seq sv, *s = &sv;
    hn_var *x = hn_op_embed(c, m->tok_embd, m->tok_embd->grad, ids, (int64_t)s0->B * s0->T);
    x = hn_arch_embed(c, m, s0, x, &sv); // virtual tokens (if any) get positions and a token type too
    int64_t N = (int64_t)s->B * s->T;
    if (s->pos0 + s->T > hp->n_ctx_train)
        return hn_op_fail(c, hn_fail(HN_ERR_RANGE, "%s: input of %d tokens is longer than the %d positions of this "
                                     "encoder", m->path, s->pos0 + s->T, hp->n_ctx_train));
    // Position pos0 + t of each row (pos0: after key/value prefixes, as transformers counts past keys); token type
    // 0 everywhere (single sentences).
    int32_t *pos = hn_arena_alloc(c->arena, (size_t)N * 2 * sizeof *pos);
    if (!pos) return hn_op_fail(c, HN_ERR_NOMEM);
    int32_t *type = pos + N;
    for (int64_t i = 0; i < N; i++) pos[i] = (int32_t)(s->pos0 + i % s->T), type[i] = 0;
    x = hn_op_add(c, x, hn_op_embed(c, m->pos_embd, m->pos_embd->grad, pos, N));
    if (m->type_embd) x = hn_op_add(c, x, hn_op_embed(c, m->type_embd, m->type_embd->grad, type, N));
    x = hn_op_layernorm(c, x, m->embd_norm->data, m->embd_norm_b->data, m->embd_norm->grad, m->embd_norm_b->grad,
                        hp->norm_eps);
    x = hn_arch_blocks(c, m, s, bert_block, x);
    return x;
}

const hn_arch_impl hn_arch_bert = {.name = "bert", .load = bert_load, .hidden = bert_hidden, .encoder = true};
