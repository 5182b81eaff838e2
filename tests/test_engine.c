// tests/test_engine.c — the serving engine (serve/engine.h) on SmolLM2 in the fp32 reference path (HN_MM_EXACT):
//   - batched equals alone: requests of mixed prompt lengths and adapters (base, LoRA, DoRA, IA3, prompt tuning,
//     prefix tuning), all submitted at once with a small step budget (prompts split into chunks), give, token for
//     token, the text hn_generate gives for each alone with that adapter loaded the ordinary way;
//   - n samples at temperature 0.8 equal hn_generate with seeds s, s+1, ...;
//   - preemption: a pool too small for the running set preempts (counted) and the outputs do not change;
//   - the prefix cache: a second prompt with the first one's beginning takes its blocks (n_cached), and n samples
//     share their prompt's blocks (blocks in use measured against n separate copies);
//   - cancel, unload, and refused requests (unknown adapter, bad lengths, ids outside the vocabulary).
#include "adapt/method.h"
#include "serve/engine.h"
#include "serve/kv_pool.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static hn_model *m;
static char tmp[] = "/tmp/hone-engine-XXXXXX";

typedef struct {
    const char *name;      // NULL: the base
    char dir[256];
} adapter_case;

static adapter_case adapters[] = {{NULL}, {"lora"}, {"dora"}, {"ia3"}, {"prompt-tuning"}, {"prefix-tuning"}};
enum { N_AD = sizeof adapters / sizeof adapters[0] };

static const char *const prompts[] = {
    "The capital of France is",
    "Write a haiku about the sea. Keep it short and make every line count, with an image of waves breaking on the "
    "rocks at dawn and gulls crying over the foam.",
    "Q: What is 12 times 7?\nA:",
    "Once upon a time, in a small village at the edge of a dark forest, there lived an old clockmaker who had never "
    "left his workshop. One morning a stranger knocked on his door and asked him to mend a clock that",
};
enum { N_PROMPTS = sizeof prompts / sizeof prompts[0] };

// A fresh adapter of method name, moved off its initial values (seeded) so that it changes the output, saved.
static bool make_adapter(adapter_case *a, int k) {
    const hn_method_ops *ops = hn_method_find(a->name);
    if (!ops) return false;
    hn_method_config c = hn_method_default_config();
    c.seed = 11 + (uint64_t)k, c.lora.seed = c.seed, c.lora.r = 4;
    c.num_virtual_tokens = 5;
    c.init_text = "Answer in French, briefly.";
    hn_method *me = NULL;
    if (ops->attach_new(&me, m, &c)) {
        fprintf(stderr, "%s: %s\n", a->name, hn_errmsg());
        return false;
    }
    hn_rng r;
    hn_rng_seed(&r, 200 + (uint64_t)k);
    hn_param_list *pl = hn_method_params(me);
    float amp = !strcmp(a->name, "prompt-tuning") || !strcmp(a->name, "prefix-tuning") ? 0.02f : 0.05f;
    for (int i = 0; i < pl->n; i++)
        for (int64_t j = 0; j < pl->items[i]->n; j++) pl->items[i]->data[j] += amp * (2 * hn_rng_f32(&r) - 1);
    snprintf(a->dir, sizeof a->dir, "%s/%s", tmp, a->name);
    bool ok = hn_method_save(me, a->dir) == HN_OK;
    if (!ok) fprintf(stderr, "save %s: %s\n", a->name, hn_errmsg());
    hn_method_destroy(me);
    return ok;
}

static int32_t *encode(const char *text, int *n) {
    int32_t *ids = NULL;
    int64_t len = 0;
    if (hn_tokenizer_encode(m->tok, text, -1, HN_TOK_SPECIAL | HN_TOK_ADD_BOS, &ids, &len)) return NULL;
    *n = (int)len;
    return ids;
}

typedef struct {
    char *buf;
    size_t len;
} text;

static bool collect(const char *t, size_t n, void *user) {
    text *x = user;
    x->buf = realloc(x->buf, x->len + n + 1);
    memcpy(x->buf + x->len, t, n);
    x->len += n;
    x->buf[x->len] = 0;
    return true;
}

