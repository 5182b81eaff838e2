// serve/http_gen.c — POST /v1/completions and /v1/chat/completions: the request's prompt built as `hone generate`
// builds it (the chat template rendered with the model's default system prompt, then tokenized with special tokens
// and BOS), checked against the context, submitted to the engine, and answered whole or as a stream of server-sent
// events; with "vote", the samples' majority answer (serve/vote.h); with "retrieval", the last user message
// preceded by sources from the database (serve/rag_serve.c), which go back as "sources".
//
// Waits on the engine are cut into half-second slices: between them a connection checks that its client is still
// there (a client that leaves has its job cancelled) and that the server is not stopping.
#include "serve/http_internal.h"
#include "serve/vote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_SLICE_S 0.5
#define KEEP_ALIVE ": keep-alive\n\n"

// The prompt as token ids. Text goes through the chat template (chat) and the tokenizer exactly as in
// cli/cmd_generate.c, so that an exact-mode server at temperature 0 answers what `hone generate --exact` prints.
static bool build_prompt(const hn_model *m, const hn_api_request *ar, int32_t **ids, int *n, hn_api_error *e) {
    char *rendered = NULL;
    const char *text = ar->prompt;
    const char *param = ar->kind == HN_API_CHAT ? "messages" : "prompt";
    if (!ar->prompt_ids && !m->tok) {
        hn_api_error_set(e, 400, param, NULL, "this model has no tokenizer; send the prompt as token ids");
        return false;
    }
    if (ar->kind == HN_API_CHAT) {
        if (hn_chat_render(m->chat, m->default_system, ar->msgs, ar->n_msgs, true, &rendered)) {
            hn_api_error_set(e, 400, param, NULL, "%s", hn_errmsg());
            return false;
        }
        text = rendered;
    }
    int64_t count = 0;
    if (ar->prompt_ids) {
        count = ar->n_prompt_ids;
        *ids = malloc((size_t)count * sizeof **ids);
        if (*ids) memcpy(*ids, ar->prompt_ids, (size_t)count * sizeof **ids);
    } else if (hn_tokenizer_encode(m->tok, text, -1, HN_TOK_SPECIAL | HN_TOK_ADD_BOS, ids, &count)) {
        free(rendered);
        hn_api_error_set(e, 400, param, NULL, "%s", hn_errmsg());
        return false;
    }
    free(rendered);
    if (!*ids && count) {
        hn_api_error_set(e, 500, NULL, NULL, "out of memory for the prompt");
        return false;
    }
    if (count == 0) {
        free(*ids);
        *ids = NULL;
        hn_api_error_set(e, 400, param, NULL, "the prompt is empty (no tokens)");
        return false;
    }
    *n = count > INT32_MAX ? INT32_MAX : (int)count;
    return true;
}

// A status of hn_engine_submit as an HTTP error: a bad request (400), an unknown adapter (404), else 500.
static void submit_error(hn_status s, hn_api_error *e) {
    if (s == HN_ERR_NOTFOUND) hn_api_error_set(e, 404, "model", "model_not_found", "%s", hn_errmsg());
    else if (s == HN_ERR_ARG || s == HN_ERR_RANGE) hn_api_error_set(e, 400, NULL, NULL, "%s", hn_errmsg());
    else hn_api_error_set(e, 500, NULL, NULL, "%s", hn_errmsg());
}

// Which adapter model names: NULL for the base (its id, or no "model"), a loaded adapter's name, or 404.
static bool pick_model(hn_http *h, const char *model, const char **adapter, hn_api_error *e) {
    *adapter = NULL;
    if (!model || !strcmp(model, h->p.model_id)) return true;
    char **names = NULL;
    int n = 0;
    if (hn_engine_adapter_names(h->p.engine, &names, &n)) {
        hn_api_error_set(e, 500, NULL, NULL, "%s", hn_errmsg());
        return false;
    }
    bool found = false;
    for (int i = 0; i < n && !found; i++) found = !strcmp(names[i], model);
    free(names); // one block: the pointers and the names
    if (found) *adapter = model;
    else
        hn_api_error_set(e, 404, "model", "model_not_found",
                         "the model '%s' does not exist (GET /v1/models lists the base model and its adapters)", model);
    return found;
}

// ---- a whole answer ----

typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

static bool sbuf_add(sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *nb = realloc(b->s, cap);
        if (!nb) return false;
        b->s = nb, b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
    return true;
}

