// tests/test_trainer.c — the training loop on a toy objective whose gradients are known: a bigram softmax model
// (logits of the next token = W[previous token] + b). Checks: the loss falls; 2 micro-batches of 2 give the update of
// one batch of 4; resume (after an interrupt, and after a kill -9 in a child process) gives the same bits as a run
// straight through; checkpoints that are damaged, truncated, of a newer version or of other tensors are refused with
// a message and change nothing; NaN policy stop and skip; metrics.jsonl lines parse and hold the keys; the lr follows
// the schedule; early stopping; step counts with epochs and accumulation; the progress lines.
#include "tests/test.h"
#include "train/trainer.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { V = 16 };

typedef struct {
    float w[V * V], wg[V * V], b[V], bg[V];
    hn_param pw, pb;
    hn_param_list list;
    hn_rng rng;
    bool dropout;              // drop each token's gradient with probability 1/4 (draws from rng)
    int64_t calls;             // loss_grad calls
    int64_t nan_call;          // this loss_grad call returns a NaN loss (0: never)
    int64_t stop_call;         // this call raises *stop
    int64_t kill_call;         // this call kills the process
    volatile sig_atomic_t *stop;
    bool training;
} toy;

static double row_loss(const toy *t, int prev, int cur, float *p) {
    const float *z = t->w + prev * V;
    float mx = -INFINITY;
    for (int j = 0; j < V; j++) mx = fmaxf(mx, z[j] + t->b[j]);
    double s = 0;
    for (int j = 0; j < V; j++) s += exp((double)(z[j] + t->b[j] - mx));
    for (int j = 0; p && j < V; j++) p[j] = (float)(exp((double)(z[j] + t->b[j] - mx)) / s);
    return mx + log(s) - (z[cur] + t->b[cur]);
}

static hn_status toy_loss_grad(void *user, const hn_batch *b, float scale, double *loss_sum, int64_t *n_loss) {
    toy *t = user;
    t->calls++;
    if (t->kill_call && t->calls == t->kill_call) raise(SIGKILL);
    if (t->stop_call && t->calls == t->stop_call) *t->stop = 1;
    *loss_sum = 0;
    *n_loss = 0;
    float p[V];
    for (int r = 0; r < b->B; r++)
        for (int i = 1; i < b->T; i++) {
            if (!b->mask[r * b->T + i]) continue;
            int prev = b->ids[r * b->T + i - 1], cur = b->ids[r * b->T + i];
            *loss_sum += row_loss(t, prev, cur, p);
            ++*n_loss;
            if (t->dropout && (hn_rng_u64(&t->rng) & 3) == 0) continue;
            for (int j = 0; j < V; j++) {
                float d = scale * (p[j] - (j == cur));
                t->wg[prev * V + j] += d;
                t->bg[j] += d;
            }
        }
    if (t->nan_call && t->calls == t->nan_call) *loss_sum = NAN, t->bg[0] = NAN;
    return HN_OK;
}

static hn_status toy_loss(void *user, const hn_batch *b, double *loss_sum, int64_t *n_loss) {
    toy *t = user;
    *loss_sum = 0;
    *n_loss = 0;
    for (int r = 0; r < b->B; r++)
        for (int i = 1; i < b->T; i++)
            if (b->mask[r * b->T + i]) *loss_sum += row_loss(t, b->ids[r * b->T + i - 1], b->ids[r * b->T + i], NULL),
                                       ++*n_loss;
    return HN_OK;
}

static void toy_set_training(void *user, bool on) { ((toy *)user)->training = on; }

static void toy_init(toy *t, bool dropout) {
    memset(t, 0, sizeof *t);
    t->pw = (hn_param){.name = "w", .data = t->w, .grad = t->wg, .n = V * V, .ndim = 2, .ne = {V, V}};
    t->pb = (hn_param){.name = "b", .data = t->b, .grad = t->bg, .n = V, .ndim = 1, .ne = {V, 1}, .no_decay = true};
    hn_param_list_add(&t->list, &t->pw);
    hn_param_list_add(&t->list, &t->pb);
    hn_rng_seed(&t->rng, 7);
    t->dropout = dropout;
    for (int i = 0; i < V * V; i++) t->w[i] = 0.01f * (float)((i * 7) % 11 - 5);
}

