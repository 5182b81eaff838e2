// train/trainer.c — the training loop (train/trainer.h).
#include "train/trainer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const hn_objective *obj;
    hn_loader *train, *val;
    const hn_train_config *c;
    const hn_train_hooks *h;
    hn_adamw opt;
    hn_lr_schedule sched;
    hn_batch *mb; // (grad_accum) the micro-batches of a step
    hn_batch vb;  // validation batches
    char *metrics_path, *ckpt_dir, *yaml;
    int metrics_fd;
    hn_ckpt_state st;
    hn_loader_pos val_start;
} run;

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = hn_alloc(n, "a path");
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool exists(const char *dir, const char *name) {
    char *p = join(dir, name);
    struct stat sb;
    bool yes = p && stat(p, &sb) == 0 && sb.st_size > 0;
    free(p);
    return yes;
}

// Batches per epoch can differ between epochs when packing: each epoch counted on its own.
int64_t hn_train_total_steps(const hn_loader *train, const hn_train_config *c) {
    if (c->max_steps > 0) return c->max_steps;
    int64_t total = 0, before = 0, ga = c->grad_accum > 0 ? c->grad_accum : 1;
    for (int e = 1; e <= c->epochs; e++) {
        int64_t upto = hn_loader_count_batches(train, e);
        if (upto < 0) return -1;
        total += (upto - before + ga - 1) / ga;
        before = upto;
    }
    return total;
}

// ---- resuming: which keys may change between a run and its continuation

static void strip_free_keys(hn_train_config *x, bool keep_eval) {
    x->resume = false;
    x->threads = 0;
    x->log_every = x->save_every = 1;
    if (!keep_eval) x->eval_every = 0;
    free(x->output_dir);
    x->output_dir = NULL;
}

static void key_value(const hn_train_config *c, const hn_cfg_key *k, char *buf, size_t cap) {
    const void *p = (const char *)c + k->offset;
    switch (k->type) {
    case HN_CFG_INT: snprintf(buf, cap, "%d", *(const int *)p); break;
    case HN_CFG_FLOAT: snprintf(buf, cap, "%g", *(const double *)p); break;
    case HN_CFG_BOOL: snprintf(buf, cap, "%s", *(const bool *)p ? "true" : "false"); break;
    case HN_CFG_ENUM: snprintf(buf, cap, "%s", k->choices[*(const int *)p]); break;
    case HN_CFG_STRING: snprintf(buf, cap, "%s", *(char *const *)p ? *(char *const *)p : "(unset)"); break;
    default: snprintf(buf, cap, "another list"); break;
    }
}

static hn_status check_same_config(const char *yaml, const hn_train_config *now, const char *ckpt_dir) {
    hn_train_config was, cur;
    hn_train_config_init(&was);
    hn_status s = hn_train_config_load_text(&was, yaml, strlen(yaml), "the checkpoint's configuration", "/");
    if (s) {
        hn_train_config_deinit(&was);
        return hn_fail(HN_ERR_FORMAT, "%s/state.bin: %s", ckpt_dir, hn_errmsg());
    }
    s = hn_train_config_copy(&cur, now);
    if (s) {
        hn_train_config_deinit(&was);
        return s;
    }
    if (was.threads != cur.threads)
        hn_warn("resuming with threads %d where the run had %d: the losses may differ from an uninterrupted run's "
                "in the last bits",
                cur.threads, was.threads);
    // eval_every decides when early stopping looks, so it matters when early stopping is on.
    bool keep_eval = was.early_stopping_patience > 0 || cur.early_stopping_patience > 0;
    strip_free_keys(&was, keep_eval);
    strip_free_keys(&cur, keep_eval);
    const char *key = hn_train_config_diff(&was, &cur);
    if (key) {
        const hn_cfg_key *k = hn_train_key_find(key);
        char a[256] = "", b[256] = "";
        if (k) key_value(&was, k, a, sizeof a), key_value(&cur, k, b, sizeof b);
        s = hn_fail(HN_ERR_ARG,
                    "cannot resume: %s differs from the checkpoint's run (%s there, %s now); resume with the run's "
                    "configuration (its config.yaml) or start a new run in another directory",
                    key, a, b);
    }
    hn_train_config_deinit(&was);
    hn_train_config_deinit(&cur);
    return s;
}

