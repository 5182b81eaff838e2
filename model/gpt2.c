// model/gpt2.c — GPT-2: learned position embeddings added to the token embeddings, pre-LayerNorm blocks of causal
// multi-head attention (no rotary embedding; q, k, v from one fused linear, c_attn) and a GELU MLP (the tanh
// approximation, gelu_new), a final LayerNorm, and the head tied to the token embedding (unless the file has
// output.weight). Every linear layer has a bias.
//
// GGUF layout is llama.cpp's (conversion/gpt2.py): Hugging Face's Conv1D weights (in, out) are stored transposed,
// so blk.N.attn_qkv.weight has ne = {C, 3C} with output features q | k | v, like any other linear weight.
#include "model/arch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Norm weights and biases are read as plain floats.
static hn_status need_f32(const hn_model *m, const hn_tensor *t) {
    if (t->type == HN_F32) return HN_OK;
    return hn_fail(HN_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; hone expects norm weights and biases in f32", m->path,
                   t->name, hn_dtype_name(t->type));
}

static hn_status gpt2_load(hn_model *m) {
    hn_hparams *hp = &m->hp;
    uint32_t n_layer, n_embd, n_ff, n_head, n_ctx;
    float eps;
    hn_status s;
    if ((s = hn_model_req_u32(m, "gpt2.block_count", &n_layer)) ||
        (s = hn_model_req_u32(m, "gpt2.embedding_length", &n_embd)) ||
        (s = hn_model_req_u32(m, "gpt2.feed_forward_length", &n_ff)) ||
        (s = hn_model_req_u32(m, "gpt2.attention.head_count", &n_head)) ||
        (s = hn_model_req_u32(m, "gpt2.context_length", &n_ctx)) ||
        (s = hn_model_req_f32(m, "gpt2.attention.layer_norm_epsilon", &eps)))
        return s;
    if (n_layer < 1 || n_layer > 4096 || n_embd < 1 || n_embd > 1 << 16 || n_ff < 1 || n_ff > 1 << 18 ||
        n_head < 1 || n_head > n_embd || n_embd % n_head || n_ctx < 1 || n_ctx > 1 << 24)
        return hn_fail(HN_ERR_FORMAT,
                       "%s: implausible sizes: block_count %u, embedding_length %u (a multiple of head_count), "
                       "feed_forward_length %u, head_count %u, context_length %u",
                       m->path, n_layer, n_embd, n_ff, n_head, n_ctx);
    if (!(eps > 0 && eps < 1))
        return hn_fail(HN_ERR_FORMAT, "%s: gpt2.attention.layer_norm_epsilon %g, expected in (0, 1)", m->path,
                       (double)eps);
    const hn_tensor *emb = hn_gguf_tensor(&m->gguf, "token_embd.weight");
    if (!emb) return hn_fail(HN_ERR_FORMAT, "%s: required tensor 'token_embd.weight' is missing", m->path);
    if (emb->ne[1] < 1 || emb->ne[1] > (1 << 24))
        return hn_fail(HN_ERR_FORMAT, "%s: token_embd.weight has %lld rows, expected 1 to %d", m->path,
                       (long long)emb->ne[1], 1 << 24);
    // rope_theta is unused but kept valid: the KV cache and the trainer build a (never read) rotary table from it.
    *hp = (hn_hparams){.arch = HN_ARCH_GPT2, .n_vocab = (int)emb->ne[1], .n_embd = (int)n_embd,
                       .n_layer = (int)n_layer, .n_head = (int)n_head, .n_head_kv = (int)n_head,
                       .head_dim = (int)(n_embd / n_head), .n_ff = (int)n_ff, .n_ctx_train = (int)n_ctx,
                       .rope_theta = 10000.0f, .norm_eps = eps};
    int64_t C = n_embd, F = n_ff, V = hp->n_vocab;

    if ((s = hn_model_tensor(m, "token_embd.weight", C, V, true, &m->tok_embd)) ||
        (s = hn_model_tensor(m, "position_embd.weight", C, n_ctx, true, &m->pos_embd)) ||
        (s = hn_model_tensor(m, "output_norm.weight", C, 0, true, &m->out_norm)) ||
        (s = hn_model_tensor(m, "output_norm.bias", C, 0, true, &m->out_norm_b)) ||
        (s = hn_model_tensor(m, "output.weight", C, V, false, &m->output.w)))
        return s;
    if (!m->output.w) m->output.w = m->tok_embd; // tied head
    m->layers = hn_calloc(n_layer, sizeof *m->layers, "layers");
    if (!m->layers) return HN_ERR_NOMEM;
    if ((s = need_f32(m, m->out_norm)) || (s = need_f32(m, m->out_norm_b))) return s;
    for (uint32_t l = 0; l < n_layer; l++) {
        hn_layer *L = &m->layers[l];
        struct {
            const char *name;
            int64_t in, out;
            const hn_tensor **w, **b;
        } want[] = {
            {"attn_norm", C, 0, &L->attn_norm, &L->attn_norm_b}, {"ffn_norm", C, 0, &L->ffn_norm, &L->ffn_norm_b},
            {"attn_qkv", C, 3 * C, &L->qkv.w, &L->qkv.b},        {"attn_output", C, C, &L->o.w, &L->o.b},
            {"ffn_up", C, F, &L->up.w, &L->up.b},                {"ffn_down", F, C, &L->down.w, &L->down.b},
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%u.%s.weight", l, want[i].name);
            if ((s = hn_model_tensor(m, name, want[i].in, want[i].out, true, want[i].w))) return s;
            snprintf(name, sizeof name, "blk.%u.%s.bias", l, want[i].name);
            if ((s = hn_model_tensor(m, name, want[i].out ? want[i].out : C, 0, true, want[i].b))) return s;
            if ((!want[i].out && (s = need_f32(m, *want[i].w))) || (s = need_f32(m, *want[i].b))) return s;
        }
    }
    return HN_OK;
}