static hn_objective toy_objective(toy *t) {
    return (hn_objective){.user = t, .params = &t->list, .loss_grad = toy_loss_grad, .loss = toy_loss,
                          .set_training = toy_set_training, .rng = t->dropout ? &t->rng : NULL};
}

// n examples of lengths 4..11 following next = (mul * prev + add) % V, with one token in five random.
static void make_data(hn_dataset *ds, int n, int mul, int add, uint64_t seed) {
    memset(ds, 0, sizeof *ds);
    hn_rng r;
    hn_rng_seed(&r, seed);
    ds->ex = calloc((size_t)n, sizeof *ds->ex);
    ds->n = n;
    for (int i = 0; i < n; i++) {
        int len = 4 + (int)(hn_rng_u64(&r) % 8);
        hn_example *e = &ds->ex[i];
        e->ids = malloc((size_t)len * 5);
        e->mask = (uint8_t *)(e->ids + len);
        e->n = len;
        e->ids[0] = (int32_t)(hn_rng_u64(&r) % V);
        for (int k = 1; k < len; k++)
            e->ids[k] = hn_rng_u64(&r) % 5 ? (mul * e->ids[k - 1] + add) % V : (int32_t)(hn_rng_u64(&r) % V);
        for (int k = 0; k < len; k++) e->mask[k] = k > 0 && !(i % 3 == 0 && k == 1); // some prompt tokens
        ds->n_tokens += len;
        for (int k = 0; k < len; k++) ds->n_loss_tokens += e->mask[k];
    }
    ds->n_loaded = n;
}

static char tmp_root[256];

static char *run_dir(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", tmp_root, name);
    return p;
}

static void base_config(hn_train_config *c, const char *dir) {
    hn_train_config_init(c);
    c->output_dir = strdup(dir);
    c->lr = 0.1;
    c->lr_scheduler = HN_SCHED_CONSTANT;
    c->max_steps = 12;
    c->batch_size = 4;
    c->weight_decay = 0.01;
    c->max_grad_norm = 1.0;
}

static hn_loader make_loader(const hn_dataset *ds, int batch, bool shuffle, uint64_t seed) {
    hn_loader_params lp = hn_loader_default_params();
    lp.batch = batch;
    lp.shuffle = shuffle;
    lp.seed = seed;
    hn_loader ld;
    if (hn_loader_init(&ld, ds, &lp)) fprintf(stderr, "loader: %s\n", hn_errmsg()), exit(1);
    return ld;
}

// Every "loss" of DIR/metrics.jsonl as text, one per line, in a malloc'd string.
static char *metric_texts(const char *dir, const char *key) {
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) return strdup("");
    size_t cap = 1 << 16, n = 0;
    char *out = calloc(cap, 1), line[1024], pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, pat);
        if (!p) continue;
        p += strlen(pat);
        size_t l = strcspn(p, ",}");
        if (n + l + 2 < cap) memcpy(out + n, p, l), n += l, out[n++] = '\n';
    }
    fclose(f);
    return out;
}

static int count_lines(const char *dir) {
    char *s = metric_texts(dir, "step");
    int n = 0;
    for (char *p = s; *p; p++) n += *p == '\n';
    free(s);
    return n;
}

// ---- tests

