// bench/bench_engine.c — the serving engine's aggregate decode speed without HTTP (not a test; not built by CMake):
// C requests at once (C = 1, 4, 16, 64 by default), each its own chat prompt asking for a long story, greedy, max_tokens new tokens each; prints
// generated tokens per second of the whole batch, against one request alone through hn_generate (the single-stream
// baseline), and the engine's step count and batch sizes.
//
//   gcc -O2 -fopenmp -I. bench/bench_engine.c build/libhone.a -ldl -lpcre2-8 -ljansson -lyaml -lutf8proc \
//       -lmicrohttpd -lm -lpthread -o /tmp/bench_engine
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE /tmp/bench_engine [C...]
// Env: BENCH_MODEL (default smollm2-135m-instruct), BENCH_TOKENS (default 64), BENCH_THREADS (default: cores),
// BENCH_COMPARE=1: also generate each request alone (hn_generate, the same FAST path) and count the requests whose
// batched text is identical (the fast path's batched matmuls sum in another order than one token's, so a near-tie
// between two tokens can go the other way; HN_MM_EXACT makes them identical, as tests/test_engine.c checks).
#include "serve/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const topics[] = {"the sea", "a clock", "mountains", "bread", "a library", "winter", "a train",
                                     "the moon", "a garden", "rain", "a violin", "the desert", "bees", "a bridge",
                                     "snow", "a lighthouse"};

static int32_t *prompt_ids(hn_model *m, int i, int *n) {
    char q[256], *text;
    snprintf(q, sizeof q, "Write a long story about %s (story number %d) in plain words.", topics[i % 16], i);
    hn_chat_msg msg = {"user", q};
    if (hn_chat_render(m->chat, m->default_system, &msg, 1, true, &text)) return NULL;
    int32_t *ids = NULL;
    int64_t len = 0;
    hn_status st = hn_tokenizer_encode(m->tok, text, -1, HN_TOK_SPECIAL | HN_TOK_ADD_BOS, &ids, &len);
    free(text);
    if (st) return NULL;
    *n = (int)len;
    return ids;
}

static bool count_only(const char *t, size_t n, void *user) { return true; }

typedef struct {
    char *buf;
    size_t len;
} text;

static bool append(const char *t, size_t n, void *user) {
    text *x = user;
    char *nb = realloc(x->buf, x->len + n + 1);
    if (!nb) return false;
    memcpy(nb + x->len, t, n);
    x->len += n, nb[x->len] = 0, x->buf = nb;
    return true;
}

// Request i's text generated alone, greedy.
static char *alone(hn_model *m, int i, int max_tokens) {
    int n;
    int32_t *ids = prompt_ids(m, i, &n);
    hn_sampler_params sp = hn_sampler_default_params();
    sp.temp = 0;
    hn_sampler *s = hn_sampler_create(&sp, hn_tokenizer_n_vocab(m->tok));
    hn_kv_cache *kv = hn_kv_cache_create(m, n + max_tokens + 1);
    text out = {calloc(1, 1), 0};
    hn_generate_params gp = {.n_predict = max_tokens, .on_text = append, .user = &out};
    hn_generate_stats st;
    if (!ids || !s || !kv || hn_generate(m, kv, s, ids, n, &gp, &st)) fprintf(stderr, "alone: %s\n", hn_errmsg());
    hn_kv_cache_destroy(kv);
    hn_sampler_destroy(s);
    free(ids);
    return out.buf;
}

