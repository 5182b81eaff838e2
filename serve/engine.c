// serve/engine.c — continuous batching over a paged KV cache (serve/engine.h). One thread runs steps; each step:
//   1. drops cancelled and timed-out sequences;
//   2. schedules the running sequences, oldest first: a decoding one gets its next token, one still in its prompt a
//      chunk of it, within the step's token budget; when the pool has no block for one, the newest running sequence
//      is preempted (its blocks freed; it goes back to the head of the queue and later recomputes its prompt and
//      what it generated, so its output does not change);
//   3. admits waiting sequences in arrival order (so none starves) while there is room in the batch, the budget and
//      the pool; a new prompt first takes the blocks of its longest cached prefix;
//   4. runs every scheduled token in one forward pass (model/batch.c), rows grouped by adapter;
//   5. samples the next token of every sequence whose tokens are all computed, streams its text, publishes its
//      full blocks to the prefix cache. A request's n samples are one sequence until its prompt is done, then n
//      sequences sharing the prompt's blocks (copy-on-write for the last, partly filled one).
// Locks: e->mu guards the queues, sequences and adapters; the forward pass runs without it (e->stepping set, so
// that adapters are attached and detached only between steps). A job's events have the job's own lock.
#include "serve/engine.h"

#include "adapt/method.h"
#include "io/adapter.h"
#include "serve/kv_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct adapter {
    char *name;
    hn_method *me;
    const hn_model_ext *virt; // its virtual positions (prompt / prefix tuning), NULL if none
    int users;                // sequences that use it
    bool unloading;
    struct adapter *next;
} adapter;

typedef struct event_node {
    hn_event ev;
    char *text;
    struct event_node *next;
} event_node;

struct hn_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    event_node *head, *tail;
    char *cur;               // the text of the event last returned
    bool user_gone, engine_done, delivered_last;
    atomic_bool cancel;
    // The request (owned copies); engine side, under the engine's lock.
    int32_t *prompt;
    int n_prompt;
    char **stop;
    int n_stop;
    hn_sampler_params sp;
    int max_tokens, n, live;
    bool ignore_eos;
    double deadline;
    adapter *ad;
    bool forked;             // the n samples exist
};

typedef struct seq {
    hn_job *job;
    int index;
    adapter *ad;
    int32_t *tok;            // prompt + generated tokens
    int n_tok, tok_cap;
    int n_prompt;
    int n_virt;              // virtual positions before the tokens: positions [0, n_virt)
    int n_done;              // positions whose keys and values are in the pool
    int32_t *table;          // block ids covering positions [0, n_table * block_tokens)
    int n_table, table_cap;
    uint64_t hash;           // the prefix cache's hash of blocks [0, n_hashed)
    int n_hashed, n_cached;
    hn_sampler *smp;
    hn_textstream ts;
    int n_gen;
    uint64_t order;          // admission order; the newest is preempted first
    int step_n;              // tokens scheduled in the current step
    struct seq *next;
} seq;

struct hn_engine {
    hn_model *m;
    hn_engine_params p;
    int n_vocab_sample;
    hn_kv_pool *pool;
    hn_batch_runner *runner;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, step_cv;
    bool quit, stepping;
    seq *waiting, *running;  // lists; running kept in admission order
    adapter *adapters;
    uint64_t next_order;
    hn_engine_stats st;
    // Step arrays, max_step_tokens each (seqs: max_step_tokens too; a sequence has at least one token in a step).
    int32_t *ids, *pos, *virt, *logit_rows;
    const int32_t **tables;
    const void **virt_owner;
    hn_row_group *groups;
    seq **sched, **placed, **lseq;
    int n_placed;
};

hn_engine_params hn_engine_default_params(void) {
    return (hn_engine_params){.max_batch = 16, .max_step_tokens = 512, .kv_bytes = (int64_t)256 << 20,
                              .block_tokens = 16, .max_ctx = 0, .prefix_cache = true};
}

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