static void test_learns(void) {
    hn_dataset ds;
    make_data(&ds, 40, 3, 1, 1);
    toy t;
    toy_init(&t, false);
    hn_objective o = toy_objective(&t);
    hn_loader ld = make_loader(&ds, 4, true, 1);
    hn_train_config c;
    base_config(&c, run_dir("learns"));
    c.max_steps = 40;
    c.lr_scheduler = HN_SCHED_COSINE;
    c.warmup_steps = 4;
    c.log_every = 10;
    hn_train_result r;
    hn_status s = hn_train(&o, &ld, NULL, &c, NULL, &r);
    CHECK(s == HN_OK, "train: %s", hn_errmsg());
    CHECK(r.end == HN_TRAIN_COMPLETED && r.step == 40 && r.total == 40, "end %d step %lld", r.end, (long long)r.step);
    char *losses = metric_texts(c.output_dir, "loss");
    double first = atof(losses), last = r.loss;
    CHECK(last < 0.5 * first, "loss falls: %g -> %g", first, last);
    free(losses);

    // metrics.jsonl: every line is JSON with the keys; lr follows the schedule (lr before update k is lr_at(k-1)).
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.jsonl", c.output_dir);
    FILE *f = fopen(path, "r");
    char line[1024];
    int n = 0, bad = 0;
    hn_lr_schedule sch = {HN_SCHED_COSINE, 0.1, 4, 40};
    while (f && fgets(line, sizeof line, f)) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        n++;
        if (!j || !json_is_integer(json_object_get(j, "step")) || !json_is_real(json_object_get(j, "loss")) ||
            !json_is_number(json_object_get(j, "lr")) || !json_is_number(json_object_get(j, "tokens_per_s")) ||
            !json_is_number(json_object_get(j, "grad_norm")) || json_object_get(j, "val_loss") ||
            json_integer_value(json_object_get(j, "step")) != n ||
            json_number_value(json_object_get(j, "lr")) != hn_lr_at(&sch, n - 1))
            bad++;
        json_decref(j);
    }
    if (f) fclose(f);
    CHECK(n == 40 && bad == 0, "metrics.jsonl: %d lines, %d bad", n, bad);
    struct stat sb;
    snprintf(path, sizeof path, "%s/config.yaml", c.output_dir);
    CHECK(stat(path, &sb) == 0 && sb.st_size > 100, "config.yaml written");
    snprintf(path, sizeof path, "%s/checkpoint", c.output_dir);
    CHECK(stat(path, &sb) != 0, "save_every 0: no checkpoint");

    // The same directory again without resume: refused.
    hn_loader_deinit(&ld);
    ld = make_loader(&ds, 4, true, 1);
    s = hn_train(&o, &ld, NULL, &c, NULL, &r);
    CHECK(s == HN_ERR_ARG && strstr(hn_errmsg(), "already holds a training run"), "reuse refused: %s", hn_errmsg());
    c.resume = true;
    s = hn_train(&o, &ld, NULL, &c, NULL, &r);
    CHECK(s == HN_ERR_NOTFOUND && strstr(hn_errmsg(), "no checkpoint"), "resume without one: %s", hn_errmsg());
    hn_train_config_deinit(&c);
    hn_loader_deinit(&ld);
    hn_param_list_deinit(&t.list);
    hn_dataset_deinit(&ds);
}