// What hn_generate gives for ids alone, with adapter a (or the base) loaded onto m the ordinary way.
static char *alone(const adapter_case *a, const int32_t *ids, int n, int max_tokens, float temp, uint64_t seed,
                   const char *stop) {
    hn_method *me = NULL;
    if (a->name && hn_method_load(&me, m, a->dir)) {
        fprintf(stderr, "load %s: %s\n", a->dir, hn_errmsg());
        return NULL;
    }
    hn_sampler_params sp = hn_sampler_default_params();
    sp.temp = temp, sp.seed = seed;
    hn_sampler *s = hn_sampler_create(&sp, hn_tokenizer_n_vocab(m->tok));
    hn_kv_cache *kv = hn_kv_cache_create(m, n + max_tokens + 1);
    text out = {calloc(1, 1), 0};
    const char *stops[1] = {stop};
    hn_generate_params gp = {.n_predict = max_tokens, .stop = stops, .n_stop = stop ? 1 : 0, .on_text = collect,
                             .user = &out};
    hn_generate_stats st;
    if (hn_generate(m, kv, s, ids, n, &gp, &st)) fprintf(stderr, "generate: %s\n", hn_errmsg());
    hn_kv_cache_destroy(kv);
    hn_sampler_destroy(s);
    hn_method_destroy(me);
    return out.buf;
}

typedef struct {
    int prompt, adapter, max_tokens;
    const char *stop;
    char *want;
    hn_job *job;
    text got;
    hn_finish finish;
    int n_cached;
} req;

static hn_request request_of(const req *q, int32_t *const *ids, const int *n_ids) {
    hn_request r = hn_request_default();
    r.prompt = ids[q->prompt], r.n_prompt = n_ids[q->prompt];
    r.adapter = adapters[q->adapter].name;
    r.max_tokens = q->max_tokens;
    r.stop = &q->stop, r.n_stop = q->stop ? 1 : 0;
    return r;
}

// Pulls every job's events until all are done, interleaved as they come.
static void drain(req *qs, int n) {
    for (int i = 0; i < n; i++) {
        hn_event ev;
        while (qs[i].job && hn_job_next(qs[i].job, &ev, 60)) {
            if (ev.len) collect(ev.text, ev.len, &qs[i].got);
            if (ev.done) qs[i].finish = ev.finish, qs[i].n_cached = ev.n_cached;
            if (ev.last) break;
        }
    }
}

// The mix of requests (prompt x adapter) with their texts generated alone; fewer and shorter under the sanitizers.
static int make_mix(req *qs, int32_t *const *ids, const int *n_ids) {
    bool short_run = getenv("HONE_SANITIZED") != NULL;
    int max_tokens = short_run ? 3 : 10, n = 0;
    for (int a = 0; a < N_AD; a++) // each adapter with two of the prompts (one short one under the sanitizers)
        for (int i = 0; i < N_PROMPTS; i++) {
            if (short_run ? i != (a % 2) * 2 : (i + a) % 2) continue;
            qs[n] = (req){.prompt = i, .adapter = a, .max_tokens = max_tokens + (i * 3 + a) % 5,
                          .stop = i == 2 ? "\n" : NULL};
            qs[n].want = alone(&adapters[a], ids[i], n_ids[i], qs[n].max_tokens, 0, 0, qs[n].stop);
            n++;
        }
    return n;
}

static void run_mix(req *qs, int n, int32_t *const *ids, const int *n_ids, const hn_engine_params *p,
                    const char *what) {
    hn_engine *e;
    CHECK(hn_engine_create(&e, m, p) == HN_OK, "%s: create: %s", what, hn_errmsg());
    if (!e) return;
    for (int a = 1; a < N_AD; a++)
        CHECK(hn_engine_load_adapter(e, adapters[a].name, adapters[a].dir, 1.0f) == HN_OK, "%s: load %s: %s", what,
              adapters[a].name, hn_errmsg());
    for (int i = 0; i < n; i++) {
        hn_request r = request_of(&qs[i], ids, n_ids);
        qs[i].got = (text){calloc(1, 1), 0};
        CHECK(hn_engine_submit(e, &r, &qs[i].job) == HN_OK, "%s: submit: %s", what, hn_errmsg());
    }
    drain(qs, n);
    int same = 0;
    for (int i = 0; i < n; i++) {
        bool eq = qs[i].want && !strcmp(qs[i].want, qs[i].got.buf);
        same += eq;
        CHECK(eq, "%s: prompt %d, adapter %s: batched '%s' != alone '%s'", what, qs[i].prompt,
              adapters[qs[i].adapter].name ? adapters[qs[i].adapter].name : "base", qs[i].got.buf,
              qs[i].want ? qs[i].want : "(none)");
        CHECK(qs[i].finish == HN_FINISH_STOP || qs[i].finish == HN_FINISH_LENGTH, "%s: finish %d", what,
              qs[i].finish);
        hn_job_free(qs[i].job);
        free(qs[i].got.buf);
    }
    hn_engine_stats st;
    hn_engine_stats_get(e, &st);
    printf("%s: %d/%d requests equal to generating alone; %lld steps, %lld preemptions, batch sizes 1:%lld 2-3:%lld "
           "4-7:%lld 8-15:%lld 16+:%lld\n", what, same, n, (long long)st.steps, (long long)st.preemptions,
           (long long)st.batch_hist[0], (long long)st.batch_hist[1], (long long)st.batch_hist[2],
           (long long)st.batch_hist[3], (long long)(st.batch_hist[4] + st.batch_hist[5] + st.batch_hist[6]));
    CHECK(st.batch_hist[2] + st.batch_hist[3] + st.batch_hist[4] > 0, "%s: no step batched 4 or more sequences",
          what);
    CHECK(st.blocks_used == 0, "%s: %d blocks still in use after every request ended", what, st.blocks_used);
    hn_engine_destroy(e);
}