static void job_destroy(hn_job *j) {
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
static void job_push(hn_job *j, const hn_event *ev, const char *text, size_t len) {
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
static void job_release(hn_job *j) {
    pthread_mutex_lock(&j->mu);
    j->engine_done = true;
    bool gone = j->user_gone;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (gone) job_destroy(j);
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
    if (done) job_destroy(j);
}

// ---- sequences

static void list_remove(seq **list, seq *s) {
    for (seq **p = list; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            s->next = NULL;
            return;
        }
}

static void list_append(seq **list, seq *s) {
    s->next = NULL;
    while (*list) list = &(*list)->next;
    *list = s;
}

static int list_len(const seq *s) {
    int n = 0;
    for (; s; s = s->next) n++;
    return n;
}

static void release_blocks(hn_engine *e, seq *s) {
    for (int i = 0; i < s->n_table; i++) hn_kv_pool_unref(e->pool, s->table[i]);
    s->n_table = 0, s->n_done = 0, s->hash = 0, s->n_hashed = 0;
}

static void seq_free(hn_engine *e, seq *s) {
    release_blocks(e, s);
    if (s->ad) s->ad->users--;
    hn_sampler_destroy(s->smp);
    hn_textstream_deinit(&s->ts);
    free(s->tok);
    free(s->table);
    free(s);
}

static seq *seq_new(hn_engine *e, hn_job *j, int index, const seq *from) {
    seq *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    hn_sampler_params sp = j->sp;
    sp.seed = j->sp.seed + (uint64_t)index;
    s->job = j, s->index = index, s->ad = j->ad;
    s->n_virt = j->ad && j->ad->virt ? j->ad->virt->n_virtual : 0;
    s->tok_cap = j->n_prompt + j->max_tokens + 1;
    s->tok = malloc((size_t)s->tok_cap * sizeof *s->tok);
    s->smp = hn_sampler_create(&sp, e->n_vocab_sample);
    if (!s->tok || !s->smp) {
        free(s->tok);
        hn_sampler_destroy(s->smp);
        free(s);
        return NULL;
    }
    s->ts = (hn_textstream){.stop = (const char *const *)j->stop, .n_stop = j->n_stop};
    if (s->ad) s->ad->users++;
    if (!from) {
        memcpy(s->tok, j->prompt, (size_t)j->n_prompt * sizeof *s->tok);
        s->n_tok = s->n_prompt = j->n_prompt;
        return s;
    }
    // A sample forked from the first: the same tokens and blocks (one more reference each).
    memcpy(s->tok, from->tok, (size_t)from->n_tok * sizeof *s->tok);
    s->n_tok = from->n_tok, s->n_prompt = from->n_prompt, s->n_done = from->n_done, s->n_cached = from->n_cached;
    s->hash = from->hash, s->n_hashed = from->n_hashed, s->order = from->order;
    s->table = malloc((size_t)(from->n_table + 1) * sizeof *s->table);
    if (!s->table) {
        seq_free(e, s);
        return NULL;
    }
    s->table_cap = from->n_table + 1;
    for (int i = 0; i < from->n_table; i++) hn_kv_pool_ref(e->pool, s->table[i] = from->table[i]);
    s->n_table = from->n_table;
    return s;
}

static void emit_text(seq *s, size_t n) {
    if (!n) return;
    hn_event ev = {.index = s->index};
    job_push(s->job, &ev, s->ts.buf, n);
    hn_textstream_take(&s->ts, n);
}

// A sample's done event (after what text is left), for sample index.
static void push_done(hn_job *j, int index, hn_finish why, const seq *s, const char *err) {
    hn_event ev = {.index = index, .done = true, .finish = why, .n_prompt = j->n_prompt, .error = err};
    if (s) ev.n_cached = s->n_cached, ev.n_gen = s->n_gen;
    ev.last = --j->live == 0;
    job_push(j, &ev, NULL, 0);
}

// Ends s (which is on list): its text so far, its done event (and, before the samples were forked, the other
// samples' too), its blocks back to the pool.
static void finish(hn_engine *e, seq **list, seq *s, hn_finish why, const char *err) {
    hn_job *j = s->job;
    if (why == HN_FINISH_STOP || why == HN_FINISH_LENGTH) emit_text(s, s->ts.len); // what is left, as it is
    list_remove(list, s);
    int n_other = !j->forked ? j->n - 1 : 0;
    push_done(j, s->index, why, s, err);
    for (int i = 1; i <= n_other; i++) push_done(j, i, why, NULL, err);
    if (n_other) j->forked = true;
    bool last = j->live == 0;
    seq_free(e, s);
    if (last) job_release(j);
}

static bool table_reserve(seq *s, int need) {
    if (need <= s->table_cap) return true;
    int cap = need + 8;
    int32_t *t = realloc(s->table, (size_t)cap * sizeof *t);
    if (!t) return false;
    s->table = t, s->table_cap = cap;
    return true;
}

// Blocks for positions [0, upto) of s, and a block of its own for every block the step writes into (copy-on-write
// where another sequence shares it). false when the pool has none left (s keeps what it got).
static bool ensure_blocks(hn_engine *e, seq *s, int upto) {
    const int bs = e->p.block_tokens, need = (upto + bs - 1) / bs;
    if (!table_reserve(s, need)) return false;
    for (int b = s->n_done / bs; b < s->n_table && b < need; b++)
        if (hn_kv_pool_refs(e->pool, s->table[b]) > 1) {
            int32_t c = hn_kv_pool_copy(e->pool, s->table[b]);
            if (c < 0) return false;
            s->table[b] = c;
        }
    while (s->n_table < need) {
        int32_t b = hn_kv_pool_alloc(e->pool);
        if (b < 0) return false;
        s->table[s->n_table++] = b;
    }
    return true;
}

static void preempt(hn_engine *e, seq *s) {
    release_blocks(e, s);
    list_remove(&e->running, s);
    s->next = e->waiting, e->waiting = s; // first in line again
    e->st.preemptions++;
}

// The newest running sequence other than keep that is not scheduled in this step yet; NULL if none.
static seq *victim(hn_engine *e, const seq *keep) {
    seq *v = NULL;
    for (seq *s = e->running; s; s = s->next)
        if (s != keep && !s->step_n && (!v || s->order > v->order)) v = s;
    return v;
}

// Takes the blocks of the longest cached prefix of s's tokens: whole blocks, and never the last token (its logits
// are needed).
static void take_cached_prefix(hn_engine *e, seq *s) {
    const int bs = e->p.block_tokens;
    if (!e->p.prefix_cache || s->n_virt || s->n_done) return;
    while ((s->n_hashed + 1) * bs <= s->n_tok - 1) {
        const int32_t *t = s->tok + s->n_hashed * bs;
        uint64_t h = hn_kv_pool_hash(s->hash, t, bs, s->ad);
        int32_t b = hn_kv_pool_lookup(e->pool, h, s->hash, t);
        if (b < 0) break;
        if (!table_reserve(s, s->n_table + 1)) {
            hn_kv_pool_unref(e->pool, b);
            break;
        }
        s->table[s->n_table++] = b;
        s->hash = h, s->n_hashed++;
        s->n_done = s->n_hashed * bs;
    }
    s->n_cached = s->n_done;
    e->st.cached_tokens += s->n_cached;
}

static void publish_blocks(hn_engine *e, seq *s) {
    const int bs = e->p.block_tokens;
    if (!e->p.prefix_cache || s->n_virt) return;
    while ((s->n_hashed + 1) * bs <= s->n_done && s->n_hashed < s->n_table) {
        const int32_t *t = s->tok + s->n_hashed * bs;
        uint64_t h = hn_kv_pool_hash(s->hash, t, bs, s->ad);
        hn_kv_pool_publish(e->pool, s->table[s->n_hashed], h, s->hash, t);
        s->hash = h, s->n_hashed++;
    }
}

// Positions s still has to compute: its virtual ones, its prompt, the token it sampled last.
static int todo(const seq *s) { return s->n_virt + s->n_tok - s->n_done; }

// A prefix-tuning adapter's keys and values go into the first positions when a sequence starts.
static hn_status start_virtual(hn_engine *e, seq *s) {
    if (!s->n_virt || s->n_done || !s->ad->virt->attn_kv) return HN_OK;
    if (!ensure_blocks(e, s, s->n_virt)) return HN_ERR_NOMEM;
    hn_kv_pool_view v = hn_kv_pool_view_of(e->pool);
    hn_status st = hn_model_fill_prefix_paged(e->m, e->runner, s->ad->virt, &v, s->table);
    if (!st) s->n_done = s->n_virt;
    return st;
}

// Picks this step's sequences and token counts (step 2 and 3 above); returns how many.
static int schedule(hn_engine *e) {
    int budget = e->p.max_step_tokens, n_sched = 0;
    const int bs = e->p.block_tokens;
    for (seq *s = e->running; s; s = s->next) s->step_n = 0;
    for (seq *s = e->running, *next; s && budget > 0; s = next) {
        next = s->next;
        int n = todo(s) < budget ? todo(s) : budget;
        while (!ensure_blocks(e, s, s->n_done + n)) {
            seq *v = victim(e, s);
            if (!v) break;
            if (v == next) next = v->next;
            preempt(e, v);
        }
        if (s->n_table * bs < s->n_done + n) { // alone and still no room: it cannot run now
            if (s == e->running && !s->next) {
                finish(e, &e->running, s, HN_FINISH_ERROR, "the KV pool is too small for this request");
                continue;
            }
            preempt(e, s);
            continue;
        }
        s->step_n = n, budget -= n;
        e->sched[n_sched++] = s;
    }
    int n_running = list_len(e->running);
    while (e->waiting && budget > 0 && n_running < e->p.max_batch) {
        seq *s = e->waiting;
        if (!s->n_done) take_cached_prefix(e, s);
        // Room for its whole prompt and one block to spare (vLLM's watermark), so that admitting it does not
        // preempt at once; running sequences that grow past the pool later preempt the newest.
        int need = (s->n_virt + s->n_tok - s->n_done + bs - 1) / bs + 1;
        if (hn_kv_pool_available(e->pool) < need && e->running) break;
        hn_status st = start_virtual(e, s);
        int n = todo(s) < budget ? todo(s) : budget;
        if (st || !ensure_blocks(e, s, s->n_done + n)) {
            if (e->running && !st) break; // wait for running sequences to free blocks
            finish(e, &e->waiting, s, HN_FINISH_ERROR, st ? hn_errmsg() : "the KV pool is too small for this request");
            continue;
        }
        e->waiting = s->next;
        if (!s->order) s->order = ++e->next_order;
        list_append(&e->running, s);
        n_running++;
        s->step_n = n, budget -= n;
        e->sched[n_sched++] = s;
    }
    return n_sched;
}

// Fills the step's arrays from the scheduled sequences (e->sched[0, n_sched)), rows grouped by adapter; e->placed
// gets the sequences in row order, e->lseq the one of each logit row.
static void build_batch(hn_engine *e, int n_sched, hn_step_batch *b) {
    int n = 0, n_groups = 0, n_logits = 0;
    bool any_virt = false;
    e->n_placed = 0;
    for (int i = 0; i < n_sched; i++) {
        if (!e->sched[i]) continue;
        adapter *ad = e->sched[i]->ad;
        int r0 = n;
        for (int k = i; k < n_sched; k++) { // every scheduled sequence with this adapter, in order
            seq *q = e->sched[k];
            if (!q || q->ad != ad) continue;
            for (int t = 0; t < q->step_n; t++, n++) {
                int p = q->n_done + t;
                e->pos[n] = p, e->tables[n] = q->table, e->virt_owner[n] = ad;
                e->virt[n] = p < q->n_virt ? p : -1;
                e->ids[n] = p < q->n_virt ? 0 : q->tok[p - q->n_virt]; // a virtual token's embedding comes later
                any_virt |= p < q->n_virt;
            }
            if (q->n_done + q->step_n == q->n_virt + q->n_tok) {
                e->logit_rows[n_logits] = n - 1;
                e->lseq[n_logits++] = q;
            }
            e->placed[e->n_placed++] = q;
            e->sched[k] = NULL;
        }
        e->groups[n_groups++] = (hn_row_group){ad, r0, n - r0};
    }
    *b = (hn_step_batch){.n = n, .ids = e->ids, .pos = e->pos, .tables = e->tables,
                         .virt = any_virt ? e->virt : NULL, .virt_owner = e->virt_owner, .groups = e->groups,
                         .n_groups = n_groups, .logit_rows = e->logit_rows, .n_logits = n_logits};
}

// Samples s's next token from logits (a done sequence is finished here).
static void sample_next(hn_engine *e, seq *s, const float *logits) {
    hn_job *j = s->job;
    int32_t id = hn_sampler_sample(s->smp, logits, s->tok, s->n_tok);
    if (!j->ignore_eos && hn_tokenizer_is_eog(e->m->tok, id)) {
        finish(e, &e->running, s, HN_FINISH_STOP, NULL);
        return;
    }
    s->tok[s->n_tok++] = id;
    s->n_gen++;
    e->st.gen_tokens++;
    char piece[256];
    int nb = hn_tokenizer_token_bytes(e->m->tok, id, piece, sizeof piece);
    if (nb > (int)sizeof piece) nb = sizeof piece;
    size_t ready;
    if (hn_textstream_push(&s->ts, piece, nb > 0 ? (size_t)nb : 0, &ready)) {
        finish(e, &e->running, s, HN_FINISH_ERROR, "out of memory for the streamed text");
        return;
    }
    emit_text(s, ready);
    if (s->ts.stopped) finish(e, &e->running, s, HN_FINISH_STOP, NULL);
    else if (s->n_gen >= j->max_tokens || s->n_virt + s->n_tok > e->p.max_ctx)
        finish(e, &e->running, s, HN_FINISH_LENGTH, NULL);
}

// After the forward pass: every placed sequence advances; those at the end of their tokens sample (a request's
// first sample forks the others first, from the same logits).
static void advance(hn_engine *e, const hn_step_batch *b, const float *logits) {
    for (int i = 0; i < e->n_placed; i++) {
        seq *s = e->placed[i];
        s->n_done += s->step_n;
        s->step_n = 0;
        publish_blocks(e, s);
    }
    for (int i = 0; i < b->n_logits; i++) {
        seq *s = e->lseq[i];
        const float *lg = logits + (int64_t)i * e->m->hp.n_vocab;
        hn_job *j = s->job;
        if (j->n > 1 && !j->forked) {
            j->forked = true;
            for (int k = 1; k < j->n; k++) {
                seq *c = seq_new(e, j, k, s);
                if (!c) {
                    push_done(j, k, HN_FINISH_ERROR, NULL, "out of memory for a sample");
                    continue;
                }
                list_append(&e->running, c);
                sample_next(e, c, lg);
            }
        }
        sample_next(e, s, lg);
    }
}

static void fail_placed(hn_engine *e, const char *msg) {
    for (int i = 0; i < e->n_placed; i++) finish(e, &e->running, e->placed[i], HN_FINISH_ERROR, msg);
}

static bool expired(const seq *s, double now) {
    return atomic_load(&s->job->cancel) || (s->job->deadline > 0 && now > s->job->deadline);
}

static void drop_cancelled(hn_engine *e) {
    double now = hn_now();
    seq **lists[] = {&e->running, &e->waiting};
    for (int l = 0; l < 2; l++)
        for (seq *s = *lists[l], *next; s; s = next) {
            next = s->next;
            if (expired(s, now)) finish(e, lists[l], s, HN_FINISH_CANCEL, NULL);
        }
}

static void free_unloaded(hn_engine *e) {
    for (adapter **p = &e->adapters; *p;) {
        adapter *a = *p;
        if (a->unloading && !a->users) {
            *p = a->next;
            hn_method_destroy(a->me);
            free(a->name);
            free(a);
            pthread_cond_broadcast(&e->step_cv);
        } else {
            p = &a->next;
        }
    }
}

static void *engine_main(void *arg) {
    hn_engine *e = arg;
    hn_kv_pool_view view = hn_kv_pool_view_of(e->pool);
    pthread_mutex_lock(&e->mu);
    for (;;) {
        drop_cancelled(e);
        free_unloaded(e);
        if (e->quit) break;
        if (!e->running && !e->waiting) {
            pthread_cond_wait(&e->work_cv, &e->mu);
            continue;
        }
        int n_sched = schedule(e);
        if (!n_sched) { // nothing could run now (should not happen): look again shortly rather than spin
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 5000000;
            if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&e->work_cv, &e->mu, &ts);
            continue;
        }
        hn_step_batch b;
        build_batch(e, n_sched, &b);
        int n_seq = e->n_placed;
        e->stepping = true;
        pthread_mutex_unlock(&e->mu);
        float *logits = NULL;
        hn_status st = hn_model_forward_batch(e->m, e->runner, &view, &b, &logits);
        const char *msg = st ? hn_errmsg() : NULL;
        char err[256];
        if (msg) snprintf(err, sizeof err, "%s", msg);
        pthread_mutex_lock(&e->mu);
        e->stepping = false;
        pthread_cond_broadcast(&e->step_cv);
        e->st.steps++;
        int bucket = 0;
        while (bucket < 7 && (2 << bucket) <= n_seq) bucket++;
        e->st.batch_hist[bucket]++;
        if (st) fail_placed(e, err);
        else advance(e, &b, logits);
    }
    // Shutting down: every sequence left is cancelled.
    while (e->running) finish(e, &e->running, e->running, HN_FINISH_CANCEL, NULL);
    while (e->waiting) finish(e, &e->waiting, e->waiting, HN_FINISH_CANCEL, NULL);
    pthread_mutex_unlock(&e->mu);
    hn_matmul_thread_free();
    return NULL;
}

// ---- the engine

static int model_ctx(const hn_model *m) { return m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : 4096; }

static bool has_attachments(hn_model *m) {
    if (m->ext || m->output.ext) return true;
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) {
            hn_linear *lin = hn_method_linear(m, l, (hn_proj)p);
            if (lin && lin->ext) return true;
        }
    return false;
}

