// serve/http.c — the daemon of `hone serve` (serve/http.h) on libmicrohttpd in thread-per-connection mode: routing,
// the API key, body limits, the watchdog that drops slow senders, draining on shutdown, and the endpoints that do
// not generate (/health, /metrics, /v1/models, /v1/embeddings). Completions and chat are in serve/http_gen.c.
//
// A request goes through the access handler several times: first with its headers (answered at once when the path,
// method, key or Content-Length is wrong, so a 100 MB body is refused before a byte of it is read), then once per
// piece of body, then once more to be answered.
#define _GNU_SOURCE // POLLRDHUP
#include "serve/http_internal.h"
#include "model/embed.h"
#include "tensor/ops.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

hn_http_params hn_http_default_params(void) {
    return (hn_http_params){.host = "127.0.0.1", .port = 8080, .max_body = 1 << 20, .max_tokens = 4096,
                            .timeout = 600, .conn_timeout = 15, .max_conns = 256};
}

// ---- answers ----

static enum MHD_Result queue(struct MHD_Connection *c, http_req *rq, int status, char *body, const char *type) {
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,"
                              "\"code\":null}}";
    struct MHD_Response *r =
        body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (!body) status = 500, type = "application/json";
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == 405)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
                                rq->ep <= HN_EP_EMBEDDINGS ? "POST" : "GET");
    if (atomic_load(&rq->h->draining)) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    rq->status = status;
    return ret;
}

enum MHD_Result http_send_json(struct MHD_Connection *c, http_req *rq, int status, char *body) {
    return queue(c, rq, status, body, "application/json");
}

enum MHD_Result http_send_error(struct MHD_Connection *c, http_req *rq, const hn_api_error *e) {
    return http_send_json(c, rq, e->http, hn_api_error_json(e));
}

static enum MHD_Result send_err(struct MHD_Connection *c, http_req *rq, int status, const char *param,
                                const char *code, const char *msg) {
    hn_api_error e;
    hn_api_error_set(&e, status, param, code, "%s", msg);
    return http_send_error(c, rq, &e);
}

bool http_client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return true;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

// ---- the endpoints that do not generate ----

static enum MHD_Result health(struct MHD_Connection *c, http_req *rq) {
    bool draining = atomic_load(&rq->h->draining);
    return http_send_json(c, rq, draining ? 503 : 200,
                          strdup(draining ? "{\"status\":\"shutting down\"}" : "{\"status\":\"ok\"}"));
}

// The retrieval counters (a server with --db), after serve/metrics.c's page; NULL when out of memory.
static char *with_retrieval(hn_http *h, char *page) {
    if (!page || !h->p.rag) return page;
    char tail[512];
    int n = snprintf(tail, sizeof tail,
                     "# HELP hone_retrieval_requests_total Chat requests that retrieved sources (--db).\n"
                     "# TYPE hone_retrieval_requests_total counter\nhone_retrieval_requests_total %lld\n"
                     "# HELP hone_retrieval_seconds_total Time spent retrieving (embedding the question, searching).\n"
                     "# TYPE hone_retrieval_seconds_total counter\nhone_retrieval_seconds_total %.6f\n",
                     (long long)atomic_load(&h->rag_requests), (double)atomic_load(&h->rag_us) / 1e6);
    size_t len = strlen(page);
    char *out = realloc(page, len + (size_t)n + 1);
    if (!out) {
        free(page);
        return NULL;
    }
    memcpy(out + len, tail, (size_t)n + 1);
    return out;
}

static enum MHD_Result metrics(struct MHD_Connection *c, http_req *rq) {
    hn_engine_stats st;
    if (rq->h->p.engine) hn_engine_stats_get(rq->h->p.engine, &st);
    return queue(c, rq, 200, with_retrieval(rq->h, hn_metrics_text(rq->h->mx, rq->h->p.engine ? &st : NULL)),
                 "text/plain; version=0.0.4; charset=utf-8");
}