// ---- splitting c_attn's output (N, 3C) into q, k, v (N, C) each: copies, the backward adds them back ----

typedef struct {
    hn_tape_rec rec;
    hn_var *x, *part[3];
} split_rec;

static void split_backward(hn_ctx *c, hn_tape_rec *rec) {
    split_rec *r = (split_rec *)rec;
    int64_t N = r->x->rows, C = r->part[0]->cols;
    float *gx = NULL;
    for (int k = 0; k < 3; k++) {
        const float *gp = r->part[k]->g;
        if (!gp) continue;
        if (!gx && !(gx = hn_var_grad(c, r->x))) return;
        for (int64_t i = 0; i < N; i++) {
            float *dst = gx + i * 3 * C + k * C;
            const float *src = gp + i * C;
            for (int64_t j = 0; j < C; j++) dst[j] += src[j];
        }
    }
}

static bool split3(hn_ctx *c, hn_var *x, hn_var *part[3]) {
    if (!x || c->err) return false;
    int64_t N = x->rows, C = x->cols / 3;
    for (int k = 0; k < 3; k++) {
        if (!(part[k] = hn_var_new(c, N, C))) return false;
        for (int64_t i = 0; i < N; i++) memcpy(part[k]->d + i * C, x->d + i * 3 * C + k * C, (size_t)C * sizeof(float));
        part[k]->rg = x->rg;
    }
    if (hn_grad_on(c, x->rg)) {
        split_rec *r = hn_tape_push(c, split_backward, sizeof *r);
        if (!r) return false;
        r->x = x;
        memcpy(r->part, part, sizeof r->part);
    }
    return true;
}

// One pre-LayerNorm block: x + attn_output(attention(split(c_attn(ln_1(x))))), then x + down(gelu(up(ln_2(x)))).
// Inference (a KV cache, no tape) and training (B rows, a tape) run this same code.
static hn_var *gpt2_block(hn_ctx *c, void *user, hn_var *x) {
    const hn_block_args *a = user;
    const hn_hparams *hp = &a->m->hp;
    const hn_layer *L = &a->m->layers[a->l];

    hn_var *h = hn_op_layernorm(c, x, L->attn_norm->data, L->attn_norm_b->data, L->attn_norm->grad,
                                L->attn_norm_b->grad, hp->norm_eps);
    hn_var *qkv[3];
    if (!split3(c, hn_linear_forward(c, &L->qkv, h), qkv)) return NULL; // (N, 3C) -> 3 x (N, C)
    hn_var *att = hn_arch_attention(c, a, qkv[0], qkv[1], qkv[2], true);
    x = hn_op_add(c, x, hn_linear_forward(c, &L->o, att));

    h = hn_op_layernorm(c, x, L->ffn_norm->data, L->ffn_norm_b->data, L->ffn_norm->grad, L->ffn_norm_b->grad,
                        hp->norm_eps);
    hn_var *g = hn_op_gelu(c, hn_linear_forward(c, &L->up, h), true); // (N, F)
    return hn_op_add(c, x, hn_linear_forward(c, &L->down, g));
}

static hn_var *gpt2_hidden(hn_ctx *c, const hn_model *m, const int32_t *ids, const hn_seq *s0) {
    const hn_hparams *hp = &m->hp;
    hn_seq sv, *s = &sv;
    hn_var *x = hn_op_embed(c, m->tok_embd, m->tok_embd->grad, ids, (int64_t)s0->B * s0->T);
    x = hn_arch_embed(c, m, s0, x, &sv); // virtual tokens (if any) get positions too
    int64_t N = (int64_t)s->B * s->T;
    int32_t *pos = hn_arena_alloc(c->arena, (size_t)N * sizeof *pos), end = 0;
    if (!pos) return hn_op_fail(c, HN_ERR_NOMEM);
    for (int64_t i = 0; i < N; i++) { // a batch's tokens each at their own position
        pos[i] = s->batch ? s->batch->pos[i] : (int32_t)(s->pos0 + i % s->T);
        end = pos[i] + 1 > end ? pos[i] + 1 : end;
    }
    if (end > hp->n_ctx_train)
        return hn_op_fail(c, hn_fail(HN_ERR_RANGE, "%s: %d token positions, but GPT-2 has learned positions for %d "
                                     "(gpt2.context_length): keep sequences within it", m->path, (int)end,
                                     hp->n_ctx_train));
    x = hn_op_add(c, x, hn_op_embed(c, m->pos_embd, m->pos_embd->grad, pos, N));
    x = hn_arch_blocks(c, m, s, gpt2_block, x);
    return hn_op_layernorm(c, x, m->out_norm->data, m->out_norm_b->data, m->out_norm->grad, m->out_norm_b->grad,
                           hp->norm_eps);
}

const hn_arch_impl hn_arch_gpt2 = {.name = "gpt2", .load = gpt2_load, .hidden = gpt2_hidden};
