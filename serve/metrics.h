// serve/metrics.h — what `hone serve` counts, and its /metrics page in Prometheus' text format (version 0.0.4):
// requests by endpoint and status code, client disconnects, requests in flight, latency histograms (time to first
// token, whole request), and the engine's own counters (tokens, running / waiting sequences, KV blocks, steps by
// batch size) read from hn_engine_stats at each scrape.
//
//   hn_metrics *mx = hn_metrics_create();
//   hn_metrics_request(mx, HN_EP_CHAT, 200, seconds);   // when a request ends (any thread)
//   hn_engine_stats st; hn_engine_stats_get(e, &st);
//   char *text = hn_metrics_text(mx, &st);              // malloc'd page
#ifndef HN_METRICS_H
#define HN_METRICS_H

#include "serve/engine.h"

typedef enum {
    HN_EP_COMPLETIONS,
    HN_EP_CHAT,
    HN_EP_EMBEDDINGS,
    HN_EP_MODELS,
    HN_EP_HEALTH,
    HN_EP_METRICS,
    HN_EP_LOAD_ADAPTER,   // /v1/load_lora_adapter (vLLM's name; any method's adapter)
    HN_EP_UNLOAD_ADAPTER, // /v1/unload_lora_adapter
    HN_EP_OTHER, // any other path (404s)
    HN_EP_COUNT
} hn_endpoint;
const char *hn_endpoint_path(hn_endpoint ep); // "/v1/completions", ..., "other"
hn_endpoint hn_endpoint_of(const char *url);  // the path without a query string; HN_EP_OTHER when unknown

typedef struct hn_metrics hn_metrics;
hn_metrics *hn_metrics_create(void); // NULL when out of memory
void hn_metrics_destroy(hn_metrics *mx);

// Every call is thread-safe.
void hn_metrics_request(hn_metrics *mx, hn_endpoint ep, int status, double seconds); // a request ended
void hn_metrics_first_token(hn_metrics *mx, double seconds); // a generation's first text, after the request began
void hn_metrics_disconnect(hn_metrics *mx);                  // a client left before its answer ended (job cancelled)
void hn_metrics_in_flight(hn_metrics *mx, int delta);        // HTTP requests being answered now

// The page; st may be NULL (an encoder-only server has no engine). malloc'd, NULL when out of memory.
char *hn_metrics_text(hn_metrics *mx, const hn_engine_stats *st);

#endif