static enum MHD_Result models(struct MHD_Connection *c, http_req *rq) {
    hn_http *h = rq->h;
    char **names = NULL;
    int n = 0;
    if (h->p.engine && hn_engine_adapter_names(h->p.engine, &names, &n))
        return send_err(c, rq, 500, NULL, NULL, hn_errmsg());
    // An encoder server lists its one model once (it is both -m and the embedding model).
    const char *embed = h->p.embed_model && h->p.embed_model != h->p.model ? h->p.embed_id : NULL;
    char *body = hn_api_models_json(h->p.model_id, (const char *const *)names, n, embed, h->created);
    free(names); // one block: the pointers and the names
    return http_send_json(c, rq, 200, body);
}

static enum MHD_Result embeddings(struct MHD_Connection *c, http_req *rq) {
    hn_http *h = rq->h;
    hn_model *m = h->p.embed_model;
    if (!m) {
        char msg[400];
        snprintf(msg, sizeof msg, "'%s' is a decoder and this server has no embedding model (start hone serve "
                                  "with --embed-model, or with an encoder as -m)", h->p.model_id);
        return send_err(c, rq, 400, "model", "no_embedding_model", msg);
    }
    hn_api_request ar;
    hn_api_error e;
    if (!hn_api_parse(HN_API_EMBEDDING, rq->body, rq->len, h->p.max_tokens, &ar, &e)) return http_send_error(c, rq, &e);
    enum MHD_Result ret;
    int C = m->hp.n_embd, n = ar.n_inputs;
    float *vec = NULL;
    if (ar.model && strcmp(ar.model, h->p.embed_id)) {
        hn_api_error_set(&e, 404, "model", "model_not_found",
                         "the model '%s' does not exist here; embeddings come from '%s'", ar.model, h->p.embed_id);
        ret = http_send_error(c, rq, &e);
    } else if (ar.dimensions && ar.dimensions != C) {
        hn_api_error_set(&e, 400, "dimensions", NULL, "'%s' gives %d-dimensional vectors; 'dimensions' asked %d",
                         h->p.embed_id, C, ar.dimensions);
        ret = http_send_error(c, rq, &e);
    } else if (!(vec = malloc((size_t)n * C * sizeof *vec))) {
        ret = send_err(c, rq, 500, NULL, NULL, "out of memory for the embeddings");
    } else {
        // The model's own pooling and normalisation, as `hone embed` uses by default; 64 texts per call as it does.
        hn_pool pool = hn_model_default_pool(m);
        bool norm = hn_model_default_normalize(m);
        hn_status s = HN_OK;
        int64_t tokens = 0;
        pthread_mutex_lock(&h->embed_mu);
        for (int i = 0; !s && i < n; i += 64)
            s = hn_model_embed_texts(m, (const char *const *)ar.inputs + i, n - i < 64 ? n - i : 64, pool, norm,
                                     vec + (size_t)i * C);
        pthread_mutex_unlock(&h->embed_mu);
        hn_matmul_thread_free(); // this connection's thread ends with its connection: its matmul buffers with it
        for (int i = 0; !s && i < n && m->tok; i++) {
            int32_t *ids = NULL;
            int64_t k = 0;
            if (!hn_tokenizer_encode(m->tok, ar.inputs[i], -1, HN_TOK_ADD_SPECIAL, &ids, &k)) tokens += k;
            free(ids);
        }
        if (s) ret = send_err(c, rq, 500, NULL, NULL, hn_errmsg());
        else
            ret = http_send_json(c, rq, 200,
                                 hn_api_embeddings_json(h->p.embed_id, vec, n, C, ar.base64,
                                                        tokens > INT32_MAX ? INT32_MAX : (int)tokens));
    }
    free(vec);
    hn_api_request_free(&ar);
    return ret;
}