hn_status hn_engine_create(hn_engine **out, hn_model *m, const hn_engine_params *params) {
    *out = NULL;
    hn_engine_params p = params ? *params : hn_engine_default_params();
    if (!p.max_ctx) p.max_ctx = model_ctx(m);
    if (m->hp.arch == HN_ARCH_BERT)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: an encoder has no language-model head to generate with", m->path);
    if (!m->tok) return hn_fail(HN_ERR_ARG, "%s: the engine needs the model's tokenizer", m->path);
    if (p.max_batch < 1 || p.max_batch > 4096 || p.max_step_tokens < 1 || p.max_step_tokens > (1 << 20) ||
        p.max_ctx < 1 || p.max_ctx > (1 << 24))
        return hn_fail(HN_ERR_ARG, "engine: max_batch %d, max_step_tokens %d, max_ctx %d out of range", p.max_batch,
                       p.max_step_tokens, p.max_ctx);
    if (has_attachments(m))
        return hn_fail(HN_ERR_ARG, "%s: the model has adapters attached; the engine loads its own "
                       "(hn_engine_load_adapter)", m->path);
    hn_engine *e = hn_calloc(1, sizeof *e, "engine");
    if (!e) return HN_ERR_NOMEM;
    e->m = m, e->p = p;
    e->n_vocab_sample = hn_tokenizer_n_vocab(m->tok) < m->hp.n_vocab ? hn_tokenizer_n_vocab(m->tok) : m->hp.n_vocab;
    size_t n = (size_t)p.max_step_tokens;
    e->pool = hn_kv_pool_create(m, p.kv_bytes, p.block_tokens);
    e->runner = e->pool ? hn_batch_runner_create(m, p.max_step_tokens, p.max_ctx) : NULL;
    e->ids = calloc(n, sizeof *e->ids), e->pos = calloc(n, sizeof *e->pos), e->virt = calloc(n, sizeof *e->virt);
    e->logit_rows = calloc(n, sizeof *e->logit_rows), e->tables = calloc(n, sizeof *e->tables);
    e->virt_owner = calloc(n, sizeof *e->virt_owner), e->groups = calloc(n, sizeof *e->groups);
    e->sched = calloc(n + 1, sizeof *e->sched), e->placed = calloc(n + 1, sizeof *e->placed);
    e->lseq = calloc(n + 1, sizeof *e->lseq);
    if (!e->placed || !e->lseq || !e->runner || !e->ids || !e->pos || !e->virt || !e->logit_rows || !e->tables || !e->virt_owner ||
        !e->groups || !e->sched) {
        hn_status st = e->pool && e->runner ? hn_fail(HN_ERR_NOMEM, "engine: out of memory") : HN_ERR_NOMEM;
        hn_engine_destroy(e);
        return st;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->work_cv, NULL);
    pthread_cond_init(&e->step_cv, NULL);
    if (pthread_create(&e->thread, NULL, engine_main, e)) {
        hn_engine_destroy(e);
        return hn_fail(HN_ERR_IO, "engine: cannot start its thread");
    }
    e->st.blocks_total = hn_kv_pool_blocks(e->pool);
    *out = e;
    return HN_OK;
}

