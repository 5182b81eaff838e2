// serve/engine_jobs.c — requests and their events: a request is checked and queued as a job whose first sequence
// waits for the engine thread; the engine pushes text and done events into the job (its own lock), and the caller
// pulls them (hn_job_next), cancels or frees the job from any thread. A job lives until both sides let go.
#include "serve/engine_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

hn_request hn_request_default(void) {
    hn_request r = {.n = 1, .max_tokens = 16, .sp = hn_sampler_default_params()};
    r.sp.temp = 0;
    return r;
}

const char *hn_finish_name(hn_finish f) {
    static const char *const names[] = {"", "stop", "length", "cancelled", "error"};
    return (unsigned)f < sizeof names / sizeof names[0] ? names[f] : "?";
}


// ---- jobs: events from the engine thread to the caller

void hn_job_destroy(hn_job *j) {
    for (event_node *n = j->head, *next; n; n = next) {
        next = n->next;
        free(n->text);
        free(n);
    }
    free(j->cur);
    free(j->prompt);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->stop);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

// Queues an event (text copied). A failed allocation drops text, never a done event's bookkeeping.
void hn_job_push(hn_job *j, const hn_event *ev, const char *text, size_t len) {
    event_node *n = calloc(1, sizeof *n);
    char *t = len ? malloc(len) : NULL;
    pthread_mutex_lock(&j->mu);
    if (n) {
        n->ev = *ev;
        if (t) memcpy(t, text, len), n->text = t, n->ev.len = len;
        else n->ev.len = 0;
        if (j->tail) j->tail->next = n;
        else j->head = n;
        j->tail = n;
    } else {
        free(t);
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

// The engine is done with j: it is freed now if its caller has let go, else by hn_job_free.
void hn_job_release(hn_job *j) {
    pthread_mutex_lock(&j->mu);
    j->engine_done = true;
    bool gone = j->user_gone;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (gone) hn_job_destroy(j);
}

bool hn_job_next(hn_job *j, hn_event *ev, double timeout_s) {
    pthread_mutex_lock(&j->mu);
    double until = hn_now() + timeout_s;
    while (!j->head && !j->delivered_last && !j->engine_done) {
        if (timeout_s < 0) {
            pthread_cond_wait(&j->cv, &j->mu);
            continue;
        }
        double left = until - hn_now();
        if (left <= 0) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double s = (double)ts.tv_sec + ts.tv_nsec * 1e-9 + left;
        ts.tv_sec = (time_t)s, ts.tv_nsec = (long)((s - (double)(time_t)s) * 1e9);
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
    event_node *n = j->head;
    if (!n || j->delivered_last) {
        pthread_mutex_unlock(&j->mu);
        return false;
    }
    j->head = n->next;
    if (!j->head) j->tail = NULL;
    free(j->cur);
    j->cur = n->text;
    *ev = n->ev;
    ev->text = j->cur ? j->cur : "";
    if (ev->last) j->delivered_last = true;
    pthread_mutex_unlock(&j->mu);
    free(n);
    return true;
}

void hn_job_cancel(hn_job *j) { atomic_store(&j->cancel, true); }

void hn_job_free(hn_job *j) {
    if (!j) return;
    atomic_store(&j->cancel, true);
    pthread_mutex_lock(&j->mu);
    j->user_gone = true;
    bool done = j->engine_done;
    pthread_mutex_unlock(&j->mu);
    if (done) hn_job_destroy(j);
}

// ---- requests

static hn_status check_request(hn_engine *e, const hn_request *r, adapter **ad) {
    *ad = NULL;
    if (r->adapter && *r->adapter && !(*ad = hn_engine_find_adapter(e, r->adapter)))
        return hn_fail(HN_ERR_NOTFOUND, "adapter '%s' is not loaded", r->adapter);
    if (r->n_prompt < 1 || !r->prompt) return hn_fail(HN_ERR_ARG, "request: an empty prompt");
    if (r->n < 1 || r->n > 128) return hn_fail(HN_ERR_ARG, "request: n = %d, expected 1 to 128", r->n);
    if (r->max_tokens < 1) return hn_fail(HN_ERR_ARG, "request: max_tokens = %d, expected >= 1", r->max_tokens);
    if (r->n_stop < 0 || (r->n_stop && !r->stop)) return hn_fail(HN_ERR_ARG, "request: %d stop strings", r->n_stop);
    for (int i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= e->m->hp.n_vocab)
            return hn_fail(HN_ERR_RANGE, "request: token id %d at index %d is outside the vocabulary [0, %d)",
                           (int)r->prompt[i], i, e->m->hp.n_vocab);
    int n_virt = *ad && (*ad)->virt ? (*ad)->virt->n_virtual : 0;
    int64_t len = (int64_t)n_virt + r->n_prompt + r->max_tokens;
    if (len > e->p.max_ctx)
        return hn_fail(HN_ERR_RANGE, "request: %d prompt tokens + %d max_tokens%s exceed the context of %d tokens",
                       r->n_prompt, r->max_tokens, n_virt ? " + the adapter's virtual tokens" : "", e->p.max_ctx);
    const int bs = e->p.block_tokens;
    int64_t blocks = (n_virt + r->n_prompt + bs - 1) / bs + (int64_t)r->n * ((r->max_tokens + bs - 1) / bs + 1);
    if (blocks > hn_kv_pool_blocks(e->pool))
        return hn_fail(HN_ERR_RANGE, "request: %d prompt tokens and %d samples of up to %d tokens need %lld KV blocks; "
                       "the pool has %d (more memory: --kv-memory)", r->n_prompt, r->n, r->max_tokens,
                       (long long)blocks, hn_kv_pool_blocks(e->pool));
    return HN_OK;
}

hn_status hn_engine_submit(hn_engine *e, const hn_request *r, hn_job **out) {
    *out = NULL;
    hn_job *j = calloc(1, sizeof *j);
    if (!j) return hn_fail(HN_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->prompt = malloc((size_t)(r->n_prompt > 0 ? r->n_prompt : 1) * sizeof *j->prompt);
    j->stop = calloc((size_t)(r->n_stop > 0 ? r->n_stop : 1), sizeof *j->stop);
    bool ok = j->prompt && j->stop;
    for (int i = 0; ok && i < r->n_stop; i++) ok = r->stop && r->stop[i] && (j->stop[j->n_stop++] = strdup(r->stop[i]));
    if (!ok) {
        hn_job_destroy(j);
        return hn_fail(HN_ERR_NOMEM, "out of memory");
    }
    if (r->n_prompt > 0 && r->prompt) memcpy(j->prompt, r->prompt, (size_t)r->n_prompt * sizeof *j->prompt);
    j->n_prompt = r->n_prompt, j->sp = r->sp, j->max_tokens = r->max_tokens, j->n = r->n, j->live = r->n;
    j->deadline = r->deadline, j->ignore_eos = r->ignore_eos;
    pthread_mutex_lock(&e->mu);
    hn_status st = check_request(e, r, &j->ad);
    seq *s = st ? NULL : hn_engine_seq_new(e, j, 0, NULL);
    if (!st && !s) st = hn_fail(HN_ERR_NOMEM, "out of memory");
    if (st) {
        pthread_mutex_unlock(&e->mu);
        hn_job_destroy(j);
        return st;
    }
    hn_engine_seq_append(&e->waiting, s);
    e->st.requests++;
    e->st.prompt_tokens += r->n_prompt;
    pthread_cond_broadcast(&e->work_cv);
    pthread_mutex_unlock(&e->mu);
    *out = j;
    return HN_OK;
}

hn_status hn_engine_complete(hn_engine *e, const hn_request *r, char ***texts, hn_finish *finish_out) {
    *texts = NULL;
    hn_job *j;
    hn_status st = hn_engine_submit(e, r, &j);
    if (st) return st;
    char **out = calloc((size_t)r->n, sizeof *out);
    size_t *len = calloc((size_t)r->n, sizeof *len);
    if (!out || !len) {
        free(out), free(len);
        hn_job_free(j);
        return hn_fail(HN_ERR_NOMEM, "out of memory");
    }
    hn_event ev;
    char err[256] = "";
    while (hn_job_next(j, &ev, -1)) {
        if (ev.index < 0 || ev.index >= r->n) continue;
        if (ev.len) {
            char *t = realloc(out[ev.index], len[ev.index] + ev.len + 1);
            if (!t) {
                st = hn_fail(HN_ERR_NOMEM, "out of memory");
                break;
            }
            memcpy(t + len[ev.index], ev.text, ev.len);
            len[ev.index] += ev.len;
            t[len[ev.index]] = 0;
            out[ev.index] = t;
        }
        if (ev.done && finish_out) finish_out[ev.index] = ev.finish;
        if (ev.done && ev.finish == HN_FINISH_ERROR && !*err) snprintf(err, sizeof err, "%s", ev.error ? ev.error : "");
        if (ev.last) break;
    }
    hn_job_free(j);
    free(len);
    for (int i = 0; !st && i < r->n; i++)
        if (!out[i] && !(out[i] = calloc(1, 1))) st = hn_fail(HN_ERR_NOMEM, "out of memory");
    if (!st && *err) st = hn_fail(HN_ERR_ARG, "generation failed: %s", err);
    if (st) {
        hn_texts_free(out, r->n);
        return st;
    }
    *texts = out;
    return HN_OK;
}

void hn_texts_free(char **texts, int n) {
    if (!texts) return;
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
}