// POST /v1/load_lora_adapter {"lora_name", "lora_path"} / /v1/unload_lora_adapter {"lora_name"}: while serving,
// between two engine steps; requests already running keep their adapter until they end.
static enum MHD_Result adapter_update(struct MHD_Connection *c, http_req *rq, bool load) {
    hn_http *h = rq->h;
    if (!h->p.adapter_updates)
        return send_err(c, rq, 403, NULL, "forbidden", "adapter updates are off (start hone serve with "
                                                       "--allow-adapter-updates)");
    if (!h->p.engine) return send_err(c, rq, 400, NULL, NULL, "this server runs an encoder: it has no adapters");
    json_error_t je;
    json_t *o = json_loadb(rq->body ? rq->body : "", rq->len, 0, &je);
    const char *name = json_string_value(json_object_get(o, "lora_name"));
    const char *path = json_string_value(json_object_get(o, "lora_path"));
    enum MHD_Result ret;
    char msg[600];
    if (!json_is_object(o)) {
        snprintf(msg, sizeof msg, "the body is not a JSON object: %s", je.text);
        ret = send_err(c, rq, 400, NULL, "invalid_json", msg);
    } else if (!name || !*name) {
        ret = send_err(c, rq, 400, "lora_name", NULL, "'lora_name' must be a non-empty string");
    } else if (load && (!path || !*path)) {
        ret = send_err(c, rq, 400, "lora_path", NULL, "'lora_path' must be a non-empty string");
    } else if (!strcmp(name, h->p.model_id)) {
        ret = send_err(c, rq, 400, "lora_name", NULL, "'lora_name' is the base model's id");
    } else {
        hn_status s = load ? hn_engine_load_adapter(h->p.engine, name, path, 1.0f)
                           : hn_engine_unload_adapter(h->p.engine, name);
        if (s) {
            int code = s == HN_ERR_NOTFOUND && !load ? 404 : 400;
            ret = send_err(c, rq, code, load ? "lora_path" : "lora_name", code == 404 ? "model_not_found" : NULL,
                           hn_errmsg());
        } else {
            json_t *ok = json_pack("{s:s,s:s,s:s}", "object", "adapter", "id", name, "status",
                                   load ? "loaded" : "unloaded");
            ret = http_send_json(c, rq, 200, ok ? json_dumps(ok, JSON_COMPACT) : NULL);
            json_decref(ok);
        }
    }
    json_decref(o);
    return ret;
}

// ---- the access handler ----

static bool wants_post(hn_endpoint ep) {
    return ep == HN_EP_COMPLETIONS || ep == HN_EP_CHAT || ep == HN_EP_EMBEDDINGS || ep == HN_EP_LOAD_ADAPTER ||
           ep == HN_EP_UNLOAD_ADAPTER;
}

// The request's headers are in: refuse what can be refused before reading a body.
static enum MHD_Result first_call(struct MHD_Connection *c, http_req *rq, const char *url, const char *method) {
    hn_http *h = rq->h;
    char msg[512];
    if (atomic_load(&h->draining))
        return send_err(c, rq, 503, NULL, "shutting_down", "the server is shutting down");
    if (rq->ep == HN_EP_OTHER) {
        snprintf(msg, sizeof msg, "no such path: %.200s (hone serve has /v1/completions, /v1/chat/completions, "
                                  "/v1/embeddings, /v1/models, /v1/load_lora_adapter, /v1/unload_lora_adapter, "
                                  "/health, /metrics)", url);
        return send_err(c, rq, 404, NULL, "not_found", msg);
    }
    const char *want = wants_post(rq->ep) ? "POST" : "GET";
    if (strcmp(method, want)) {
        snprintf(msg, sizeof msg, "%s takes %s, not %.20s", hn_endpoint_path(rq->ep), want, method);
        return send_err(c, rq, 405, NULL, "method_not_allowed", msg);
    }
    // /health and /metrics stay open (probes and scrapers), as vLLM keeps them.
    if (h->p.api_key && !strncmp(url, "/v1/", 4) &&
        !hn_api_key_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), h->p.api_key))
        return send_err(c, rq, 401, NULL, "invalid_api_key",
                        "missing or wrong API key (send the header Authorization: Bearer KEY)");
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (n > h->p.max_body) {
            snprintf(msg, sizeof msg, "the body has %llu bytes; this server takes at most %zu (--max-body)", n,
                     h->p.max_body);
            return send_err(c, rq, 413, NULL, "request_too_large", msg);
        }
    }
    return MHD_YES;
}