// Three requests for a prompt of pb blocks (of 4 tokens) in a pool of 2 pb + 2: two are admitted, and when both
// grow past the pool the newer is preempted (its blocks freed), recomputed later, and still gives the same text.
static void test_preempt(int32_t *ids, int n_ids) {
    hn_engine_params p = hn_engine_default_params();
    p.block_tokens = 4;
    // Both running sequences need block pb + 2 once position (pb + 1) * 4 is computed: a block too many.
    const int pb = (n_ids + 3) / 4, max_tokens = (pb + 1) * 4 + 4 - n_ids;
    char *want = alone(&adapters[0], ids, n_ids, max_tokens, 0, 0, NULL);
    hn_kv_pool *probe = hn_kv_pool_create(m, (int64_t)8 << 20, p.block_tokens);
    p.kv_bytes = probe ? hn_kv_pool_block_bytes(probe) * (2 * pb + 2) : 0;
    hn_kv_pool_destroy(probe);
    p.prefix_cache = false;
    hn_engine *e;
    CHECK(hn_engine_create(&e, m, &p) == HN_OK, "preempt: create: %s", hn_errmsg());
    if (!e || !want) return;
    req qs[3];
    for (int i = 0; i < 3; i++) {
        qs[i] = (req){.max_tokens = max_tokens, .got = {calloc(1, 1), 0}};
        hn_request r = hn_request_default();
        r.prompt = ids, r.n_prompt = n_ids, r.max_tokens = max_tokens;
        CHECK(hn_engine_submit(e, &r, &qs[i].job) == HN_OK, "preempt: submit: %s", hn_errmsg());
    }
    drain(qs, 3);
    for (int i = 0; i < 3; i++) {
        CHECK(!strcmp(want, qs[i].got.buf), "preempt: request %d '%s' != alone '%s'", i, qs[i].got.buf, want);
        hn_job_free(qs[i].job);
        free(qs[i].got.buf);
    }
    hn_engine_stats st;
    hn_engine_stats_get(e, &st);
    printf("preemption: 3 requests of %d + %d tokens in a pool of %d blocks: %lld preemptions, outputs unchanged\n",
           n_ids, max_tokens, st.blocks_total, (long long)st.preemptions);
    CHECK(st.preemptions > 0, "preempt: no preemption happened");
    hn_engine_destroy(e);
    free(want);
}

// n samples at temperature 0.8 = hn_generate with seeds seed + i; and while they run they share the prompt's blocks.
static void test_samples(int32_t *ids, int n_ids) {
    const int n = 4, max_tokens = getenv("HONE_SANITIZED") ? 3 : 16;
    hn_engine_params p = hn_engine_default_params();
    hn_engine *e;
    CHECK(hn_engine_create(&e, m, &p) == HN_OK, "samples: create: %s", hn_errmsg());
    if (!e) return;
    hn_request r = hn_request_default();
    r.prompt = ids, r.n_prompt = n_ids, r.n = n, r.max_tokens = max_tokens;
    r.sp = hn_sampler_default_params();
    r.sp.temp = 0.8f, r.sp.seed = 42;
    hn_job *j;
    CHECK(hn_engine_submit(e, &r, &j) == HN_OK, "samples: submit: %s", hn_errmsg());
    text got[4] = {{calloc(1, 1), 0}, {calloc(1, 1), 0}, {calloc(1, 1), 0}, {calloc(1, 1), 0}};
    hn_event ev;
    int max_used = 0, done = 0;
    while (hn_job_next(j, &ev, 60)) {
        hn_engine_stats st;
        hn_engine_stats_get(e, &st);
        max_used = st.blocks_used > max_used ? st.blocks_used : max_used;
        if (ev.len) collect(ev.text, ev.len, &got[ev.index]);
        done += ev.done;
        if (ev.last) break;
    }
    CHECK(done == n, "samples: %d done events, expected %d", done, n);
    const int bs = p.block_tokens, prompt_blocks = (n_ids + bs - 1) / bs;
    int bound = prompt_blocks + n * ((max_tokens + bs - 1) / bs + 1);
    printf("samples: %d samples of a %d-token prompt (%d blocks): at most %d blocks in use seen, %d for %d separate "
           "copies\n", n, n_ids, prompt_blocks, max_used, n * prompt_blocks, n);
    if (!getenv("HONE_SANITIZED")) // there, a short prompt of one block
        CHECK(max_used >= prompt_blocks && max_used <= bound && max_used < n * prompt_blocks,
              "samples: %d blocks in use, expected %d..%d and under %d", max_used, prompt_blocks, bound,
              n * prompt_blocks);
    for (int i = 0; i < n; i++) {
        char *want = alone(&adapters[0], ids, n_ids, max_tokens, 0.8f, 42 + (uint64_t)i, NULL);
        CHECK(want && !strcmp(want, got[i].buf), "samples: sample %d '%s' != seed %d alone '%s'", i, got[i].buf,
              42 + i, want ? want : "");
        free(want);
        free(got[i].buf);
    }
    hn_job_free(j);
    hn_engine_destroy(e);
}

