// train/bakeoff.c — the bake-off's runs (train/bakeoff.h): the data made once, then every method in a forked child
// that trains it, measures and sends its row back through a pipe. Classification's part is here (the test split or
// test files, seeded stratified subsamples to the budget, the majority-class baseline, predicting the test set);
// generation's is train/bakeoff_gen.c, run by the same machinery.
//
// Child -> parent messages: a msg_head, then `len` bytes (a warning's text, or the hn_bakeoff_row).
#include "train/bakeoff_impl.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PREDICT_CHUNK 32 // texts per predict call: a progress step, and small probability buffers
#define TICK_MS 250      // the parent's display refresh while a child is silent
#define MSG_TEXT_MAX 1024

typedef enum { MSG_PROGRESS, MSG_LOG, MSG_ROW } msg_kind;
typedef struct {
    int32_t kind, phase; // phase: 0 train, 1 eval
    int64_t done, total;
    double phase_s;
    int32_t len;
} msg_head;

static const char *const phase_names[HN_BAKEOFF_PHASES] = {"train", "eval", "qa"};

// ---- preparation (the parent)

static hn_status subsample(hn_cls_data *d, int keep, uint64_t seed) {
    if (keep <= 0 || d->n <= keep) return HN_OK;
    hn_cls_data drop;
    hn_status s = hn_cls_data_split(d, &drop, (double)(d->n - keep) / d->n, seed);
    hn_cls_data_deinit(&drop);
    return s;
}

static hn_status count_tokens(const hn_model *m, const hn_cls_data *d, int max_len, int64_t *out) {
    *out = 0;
    for (int i = 0; i < d->n; i++) {
        int32_t *ids = NULL;
        int64_t n = 0;
        hn_status s = hn_tokenizer_encode(m->tok, d->texts[i], -1, 0, &ids, &n);
        free(ids);
        if (s) return s;
        *out += n < max_len ? n : max_len;
    }
    return HN_OK;
}

static void gguf_text(const hn_model *m, const char *key, char *buf, size_t cap) {
    hn_gguf_str s;
    buf[0] = 0;
    if (hn_gguf_find(&m->gguf, key) && !hn_gguf_get_str(&m->gguf, key, &s))
        snprintf(buf, cap, "%.*s", (int)(s.len < cap ? s.len : cap - 1), s.str);
}

// The majority class of the training set for every test text.
static hn_status baseline(hn_bakeoff *b) {
    hn_bakeoff_row *row = &b->baseline;
    int K = b->train.n_classes, best = 0;
    int64_t *count = hn_calloc((size_t)K, sizeof *count, "class counts");
    int32_t *pred = hn_calloc((size_t)(b->test.n ? b->test.n : 1), sizeof *pred, "predictions");
    hn_cls_metrics mt = {0};
    hn_status s = count && pred ? HN_OK : HN_ERR_NOMEM;
    if (!s) {
        for (int i = 0; i < b->train.n; i++) count[b->train.labels[i]]++;
        for (int c = 1; c < K; c++)
            if (count[c] > count[best]) best = c;
        for (int i = 0; i < b->test.n; i++) pred[i] = best;
        s = hn_cls_metrics_compute(&mt, pred, b->test.labels, b->test.n, K);
    }
    if (!s) {
        snprintf(row->method, sizeof row->method, "majority");
        snprintf(row->label, sizeof row->label, "majority");
        row->state = HN_BAKEOFF_BASELINE;
        snprintf(row->message, sizeof row->message, "always '%.400s', the training set's most frequent class",
                 b->train.classes[best]);
        row->accuracy = mt.accuracy, row->macro_f1 = mt.macro_f1;
    }
    hn_cls_metrics_deinit(&mt);
    free(count), free(pred);
    return s;
}

static void model_facts(hn_bakeoff *b) {
    for (uint64_t i = 0; i < b->m->gguf.n_tensors; i++) b->model_params += hn_nelem(&b->m->gguf.tensors[i]);
    gguf_text(b->m, "general.name", b->model_name, sizeof b->model_name);
    gguf_text(b->m, "general.architecture", b->model_arch, sizeof b->model_arch);
}