// ---- one run

static hn_status evaluate(run *r, double *out) {
    const hn_objective *o = r->obj;
    if (o->set_training) o->set_training(o->user, false);
    hn_status s = hn_loader_set_pos(r->val, &r->val_start);
    double sum = 0;
    int64_t n = 0;
    for (bool end = false; !s && !end;) {
        s = hn_loader_next(r->val, &r->vb);
        double ls = 0;
        int64_t nl = 0;
        if (!s) s = o->loss(o->user, &r->vb, &ls, &nl);
        sum += ls;
        n += nl;
        end = r->vb.epoch_end;
    }
    if (o->set_training) o->set_training(o->user, true);
    *out = n ? sum / (double)n : NAN;
    return s;
}

static hn_status write_line(run *r, const hn_train_progress *p) {
    char line[1024];
    size_t n = hn_metrics_line(p, r->st.tokens, line, sizeof line);
    // One write: a crash leaves whole lines (a partial one is dropped on resume).
    ssize_t w = n ? write(r->metrics_fd, line, n) : -1;
    if (w != (ssize_t)n) return hn_fail(HN_ERR_IO, "%s: write failed: %s", r->metrics_path, strerror(errno));
    return HN_OK;
}

static hn_status save(run *r) {
    r->st.config_yaml = r->yaml;
    r->st.pos = hn_loader_get_pos(r->train);
    r->st.has_rng = r->obj->rng != NULL;
    if (r->obj->rng) r->st.rng = *r->obj->rng;
    return hn_ckpt_save(r->ckpt_dir, r->obj->params, &r->opt, &r->st);
}

static hn_status start(run *r) {
    const hn_train_config *c = r->c;
    if (!c->output_dir) return hn_fail(HN_ERR_ARG, "no output_dir given for the run");
    if (c->early_stopping_patience > 0 && (!r->val || c->eval_every == 0))
        return hn_fail(HN_ERR_ARG, "early_stopping_patience needs validation data and eval_every > 0");
    if (c->eval_every > 0 && !r->val) hn_warn("eval_every is set but there is no validation data: no evaluation");
    hn_status s = hn_mkdir_p(c->output_dir);
    if (s) return s;
    r->metrics_path = join(c->output_dir, "metrics.jsonl");
    r->ckpt_dir = join(c->output_dir, "checkpoint");
    r->yaml = hn_train_config_to_yaml(c);
    if (!r->metrics_path || !r->ckpt_dir || !r->yaml) return hn_fail(HN_ERR_NOMEM, "out of memory");
    hn_adamw_params ap = {c->adam_beta1, c->adam_beta2, c->adam_epsilon, c->weight_decay};
    s = hn_adamw_init(&r->opt, r->obj->params, &ap);
    if (s) return s;
    r->st.best_val = NAN;
    if (c->resume) {
        hn_ckpt_state st;
        s = hn_ckpt_load(r->ckpt_dir, r->obj->params, &r->opt, &st);
        if (s == HN_ERR_NOTFOUND)
            return hn_fail(HN_ERR_NOTFOUND, "cannot resume: %s holds no checkpoint (%s)", c->output_dir, hn_errmsg());
        if (s) return s;
        s = check_same_config(st.config_yaml, c, r->ckpt_dir);
        free(st.config_yaml);
        st.config_yaml = NULL;
        if (s) return s;
        if (st.has_rng != (r->obj->rng != NULL))
            return hn_fail(HN_ERR_FORMAT, "%s/state.bin: the checkpoint %s a dropout rng state, the objective %s one",
                           r->ckpt_dir, st.has_rng ? "holds" : "lacks", r->obj->rng ? "has" : "has none");
        if (r->obj->rng) *r->obj->rng = st.rng;
        s = hn_loader_set_pos(r->train, &st.pos);
        if (s) return hn_fail(s, "%s/state.bin: the data position does not fit the data (%s)", r->ckpt_dir, hn_errmsg());
        r->st = st;
        s = hn_metrics_truncate(r->metrics_path, st.step);
        if (s) return s;
    } else {
        if (exists(c->output_dir, "checkpoint/state.bin") || exists(c->output_dir, "metrics.jsonl"))
            return hn_fail(HN_ERR_ARG,
                           "%s already holds a training run: resume it (--resume) or choose another output "
                           "directory",
                           c->output_dir);
        char *p = join(c->output_dir, "config.yaml");
        if (!p) return HN_ERR_NOMEM;
        hn_afile f;
        s = hn_afile_open(&f, p);
        free(p);
        if (!s) s = hn_afile_write(&f, r->yaml, strlen(r->yaml));
        s = s ? (hn_afile_abort(&f), s) : hn_afile_commit(&f);
        if (s) return s;
    }
    r->metrics_fd = open(r->metrics_path, O_WRONLY | O_APPEND | O_CREAT | (c->resume ? 0 : O_TRUNC), 0666);
    if (r->metrics_fd < 0) return hn_fail(HN_ERR_IO, "%s: cannot open: %s", r->metrics_path, strerror(errno));
    if (r->val) r->val_start = hn_loader_get_pos(r->val);
    r->mb = hn_calloc((size_t)(c->grad_accum > 0 ? c->grad_accum : 1), sizeof *r->mb, "the step's batches");
    return r->mb ? HN_OK : HN_ERR_NOMEM;
}