// A prompt that begins as an earlier one did takes that one's blocks.
static void test_prefix_cache(void) {
    const char *a = prompts[3];
    char b[1024];
    snprintf(b, sizeof b, "%s would not stop ticking.", a);
    int na, nb;
    int32_t *ia = encode(a, &na), *ib = encode(b, &nb);
    hn_engine_params p = hn_engine_default_params();
    hn_engine *e;
    CHECK(hn_engine_create(&e, m, &p) == HN_OK, "prefix: create: %s", hn_errmsg());
    if (!e || !ia || !ib) return;
    req q[2] = {{.max_tokens = 4}, {.max_tokens = 4}};
    int32_t *ids[2] = {ia, ib};
    int n_ids[2] = {na, nb};
    for (int i = 0; i < 2; i++) {
        q[i].prompt = i;
        hn_request r = request_of(&q[i], ids, n_ids);
        q[i].got = (text){calloc(1, 1), 0};
        CHECK(hn_engine_submit(e, &r, &q[i].job) == HN_OK, "prefix: submit: %s", hn_errmsg());
        drain(&q[i], 1); // one after the other: the first's blocks are cached when the second starts
        hn_job_free(q[i].job);
        free(q[i].got.buf);
    }
    int want = (na / p.block_tokens) * p.block_tokens; // whole blocks of the shared beginning
    if (want > nb - 1) want = (nb - 1) / p.block_tokens * p.block_tokens;
    printf("prefix cache: the second prompt (%d tokens) took %d cached tokens of the first's %d\n", nb, q[1].n_cached,
           na);
    CHECK(q[0].n_cached == 0 && q[1].n_cached == want, "prefix: cached %d then %d, expected 0 then %d",
          q[0].n_cached, q[1].n_cached, want);
    hn_engine_destroy(e);
    free(ia), free(ib);
}