static hn_status prepare_classify(hn_bakeoff *b, const hn_bakeoff_recipe *r) {
    hn_cls_load_params lp = hn_cls_load_default_params();
    if (r->text_col) lp.text_col = r->text_col;
    if (r->label_col) lp.label_col = r->label_col;
    char src[64];
    hn_status s = hn_cls_data_load(&b->train, (const char *const *)r->data, r->n_data, &lp);
    if (!s && r->n_test) {
        hn_cls_load_params tp = lp;
        tp.classes = (const char *const *)b->train.classes, tp.n_classes = b->train.n_classes;
        s = hn_cls_data_load(&b->test, (const char *const *)r->test, r->n_test, &tp);
        snprintf(src, sizeof src, "the test files");
    } else if (!s) {
        s = hn_cls_data_split(&b->train, &b->test, r->test_split, r->seed);
        snprintf(src, sizeof src, "%g%% of the data, stratified", r->test_split * 100);
    }
    if (!s) s = subsample(&b->train, r->max_train, r->seed + 1);
    if (!s) s = subsample(&b->test, r->max_test, r->seed + 2);
    if (!s && (b->test.n < 1 || b->train.n < 2))
        s = hn_fail(HN_ERR_ARG, "%s: %d training and %d test examples: too few to compare methods", r->path, b->train.n,
                    b->test.n);
    if (!s && !(b->test_source = strdup(src))) s = HN_ERR_NOMEM;
    if (!s) s = hn_model_load(&b->m, r->model, NULL);
    if (!s) model_facts(b), s = count_tokens(b->m, &b->train, r->max_len, &b->train_tokens);
    if (!s) s = count_tokens(b->m, &b->test, r->max_len, &b->test_tokens);
    if (!s) s = baseline(b);
    return s;
}

hn_status hn_bakeoff_prepare(hn_bakeoff *b, const hn_bakeoff_recipe *r) {
    memset(b, 0, sizeof *b);
    b->r = r;
    b->threads = hn_threads_get();
    // The parent computes nothing in parallel (the children do), so no OpenMP thread team exists when it forks:
    // GNU OpenMP's team does not survive a fork, and a child that used it would wait for it forever.
    hn_threads_set(1);
    time_t now = time(NULL);
    struct tm tm;
    strftime(b->date, sizeof b->date, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    hn_status s;
    if (r->task == HN_BAKEOFF_GENERATE) {
        s = hn_model_load(&b->m, r->model, NULL);
        if (!s) model_facts(b), s = hn_bakeoff_gen_prepare(b);
    } else {
        s = prepare_classify(b, r);
    }
    if (!s && !(b->rows = hn_calloc((size_t)(r->n_methods ? r->n_methods : 1), sizeof *b->rows, "rows")))
        s = HN_ERR_NOMEM;
    for (int i = 0; !s && i < r->n_methods; i++) {
        snprintf(b->rows[i].method, sizeof b->rows[i].method, "%s",
                 r->methods[i].me ? r->methods[i].me->name : r->methods[i].gen);
        snprintf(b->rows[i].label, sizeof b->rows[i].label, "%s", r->methods[i].label);
    }
    if (s) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", hn_errmsg());
        hn_threads_set(b->threads);
        hn_bakeoff_deinit(b);
        hn_fail(s, "%s", msg);
    }
    return s;
}

void hn_bakeoff_deinit(hn_bakeoff *b) {
    hn_cls_data_deinit(&b->train), hn_cls_data_deinit(&b->test);
    hn_bakeoff_gen_deinit(&b->gen);
    hn_model_destroy(b->m);
    free(b->rows), free(b->test_source);
    memset(b, 0, sizeof *b);
}

// ---- the child