int main(int argc, char **argv) {
    const char *name = getenv("BENCH_MODEL") ? getenv("BENCH_MODEL") : "smollm2-135m-instruct";
    int max_tokens = getenv("BENCH_TOKENS") ? atoi(getenv("BENCH_TOKENS")) : 64;
    if (getenv("BENCH_THREADS")) hn_threads_set(atoi(getenv("BENCH_THREADS")));
    int conc[16] = {1, 4, 16, 64}, n_conc = 4;
    if (argc > 1) {
        n_conc = 0;
        for (int i = 1; i < argc && n_conc < 16; i++) conc[n_conc++] = atoi(argv[i]);
    }
    hn_model *m;
    if (hn_model_load(&m, name, NULL)) {
        fprintf(stderr, "%s\n", hn_errmsg());
        return 1;
    }
    // Single stream: hn_generate, ignore_eos-like (max_tokens always reached only if no EOS: count what came).
    int n;
    int32_t *ids = prompt_ids(m, 0, &n);
    hn_sampler_params sp = hn_sampler_default_params();
    sp.temp = 0;
    hn_sampler *s = hn_sampler_create(&sp, hn_tokenizer_n_vocab(m->tok));
    hn_kv_cache *kv = hn_kv_cache_create(m, n + max_tokens + 1);
    hn_generate_params gp = {.n_predict = max_tokens, .on_text = count_only};
    hn_generate_stats st;
    if (hn_generate(m, kv, s, ids, n, &gp, &st)) fprintf(stderr, "%s\n", hn_errmsg());
    double single = st.n_gen / (st.prompt_s + st.decode_s);
    printf("model %s, %d threads, %d new tokens per request\n", name, hn_threads_get(), max_tokens);
    printf("hn_generate alone: %d tokens in %.2f s: %.1f tokens/s (decode only %.1f)\n", st.n_gen,
           st.prompt_s + st.decode_s, single, st.n_gen / st.decode_s);
    hn_kv_cache_destroy(kv);
    hn_sampler_destroy(s);
    free(ids);

    for (int c = 0; c < n_conc; c++) {
        int C = conc[c];
        hn_engine_params p = hn_engine_default_params();
        p.max_batch = C > 256 ? 256 : C;
        p.kv_bytes = (int64_t)512 << 20;
        hn_engine *e;
        if (hn_engine_create(&e, m, &p)) {
            fprintf(stderr, "%s\n", hn_errmsg());
            return 1;
        }
        hn_job **jobs = calloc((size_t)C, sizeof *jobs);
        int32_t **pids = calloc((size_t)C, sizeof *pids);
        double t0 = hn_now();
        for (int i = 0; i < C; i++) {
            int np;
            pids[i] = prompt_ids(m, i, &np);
            hn_request r = hn_request_default();
            r.prompt = pids[i], r.n_prompt = np, r.max_tokens = max_tokens;
            if (hn_engine_submit(e, &r, &jobs[i])) fprintf(stderr, "%s\n", hn_errmsg());
        }
        int64_t gen = 0;
        double first_sum = 0;
        bool compare = getenv("BENCH_COMPARE") && atoi(getenv("BENCH_COMPARE"));
        text *got = calloc((size_t)C, sizeof *got);
        for (int i = 0; i < C; i++) {
            hn_event ev;
            bool first = true;
            got[i].buf = calloc(1, 1);
            while (jobs[i] && hn_job_next(jobs[i], &ev, -1)) {
                if (first && ev.len) first_sum += hn_now() - t0, first = false;
                if (ev.len) append(ev.text, ev.len, &got[i]);
                if (ev.done) gen += ev.n_gen;
                if (ev.last) break;
            }
            hn_job_free(jobs[i]);
            free(pids[i]);
        }
        double dt = hn_now() - t0;
        hn_engine_stats es;
        hn_engine_stats_get(e, &es);
        printf("%3d at once: %lld tokens in %.2f s: %.1f tokens/s aggregate = %.2fx single; %lld steps, mean first "
               "text after %.2f s\n", C, (long long)gen, dt, gen / dt, gen / dt / single, (long long)es.steps,
               first_sum / C);
        int same = 0;
        for (int i = 0; i < C; i++) {
            if (compare) {
                char *want = alone(m, i, max_tokens);
                same += want && !strcmp(want, got[i].buf);
                free(want);
            }
            free(got[i].buf);
        }
        free(got);
        if (compare) printf("     %d of %d batched texts identical to generating alone\n", same, C);
        free(jobs);
        free(pids);
        hn_engine_destroy(e);
    }
    hn_model_destroy(m);
    return 0;
}