// 2 micro-batches of 2 = 1 batch of 4: the same tokens, the same 1/L scale, the same order of additions.
static void test_accum(void) {
    hn_dataset ds;
    make_data(&ds, 16, 3, 1, 2);
    toy a, b;
    toy_init(&a, false);
    toy_init(&b, false);
    hn_objective oa = toy_objective(&a), ob = toy_objective(&b);
    hn_loader la = make_loader(&ds, 4, false, 0), lb = make_loader(&ds, 2, false, 0);
    hn_train_config ca, cb;
    base_config(&ca, run_dir("accum_a"));
    base_config(&cb, run_dir("accum_b"));
    ca.max_steps = cb.max_steps = 6;
    cb.batch_size = 2;
    cb.grad_accum = 2;
    hn_train_result ra, rb;
    CHECK(hn_train(&oa, &la, NULL, &ca, NULL, &ra) == HN_OK, "a: %s", hn_errmsg());
    CHECK(hn_train(&ob, &lb, NULL, &cb, NULL, &rb) == HN_OK, "b: %s", hn_errmsg());
    CHECK(a.calls == 6 && b.calls == 12, "calls %lld %lld", (long long)a.calls, (long long)b.calls);
    CHECK(!memcmp(a.w, b.w, sizeof a.w) && !memcmp(a.b, b.b, sizeof a.b), "same weights bit for bit");
    CHECK(fabs(ra.loss - rb.loss) <= 1e-12 * ra.loss && ra.tokens == rb.tokens, "loss %.17g vs %.17g", ra.loss,
          rb.loss);
    hn_train_config_deinit(&ca);
    hn_train_config_deinit(&cb);
    hn_loader_deinit(&la);
    hn_loader_deinit(&lb);

    // Steps with epochs: 10 examples, batch 3 -> 4 batches an epoch; grad_accum 3 -> steps of 3 and 1 batches.
    hn_dataset d10;
    make_data(&d10, 10, 3, 1, 3);
    hn_loader l10 = make_loader(&d10, 3, true, 5);
    hn_train_config c;
    base_config(&c, run_dir("epochs"));
    c.max_steps = 0;
    c.epochs = 2;
    c.grad_accum = 3;
    CHECK(hn_train_total_steps(&l10, &c) == 4, "4 steps: %lld", (long long)hn_train_total_steps(&l10, &c));
    a.calls = 0;
    hn_train_result r;
    CHECK(hn_train(&oa, &l10, NULL, &c, NULL, &r) == HN_OK, "epochs: %s", hn_errmsg());
    CHECK(r.step == 4 && a.calls == 8 && r.tokens == 2 * d10.n_tokens, "steps %lld calls %lld tokens %lld",
          (long long)r.step, (long long)a.calls, (long long)r.tokens);
    char *ep = metric_texts(c.output_dir, "epoch");
    CHECK(!strcmp(ep, "0\n0\n1\n1\n"), "epochs of the steps: %s", ep);
    free(ep);
    hn_train_config_deinit(&c);
    hn_loader_deinit(&l10);
    hn_dataset_deinit(&d10);
    hn_param_list_deinit(&a.list);
    hn_param_list_deinit(&b.list);
    hn_dataset_deinit(&ds);
}

typedef struct {
    hn_dataset ds, vs;
    hn_loader ld, lv;
    toy t;
    hn_objective o;
    hn_train_config c;
} rig;

static void rig_init(rig *g, const char *dir, int save_every) {
    make_data(&g->ds, 30, 3, 1, 4);
    make_data(&g->vs, 6, 3, 1, 5);
    g->ld = make_loader(&g->ds, 4, true, 9);
    g->lv = make_loader(&g->vs, 4, false, 0);
    toy_init(&g->t, true);
    g->o = toy_objective(&g->t);
    base_config(&g->c, dir);
    g->c.lr_scheduler = HN_SCHED_LINEAR;
    g->c.warmup_steps = 2;
    g->c.max_steps = 12;
    g->c.grad_accum = 2;
    g->c.eval_every = 5;
    g->c.save_every = save_every;
}

static void rig_deinit(rig *g) {
    hn_train_config_deinit(&g->c);
    hn_loader_deinit(&g->ld);
    hn_loader_deinit(&g->lv);
    hn_param_list_deinit(&g->t.list);
    hn_dataset_deinit(&g->ds);
    hn_dataset_deinit(&g->vs);
}