// Draws the step's micro-batches (grad_accum of them, or up to the epoch's end) and accumulates their gradients.
static hn_status forward_backward(run *r, int64_t step, double *loss, int64_t *tokens, int64_t *epoch) {
    const hn_objective *o = r->obj;
    int ga = r->c->grad_accum > 0 ? r->c->grad_accum : 1, n = 0;
    int64_t n_loss = 0;
    *tokens = 0;
    do {
        hn_status s = hn_loader_next(r->train, &r->mb[n]);
        if (s) return s;
        n_loss += r->mb[n].n_loss;
        *tokens += r->mb[n].n_tokens;
        *epoch = r->mb[n].epoch;
        n++;
    } while (n < ga && !r->mb[n - 1].epoch_end);
    hn_param_zero_grads(o->params);
    float scale = n_loss ? 1.0f / (float)n_loss : 0.0f;
    double sum = 0;
    int64_t counted = 0;
    for (int i = 0; i < n; i++) {
        double ls = 0;
        int64_t nl = 0;
        hn_status s = o->loss_grad(o->user, &r->mb[i], scale, &ls, &nl);
        if (s) return hn_fail(s, "step %lld: %s", (long long)step + 1, hn_errmsg());
        sum += ls;
        counted += nl;
    }
    *loss = counted ? sum / (double)counted : 0.0;
    return HN_OK;
}