void hn_engine_destroy(hn_engine *e) {
    if (!e) return;
    if (e->thread) {
        pthread_mutex_lock(&e->mu);
        e->quit = true;
        pthread_cond_broadcast(&e->work_cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->work_cv);
        pthread_cond_destroy(&e->step_cv);
    }
    for (adapter *a = e->adapters, *next; a; a = next) {
        next = a->next;
        hn_method_destroy(a->me);
        free(a->name);
        free(a);
    }
    hn_batch_runner_destroy(e->runner);
    hn_kv_pool_destroy(e->pool);
    free(e->ids), free(e->pos), free(e->virt), free(e->logit_rows), free(e->tables), free(e->virt_owner);
    free(e->groups), free(e->sched), free(e->placed), free(e->lseq);
    free(e);
}

// ---- adapters

static bool is_file(const char *path, bool *dir) {
    struct stat st;
    if (stat(path, &st)) return false;
    *dir = S_ISDIR(st.st_mode);
    return true;
}

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

// Reads path as hn_engine_load_adapter says and attaches it to m.
static hn_status load_method(hn_model *m, const char *path, hn_method **out) {
    bool dir = false, d2;
    if (!is_file(path, &dir)) return hn_fail(HN_ERR_NOTFOUND, "%s: no such adapter file or directory", path);
    const char *gguf = NULL;
    char *sub = NULL, *g = NULL;
    hn_status st;
    if (!dir) {
        gguf = path;
    } else {
        char *cfg = join(path, "adapter_config.json"), *own = join(path, "hone_adapter.json");
        sub = join(path, "adapter"), g = join(path, "adapter.gguf");
        if (!cfg || !own || !sub || !g) {
            free(cfg), free(own), free(sub), free(g);
            return hn_fail(HN_ERR_NOMEM, "out of memory");
        }
        bool here = is_file(cfg, &d2) || is_file(own, &d2);
        free(cfg), free(own);
        if (here) {
            st = hn_method_load(out, m, path);
            goto done;
        }
        if (is_file(sub, &d2) && d2) {
            st = hn_method_load(out, m, sub);
            goto done;
        }
        if (!is_file(g, &d2)) {
            st = hn_fail(HN_ERR_ARG, "%s: a directory with neither adapter_config.json, hone_adapter.json, adapter/ "
                         "nor adapter.gguf", path);
            goto done;
        }
        gguf = g;
    }
    hn_adapter *a = NULL;
    if (!(st = hn_lora_gguf_read(&a, gguf)) && !(st = hn_adapter_check_base(a, &m->gguf, false)))
        st = hn_method_lora_from(out, m, a);
    hn_adapter_destroy(a);
done:
    free(sub), free(g);
    return st;
}

