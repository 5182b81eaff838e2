// serve/metrics.c — the counters behind /metrics (serve/metrics.h) and their Prometheus text. Names follow
// Prometheus' conventions (a unit suffix, _total on counters) with a hone_ prefix; histograms are cumulative buckets
// with _sum and _count, as the exposition format defines them.
#define _GNU_SOURCE // open_memstream
#include "serve/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ep_paths[HN_EP_COUNT] = {"/v1/completions", "/v1/chat/completions", "/v1/embeddings",
                                                  "/v1/models", "/health", "/metrics", "/v1/load_lora_adapter",
                                                  "/v1/unload_lora_adapter", "other"};
_Static_assert(sizeof ep_paths / sizeof ep_paths[0] == HN_EP_COUNT, "one path per endpoint");

const char *hn_endpoint_path(hn_endpoint ep) { return ep >= 0 && ep < HN_EP_COUNT ? ep_paths[ep] : "other"; }

hn_endpoint hn_endpoint_of(const char *url) {
    size_t n = strcspn(url, "?");
    for (int i = 0; i < HN_EP_OTHER; i++)
        if (strlen(ep_paths[i]) == n && !strncmp(url, ep_paths[i], n)) return (hn_endpoint)i;
    return HN_EP_OTHER;
}

// The status codes the server answers with; anything else counts under the last slot, written as its class.
static const int codes[] = {200, 400, 401, 404, 405, 408, 413, 499, 500, 503}; // 499: the client left
#define N_CODES (int)(sizeof codes / sizeof codes[0])

// Upper bounds of the latency buckets, in seconds (+Inf after them): from a cached token to the request timeout.
static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
#define N_BOUNDS (int)(sizeof bounds / sizeof bounds[0])

typedef struct {
    int64_t bucket[N_BOUNDS + 1]; // per bucket (not cumulative); the last is past every bound
    double sum;
    int64_t count;
} histogram;

typedef struct {
    int64_t requests[HN_EP_COUNT][N_CODES + 1];
    int64_t disconnects;
    int in_flight;
    histogram ttft, latency;
} counts;

struct hn_metrics {
    pthread_mutex_t mu;
    counts c;
};

hn_metrics *hn_metrics_create(void) {
    hn_metrics *mx = calloc(1, sizeof *mx);
    if (mx) pthread_mutex_init(&mx->mu, NULL);
    return mx;
}

void hn_metrics_destroy(hn_metrics *mx) {
    if (!mx) return;
    pthread_mutex_destroy(&mx->mu);
    free(mx);
}

static void observe(histogram *h, double s) {
    int b = 0;
    while (b < N_BOUNDS && s > bounds[b]) b++;
    h->bucket[b]++;
    h->sum += s;
    h->count++;
}

void hn_metrics_request(hn_metrics *mx, hn_endpoint ep, int status, double seconds) {
    int c = 0;
    while (c < N_CODES && codes[c] != status) c++;
    if (ep < 0 || ep >= HN_EP_COUNT) ep = HN_EP_OTHER;
    pthread_mutex_lock(&mx->mu);
    mx->c.requests[ep][c]++;
    observe(&mx->c.latency, seconds);
    pthread_mutex_unlock(&mx->mu);
}

void hn_metrics_first_token(hn_metrics *mx, double seconds) {
    pthread_mutex_lock(&mx->mu);
    observe(&mx->c.ttft, seconds);
    pthread_mutex_unlock(&mx->mu);
}

void hn_metrics_disconnect(hn_metrics *mx) {
    pthread_mutex_lock(&mx->mu);
    mx->c.disconnects++;
    pthread_mutex_unlock(&mx->mu);
}

void hn_metrics_in_flight(hn_metrics *mx, int delta) {
    pthread_mutex_lock(&mx->mu);
    mx->c.in_flight += delta;
    pthread_mutex_unlock(&mx->mu);
}

