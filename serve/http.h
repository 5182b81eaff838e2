// serve/http.h — the HTTP front of `hone serve` on libmicrohttpd: OpenAI's /v1/completions, /v1/chat/completions
// (streamed by server-sent events when asked), /v1/embeddings and /v1/models, plus /health and /metrics. Generation
// runs on an engine (serve/engine.h); embeddings on an encoder under a lock; chat's "retrieval" extension on a
// database (adapt/rag.h) under the same lock. One thread per connection; bodies past a limit are refused unread;
// connections that stay idle or take too long to send a request are dropped; a client that leaves mid-answer has
// its job cancelled.
//
//   hn_http_params p = hn_http_default_params();
//   p.model = m, p.engine = e, p.model_id = "smollm2-135m-instruct";
//   hn_http *h;
//   if (hn_http_start(&h, &p)) ...;            // listening; hn_http_port(h) says where
//   ... wait for SIGTERM ...
//   hn_http_drain(h, 600);                    // no new connections; in-flight requests finish
//   hn_http_stop(h);                          // then the engine and models can go
#ifndef HN_HTTP_H
#define HN_HTTP_H

#include "adapt/rag.h"
#include "serve/engine.h"

typedef struct {
    const char *host;       // address to listen on, IPv4 or IPv6 (default "127.0.0.1")
    int port;               // 0: a free port (hn_http_port says which); default 8080
    const char *api_key;    // /v1/* need "Authorization: Bearer KEY"; NULL: open
    size_t max_body;        // bodies larger are refused with 413 (default 1 MiB)
    int max_tokens;         // the most max_tokens a request may ask, and chat's default (default 4096)
    double timeout;         // seconds a generation request may run (default 600)
    int conn_timeout;       // seconds a connection may idle or take to send its request (default 15)
    int max_conns;          // connections at once (default 256)
    hn_model *model;        // the -m model: a decoder served by engine, or an encoder (embeddings only)
    hn_engine *engine;      // NULL when model is an encoder
    int max_ctx;            // the engine's max_ctx (prompt + generated tokens), for the context checks
    const char *model_id;   // the id /v1/models lists for model (the base; adapters are listed by their names)
    hn_model *embed_model;  // /v1/embeddings: model itself when it is an encoder, or --embed-model; NULL: none
    const char *embed_id;
    // Chat's "retrieval" extension (hone serve --db): the database its chunks come from (opened read only; used
    // under the embedding lock). NULL: requests that ask for retrieval get 400.
    hn_rag *rag;
    // POST /v1/load_lora_adapter {"lora_name", "lora_path"} and /v1/unload_lora_adapter {"lora_name"} (vLLM's
    // runtime adapter updates) load and unload adapters while serving; off by default, since they read paths on
    // the server's disk (403 then).
    bool adapter_updates;
} hn_http_params;
hn_http_params hn_http_default_params(void);

typedef struct hn_http hn_http;

// Binds and starts serving (threads of its own). The models and the engine stay the caller's and must outlive it.
hn_status hn_http_start(hn_http **out, const hn_http_params *p);
int hn_http_port(const hn_http *h); // the port it listens on
// Stops accepting connections and waits up to max_wait_s seconds for the requests being answered to end (new
// requests on open connections get 503). Returns the number still running when it gave up (0: all finished).
int hn_http_drain(hn_http *h, double max_wait_s);
// Closes every connection (cancelling what is left) and frees h.
void hn_http_stop(hn_http *h);

#endif