static void test_resume(void) {
    // Straight through: 12 steps.
    rig a;
    rig_init(&a, run_dir("straight"), 0);
    hn_train_result ra;
    CHECK(hn_train(&a.o, &a.ld, &a.lv, &a.c, NULL, &ra) == HN_OK, "straight: %s", hn_errmsg());
    char *want = metric_texts(a.c.output_dir, "loss"), *want_val = metric_texts(a.c.output_dir, "val_loss");

    // Killed (SIGKILL) in step 7 with a checkpoint at step 4: metrics.jsonl has lines 5 and 6 past it.
    rig b;
    rig_init(&b, run_dir("killed"), 4);
    pid_t pid = fork();
    if (pid == 0) {
        b.t.kill_call = 13; // step 7's first micro-batch
        hn_train(&b.o, &b.ld, &b.lv, &b.c, NULL, NULL);
        _exit(3);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL, "the child was killed (status %d)", ws);
    CHECK(count_lines(b.c.output_dir) == 6, "6 lines before the kill: %d", count_lines(b.c.output_dir));
    b.c.resume = true;
    b.c.threads = 3; // a key that may change
    hn_train_result rb;
    CHECK(hn_train(&b.o, &b.ld, &b.lv, &b.c, NULL, &rb) == HN_OK, "resume after kill: %s", hn_errmsg());
    CHECK(rb.start_step == 4 && rb.step == 12, "resumed from %lld", (long long)rb.start_step);
    char *got = metric_texts(b.c.output_dir, "loss"), *got_val = metric_texts(b.c.output_dir, "val_loss");
    CHECK(!strcmp(got, want) && !strcmp(got_val, want_val), "the same losses after a kill:\n%s---\n%s", got, want);
    CHECK(!memcmp(a.t.w, b.t.w, sizeof a.t.w) && !memcmp(a.t.b, b.t.b, sizeof a.t.b), "the same weights (kill)");
    CHECK(!memcmp(&a.t.rng, &b.t.rng, sizeof a.t.rng), "the same rng state");
    free(got);
    free(got_val);

    // Interrupted (the stop flag) during step 6: the step finishes, a checkpoint is written, resume to 12.
    rig d;
    rig_init(&d, run_dir("interrupted"), 0);
    static volatile sig_atomic_t stop;
    d.t.stop = &stop;
    d.t.stop_call = 11;
    hn_train_hooks h = {.stop = &stop};
    hn_train_result rd;
    CHECK(hn_train(&d.o, &d.ld, &d.lv, &d.c, &h, &rd) == HN_OK, "interrupted: %s", hn_errmsg());
    CHECK(rd.end == HN_TRAIN_INTERRUPTED && rd.step == 6, "end %d at %lld", rd.end, (long long)rd.step);
    stop = 0;
    d.c.resume = true;
    d.c.lr = 0.2;
    CHECK(hn_train(&d.o, &d.ld, &d.lv, &d.c, &h, &rd) == HN_ERR_ARG && strstr(hn_errmsg(), "lr differs") &&
              strstr(hn_errmsg(), "0.1 there, 0.2 now"),
          "another lr refused: %s", hn_errmsg());
    d.c.lr = 0.1;
    d.c.save_every = 100; // may change
    d.c.log_every = 3;
    CHECK(hn_train(&d.o, &d.ld, &d.lv, &d.c, &h, &rd) == HN_OK, "resume: %s", hn_errmsg());
    got = metric_texts(d.c.output_dir, "loss");
    CHECK(rd.end == HN_TRAIN_COMPLETED && !strcmp(got, want), "the same losses after an interrupt:\n%s", got);
    CHECK(!memcmp(a.t.w, d.t.w, sizeof a.t.w) && !memcmp(a.t.b, d.t.b, sizeof a.t.b), "the same weights (stop)");
    free(got);
    // A finished run resumed: nothing to do.
    CHECK(hn_train(&d.o, &d.ld, &d.lv, &d.c, &h, &rd) == HN_OK && rd.start_step == 12 && rd.step == 12,
          "resume a finished run: %s", hn_errmsg());
    free(want);
    free(want_val);
    rig_deinit(&a);
    rig_deinit(&b);
    rig_deinit(&d);
}

static bool read_file(const char *path, uint8_t **data, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(*n);
    bool ok = fread(*data, 1, *n, f) == *n;
    fclose(f);
    return ok;
}