static void head(FILE *f, const char *name, const char *type, const char *help) {
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void write_hist(FILE *f, const char *name, const char *help, const histogram *h) {
    head(f, name, "histogram", help);
    int64_t cum = 0;
    for (int b = 0; b < N_BOUNDS; b++) {
        cum += h->bucket[b];
        fprintf(f, "%s_bucket{le=\"%g\"} %lld\n", name, bounds[b], (long long)cum);
    }
    fprintf(f, "%s_bucket{le=\"+Inf\"} %lld\n%s_sum %.6f\n%s_count %lld\n", name, (long long)h->count, name, h->sum,
            name, (long long)h->count);
}

static void counter(FILE *f, const char *name, const char *help, int64_t v) {
    head(f, name, "counter", help);
    fprintf(f, "%s %lld\n", name, (long long)v);
}

static void gauge(FILE *f, const char *name, const char *help, int64_t v) {
    head(f, name, "gauge", help);
    fprintf(f, "%s %lld\n", name, (long long)v);
}

char *hn_metrics_text(hn_metrics *mx, const hn_engine_stats *st) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    pthread_mutex_lock(&mx->mu);
    counts m = mx->c; // a consistent copy; the page is written without the lock
    pthread_mutex_unlock(&mx->mu);

    head(f, "hone_http_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
    for (int e = 0; e < HN_EP_COUNT; e++)
        for (int c = 0; c <= N_CODES; c++)
            if (m.requests[e][c]) {
                char code[8];
                if (c < N_CODES) snprintf(code, sizeof code, "%d", codes[c]);
                else snprintf(code, sizeof code, "other");
                fprintf(f, "hone_http_requests_total{endpoint=\"%s\",code=\"%s\"} %lld\n", ep_paths[e], code,
                        (long long)m.requests[e][c]);
            }
    counter(f, "hone_client_disconnects_total", "Requests whose client left before the answer ended (job cancelled).",
            m.disconnects);
    gauge(f, "hone_http_requests_in_flight", "HTTP requests being answered now.", m.in_flight);
    write_hist(f, "hone_time_to_first_token_seconds", "From a generation request's arrival to its first text.",
               &m.ttft);
    write_hist(f, "hone_request_duration_seconds", "From a request's arrival to the end of its answer.", &m.latency);
    if (st) {
        counter(f, "hone_engine_requests_total", "Generation requests the engine accepted.", st->requests);
        counter(f, "hone_prompt_tokens_total", "Prompt tokens of accepted requests.", st->prompt_tokens);
        counter(f, "hone_prompt_tokens_cached_total", "Prompt tokens found in shared KV blocks (not recomputed).",
                st->cached_tokens);
        counter(f, "hone_generation_tokens_total", "Tokens generated.", st->gen_tokens);
        counter(f, "hone_preemptions_total", "Sequences preempted (recomputed later) when the KV pool ran out.",
                st->preemptions);
        gauge(f, "hone_requests_running", "Sequences in the running batch.", st->running);
        gauge(f, "hone_requests_waiting", "Sequences waiting to be admitted.", st->waiting);
        gauge(f, "hone_kv_blocks_used", "KV cache blocks in use.", st->blocks_used);
        gauge(f, "hone_kv_blocks_total", "KV cache blocks in the pool.", st->blocks_total);
        gauge(f, "hone_kv_block_tokens", "Tokens per KV cache block.", st->block_tokens);
        // batch_hist's slots are 1, 2-3, 4-7, ..., 128+ sequences: labelled by their lower bound.
        head(f, "hone_engine_steps_total", "counter", "Engine steps, by the sequences in the batch (lower bound).");
        for (int b = 0; b < 8; b++)
            fprintf(f, "hone_engine_steps_total{batch=\"%d%s\"} %lld\n", 1 << b, b == 7 ? "+" : "",
                    (long long)st->batch_hist[b]);
        fprintf(f, "# HELP hone_engine_steps_all_total Engine steps.\n# TYPE hone_engine_steps_all_total counter\n"
                   "hone_engine_steps_all_total %lld\n", (long long)st->steps);
    }
    bool err = ferror(f);
    if (fclose(f) || err) {
        free(buf);
        return NULL;
    }
    return buf;
}
