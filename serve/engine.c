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
#include "serve/engine_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hn_engine_params hn_engine_default_params(void) {
    return (hn_engine_params){.max_batch = 16, .max_step_tokens = 512, .kv_bytes = (int64_t)256 << 20,
                              .block_tokens = 16, .max_ctx = 0, .prefix_cache = true};
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

void hn_engine_seq_append(seq **list, seq *s) {
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

seq *hn_engine_seq_new(hn_engine *e, hn_job *j, int index, const seq *from) {
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
    hn_job_push(s->job, &ev, s->ts.buf, n);
    hn_textstream_take(&s->ts, n);
}

// A sample's done event (after what text is left), for sample index.
static void push_done(hn_job *j, int index, hn_finish why, const seq *s, const char *err) {
    hn_event ev = {.index = index, .done = true, .finish = why, .n_prompt = j->n_prompt, .error = err};
    if (s) ev.n_cached = s->n_cached, ev.n_gen = s->n_gen;
    ev.last = --j->live == 0;
    hn_job_push(j, &ev, NULL, 0);
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
    if (last) hn_job_release(j);
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
        uint64_t h = hn_kv_pool_hash(s->hash, t, bs, s->ad ? s->ad->id : 0);
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
        uint64_t h = hn_kv_pool_hash(s->hash, t, bs, s->ad ? s->ad->id : 0);
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
        hn_engine_seq_append(&e->running, s);
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
                seq *c = hn_engine_seq_new(e, j, k, s);
                if (!c) {
                    push_done(j, k, HN_FINISH_ERROR, NULL, "out of memory for a sample");
                    continue;
                }
                hn_engine_seq_append(&e->running, c);
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
    if (!e->placed || !e->lseq || !e->runner || !e->ids || !e->pos || !e->virt || !e->logit_rows || !e->tables ||
        !e->virt_owner || !e->groups || !e->sched) {
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