// s without surrounding white space, as hn_vote_majority compares answers.
static void trim(const char *s, const char **b, size_t *n) {
    size_t l = strlen(s);
    while (l && strchr(" \t\r\n", s[l - 1])) l--;
    while (l && strchr(" \t\r\n", *s)) s++, l--;
    *b = s, *n = l;
}

static bool same_answer(const char *a, const char *b) {
    const char *x, *y;
    size_t nx, ny;
    trim(a, &x, &nx);
    trim(b, &y, &ny);
    return nx == ny && !memcmp(x, y, nx);
}

// The vote among the samples' answers; *answers (n, malloc'd) is the caller's to free.
static void vote(char **texts, int n, const char *regex, char **answers, hn_api_vote *v) {
    for (int i = 0; i < n; i++)
        if (hn_vote_extract(texts[i], regex, &answers[i])) answers[i] = NULL; // the regex compiled before: no error
    int w = hn_vote_majority((const char *const *)answers, NULL, n);
    *v = (hn_api_vote){.answer = w >= 0 ? answers[w] : NULL, .of = n, .choice = -1};
    for (int i = 0; w >= 0 && i < n; i++)
        if (answers[i] && same_answer(answers[i], answers[w])) {
            if (v->choice < 0) v->choice = i;
            v->count++;
        }
}

static enum MHD_Result whole(struct MHD_Connection *c, http_req *rq, hn_job *j, const hn_api_request *ar,
                             const char *model, int n_prompt, const hn_api_sources *sources) {
    hn_http *h = rq->h;
    int n = ar->n, n_gen = 0;
    sbuf *texts = calloc((size_t)n, sizeof *texts);
    hn_finish *finish = calloc((size_t)n, sizeof *finish);
    char *error = NULL, **answers = calloc((size_t)n, sizeof *answers);
    bool gone = false, oom = !texts || !finish || !answers, first = true;
    for (;;) {
        hn_event ev;
        if (!hn_job_next(j, &ev, WAIT_SLICE_S)) {
            if (http_client_gone(c) || atomic_load(&h->stopping)) {
                gone = true;
                break;
            }
            continue;
        }
        if (ev.len && first) hn_metrics_first_token(h->mx, hn_now() - rq->t0), first = false;
        if (ev.len && !oom) oom = !sbuf_add(&texts[ev.index], ev.text, ev.len);
        if (ev.done) {
            if (!oom) finish[ev.index] = ev.finish;
            n_gen += ev.n_gen;
            if (ev.finish == HN_FINISH_ERROR && !error) error = strdup(ev.error ? ev.error : "the engine failed");
        }
        if (ev.last) break;
    }
    hn_job_free(j); // cancels it if the client left
    enum MHD_Result ret;
    if (gone) {
        hn_metrics_disconnect(h->mx);
        ret = MHD_NO; // nobody to answer: close the connection
    } else if (oom || error) {
        hn_api_error e;
        hn_api_error_set(&e, 500, NULL, NULL, "%s", error ? error : "out of memory for the answer");
        ret = http_send_error(c, rq, &e);
    } else {
        char **ts = malloc((size_t)n * sizeof *ts);
        for (int i = 0; ts && i < n; i++) ts[i] = texts[i].s ? texts[i].s : "";
        hn_api_vote v;
        if (ts && ar->vote) vote(ts, n, ar->answer_regex, answers, &v);
        char id[40];
        hn_api_new_id(ar->kind, id);
        ret = http_send_json(c, rq, 200,
                             ts ? hn_api_completion_json(ar->kind, id, model, (int64_t)time(NULL),
                                                         (const char *const *)ts, finish, n, n_prompt, n_gen,
                                                         ar->vote ? &v : NULL, sources)
                                : NULL);
        free(ts);
    }
    for (int i = 0; i < n; i++) {
        if (texts) free(texts[i].s);
        if (answers) free(answers[i]);
    }
    free(texts);
    free(finish);
    free(answers);
    free(error);
    return ret;
}

// ---- a stream of server-sent events ----

typedef struct {
    hn_http *h;
    http_req *rq; // for the arrival time only: the request outlives its response
    struct MHD_Connection *c;
    hn_job *job;
    hn_api_kind kind;
    char id[40], *model;
    int64_t created;
    bool *started;          // per sample: its first chunk (with the role) went out
    int n, n_prompt, n_gen;
    bool usage, first_token, last_seen, done_sent, gone;
    sbuf out;               // what is ready to send
    size_t off;             // of it, sent
    double last_write;      // when bytes last went out (or the stream began)
} stream;