static void write_file(const char *path, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

static void test_checkpoint_errors(void) {
    rig g;
    rig_init(&g, run_dir("ckpt"), 3);
    g.c.max_steps = 3;
    CHECK(hn_train(&g.o, &g.ld, &g.lv, &g.c, NULL, NULL) == HN_OK, "train: %s", hn_errmsg());
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/checkpoint", g.c.output_dir);
    snprintf(path, sizeof path, "%s/state.bin", dir);
    uint8_t *good = NULL;
    size_t n = 0;
    CHECK(read_file(path, &good, &n) && n > 3 * 4 * (V * V + V), "state.bin: %zu bytes", n);

    toy t;
    toy_init(&t, true);
    hn_adamw opt;
    hn_adamw_params ap = hn_adamw_default_params();
    hn_adamw_init(&opt, &t.list, &ap);
    float w0[V * V];
    memcpy(w0, t.w, sizeof w0);
    hn_ckpt_state st;
    CHECK(hn_ckpt_load(dir, &t.list, &opt, &st) == HN_OK, "good: %s", hn_errmsg());
    CHECK(st.step == 3 && opt.t == 3 && st.has_rng && !memcmp(t.w, g.t.w, sizeof t.w) && st.config_yaml &&
              strstr(st.config_yaml, "max_steps: 3"),
          "loaded step %lld", (long long)st.step);
    free(st.config_yaml);
    memcpy(t.w, w0, sizeof w0);
    opt.t = 0;

    // Every prefix (a truncated file), and one flipped bit in every byte: refused, nothing changed, no crash.
    // (every length through the header, then strided through the configuration and the tensors)
    int ok_trunc = 0, ok_flip = 0, n_trunc = 0;
    for (size_t k = 0; k < n; k += k < 200 ? 1 : 1 + k / 32, n_trunc++) {
        write_file(path, good, k);
        hn_status s = hn_ckpt_load(dir, &t.list, &opt, &st);
        ok_trunc += s == HN_ERR_FORMAT && strstr(hn_errmsg(), "state.bin");
    }
    uint8_t *bad = malloc(n);
    for (size_t k = 0; k < n; k += 1 + k / 64) {
        memcpy(bad, good, n);
        bad[k] ^= 1u << (k % 8);
        write_file(path, bad, n);
        hn_status s = hn_ckpt_load(dir, &t.list, &opt, &st);
        ok_flip += s == HN_ERR_FORMAT || s == HN_ERR_UNSUPPORTED;
    }
    int n_flip = 0;
    for (size_t k = 0; k < n; k += 1 + k / 64) n_flip++;
    CHECK(ok_trunc == n_trunc, "truncations refused: %d of %d", ok_trunc, n_trunc);
    CHECK(ok_flip == n_flip, "flips refused: %d of %d", ok_flip, n_flip);
    CHECK(!memcmp(t.w, w0, sizeof w0) && opt.t == 0, "failed loads change nothing");
    write_file(path, good, n - 1);
    CHECK(hn_ckpt_load(dir, &t.list, &opt, &st) == HN_ERR_FORMAT && strstr(hn_errmsg(), "checksum"), "%s",
          hn_errmsg());

    // A newer version: refused as such (before the checksum, which a newer format may compute otherwise).
    memcpy(bad, good, n);
    bad[4] = 2;
    write_file(path, bad, n);
    CHECK(hn_ckpt_load(dir, &t.list, &opt, &st) == HN_ERR_UNSUPPORTED && strstr(hn_errmsg(), "version 2 is newer"),
          "newer: %s", hn_errmsg());
    memcpy(bad, "GGUF", 4);
    write_file(path, bad, n);
    CHECK(hn_ckpt_load(dir, &t.list, &opt, &st) == HN_ERR_FORMAT && strstr(hn_errmsg(), "not a hone checkpoint"),
          "magic: %s", hn_errmsg());

    // Another model's tensors: a missing name, another size.
    write_file(path, good, n);
    strcpy(t.pb.name, "bias");
    CHECK(hn_ckpt_load(dir, &t.list, &opt, &st) == HN_ERR_FORMAT && strstr(hn_errmsg(), "no tensor 'bias'"), "%s",
          hn_errmsg());
    strcpy(t.pb.name, "b");
    t.pb.n = V - 1;
    CHECK(hn_ckpt_load(dir, &t.list, &opt, &st) == HN_ERR_FORMAT && strstr(hn_errmsg(), "has 16 values, expected 15"),
          "%s", hn_errmsg());
    t.pb.n = V;
    hn_param_list one = {0};
    hn_param_list_add(&one, &t.pw);
    CHECK(hn_ckpt_load(dir, &one, &opt, &st) == HN_ERR_FORMAT && strstr(hn_errmsg(), "holds 2 trainable tensors"),
          "%s", hn_errmsg());
    hn_param_list_deinit(&one);
    CHECK(!memcmp(t.w, w0, sizeof w0) && opt.t == 0, "still nothing changed");

    // A save over a damaged checkpoint replaces it, and removes what a killed writer left behind.
    char stale[800];
    snprintf(stale, sizeof stale, "%s.tmp.99999", path);
    write_file(stale, good, 10);
    hn_ckpt_state ss = {.step = 2, .best_val = NAN, .config_yaml = "max_steps: 2\n"};
    CHECK(hn_ckpt_save(dir, &t.list, &opt, &ss) == HN_OK, "save: %s", hn_errmsg());
    CHECK(access(stale, F_OK) != 0, "stale temporary file removed");
    CHECK(hn_ckpt_load(dir, &t.list, &opt, &st) == HN_OK && st.step == 2 && isnan(st.best_val) &&
              !strcmp(st.config_yaml, "max_steps: 2\n"),
          "reload: %s", hn_errmsg());
    free(st.config_yaml);

    // The trainer reports a damaged checkpoint on resume.
    write_file(path, good, n / 2);
    g.c.resume = true;
    g.c.max_steps = 3;
    CHECK(hn_train(&g.o, &g.ld, &g.lv, &g.c, NULL, NULL) == HN_ERR_FORMAT && strstr(hn_errmsg(), "state.bin"),
          "resume from a damaged checkpoint: %s", hn_errmsg());
    snprintf(path, sizeof path, "%s/missing", tmp_root);
    CHECK(hn_ckpt_load(path, &t.list, &opt, &st) == HN_ERR_NOTFOUND, "no checkpoint: %s", hn_errmsg());
    free(bad);
    free(good);
    hn_adamw_deinit(&opt);
    hn_param_list_deinit(&t.list);
    rig_deinit(&g);
}

static void test_nan(void) {
    rig g;
    rig_init(&g, run_dir("nan_stop"), 0);
    g.t.nan_call = 5; // step 3's first micro-batch
    hn_train_result r;
    CHECK(hn_train(&g.o, &g.ld, NULL, &g.c, NULL, &r) == HN_ERR_RANGE && strstr(hn_errmsg(), "step 3: the loss is NaN"),
          "stop: %s", hn_errmsg());
    CHECK(r.step == 2 && count_lines(g.c.output_dir) == 2, "stopped after step 2: %lld", (long long)r.step);
    rig_deinit(&g);

    rig k;
    rig_init(&k, run_dir("nan_skip"), 0);
    k.t.nan_call = 5;
    k.c.nan_policy = HN_NAN_SKIP;
    CHECK(hn_train(&k.o, &k.ld, NULL, &k.c, NULL, &r) == HN_OK, "skip: %s", hn_errmsg());
    char *losses = metric_texts(k.c.output_dir, "loss"), *sk = metric_texts(k.c.output_dir, "skipped");
    CHECK(r.step == 12 && r.n_skipped == 1 && !strncmp(losses, "", 0) && strstr(losses, "\nnull\n") &&
              !strcmp(sk, "true\n"),
          "one skipped step:\n%s", losses);
    bool finite = true;
    for (int i = 0; i < V * V; i++) finite &= isfinite(k.t.w[i]);
    for (int i = 0; i < V; i++) finite &= isfinite(k.t.b[i]);
    CHECK(finite, "the weights stay finite");
    free(losses);
    free(sk);
    rig_deinit(&k);
}

static void test_early_stop(void) {
    // Validation data of another chain (next = prev + 5): training on the train chain makes it worse and worse.
    rig g;
    rig_init(&g, run_dir("early"), 0);
    hn_dataset_deinit(&g.vs);
    hn_loader_deinit(&g.lv);
    make_data(&g.vs, 6, 1, 5, 5);
    g.lv = make_loader(&g.vs, 4, false, 0);
    g.c.max_steps = 30;
    g.c.eval_every = 2;
    g.c.early_stopping_patience = 2;
    hn_train_result r;
    CHECK(hn_train(&g.o, &g.ld, &g.lv, &g.c, NULL, &r) == HN_OK, "train: %s", hn_errmsg());
    g.c.eval_every = 0;
    hn_train_result r2;
    CHECK(hn_train(&g.o, &g.ld, &g.lv, &g.c, NULL, &r2) == HN_ERR_ARG && strstr(hn_errmsg(), "eval_every"),
          "patience without eval_every: %s", hn_errmsg());
    char *vl = metric_texts(g.c.output_dir, "val_loss");
    CHECK(r.end == HN_TRAIN_EARLY_STOPPED && r.step == 6, "stopped at %lld (end %d); val:\n%s", (long long)r.step,
          r.end, vl);
    CHECK(atof(vl) == r.best_val_loss && r.val_loss > r.best_val_loss, "best %g last %g", r.best_val_loss, r.val_loss);
    free(vl);
    rig_deinit(&g);
}

static void test_progress(void) {
    FILE *f = tmpfile();
    hn_progress_bar bar = hn_progress_bar_init(f);
    CHECK(!bar.tty, "a file is not a terminal");
    for (int s = 1; s <= 7; s++) {
        hn_train_progress p = {.step = s, .total = 7, .loss = 1.0 / s, .lr = 1e-3, .tokens_per_s = 1000, .eta_s = 65,
                               .val_loss = s == 4 ? 0.5 : NAN, .log_every = 3, .last = s == 7};
        hn_progress_print(&p, &bar);
    }
    rewind(f);
    char buf[2048] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    CHECK(!strcmp(buf, "step 3/7  loss 0.3333  lr 1.00e-03  1000 tok/s  ETA 1m05s\n"
                       "step 4/7  loss 0.2500  lr 1.00e-03  1000 tok/s  ETA 1m05s  val_loss 0.5000\n"
                       "step 6/7  loss 0.1667  lr 1.00e-03  1000 tok/s  ETA 1m05s\n"
                       "step 7/7  loss 0.1429  lr 1.00e-03  1000 tok/s  ETA 1m05s\n"),
          "lines:\n%s", buf);
    hn_train_progress p = {.step = 2, .total = 4, .loss = NAN, .skipped = true, .lr = 0.5, .val_loss = NAN};
    char line[512];
    size_t l = hn_metrics_line(&p, 10, line, sizeof line);
    CHECK(l > 0 && strstr(line, "\"loss\":null") && strstr(line, "\"skipped\":true") && line[l - 1] == '\n', "%s",
          line);
    CHECK(hn_metrics_line(&p, 10, line, 20) == 0, "a short buffer gives 0");
}

int main(void) {
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmp_root, sizeof tmp_root, "%s/hone_trainer_XXXXXX", base);
    if (!mkdtemp(tmp_root)) return fprintf(stderr, "mkdtemp failed\n"), 1;
    hn_threads_set(1);
    test_resume(); // first: it forks, before any thread pool exists
    test_learns();
    test_accum();
    test_checkpoint_errors();
    test_nan();
    test_early_stop();
    test_progress();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (!test_failed && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    return test_done();
}