static enum MHD_Result dispatch(struct MHD_Connection *c, http_req *rq) {
    switch (rq->ep) {
    case HN_EP_COMPLETIONS: return http_generate(c, rq, HN_API_COMPLETION);
    case HN_EP_CHAT: return http_generate(c, rq, HN_API_CHAT);
    case HN_EP_EMBEDDINGS: return embeddings(c, rq);
    case HN_EP_MODELS: return models(c, rq);
    case HN_EP_HEALTH: return health(c, rq);
    case HN_EP_METRICS: return metrics(c, rq);
    case HN_EP_LOAD_ADAPTER: return adapter_update(c, rq, true);
    case HN_EP_UNLOAD_ADAPTER: return adapter_update(c, rq, false);
    default: return MHD_NO;
    }
}

static void set_reading(hn_http *h, conn_rec *cr, bool reading) {
    if (!cr) return;
    pthread_mutex_lock(&h->mu);
    cr->reading = reading;
    cr->since = hn_now();
    pthread_mutex_unlock(&h->mu);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    hn_http *h = cls;
    http_req *rq = *con_cls;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq))) return MHD_NO;
        rq->h = h;
        rq->t0 = hn_now();
        rq->ep = hn_endpoint_of(url);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        rq->conn = ci ? ci->socket_context : NULL;
        *con_cls = rq;
        pthread_mutex_lock(&h->mu);
        h->in_flight++;
        pthread_mutex_unlock(&h->mu);
        hn_metrics_in_flight(h->mx, 1);
        return first_call(c, rq, url, method);
    }
    if (rq->status) { // answered from the headers; what body comes is not wanted
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        // A body without Content-Length (chunked) that grows past the limit: no answer can be queued in the middle
        // of an upload (libmicrohttpd allows one only before or after it), so the connection is dropped.
        if (*upload_size > rq->h->p.max_body - rq->len) return MHD_NO;
        if (rq->len + *upload_size + 1 > rq->cap) {
            size_t cap = rq->cap ? rq->cap : 4096;
            while (cap < rq->len + *upload_size + 1) cap *= 2;
            char *nb = realloc(rq->body, cap);
            if (!nb) return MHD_NO;
            rq->body = nb, rq->cap = cap;
        }
        memcpy(rq->body + rq->len, upload, *upload_size);
        rq->len += *upload_size;
        rq->body[rq->len] = 0;
        *upload_size = 0;
        return MHD_YES;
    }
    set_reading(h, rq->conn, false);
    if (!rq->body && !(rq->body = calloc(1, 1))) return MHD_NO;
    return dispatch(c, rq);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    hn_http *h = cls;
    http_req *rq = *con_cls;
    if (!rq) return;
    *con_cls = NULL;
    // No answer, or a 200 cut short (the client left mid-stream, or was dropped): 499, nginx's "client closed
    // request". An error answer stays what it was even when the connection then closed with a body unread.
    int status = rq->status;
    if (!status || (status == 200 && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)) status = 499;
    hn_metrics_request(h->mx, rq->ep, status, hn_now() - rq->t0);
    hn_metrics_in_flight(h->mx, -1);
    set_reading(h, rq->conn, true); // the next request on this connection starts its clock now
    pthread_mutex_lock(&h->mu);
    if (--h->in_flight == 0) pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->mu);
    free(rq->body);
    free(rq);
}

// ---- connections and the watchdog ----

static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode code) {
    hn_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_rec *cr = ci ? calloc(1, sizeof *cr) : NULL;
        if (!cr) return; // unwatched; libmicrohttpd's inactivity timeout still applies
        cr->fd = ci->connect_fd;
        cr->since = hn_now();
        cr->reading = true;
        pthread_mutex_lock(&h->mu);
        cr->next = h->conns;
        if (h->conns) h->conns->prev = cr;
        h->conns = cr;
        pthread_mutex_unlock(&h->mu);
        *socket_context = cr;
    } else if (*socket_context) {
        conn_rec *cr = *socket_context;
        pthread_mutex_lock(&h->mu);
        if (cr->prev) cr->prev->next = cr->next;
        else h->conns = cr->next;
        if (cr->next) cr->next->prev = cr->prev;
        pthread_mutex_unlock(&h->mu);
        free(cr);
        *socket_context = NULL;
    }
}