static bool stream_add(stream *s, char *sse) {
    bool ok = sse && sbuf_add(&s->out, sse, strlen(sse));
    free(sse);
    return ok;
}

// Turns one engine event into chunks.
static bool stream_event(stream *s, const hn_event *ev) {
    if (ev->len) {
        if (!s->first_token) hn_metrics_first_token(s->h->mx, hn_now() - s->rq->t0), s->first_token = true;
        if (!stream_add(s, hn_api_chunk_sse(s->kind, s->id, s->model, s->created, ev->index, ev->text, ev->len,
                                            !s->started[ev->index], HN_FINISH_NONE, NULL)))
            return false;
        s->started[ev->index] = true;
    }
    if (ev->done) {
        s->n_gen += ev->n_gen;
        if (ev->finish == HN_FINISH_ERROR) {
            // OpenAI's streams report a failure as an event carrying an error object.
            hn_api_error e;
            hn_api_error_set(&e, 500, NULL, NULL, "%s", ev->error ? ev->error : "the engine failed");
            char *json = hn_api_error_json(&e), *line = json ? malloc(strlen(json) + 9) : NULL;
            if (line) sprintf(line, "data: %s\n\n", json);
            free(json);
            if (!stream_add(s, line)) return false;
        }
        if (!stream_add(s, hn_api_chunk_sse(s->kind, s->id, s->model, s->created, ev->index, NULL, 0,
                                            !s->started[ev->index], ev->finish, NULL)))
            return false;
        s->started[ev->index] = true;
    }
    if (ev->last) {
        s->last_seen = true;
        if (s->usage && !stream_add(s, hn_api_usage_sse(s->kind, s->id, s->model, s->created, s->n_prompt, s->n_gen)))
            return false;
        if (!stream_add(s, strdup(HN_API_SSE_DONE))) return false;
    }
    return true;
}

// libmicrohttpd's content reader: blocks (thread per connection) until there is something to send.
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    stream *s = cls;
    for (;;) {
        if (s->off < s->out.len) {
            size_t k = s->out.len - s->off < max ? s->out.len - s->off : max;
            memcpy(buf, s->out.s + s->off, k);
            s->off += k;
            s->last_write = hn_now();
            if (s->off == s->out.len) s->off = s->out.len = 0;
            return (ssize_t)k;
        }
        if (s->last_seen) return MHD_CONTENT_READER_END_OF_STREAM;
        hn_event ev;
        if (hn_job_next(s->job, &ev, WAIT_SLICE_S)) {
            if (!stream_event(s, &ev)) return MHD_CONTENT_READER_END_WITH_ERROR;
        } else if (http_client_gone(s->c) || atomic_load(&s->h->stopping)) {
            return MHD_CONTENT_READER_END_WITH_ERROR;
        } else if (hn_now() - s->last_write >= s->h->p.conn_timeout / 3.0 && max >= sizeof KEEP_ALIVE - 1) {
            // Nothing to send for a while (a long prompt before the first token): libmicrohttpd would close the
            // connection as idle after --conn-timeout, so a server-sent-event comment, which clients skip, goes out.
            memcpy(buf, KEEP_ALIVE, sizeof KEEP_ALIVE - 1);
            s->last_write = hn_now();
            return (ssize_t)(sizeof KEEP_ALIVE - 1);
        }
    }
}

// Called when the response is done with, whole or not: a stream that did not reach its last event lost its client.
static void stream_free(void *cls) {
    stream *s = cls;
    if (!s->last_seen) {
        hn_job_cancel(s->job);
        hn_metrics_disconnect(s->h->mx);
    }
    hn_job_free(s->job);
    free(s->started);
    free(s->model);
    free(s->out.s);
    free(s);
}

// With sources (a retrieval request), the stream opens at once, before the first token, with one chunk a sample
// whose delta is {"role": "assistant", "content": ""} (as OpenAI's own streams open), the first carrying the
// sources: a client can show them while the answer is being written.
static enum MHD_Result start_stream(struct MHD_Connection *c, http_req *rq, hn_job *j, const hn_api_request *ar,
                                    const char *model, int n_prompt, const hn_api_sources *sources) {
    stream *s = calloc(1, sizeof *s);
    bool *started = calloc((size_t)ar->n, sizeof *started);
    char *model_copy = strdup(model);
    if (!s || !started || !model_copy) {
        free(s), free(started), free(model_copy);
        hn_job_free(j);
        return http_send_json(c, rq, 500, NULL);
    }
    *s = (stream){.h = rq->h, .rq = rq, .c = c, .job = j, .kind = ar->kind, .model = model_copy,
                  .created = (int64_t)time(NULL), .started = started, .n = ar->n, .n_prompt = n_prompt,
                  .usage = ar->stream_usage, .last_write = hn_now()};
    hn_api_new_id(ar->kind, s->id);
    for (int i = 0; sources && i < ar->n; i++) {
        if (!stream_add(s, hn_api_chunk_sse(s->kind, s->id, s->model, s->created, i, "", 0, true, HN_FINISH_NONE,
                                            i == 0 ? sources : NULL))) {
            stream_free(s); // cancels the job
            return http_send_json(c, rq, 500, NULL);
        }
        started[i] = true;
    }
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, s,
                                                               stream_free);
    if (!r) {
        stream_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r); // the connection holds it; stream_free runs when it lets go
    rq->status = 200;
    return ret;
}

