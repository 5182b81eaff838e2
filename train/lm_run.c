// train/lm_run.c — the method side of a language-model run (train/lm_run.h).
#include "train/lm_run.h"

#include "train/lm_objective.h"

#include <stdlib.h>
#include <string.h>

hn_status hn_lm_method_config(const hn_train_config *c, hn_method_config *mc) {
    *mc = hn_method_default_config();
    mc->seed = (uint64_t)c->seed;
    hn_lora_config *lc = &mc->lora;
    lc->r = c->lora.r;
    lc->alpha = (float)c->lora.alpha;
    lc->dropout = (float)c->lora.dropout;
    lc->use_rslora = c->lora.use_rslora;
    lc->seed = (uint64_t)c->seed;
    hn_status s = hn_lora_parse_targets((const char *const *)c->lora.target_modules.items,
                                        c->lora.target_modules.n, &lc->targets);
    if (s && (c->method == HN_METHOD_LORA || c->method == HN_METHOD_DORA)) return s;
    mc->num_virtual_tokens = c->prompt.num_virtual_tokens;
    mc->init_text = c->prompt.init_text;
    mc->encoder_hidden_size = c->prompt.encoder_hidden_size;
    mc->encoder_lstm = c->prompt.encoder == HN_ENCODER_LSTM;
    mc->prefix_projection = c->prompt.projection;
    if (c->ia3.target_modules.n &&
        (s = hn_lora_parse_targets((const char *const *)c->ia3.target_modules.items, c->ia3.target_modules.n,
                                   &mc->ia3_targets)))
        return s;
    if (c->ia3.feedforward_modules.n &&
        (s = hn_lora_parse_targets((const char *const *)c->ia3.feedforward_modules.items,
                                   c->ia3.feedforward_modules.n, &mc->ia3_feedforward)))
        return s;
    mc->adapter_size = c->adapter.size;
    mc->adapter_reduction = c->adapter.reduction_factor;
    mc->adapter_act = hn_adapter_act_names[c->adapter.non_linearity];
    return HN_OK;
}

static hn_status objective(hn_lm_run *r, hn_model *m, hn_param_list *params, const hn_train_config *c) {
    hn_lm_params lp = hn_lm_default_params();
    lp.checkpoint = c && c->grad_checkpointing; // lp.mm: the objective's default (fp32 products, repeatable per
                                                // thread count)
    // Dropout draws from its own stream so that the data order (seeded by c->seed) and A's init stay unchanged.
    lp.seed = (c ? (uint64_t)c->seed : 0) ^ 0x9e3779b97f4a7c15ull;
    hn_status s = hn_lm_objective_init(&r->obj, m, params, &lp);
    if (s) return s;
    r->have_obj = true;
    r->obj.rng = hn_lm_objective_rng(&r->obj); // saved in checkpoints: a resumed run draws the same masks
    return HN_OK;
}

hn_status hn_lm_run_init(hn_lm_run *r, hn_model *m, const hn_train_config *c) {
    memset(r, 0, sizeof *r);
    if (c->method == HN_METHOD_FULL)
        return hn_fail(HN_ERR_UNSUPPORTED, "train: method full is not supported for language-model training yet "
                       "(the LM objective trains attached methods only); use --method lora");
    if (c->lora.init != HN_LORA_INIT_DEFAULT)
        return hn_fail(HN_ERR_UNSUPPORTED, "train: lora.init: only 'default' (PEFT's Kaiming-uniform A, zero B) is "
                       "supported yet");
    const char *name = hn_train_method_names[c->method];
    const hn_method_ops *ops = hn_method_find(name);
    if (!ops) return hn_fail(HN_ERR_UNSUPPORTED, "train: method %s is not in this build (it has %s)", name,
                             hn_method_names());
    hn_method_config mc;
    hn_status s = hn_lm_method_config(c, &mc);
    if (s || (s = ops->attach_new(&r->me, m, &mc))) return s;
    return objective(r, m, hn_method_params(r->me), c);
}

hn_status hn_lm_run_init_base(hn_lm_run *r, hn_model *m) {
    memset(r, 0, sizeof *r);
    return objective(r, m, &r->none, NULL);
}

void hn_lm_run_deinit(hn_lm_run *r) {
    if (r->have_obj) hn_lm_objective_deinit(&r->obj);
    hn_method_destroy(r->me);
    hn_param_list_deinit(&r->none);
    memset(r, 0, sizeof *r);
}

hn_status hn_lm_eval_loss(const hn_objective *o, hn_loader *lv, void (*progress)(void *user, int64_t done,
                          int64_t total), void *user, double *mean) {
    hn_loader_pos start = hn_loader_get_pos(lv);
    int64_t total = progress ? hn_loader_count_batches(lv, 1) : 0, done = 0;
    hn_batch b = {0};
    double sum = 0;
    int64_t n = 0;
    hn_status s = HN_OK;
    if (o->set_training) o->set_training(o->user, false);
    for (bool end = false; !s && !end;) {
        double ls = 0;
        int64_t nl = 0;
        if (!(s = hn_loader_next(lv, &b))) s = o->loss(o->user, &b, &ls, &nl);
        sum += ls, n += nl;
        end = b.epoch_end;
        if (!s && progress) {
            done++;
            progress(user, done, total > done ? total : done);
        }
    }
    if (o->set_training) o->set_training(o->user, true);
    hn_batch_deinit(&b);
    if (!s) s = hn_loader_set_pos(lv, &start);
    *mean = n ? sum / (double)n : 0.0;
    return s;
}

hn_status hn_lm_dataset_append(hn_dataset *dst, hn_dataset *src) {
    if (!dst->ex) {
        hn_dataset_deinit(dst); // an empty one may still hold its path
        *dst = *src;
        memset(src, 0, sizeof *src);
        return HN_OK;
    }
    hn_example *ex = realloc(dst->ex, (size_t)(dst->n + src->n) * sizeof *ex);
    if (!ex) return hn_fail(HN_ERR_NOMEM, "out of memory for the training examples");
    if (src->n) memcpy(ex + dst->n, src->ex, (size_t)src->n * sizeof *ex);
    dst->ex = ex;
    dst->n += src->n;
    dst->n_loaded += src->n_loaded;
    dst->n_truncated += src->n_truncated;
    dst->n_skipped += src->n_skipped;
    dst->n_no_loss += src->n_no_loss;
    dst->n_tokens += src->n_tokens;
    dst->n_loss_tokens += src->n_loss_tokens;
    free(src->ex);
    src->ex = NULL;
    src->n = 0;
    hn_dataset_deinit(src);
    return HN_OK;
}
