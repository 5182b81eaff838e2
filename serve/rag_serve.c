// serve/rag_serve.c — chat's retrieval extension in `hone serve --db DIR`: a request with "retrieval": {"k": K}
// has the database's K best chunks for its last user message (adapt/rag.h) put before that message as numbered
// sources, as `hone ask` puts them (hn_rag_prompt_fit), and the chunks the prompt holds go back as "sources".
//
// The sources are fitted to the context less the answer's room (max_tokens when the request gives it, else half the
// context or --max-tokens, the smaller) and less the rest of the rendered chat (the other messages, the template's
// markup and default system prompt, measured by rendering the chat with that message empty).
#include "serve/http_internal.h"
#include "tensor/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Tokens the template and the other messages take: the chat rendered and tokenized as build_prompt does it, with
// message q's content empty. -1 when that fails (the request is then refused by build_prompt itself).
static int64_t frame_tokens(const hn_model *m, const hn_api_request *ar, int q) {
    hn_chat_msg *msgs = malloc((size_t)ar->n_msgs * sizeof *msgs);
    if (!msgs) return -1;
    memcpy(msgs, ar->msgs, (size_t)ar->n_msgs * sizeof *msgs);
    msgs[q].content = "";
    char *text = NULL;
    int32_t *ids = NULL;
    int64_t n = -1;
    if (!hn_chat_render(m->chat, m->default_system, msgs, ar->n_msgs, true, &text) &&
        hn_tokenizer_encode(m->tok, text, -1, HN_TOK_SPECIAL | HN_TOK_ADD_BOS, &ids, &n))
        n = -1;
    free(ids);
    free(text);
    free(msgs);
    return n;
}

// Tokens spent where the question and the sources meet the template's markup (a merge across the boundary can
// change the count by a token or two; the engine's own context check still has the last word).
#define JOIN_SLACK 8

bool http_rag_apply(hn_http *h, hn_api_request *ar, http_rag *out, hn_api_error *e) {
    memset(out, 0, sizeof *out);
    if (!h->p.rag) {
        hn_api_error_set(e, 400, "retrieval", "retrieval_unavailable",
                         "retrieval: the server has no --db (start hone serve with --db DIR, a database built by "
                         "hone index)");
        return false;
    }
    const hn_model *m = h->p.model;
    if (!m->tok) {
        hn_api_error_set(e, 400, "retrieval", NULL, "retrieval: this model has no tokenizer to fit the sources with");
        return false;
    }
    int q = ar->n_msgs - 1;
    while (q >= 0 && strcmp(ar->msgs[q].role, "user")) q--;
    if (q < 0) {
        hn_api_error_set(e, 400, "messages", NULL, "retrieval takes the last user message as its question; the "
                                                   "messages have none");
        return false;
    }
    const char *question = ar->msgs[q].content;
    if (!question[strspn(question, " \t\r\n")]) {
        hn_api_error_set(e, 400, "messages", NULL, "messages[%d].content is empty; retrieval needs a question", q);
        return false;
    }
    int ctx = h->p.max_ctx, room = ar->max_tokens;
    if (!room) room = h->p.max_tokens < ctx / 2 ? h->p.max_tokens : ctx / 2;
    int64_t frame = frame_tokens(m, ar, q);
    int64_t budget = (int64_t)ctx - room - (frame < 0 ? 0 : frame) - JOIN_SLACK;

    int k = ar->retrieval_k;
    out->hits = calloc((size_t)k, sizeof *out->hits);
    out->items = calloc((size_t)k, sizeof *out->items);
    if (!out->hits || !out->items) {
        http_rag_free(out);
        hn_api_error_set(e, 500, NULL, NULL, "out of memory for the retrieval");
        return false;
    }
    out->k = k;
    double t0 = hn_now();
    // hn_rag_retrieve is not thread-safe, and its encoder may be /v1/embeddings' own (--embed-model, shared):
    // retrievals and embedding requests take turns under one lock.
    pthread_mutex_lock(&h->embed_mu);
    hn_status s = hn_rag_retrieve(h->p.rag, &question, 1, k, out->hits, &out->n);
    pthread_mutex_unlock(&h->embed_mu);
    hn_matmul_thread_free(); // this connection's thread ends with its connection: its matmul buffers with it
    atomic_fetch_add(&h->rag_requests, 1);
    atomic_fetch_add(&h->rag_us, (int64_t)((hn_now() - t0) * 1e6));
    if (s) {
        hn_api_error_set(e, 500, NULL, NULL, "retrieval failed: %s", hn_errmsg());
        http_rag_free(out);
        return false;
    }
    int used = 0;
    char *prompt = budget > 0 ? hn_rag_prompt_fit(m->tok, out->hits, out->n, question, NULL, (int)budget, &used)
                              : NULL;
    if (budget <= 0 || !prompt) {
        if (budget <= 0)
            hn_api_error_set(e, 400, "max_tokens", "context_length_exceeded",
                             "the messages and max_tokens (%d) leave no room for retrieved sources in this model's "
                             "context of %d tokens", room, ctx);
        else hn_api_error_set(e, 500, NULL, NULL, "the retrieval prompt: %s", hn_errmsg()); // memory, tokenizer
        http_rag_free(out);
        return false;
    }
    free((char *)ar->msgs[q].content);
    ar->msgs[q].content = prompt;
    for (int i = 0; i < used; i++)
        out->items[i] = (hn_api_source){.id = out->hits[i].id, .score = out->hits[i].score,
                                        .text = out->hits[i].text ? out->hits[i].text : "",
                                        .source = out->hits[i].source ? out->hits[i].source : ""};
    out->list = (hn_api_sources){.items = out->items, .n = used};
    return true;
}

void http_rag_free(http_rag *r) {
    if (r->hits) hn_rag_hits_free(r->hits, r->k);
    free(r->hits);
    free(r->items);
    memset(r, 0, sizeof *r);
}