// ---- the endpoint ----

enum MHD_Result http_generate(struct MHD_Connection *c, http_req *rq, hn_api_kind kind) {
    hn_http *h = rq->h;
    hn_api_error e;
    if (!h->p.engine) {
        hn_api_error_set(&e, 400, "model", "model_is_encoder",
                         "'%s' is an encoder model: this server answers /v1/embeddings, not %s", h->p.model_id,
                         hn_endpoint_path(rq->ep));
        return http_send_error(c, rq, &e);
    }
    hn_api_request ar;
    if (!hn_api_parse(kind, rq->body, rq->len, h->p.max_tokens, &ar, &e)) return http_send_error(c, rq, &e);
    const char *adapter;
    int32_t *ids = NULL;
    int n = 0;
    hn_job *j = NULL;
    http_rag rag = {0};
    enum MHD_Result ret;
    const char *prompt_param = kind == HN_API_CHAT ? "messages" : "prompt";
    if (!pick_model(h, ar.model, &adapter, &e) || (ar.retrieval_k && !http_rag_apply(h, &ar, &rag, &e)) ||
        !build_prompt(h->p.model, &ar, &ids, &n, &e))
        goto refuse;
    int ctx = h->p.max_ctx;
    if (n >= ctx) {
        hn_api_error_set(&e, 400, prompt_param, "context_length_exceeded",
                         "the prompt has %d tokens; this model's context is %d tokens (prompt and answer together)",
                         n, ctx);
        goto refuse;
    }
    int max_tokens = ar.max_tokens;
    if (max_tokens && n + max_tokens > ctx) {
        hn_api_error_set(&e, 400, "max_tokens", "context_length_exceeded",
                         "the prompt has %d tokens and max_tokens asks %d more; this model's context is %d tokens",
                         n, max_tokens, ctx);
        goto refuse;
    }
    if (!max_tokens) { // OpenAI's defaults: 16 for completions, chat until the end of the turn (here: the cap)
        max_tokens = kind == HN_API_CHAT ? h->p.max_tokens : 16;
        if (max_tokens > ctx - n) max_tokens = ctx - n;
    }
    if (ar.vote && ar.answer_regex) {
        char *a = NULL;
        if (hn_vote_extract("", ar.answer_regex, &a)) {
            hn_api_error_set(&e, 400, "answer_regex", NULL, "%s", hn_errmsg());
            goto refuse;
        }
        free(a);
    }
    hn_request r = hn_request_default();
    r.prompt = ids, r.n_prompt = n, r.adapter = adapter, r.sp = ar.sp, r.max_tokens = max_tokens;
    if (!ar.seeded) r.sp.seed = hn_api_random(); // OpenAI's unseeded samples differ between calls
    r.stop = (const char *const *)ar.stop, r.n_stop = ar.n_stop, r.n = ar.n, r.ignore_eos = ar.ignore_eos;
    r.deadline = h->p.timeout > 0 ? hn_now() + h->p.timeout : 0;
    hn_status s = hn_engine_submit(h->p.engine, &r, &j);
    if (s) {
        submit_error(s, &e);
        goto refuse;
    }
    const char *model = ar.model ? ar.model : h->p.model_id;
    const hn_api_sources *sources = ar.retrieval_k ? &rag.list : NULL;
    ret = ar.stream ? start_stream(c, rq, j, &ar, model, n, sources) : whole(c, rq, j, &ar, model, n, sources);
    free(ids);
    http_rag_free(&rag);
    hn_api_request_free(&ar);
    return ret;
refuse:
    free(ids);
    http_rag_free(&rag);
    hn_api_request_free(&ar);
    return http_send_error(c, rq, &e);
}
