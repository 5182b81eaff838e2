// serve/http_internal.h — what serve/http.c (the daemon, connections, routing, the small endpoints) and
// serve/http_gen.c (completions and chat: prompts, whole answers, server-sent-event streams, voting) share. Not a
// public header.
#ifndef HN_HTTP_INTERNAL_H
#define HN_HTTP_INTERNAL_H

#include "serve/api.h"
#include "serve/http.h"
#include "serve/metrics.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

// One open connection, watched for taking too long to send its request (a slow client sending a byte a second
// never trips libmicrohttpd's inactivity timeout). Lives from libmicrohttpd's STARTED to its CLOSED notice, which
// comes before the socket is closed, so the watchdog may shut down fd while it holds h->mu.
typedef struct conn_rec {
    int fd;
    double since;  // when it began sending the request now awaited (connection start, or the last answer's end)
    bool reading;  // still sending that request (headers or body)
    bool dropped;  // shut down by the watchdog
    struct conn_rec *prev, *next;
} conn_rec;

struct hn_http {
    hn_http_params p;
    struct MHD_Daemon *d;
    hn_metrics *mx;
    int port;
    int64_t created;            // Unix seconds at start (/v1/models' "created")
    pthread_mutex_t mu;         // conns, in_flight
    pthread_cond_t idle;        // in_flight reached 0
    conn_rec *conns;
    int in_flight;
    atomic_bool draining, stopping;
    pthread_t watchdog;
    bool watchdog_on;
    pthread_mutex_t embed_mu;   // the embedding model runs one request at a time (retrievals too: they embed)
    _Atomic int64_t rag_requests, rag_us; // retrievals run, and the microseconds they took (lock wait included)
};

// One HTTP request (libmicrohttpd's per-request context).
typedef struct {
    hn_http *h;
    hn_endpoint ep;
    double t0;       // arrival
    int status;      // of the answer queued (0: none yet; 499: the client left)
    char *body;      // the request body so far (NUL-terminated)
    size_t len, cap;
    conn_rec *conn;
} http_req;

// Queue an answer: body is malloc'd JSON (freed here; NULL gives a 500 "out of memory").
enum MHD_Result http_send_json(struct MHD_Connection *c, http_req *rq, int status, char *body);
enum MHD_Result http_send_error(struct MHD_Connection *c, http_req *rq, const hn_api_error *e);
// Whether the client has closed its end (polls the socket without waiting).
bool http_client_gone(struct MHD_Connection *c);

// Chat's "retrieval" extension (serve/rag_serve.c): the hits retrieved and the sources the prompt holds.
typedef struct {
    hn_rag_hit *hits;     // k entries (hn_rag_retrieve's)
    int k, n;             // asked, found
    hn_api_source *items; // the first list.n hits (those the prompt kept), as responses write them
    hn_api_sources list;
} http_rag;
// Retrieves ar->retrieval_k chunks for the last user message and replaces its content with the numbered sources and
// the question, fitted to the context. false with *e set (a server without --db, no user message, no room). out
// must be freed with http_rag_free after the response is written (the sources point into it).
bool http_rag_apply(hn_http *h, hn_api_request *ar, http_rag *out, hn_api_error *e);
void http_rag_free(http_rag *r);

// POST /v1/completions and /v1/chat/completions (serve/http_gen.c).
enum MHD_Result http_generate(struct MHD_Connection *c, http_req *rq, hn_api_kind kind);

#endif