// Marks every attachment without an owner as a's (the engine refuses models with attachments of their own, so
// those are the ones a's load just made).
static void claim(hn_model *m, adapter *a) {
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) {
            hn_linear *lin = hn_method_linear(m, l, (hn_proj)p);
            for (hn_linear_ext *x = lin ? lin->ext : NULL; x; x = x->next)
                if (!x->owner) x->owner = a;
        }
    for (hn_model_ext *x = m->ext; x; x = x->next)
        if (!x->owner) x->owner = a, a->virt = x;
}

static adapter *find_adapter(hn_engine *e, const char *name) {
    for (adapter *a = e->adapters; a; a = a->next)
        if (!strcmp(a->name, name) && !a->unloading) return a;
    return NULL;
}

hn_status hn_engine_load_adapter(hn_engine *e, const char *name, const char *path, float scale) {
    if (!name || !*name) return hn_fail(HN_ERR_ARG, "adapter %s: an empty name", path);
    pthread_mutex_lock(&e->mu);
    while (e->stepping) pthread_cond_wait(&e->step_cv, &e->mu);
    hn_status st = HN_OK;
    adapter *a = NULL;
    if (find_adapter(e, name)) {
        st = hn_fail(HN_ERR_ARG, "adapter '%s' is already loaded", name);
        goto out;
    }
    if (!(a = calloc(1, sizeof *a)) || !(a->name = strdup(name))) {
        st = hn_fail(HN_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = load_method(e->m, path, &a->me))) goto out;
    if (scale != 1.0f && (st = hn_method_set_scale(a->me, scale))) goto out;
    claim(e->m, a);
    a->next = NULL;
    adapter **p = &e->adapters;
    while (*p) p = &(*p)->next;
    *p = a;
    a = NULL;
out:
    if (a) {
        hn_method_destroy(a->me);
        free(a->name);
        free(a);
    }
    pthread_mutex_unlock(&e->mu);
    return st;
}

