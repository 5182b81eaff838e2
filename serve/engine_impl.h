// serve/engine_impl.h — what the engine's files share (serve/engine.c: scheduling and steps; engine_jobs.c: requests
// and their events; engine_adapters.c: adapters loaded by name). Not a public header.
#ifndef HN_ENGINE_IMPL_H
#define HN_ENGINE_IMPL_H

#include "adapt/method.h"
#include "serve/engine.h"
#include "serve/kv_pool.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct adapter {
    char *name;
    uint64_t id;              // unique for the engine's life (the prefix cache's key: an address could be reused)
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
    uint64_t next_order, next_adapter;
    hn_engine_stats st;
    // Step arrays, max_step_tokens each (seqs: max_step_tokens too; a sequence has at least one token in a step).
    int32_t *ids, *pos, *virt, *logit_rows;
    const int32_t **tables;
    const void **virt_owner;
    hn_row_group *groups;
    seq **sched, **placed, **lseq;
    int n_placed;
};

// engine_jobs.c: a job's events (hn_job_push queues one; hn_job_release: the engine is done with the job).
void hn_job_destroy(hn_job *j);
void hn_job_push(hn_job *j, const hn_event *ev, const char *text, size_t len);
void hn_job_release(hn_job *j);
// engine.c: a request's first sequence (from NULL) or sample index forked from `from`; lists of sequences.
seq *hn_engine_seq_new(hn_engine *e, hn_job *j, int index, const seq *from);
void hn_engine_seq_append(seq **list, seq *s);
// engine_adapters.c: a loaded adapter by name (not one being unloaded), NULL if none.
adapter *hn_engine_find_adapter(hn_engine *e, const char *name);

#endif