static void send_msg(int fd, const msg_head *h, const void *payload) {
    char buf[sizeof *h + sizeof(hn_bakeoff_row) + MSG_TEXT_MAX];
    memcpy(buf, h, sizeof *h);
    if (h->len) memcpy(buf + sizeof *h, payload, (size_t)h->len);
    size_t n = sizeof *h + (size_t)h->len, off = 0;
    while (off < n) {
        ssize_t k = write(fd, buf + off, n - off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return; // the parent is gone: nothing to tell
        off += (size_t)k;
    }
}

void hn_bakeoff_child_progress(void *user, int64_t done, int64_t total) {
    hn_bakeoff_child *c = user;
    double now = hn_now();
    if (now - c->last < 0.1 && done < total) return; // a few messages a second are enough for a display
    c->last = now;
    msg_head h = {MSG_PROGRESS, c->phase, done, total, now - c->t0, 0};
    send_msg(c->fd, &h, NULL);
}

void hn_bakeoff_child_phase(hn_bakeoff_child *c, int p, int64_t total) {
    c->phase = p, c->t0 = hn_now(), c->last = 0;
    hn_bakeoff_child_progress(c, 0, total);
}

static void child_log(hn_log_level level, const char *msg, void *user) {
    hn_bakeoff_child *c = user;
    size_t n = strlen(msg);
    if (n > MSG_TEXT_MAX - 1) n = MSG_TEXT_MAX - 1;
    char text[MSG_TEXT_MAX];
    memcpy(text, msg, n), text[n] = 0;
    msg_head h = {MSG_LOG, c->phase, 0, 0, hn_now() - c->t0, (int32_t)n + 1};
    send_msg(c->fd, &h, text);
}

static hn_status child_eval(const hn_bakeoff *b, const hn_cls_method *me, void *st, hn_bakeoff_child *c,
                            hn_cls_metrics *mt) {
    const hn_cls_data *t = &b->test;
    int K = t->n_classes;
    int32_t *pred = hn_calloc((size_t)t->n, sizeof *pred, "predictions");
    float *p = hn_calloc((size_t)PREDICT_CHUNK * K, sizeof *p, "class probabilities");
    hn_status s = pred && p ? HN_OK : HN_ERR_NOMEM;
    for (int i = 0; i < t->n && !s; i += PREDICT_CHUNK) {
        int k = t->n - i < PREDICT_CHUNK ? t->n - i : PREDICT_CHUNK;
        if ((s = me->predict(b->m, st, (const char *const *)t->texts + i, k, p))) break;
        for (int j = 0; j < k; j++) {
            const float *row = p + (size_t)j * K;
            int best = 0;
            for (int c2 = 1; c2 < K; c2++)
                if (row[c2] > row[best]) best = c2;
            pred[i + j] = best;
        }
        hn_bakeoff_child_progress(c, i + k, t->n);
    }
    if (!s) s = hn_cls_metrics_compute(mt, pred, t->labels, t->n, K);
    free(pred), free(p);
    return s;
}

// A classification method: trained, then the test set predicted.
static void child_classify(const hn_bakeoff *b, int ix, hn_bakeoff_child *c, hn_bakeoff_row *row) {
    const hn_bakeoff_entry *e = &b->r->methods[ix];
    hn_cls_options o = e->o;
    o.threads = b->threads, o.progress = hn_bakeoff_child_progress, o.progress_user = c;
    void *st = NULL;
    hn_cls_metrics mt = {0};
    hn_bakeoff_child_phase(c, HN_BAKEOFF_PHASE_TRAIN, 0);
    double t = hn_now();
    hn_status s = e->me->train(b->m, &b->train, NULL, &o, &st);
    row->train_s = hn_now() - t;
    if (!s) {
        row->n_trainable = e->me->n_trainable(st);
        hn_bakeoff_child_phase(c, HN_BAKEOFF_PHASE_EVAL, b->test.n);
        t = hn_now();
        s = child_eval(b, e->me, st, c, &mt);
        row->eval_s = hn_now() - t;
    }
    if (s) {
        row->state = HN_BAKEOFF_FAILED;
        snprintf(row->message, sizeof row->message, "%s failed: %s", phase_names[c->phase], hn_errmsg());
    } else {
        row->accuracy = mt.accuracy, row->macro_f1 = mt.macro_f1;
        row->train_tok_s = row->train_s > 0 ? b->train_tokens / row->train_s : 0;
        row->eval_tok_s = row->eval_s > 0 ? b->test_tokens / row->eval_s : 0;
    }
    // No cleanup: the process ends after the row is sent.
}

// ix < 0: generation's untrained model (the baseline row).
static void child_main(const hn_bakeoff *b, int ix, int fd) {
    hn_bakeoff_child c = {.fd = fd, .t0 = hn_now()};
    hn_log_set(child_log, &c, HN_LOG_WARN);
    hn_threads_set(b->threads);
    hn_bakeoff_row row = ix < 0 ? b->baseline : b->rows[ix];
    row.state = ix < 0 ? HN_BAKEOFF_BASELINE : HN_BAKEOFF_RAN;
    if (b->r->task == HN_BAKEOFF_GENERATE) hn_bakeoff_gen_child(b, ix, &c, &row);
    else child_classify(b, ix, &c, &row);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) row.peak_rss = (int64_t)ru.ru_maxrss * 1024; // Linux: kilobytes
    msg_head h = {MSG_ROW, c.phase, 0, 0, 0, (int32_t)sizeof row};
    send_msg(fd, &h, &row);
    // No cleanup: the process ends here (_exit: no atexit handlers or stdio buffers of the parent's).
}

// ---- the parent

typedef struct {
    hn_bakeoff_event_fn fn;
    void *user;
    hn_bakeoff_event ev;
    double method_t0, phase_t0;
} watcher;

static void emit(watcher *w, hn_bakeoff_event_kind kind) {
    double now = hn_now();
    w->ev.kind = kind;
    w->ev.method_s = now - w->method_t0;
    w->ev.phase_s = now - w->phase_t0;
    if (w->fn) w->fn(&w->ev, w->user);
}