static hn_status loop(run *r, hn_train_result *res) {
    const hn_train_config *c = r->c;
    const hn_param_list *params = r->obj->params;
    int64_t total = hn_train_total_steps(r->train, c);
    if (total < 0) return hn_fail(HN_ERR_NOMEM, "out of memory counting the run's steps");
    r->sched = (hn_lr_schedule){c->lr_scheduler, c->lr, hn_warmup_steps(c->warmup_steps, c->warmup_ratio, total),
                                total};
    res->total = total;
    res->start_step = res->step = r->st.step;
    res->best_val_loss = r->st.best_val;
    if (r->obj->set_training) r->obj->set_training(r->obj->user, true);
    double t0 = hn_now();
    while (r->st.step < total) {
        double ts = hn_now();
        hn_train_progress p = {.total = total, .val_loss = NAN, .log_every = c->log_every};
        int64_t tokens;
        hn_status s = forward_backward(r, r->st.step, &p.loss, &tokens, &p.epoch);
        if (s) return s;
        p.grad_norm = hn_grad_clip(params, c->max_grad_norm);
        p.lr = hn_lr_at(&r->sched, r->st.step);
        if (!isfinite(p.loss) || !isfinite(p.grad_norm)) {
            const char *what = !isfinite(p.loss) ? "loss" : "gradient norm";
            double v = !isfinite(p.loss) ? p.loss : p.grad_norm;
            if (c->nan_policy == HN_NAN_STOP)
                return hn_fail(HN_ERR_RANGE,
                               "step %lld: the %s is %s; training stopped (nan_policy: skip skips such steps; a "
                               "lower lr or max_grad_norm may help)",
                               (long long)r->st.step + 1, what, isnan(v) ? "NaN" : "infinite");
            hn_param_zero_grads(params);
            p.skipped = true;
            r->st.n_skipped++;
            hn_warn("step %lld: the %s is %s: step skipped (%lld so far)", (long long)r->st.step + 1, what,
                    isnan(v) ? "NaN" : "infinite", (long long)r->st.n_skipped);
        } else {
            hn_adamw_step(&r->opt, p.lr);
        }
        r->st.step++;
        r->st.tokens += tokens;
        double now = hn_now();
        p.step = r->st.step;
        p.tokens_per_s = now > ts ? (double)tokens / (now - ts) : 0;
        p.elapsed_s = now - t0;
        p.eta_s = p.elapsed_s / (double)(r->st.step - res->start_step) * (double)(total - r->st.step);
        bool early = false;
        bool interrupted = r->h && r->h->stop && *r->h->stop;
        if (r->val && !interrupted && ((c->eval_every > 0 && r->st.step % c->eval_every == 0) || r->st.step == total)) {
            s = evaluate(r, &p.val_loss);
            if (s) return hn_fail(s, "step %lld: validation: %s", (long long)r->st.step, hn_errmsg());
            // Early stopping as transformers' EarlyStoppingCallback with threshold 0: strictly lower is better.
            if (isnan(r->st.best_val) || p.val_loss < r->st.best_val) {
                r->st.best_val = p.val_loss;
                r->st.bad_evals = 0;
            } else {
                r->st.bad_evals++;
            }
            early = c->early_stopping_patience > 0 && r->st.bad_evals >= c->early_stopping_patience;
            res->val_loss = p.val_loss;
            res->best_val_loss = r->st.best_val;
        }
        p.last = r->st.step == total || early || interrupted;
        res->step = r->st.step;
        res->loss = p.skipped ? NAN : p.loss;
        if ((s = write_line(r, &p))) return s;
        if (r->h && r->h->progress) r->h->progress(&p, r->h->user);
        bool periodic = c->save_every > 0 && (r->st.step % c->save_every == 0 || p.last);
        if ((periodic || interrupted) && (s = save(r))) return s;
        if (early) res->end = HN_TRAIN_EARLY_STOPPED;
        if (interrupted) res->end = HN_TRAIN_INTERRUPTED;
        if (early || interrupted) break;
    }
    res->n_skipped = r->st.n_skipped;
    res->tokens = r->st.tokens;
    return HN_OK;
}

hn_status hn_train(const hn_objective *obj, hn_loader *train, hn_loader *val, const hn_train_config *c,
                   const hn_train_hooks *h, hn_train_result *res) {
    hn_train_result dummy;
    if (!res) res = &dummy;
    *res = (hn_train_result){.end = HN_TRAIN_COMPLETED, .loss = NAN, .val_loss = NAN, .best_val_loss = NAN};
    run r = {.obj = obj, .train = train, .val = val, .c = c, .h = h, .metrics_fd = -1};
    hn_status s = start(&r);
    if (!s) s = loop(&r, res);
    if (r.metrics_fd >= 0 && close(r.metrics_fd) != 0 && !s)
        s = hn_fail(HN_ERR_IO, "%s: close failed: %s", r.metrics_path, strerror(errno));
    for (int i = 0; r.mb && i < (c->grad_accum > 0 ? c->grad_accum : 1); i++) hn_batch_deinit(&r.mb[i]);
    free(r.mb);
    hn_batch_deinit(&r.vb);
    hn_adamw_deinit(&r.opt);
    free(r.metrics_path);
    free(r.ckpt_dir);
    free(r.yaml);
    return s;
}
