// serve/api.h — OpenAI's HTTP API as data: the bodies of /v1/completions, /v1/chat/completions and /v1/embeddings
// parsed and checked into C structs; response bodies (whole, and server-sent-event chunks) and error bodies written
// as JSON; the API key check. No sockets and no model here: serve/http.c does the I/O and runs the engine.
//
//   hn_api_request r;
//   hn_api_error err;
//   if (!hn_api_parse(HN_API_CHAT, body, len, 4096, &r, &err)) {
//       char *json = hn_api_error_json(&err);              // {"error": {"message", "type", "param", "code"}}
//       ... answer err.http with json ...
//   }
//   ... r.msgs, r.sp, r.max_tokens, r.stop, r.n, r.stream ...
//   hn_api_request_free(&r);
//
// What hone's sampler cannot do is refused, naming the field (logprobs, echo, best_of > n, logit_bias, suffix,
// frequency/presence penalties, tools): a client gets a 400 rather than an answer that silently ignored it.
#ifndef HN_API_H
#define HN_API_H

#include "io/chat.h"
#include "serve/engine.h"

typedef enum { HN_API_COMPLETION, HN_API_CHAT, HN_API_EMBEDDING } hn_api_kind;

// An error as OpenAI's clients read it. type follows from http (hn_api_error_set): 401 "authentication_error",
// 5xx "server_error", any other "invalid_request_error".
typedef struct {
    int http;          // the status code
    const char *type;
    const char *param; // the request field at fault (a static string), NULL when none
    const char *code;  // "model_not_found", "invalid_api_key", ... (a static string), NULL when none
    char message[512];
} hn_api_error;
void hn_api_error_set(hn_api_error *e, int http, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
char *hn_api_error_json(const hn_api_error *e); // malloc'd; NULL only when out of memory

#define HN_API_MAX_STOP 16    // stop strings in one request
#define HN_API_MAX_N 64       // samples in one request
#define HN_API_MAX_INPUTS 2048 // texts in one embeddings request

typedef struct {
    hn_api_kind kind;
    char *model;         // "model", NULL when absent (the base model)
    // completions: the prompt as text, or as token ids (prompt_ids non-NULL, already framed by the client)
    char *prompt;
    int32_t *prompt_ids;
    int n_prompt_ids;
    // chat: the messages (role "system", "user" or "assistant"; OpenAI's "developer" is read as "system";
    // content a string or a list of {"type": "text"} parts, joined)
    hn_chat_msg *msgs;
    int n_msgs;
    // embeddings: the texts, and whether the vectors go back as base64 (little-endian float32) or JSON numbers
    char **inputs;
    int n_inputs;
    bool base64;
    int dimensions; // "dimensions" asked (0: not given); hone's vectors have the model's size only
    // generation
    hn_sampler_params sp; // OpenAI's defaults: temperature 1, top_p 1, top_k and min_p off, no penalty
    bool seeded;          // "seed" given (otherwise sp.seed is left for the caller to draw)
    int max_tokens;       // max_tokens (or chat's max_completion_tokens), 1..cap; 0: not given
    char **stop;
    int n_stop;
    int n;
    bool stream, stream_usage; // stream_options.include_usage: a last chunk with the usage
    bool ignore_eos;           // vLLM's extension: generate max_tokens whatever the model says
    bool vote;                 // the voting extension: with n > 1, the majority answer of the samples
    char *answer_regex;        // the answer's pattern (PCRE2); NULL: the last number in the text
    // chat's retrieval extension: "retrieval": true (HN_API_RETRIEVAL_K chunks) or {"k": K} (1..HN_API_MAX_RETRIEVAL_K)
    // puts the database's best chunks for the last user message before it (hone serve --db); 0: off
    int retrieval_k;
} hn_api_request;

#define HN_API_RETRIEVAL_K 5      // "retrieval": true
#define HN_API_MAX_RETRIEVAL_K 20

// Parses body (len bytes; need not be NUL-terminated) as a request of the given kind. max_tokens_cap: the most
// max_tokens a request may ask. false with *err filled (400) when the body is not JSON, a field has the wrong type
// or range, or asks for what hone cannot do; the request then needs no freeing.
bool hn_api_parse(hn_api_kind kind, const char *body, size_t len, int max_tokens_cap, hn_api_request *out,
                  hn_api_error *err);
void hn_api_request_free(hn_api_request *r);

// OpenAI's finish_reason for how a sample ended (hn_finish_name: "stop", "length"; a cancelled one "cancelled", an
// error "error"); NULL (JSON null) while it has not.
const char *hn_api_finish_reason(hn_finish f);

// Responses. id: "cmpl-..." / "chatcmpl-..." (hn_api_new_id); created: Unix seconds. Texts that are not valid UTF-8
// are written with U+FFFD in place of the bad bytes (JSON strings must be Unicode).
void hn_api_new_id(hn_api_kind kind, char out[40]);

typedef struct {
    const char *answer; // the winning answer (NULL: no sample had one)
    int count, of;      // samples that gave it, samples in all
    int choice;         // the first sample that gave it (-1 when none)
} hn_api_vote;

// The chunks a retrieval request's prompt holds, in the order of their numbers ([1] first): written as the
// top-level "sources": [{"index": 1, "text", "score", "source", "id"}, ...] of a response (an empty list when the
// database had nothing to give).
typedef struct {
    int64_t id;         // the chunk's id in the database
    float score;        // cosine similarity to the question
    const char *text;   // the chunk's text
    const char *source; // its document (path, or FILE#ID)
} hn_api_source;

typedef struct {
    const hn_api_source *items;
    int n;
} hn_api_sources;

// The whole response of a completion or chat request: one choice per text, usage, "vote" when vote is non-NULL,
// "sources" when sources is non-NULL.
char *hn_api_completion_json(hn_api_kind kind, const char *id, const char *model, int64_t created,
                             const char *const *texts, const hn_finish *finish, int n, int prompt_tokens,
                             int completion_tokens, const hn_api_vote *vote, const hn_api_sources *sources);

// One server-sent event: "data: " + a chunk in OpenAI's format + "\n\n". A chat chunk's delta carries
// "role": "assistant" when first is true (a sample's first chunk) and the text as "content"; finish other than
// HN_FINISH_NONE ends the sample (finish_reason set, an empty delta); "sources" at the top level when sources is
// non-NULL (a retrieval stream's first chunk). malloc'd.
char *hn_api_chunk_sse(hn_api_kind kind, const char *id, const char *model, int64_t created, int index,
                       const char *text, size_t len, bool first, hn_finish finish, const hn_api_sources *sources);
// The last chunk of a stream with stream_options.include_usage: no choices, the usage.
char *hn_api_usage_sse(hn_api_kind kind, const char *id, const char *model, int64_t created, int prompt_tokens,
                       int completion_tokens);
#define HN_API_SSE_DONE "data: [DONE]\n\n"

// /v1/embeddings' response: n vectors of dim floats (row-major), as numbers or base64.
char *hn_api_embeddings_json(const char *model, const float *vecs, int n, int dim, bool base64, int prompt_tokens);
// /v1/models: the base model, each adapter (parent: the base), and the embedding model when there is one.
char *hn_api_models_json(const char *base, const char *const *adapters, int n_adapters, const char *embed_model,
                         int64_t created);

// A random 64-bit number (thread-safe; seeded from the clock and the process): ids, and seeds for requests that
// give none (OpenAI's unseeded sampling differs from call to call).
uint64_t hn_api_random(void);

// Whether an Authorization header value is "Bearer KEY" for this key. The time taken depends on the key's length
// only, never on where the given value first differs from it.
bool hn_api_key_ok(const char *authorization, const char *key);

// s[0..len) with every byte that does not start or continue a valid UTF-8 character replaced by U+FFFD; malloc'd,
// NUL-terminated, *out_len its length.
char *hn_api_utf8_clean(const char *s, size_t len, size_t *out_len);

#endif