// Every half second: shut down the sockets of connections that have taken more than conn_timeout seconds to send
// the request being read. shutdown (not close) leaves the descriptor to libmicrohttpd, whose thread then sees the
// connection end and closes it.
static void *watchdog(void *arg) {
    hn_http *h = arg;
    while (!atomic_load(&h->stopping)) {
        struct timespec ts = {0, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
        double now = hn_now();
        pthread_mutex_lock(&h->mu);
        for (conn_rec *cr = h->conns; cr; cr = cr->next)
            if (cr->reading && !cr->dropped && now - cr->since > h->p.conn_timeout) {
                shutdown(cr->fd, SHUT_RDWR);
                cr->dropped = true;
            }
        pthread_mutex_unlock(&h->mu);
    }
    return NULL;
}

// ---- start and stop ----

hn_status hn_http_start(hn_http **out, const hn_http_params *p) {
    *out = NULL;
    if (!p->model || !p->model_id || (!p->engine && p->embed_model != p->model))
        return hn_fail(HN_ERR_ARG, "hn_http_start: a model, its id, and an engine (decoder) or the model as the "
                                   "embedding model (encoder) are needed");
    if (p->port < 0 || p->port > 65535) return hn_fail(HN_ERR_ARG, "--port %d: expected 0..65535", p->port);
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr = {0};
    bool v6 = false;
    if (inet_pton(AF_INET, p->host, &addr.v4.sin_addr) == 1) {
        addr.v4.sin_family = AF_INET;
        addr.v4.sin_port = htons((uint16_t)p->port);
    } else if (inet_pton(AF_INET6, p->host, &addr.v6.sin6_addr) == 1) {
        addr.v6.sin6_family = AF_INET6;
        addr.v6.sin6_port = htons((uint16_t)p->port);
        v6 = true;
    } else {
        return hn_fail(HN_ERR_ARG, "--host '%s': expected an IPv4 or IPv6 address (e.g. 127.0.0.1, 0.0.0.0, ::1)",
                       p->host);
    }
    hn_http *h = hn_calloc(1, sizeof *h, "http server");
    if (!h) return HN_ERR_NOMEM;
    h->p = *p;
    h->created = (int64_t)time(NULL);
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->embed_mu, NULL);
    pthread_cond_init(&h->idle, NULL);
    if (!(h->mx = hn_metrics_create())) {
        hn_http_stop(h);
        return hn_fail(HN_ERR_NOMEM, "out of memory for the metrics");
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     (v6 ? MHD_USE_IPv6 : 0);
    h->d = MHD_start_daemon(flags, (uint16_t)p->port, NULL, NULL, answer, h, MHD_OPTION_SOCK_ADDR, &addr.sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)p->max_conns, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)p->conn_timeout, MHD_OPTION_NOTIFY_COMPLETED, completed, h,
                            MHD_OPTION_NOTIFY_CONNECTION, notify_conn, h, MHD_OPTION_END);
    if (!h->d) {
        hn_http_stop(h);
        return hn_fail(HN_ERR_IO, "cannot listen on %s port %d (in use, or not an address of this machine)",
                       p->host, p->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : p->port;
    if (pthread_create(&h->watchdog, NULL, watchdog, h)) {
        hn_http_stop(h);
        return hn_fail(HN_ERR_NOMEM, "cannot start the connection watchdog thread");
    }
    h->watchdog_on = true;
    *out = h;
    return HN_OK;
}

int hn_http_port(const hn_http *h) { return h->port; }

int hn_http_drain(hn_http *h, double max_wait_s) {
    atomic_store(&h->draining, true);
    MHD_socket s = MHD_quiesce_daemon(h->d);
    if (s != MHD_INVALID_SOCKET) close(s);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)max_wait_s;
    pthread_mutex_lock(&h->mu);
    while (h->in_flight > 0)
        if (pthread_cond_timedwait(&h->idle, &h->mu, &until)) break;
    int left = h->in_flight;
    pthread_mutex_unlock(&h->mu);
    return left;
}

void hn_http_stop(hn_http *h) {
    if (!h) return;
    atomic_store(&h->draining, true);
    atomic_store(&h->stopping, true); // streams and waits notice within half a second and end
    if (h->d) MHD_stop_daemon(h->d);
    if (h->watchdog_on) pthread_join(h->watchdog, NULL);
    hn_metrics_destroy(h->mx);
    pthread_cond_destroy(&h->idle);
    pthread_mutex_destroy(&h->embed_mu);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