static void test_errors(int32_t *ids, int n_ids) {
    hn_engine_params p = hn_engine_default_params();
    p.max_ctx = 256;
    hn_engine *e;
    CHECK(hn_engine_create(&e, m, &p) == HN_OK, "errors: create: %s", hn_errmsg());
    if (!e) return;
    hn_job *j = NULL;
    hn_request r = hn_request_default();
    r.prompt = ids, r.n_prompt = n_ids;
    r.adapter = "nope";
    CHECK(hn_engine_submit(e, &r, &j) == HN_ERR_NOTFOUND && !j && strstr(hn_errmsg(), "nope"), "unknown adapter: %s",
          hn_errmsg());
    r.adapter = NULL, r.max_tokens = 0;
    CHECK(hn_engine_submit(e, &r, &j) == HN_ERR_ARG && strstr(hn_errmsg(), "max_tokens"), "max_tokens 0: %s",
          hn_errmsg());
    r.max_tokens = 1000;
    CHECK(hn_engine_submit(e, &r, &j) == HN_ERR_RANGE && strstr(hn_errmsg(), "context"), "too long: %s", hn_errmsg());
    r.max_tokens = 4;
    int32_t bad[2] = {1, m->hp.n_vocab};
    r.prompt = bad, r.n_prompt = 2;
    CHECK(hn_engine_submit(e, &r, &j) == HN_ERR_RANGE && strstr(hn_errmsg(), "vocabulary"), "bad id: %s", hn_errmsg());
    r.prompt = ids, r.n_prompt = n_ids, r.n = 0;
    CHECK(hn_engine_submit(e, &r, &j) == HN_ERR_ARG, "n 0: %s", hn_errmsg());
    CHECK(hn_engine_load_adapter(e, "x", "/nonexistent/adapter", 1) == HN_ERR_NOTFOUND, "missing adapter: %s",
          hn_errmsg());
    CHECK(hn_engine_load_adapter(e, "lora", adapters[1].dir, 1) == HN_OK, "load: %s", hn_errmsg());
    CHECK(hn_engine_load_adapter(e, "lora", adapters[1].dir, 1) == HN_ERR_ARG, "load twice: %s", hn_errmsg());
    // Cancel: a long request stops at the next step with HN_FINISH_CANCEL; the engine goes on serving.
    r.n = 1, r.max_tokens = 200, r.adapter = "lora";
    CHECK(hn_engine_submit(e, &r, &j) == HN_OK, "submit: %s", hn_errmsg());
    hn_event ev;
    bool cancelled = false;
    int events = 0;
    while (j && hn_job_next(j, &ev, 60)) {
        if (++events == 2) hn_job_cancel(j);
        if (ev.done) cancelled = ev.finish == HN_FINISH_CANCEL && ev.n_gen < 200;
        if (ev.last) break;
    }
    CHECK(cancelled, "cancel: the job did not end cancelled");
    hn_job_free(j);
    char **names;
    int n;
    CHECK(hn_engine_unload_adapter(e, "lora") == HN_OK, "unload: %s", hn_errmsg());
    CHECK(hn_engine_adapter_names(e, &names, &n) == HN_OK && n == 0, "names after unload: %d", n);
    free(names);
    CHECK(hn_engine_submit(e, &r, &j) == HN_ERR_NOTFOUND, "unloaded adapter still accepted");
    r.adapter = NULL, r.max_tokens = 3;
    char **texts;
    hn_finish fin[1];
    CHECK(hn_engine_complete(e, &r, &texts, fin) == HN_OK && fin[0] == HN_FINISH_LENGTH, "after cancel: %s",
          hn_errmsg());
    hn_texts_free(texts, 1);
    // ignore_eos: an end-of-generation token does not end the sample. This prompt gets the end token at once.
    int n_q;
    int32_t *q = encode("What is zorbia?", &n_q);
    const int want = getenv("HONE_SANITIZED") ? 4 : 12;
    r.prompt = q, r.n_prompt = n_q, r.max_tokens = want;
    for (int ign = 0; ign < 2 && q; ign++) {
        r.ignore_eos = ign;
        CHECK(hn_engine_submit(e, &r, &j) == HN_OK, "ignore_eos: %s", hn_errmsg());
        int n_gen = -1;
        while (j && hn_job_next(j, &ev, 60))
            if (ev.done) n_gen = ev.n_gen;
        CHECK(ign ? n_gen == want : n_gen < want, "ignore_eos %d: %d tokens of %d", ign, n_gen, want);
        hn_job_free(j);
    }
    free(q);
    hn_engine_destroy(e);
}

int main(void) {
    char *path;
    if (hn_model_resolve("smollm2-135m-instruct", &path)) return test_skip("smollm2-135m-instruct is not pulled");
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    CHECK(hn_model_load(&m, path, &mp) == HN_OK, "load: %s", hn_errmsg());
    free(path);
    if (!m || !mkdtemp(tmp)) return test_done();
    for (int a = 1; a < N_AD; a++) CHECK(make_adapter(&adapters[a], a), "adapter %s", adapters[a].name);
    int32_t *ids[N_PROMPTS];
    int n_ids[N_PROMPTS];
    for (int i = 0; i < N_PROMPTS; i++) CHECK((ids[i] = encode(prompts[i], &n_ids[i])) != NULL, "encode");

    req qs[N_PROMPTS * N_AD];
    int n_req = make_mix(qs, ids, n_ids);
    hn_engine_params p = hn_engine_default_params();
    p.max_step_tokens = 40; // prompts go in chunks
    p.max_batch = 12;
    run_mix(qs, n_req, ids, n_ids, &p, "batched");
    int pi = getenv("HONE_SANITIZED") ? 2 : 1; // a short prompt under the sanitizers
    test_preempt(ids[pi], n_ids[pi]);
    for (int i = 0; i < n_req; i++) free(qs[i].want);
    test_samples(ids[pi == 2 ? 0 : 1], n_ids[pi == 2 ? 0 : 1]);
    test_prefix_cache();
    test_errors(ids[0], n_ids[0]);

    for (int i = 0; i < N_PROMPTS; i++) free(ids[i]);
    hn_model_destroy(m);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
    return test_done();
}