hn_status hn_engine_unload_adapter(hn_engine *e, const char *name) {
    pthread_mutex_lock(&e->mu);
    adapter *a = find_adapter(e, name);
    if (!a) {
        pthread_mutex_unlock(&e->mu);
        return hn_fail(HN_ERR_NOTFOUND, "adapter '%s' is not loaded", name);
    }
    a->unloading = true;
    pthread_cond_broadcast(&e->work_cv);
    for (;;) { // until the engine thread has freed it
        bool there = false;
        for (adapter *x = e->adapters; x; x = x->next) there |= x == a;
        if (!there) break;
        pthread_cond_wait(&e->step_cv, &e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return HN_OK;
}

hn_status hn_engine_adapter_names(hn_engine *e, char ***names, int *n) {
    pthread_mutex_lock(&e->mu);
    size_t bytes = 0;
    int k = 0;
    for (adapter *a = e->adapters; a; a = a->next)
        if (!a->unloading) bytes += strlen(a->name) + 1, k++;
    char **out = malloc((size_t)(k + 1) * sizeof *out + bytes);
    if (!out) {
        pthread_mutex_unlock(&e->mu);
        return hn_fail(HN_ERR_NOMEM, "out of memory");
    }
    char *at = (char *)(out + k + 1);
    k = 0;
    for (adapter *a = e->adapters; a; a = a->next)
        if (!a->unloading) {
            out[k++] = at;
            at = stpcpy(at, a->name) + 1;
        }
    out[k] = NULL;
    pthread_mutex_unlock(&e->mu);
    *names = out, *n = k;
    return HN_OK;
}

// ---- requests

static hn_status check_request(hn_engine *e, const hn_request *r, adapter **ad) {
    *ad = NULL;
    if (r->adapter && *r->adapter && !(*ad = find_adapter(e, r->adapter)))
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
        job_destroy(j);
        return hn_fail(HN_ERR_NOMEM, "out of memory");
    }
    if (r->n_prompt > 0 && r->prompt) memcpy(j->prompt, r->prompt, (size_t)r->n_prompt * sizeof *j->prompt);
    j->n_prompt = r->n_prompt, j->sp = r->sp, j->max_tokens = r->max_tokens, j->n = r->n, j->live = r->n;
    j->deadline = r->deadline, j->ignore_eos = r->ignore_eos;
    pthread_mutex_lock(&e->mu);
    hn_status st = check_request(e, r, &j->ad);
    seq *s = st ? NULL : seq_new(e, j, 0, NULL);
    if (!st && !s) st = hn_fail(HN_ERR_NOMEM, "out of memory");
    if (st) {
        pthread_mutex_unlock(&e->mu);
        job_destroy(j);
        return st;
    }
    list_append(&e->waiting, s);
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

void hn_engine_stats_get(hn_engine *e, hn_engine_stats *out) {
    pthread_mutex_lock(&e->mu);
    *out = e->st;
    out->running = list_len(e->running);
    out->waiting = list_len(e->waiting);
    out->blocks_used = hn_kv_pool_in_use(e->pool);
    out->blocks_total = hn_kv_pool_blocks(e->pool);
    out->block_tokens = e->p.block_tokens;
    pthread_mutex_unlock(&e->mu);
}