// Reads the child's messages until it closes the pipe; true if its row came.
static bool watch(watcher *w, int fd, hn_bakeoff_row *row) {
    char buf[sizeof(msg_head) + sizeof(hn_bakeoff_row) + MSG_TEXT_MAX];
    size_t have = 0;
    bool got = false;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int k = poll(&p, 1, TICK_MS);
        if (k < 0 && errno == EINTR) continue;
        if (k == 0) {
            emit(w, HN_BAKEOFF_PROGRESS);
            continue;
        }
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return got;
        have += (size_t)n;
        msg_head h;
        while (have >= sizeof h) {
            memcpy(&h, buf, sizeof h);
            if (h.len < 0 || (size_t)h.len > sizeof buf - sizeof h) return got; // not our child's message
            if (have < sizeof h + (size_t)h.len) break;
            const char *payload = buf + sizeof h;
            if (h.kind == MSG_PROGRESS) {
                w->ev.phase = phase_names[h.phase >= 0 && h.phase < HN_BAKEOFF_PHASES ? h.phase : 0];
                w->ev.done = h.done, w->ev.total = h.total;
                w->phase_t0 = hn_now() - h.phase_s;
                emit(w, HN_BAKEOFF_PROGRESS);
            } else if (h.kind == MSG_LOG && h.len > 0) {
                char text[MSG_TEXT_MAX];
                snprintf(text, sizeof text, "%.*s", h.len - 1, payload);
                w->ev.text = text;
                emit(w, HN_BAKEOFF_LOG);
                w->ev.text = NULL;
            } else if (h.kind == MSG_ROW && h.len == (int32_t)sizeof *row) {
                memcpy(row, payload, sizeof *row);
                row->method[sizeof row->method - 1] = row->label[sizeof row->label - 1] = 0;
                row->message[sizeof row->message - 1] = 0;
                got = true;
            }
            have -= sizeof h + (size_t)h.len;
            memmove(buf, buf + sizeof h + h.len, have);
        }
    }
}

static void run_child(const hn_bakeoff *b, int ix, watcher *w, hn_bakeoff_row *row) {
    int fds[2];
    if (pipe(fds) != 0) {
        row->state = HN_BAKEOFF_FAILED;
        snprintf(row->message, sizeof row->message, "cannot create a pipe: %s", strerror(errno));
        return;
    }
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        signal(SIGPIPE, SIG_DFL);
        child_main(b, ix, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        row->state = HN_BAKEOFF_FAILED;
        snprintf(row->message, sizeof row->message, "cannot start a process: %s", strerror(errno));
        return;
    }
    bool got = watch(w, fds[0], row);
    if (!got) kill(pid, SIGKILL); // it sent something else than our messages, or closed the pipe early
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got) return;
    row->state = HN_BAKEOFF_FAILED;
    if (WIFSIGNALED(status))
        snprintf(row->message, sizeof row->message, "%s crashed: signal %d (%s)%s", w->ev.phase ? w->ev.phase : "train",
                 WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WTERMSIG(status) == SIGKILL ? "; killed from outside, or by the kernel for want of memory" : "");
    else
        snprintf(row->message, sizeof row->message, "the method's process ended (status %d) without a result",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

hn_status hn_bakeoff_run(hn_bakeoff *b, hn_bakeoff_event_fn fn, void *user) {
    double t0 = hn_now();
    const hn_bakeoff_recipe *r = b->r;
    bool gen = r->task == HN_BAKEOFF_GENERATE;
    // Generation measures its baseline, the untrained model, in a child of its own first (place 0).
    for (int i = gen ? -1 : 0; i < r->n_methods; i++) {
        const hn_bakeoff_entry *e = i >= 0 ? &r->methods[i] : NULL;
        hn_bakeoff_row *row = e ? &b->rows[i] : &b->baseline;
        watcher w = {.fn = fn, .user = user, .method_t0 = hn_now()};
        w.phase_t0 = w.method_t0;
        w.ev = (hn_bakeoff_event){.index = i + gen, .count = r->n_methods + gen, .method = row->method,
                                  .label = row->label};
        emit(&w, HN_BAKEOFF_START);
        hn_status na = !e ? HN_OK : gen ? hn_bakeoff_gen_applies(e, row) : e->me->applies(b->m);
        if (na && !gen) {
            row->state = HN_BAKEOFF_NOT_APPLICABLE;
            snprintf(row->message, sizeof row->message, "%s", hn_errmsg());
        } else if (!na) {
            run_child(b, i, &w, row);
        }
        w.ev.row = row;
        emit(&w, HN_BAKEOFF_DONE);
    }
    b->wall_s = hn_now() - t0;
    hn_threads_set(b->threads);
    return HN_OK;
}
