// serve/api.c — OpenAI's request and response bodies (serve/api.h), with jansson. The field names, defaults and
// response shapes follow OpenAI's API reference for the legacy completions, chat completions and embeddings
// endpoints; top_k, min_p, repetition_penalty and ignore_eos are vLLM's extensions of the same bodies.
#define _GNU_SOURCE // strncasecmp
#include "serve/api.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

void hn_api_error_set(hn_api_error *e, int http, const char *param, const char *code, const char *fmt, ...) {
    e->http = http;
    e->type = http == 401 ? "authentication_error" : http >= 500 ? "server_error" : "invalid_request_error";
    e->param = param;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

// A string field that may be NULL (OpenAI writes null for param and code when there is none).
static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

// Every jansson constructor returns NULL when out of memory, and json_object_set_new frees its value on failure;
// building a document then only needs one check of the whole (json_pack-like nesting with the _new calls), so the
// builders below return NULL from dump when any part failed.
static char *dump(json_t *root, bool ok, size_t flags) {
    char *s = root && ok ? json_dumps(root, JSON_COMPACT | flags) : NULL;
    json_decref(root);
    return s;
}

char *hn_api_error_json(const hn_api_error *e) {
    json_t *err = json_object(), *root = json_object();
    bool ok = err && root && !json_object_set_new(err, "message", json_string(e->message)) &&
              !json_object_set_new(err, "type", json_string(e->type ? e->type : "invalid_request_error")) &&
              !json_object_set_new(err, "param", str_or_null(e->param)) &&
              !json_object_set_new(err, "code", str_or_null(e->code));
    if (root && err) ok = !json_object_set_new(root, "error", err) && ok;
    else json_decref(err);
    return dump(root, ok, 0);
}

// ---- parsing ----

// A field as the request gave it: NULL when absent or null (OpenAI's clients send null for "not set").
static json_t *field(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

// A 400 naming the field: fmt has one %s, the field's name.
#define BAD(e, param, fmt) (hn_api_error_set(e, 400, param, NULL, fmt, param), false)

// An integer field in [lo, hi]; absent leaves *out as it is.
static bool get_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out, hn_api_error *e) {
    json_t *v = field(o, key);
    if (!v) return true;
    if (!json_is_integer(v)) return BAD(e, key, "'%s' must be an integer");
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        hn_api_error_set(e, 400, key, NULL, "'%s' must be between %lld and %lld, got %lld", key, (long long)lo,
                         (long long)hi, (long long)x);
        return false;
    }
    *out = x;
    return true;
}

// A number field in [lo, hi] (lo_open: lo itself excluded).
static bool get_num(json_t *o, const char *key, double lo, bool lo_open, double hi, float *out, hn_api_error *e) {
    json_t *v = field(o, key);
    if (!v) return true;
    if (!json_is_number(v)) return BAD(e, key, "'%s' must be a number");
    double x = json_number_value(v);
    if (!(lo_open ? x > lo : x >= lo) || !(x <= hi)) {
        hn_api_error_set(e, 400, key, NULL, "'%s' must be %s %g and at most %g, got %g", key, lo_open ? ">" : ">=",
                         lo, hi, x);
        return false;
    }
    *out = (float)x;
    return true;
}

static bool get_bool(json_t *o, const char *key, bool *out, hn_api_error *e) {
    json_t *v = field(o, key);
    if (!v) return true;
    if (!json_is_boolean(v)) return BAD(e, key, "'%s' must be true or false");
    *out = json_is_true(v);
    return true;
}

static char *dup_str(json_t *v) {
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n), d[n] = 0;
    return d;
}

// A string field; NUL bytes inside (jansson reads \u0000 only with JSON_ALLOW_NUL, which is off) cannot occur.
static bool get_str(json_t *o, const char *key, char **out, hn_api_error *e) {
    json_t *v = field(o, key);
    if (!v) return true;
    if (!json_is_string(v)) return BAD(e, key, "'%s' must be a string");
    if (!(*out = dup_str(v))) {
        hn_api_error_set(e, 500, NULL, NULL, "out of memory reading '%s'", key);
        return false;
    }
    return true;
}

static bool oom(hn_api_error *e) {
    hn_api_error_set(e, 500, NULL, NULL, "out of memory reading the request");
    return false;
}

// Fields hone's sampler has no counterpart for: refused when set to anything but their no-op value.
static bool refuse_unsupported(json_t *o, hn_api_kind kind, int n, hn_api_error *e) {
    json_t *v;
    if ((v = field(o, "logprobs")) && !json_is_false(v) && !(json_is_integer(v) && json_integer_value(v) == 0))
        return BAD(e, "logprobs", "'%s' is not supported by hone serve");
    if ((v = field(o, "top_logprobs")) && !(json_is_integer(v) && json_integer_value(v) == 0))
        return BAD(e, "top_logprobs", "'%s' is not supported by hone serve");
    if ((v = field(o, "echo")) && !json_is_false(v))
        return BAD(e, "echo", "'%s' is not supported by hone serve (send the prompt back yourself)");
    if ((v = field(o, "best_of")) && !(json_is_integer(v) && json_integer_value(v) == n))
        return BAD(e, "best_of", "'%s' other than n is not supported by hone serve (no log-probabilities to rank "
                                 "samples by)");
    if ((v = field(o, "logit_bias")) && !(json_is_object(v) && json_object_size(v) == 0))
        return BAD(e, "logit_bias", "'%s' is not supported by hone serve");
    if ((v = field(o, "suffix")) && !(json_is_string(v) && json_string_length(v) == 0))
        return BAD(e, "suffix", "'%s' is not supported by hone serve (no fill-in-the-middle)");
    static const char *const penalties[] = {"frequency_penalty", "presence_penalty"};
    for (int i = 0; i < 2; i++)
        if ((v = field(o, penalties[i])) && !(json_is_number(v) && json_number_value(v) == 0))
            return BAD(e, penalties[i], "'%s' is not supported by hone serve; use 'repetition_penalty' (llama.cpp's "
                                        "rule over the last 64 tokens)");
    static const char *const tools[] = {"tools", "functions", "function_call"};
    for (int i = 0; i < 3; i++)
        if ((v = field(o, tools[i])) && !(json_is_array(v) && json_array_size(v) == 0))
            return BAD(e, tools[i], "'%s' is not supported by hone serve (no tool calls)");
    if ((v = field(o, "tool_choice")) && !(json_is_string(v) && !strcmp(json_string_value(v), "none")))
        return BAD(e, "tool_choice", "'%s' is not supported by hone serve (no tool calls)");
    if ((v = field(o, "response_format"))) {
        json_t *t = json_object_get(v, "type");
        if (!json_is_string(t) || strcmp(json_string_value(t), "text"))
            return BAD(e, "response_format", "'%s' other than {\"type\": \"text\"} is not supported by hone serve");
    }
    if (kind == HN_API_CHAT && (v = field(o, "prompt")))
        return BAD(e, "prompt", "'%s' belongs to /v1/completions; chat takes 'messages'");
    if (kind == HN_API_COMPLETION && (v = field(o, "messages")))
        return BAD(e, "messages", "'%s' belongs to /v1/chat/completions; completions take 'prompt'");
    return true;
}

static bool parse_stop(json_t *o, hn_api_request *r, hn_api_error *e) {
    json_t *v = field(o, "stop");
    if (!v) return true;
    json_t *one[1] = {v};
    json_t **items = one;
    size_t n = 1;
    if (json_is_array(v)) {
        n = json_array_size(v);
        if (n > HN_API_MAX_STOP) {
            hn_api_error_set(e, 400, "stop", NULL, "'stop' has %zu strings; at most %d", n, HN_API_MAX_STOP);
            return false;
        }
        items = NULL;
    }
    if (!n) return true;
    if (!(r->stop = calloc(n, sizeof *r->stop))) return oom(e);
    for (size_t i = 0; i < n; i++) {
        json_t *s = items ? items[i] : json_array_get(v, i);
        if (!json_is_string(s) || !json_string_length(s))
            return BAD(e, "stop", "'%s' must be a non-empty string or a list of them");
        if (!(r->stop[r->n_stop++] = dup_str(s))) return oom(e);
    }
    return true;
}

// A list of token ids (each 0..INT32_MAX; the engine checks them against the vocabulary).
static bool parse_ids(json_t *a, hn_api_request *r, hn_api_error *e) {
    size_t n = json_array_size(a);
    if (!n) return BAD(e, "prompt", "'%s' is an empty list");
    if (n > INT32_MAX || !(r->prompt_ids = malloc(n * sizeof *r->prompt_ids))) return oom(e);
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(a, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
            return BAD(e, "prompt", "'%s' must be a string or a list of token ids (integers >= 0)");
        r->prompt_ids[i] = (int32_t)json_integer_value(t);
    }
    r->n_prompt_ids = (int)n;
    return true;
}

// A string, a list of token ids, or a list of exactly one of either (OpenAI's batch of prompts: one per request
// here, so that each request is one job with one usage).
static bool parse_prompt(json_t *o, hn_api_request *r, hn_api_error *e) {
    json_t *v = field(o, "prompt");
    if (!v) return BAD(e, "prompt", "'%s' is required");
    if (json_is_array(v) && json_array_size(v) == 1 && !json_is_integer(json_array_get(v, 0)))
        v = json_array_get(v, 0);
    if (json_is_string(v)) return (r->prompt = dup_str(v)) ? true : oom(e);
    if (json_is_array(v)) {
        if (json_array_size(v) && !json_is_integer(json_array_get(v, 0)))
            return BAD(e, "prompt", "'%s' holds several prompts; hone serve takes one per request");
        return parse_ids(v, r, e);
    }
    return BAD(e, "prompt", "'%s' must be a string or a list of token ids");
}

// A message's content: a string, or a list of parts of which only {"type": "text", "text": ...} is understood.
static bool parse_content(json_t *c, size_t i, char **out, hn_api_error *e) {
    if (!c) return (*out = strdup("")) ? true : oom(e); // an assistant turn with only tool calls has none
    if (json_is_string(c)) return (*out = dup_str(c)) ? true : oom(e);
    if (!json_is_array(c)) {
        hn_api_error_set(e, 400, "messages", NULL, "messages[%zu].content must be a string or a list of text parts",
                         i);
        return false;
    }
    size_t total = 0, k;
    json_t *p;
    json_array_foreach(c, k, p) {
        json_t *t = json_object_get(p, "type"), *x = json_object_get(p, "text");
        if (!json_is_string(t) || strcmp(json_string_value(t), "text") || !json_is_string(x)) {
            hn_api_error_set(e, 400, "messages", NULL, "messages[%zu].content[%zu]: only {\"type\": \"text\", "
                                                       "\"text\": ...} parts are supported by hone serve", i, k);
            return false;
        }
        total += json_string_length(x);
    }
    char *s = malloc(total + 1);
    if (!s) return oom(e);
    size_t at = 0;
    json_array_foreach(c, k, p) {
        json_t *x = json_object_get(p, "text");
        memcpy(s + at, json_string_value(x), json_string_length(x));
        at += json_string_length(x);
    }
    s[at] = 0;
    *out = s;
    return true;
}

static bool parse_messages(json_t *o, hn_api_request *r, hn_api_error *e) {
    json_t *v = field(o, "messages");
    if (!json_is_array(v) || !json_array_size(v))
        return BAD(e, "messages", "'%s' must be a non-empty list of {\"role\", \"content\"}");
    size_t n = json_array_size(v);
    if (n > INT32_MAX || !(r->msgs = calloc(n, sizeof *r->msgs))) return oom(e);
    for (size_t i = 0; i < n; i++) {
        json_t *msg = json_array_get(v, i), *role = json_object_get(msg, "role");
        const char *rs = json_string_value(role);
        const char *known = !rs ? NULL
                            : !strcmp(rs, "system") || !strcmp(rs, "developer") ? "system"
                            : !strcmp(rs, "user")                                 ? "user"
                            : !strcmp(rs, "assistant")                            ? "assistant"
                                                                                  : NULL;
        if (!json_is_object(msg) || !known) {
            hn_api_error_set(e, 400, "messages", NULL, "messages[%zu].role must be \"system\", \"user\" or "
                                                       "\"assistant\"%s%s%s", i, rs ? ", got \"" : "", rs ? rs : "",
                             rs ? "\"" : "");
            return false;
        }
        char *content = NULL;
        if (!parse_content(field(msg, "content"), i, &content, e)) return false;
        r->msgs[r->n_msgs++] = (hn_chat_msg){known, content};
    }
    return true;
}

static bool parse_inputs(json_t *o, hn_api_request *r, hn_api_error *e) {
    json_t *v = field(o, "input");
    if (!v) return BAD(e, "input", "'%s' is required");
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_array(v) && !json_is_string(v)) return BAD(e, "input", "'%s' must be a string or a list of them");
    if (!n || n > HN_API_MAX_INPUTS) {
        hn_api_error_set(e, 400, "input", NULL, "'input' must hold 1 to %d texts, got %zu", HN_API_MAX_INPUTS, n);
        return false;
    }
    if (!(r->inputs = calloc(n, sizeof *r->inputs))) return oom(e);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(s))
            return BAD(e, "input", "'%s' must be text (token ids are not supported by hone serve's embeddings)");
        if (!json_string_length(s)) {
            hn_api_error_set(e, 400, "input", NULL, "input[%zu] is empty; expected text", i);
            return false;
        }
        if (!(r->inputs[r->n_inputs++] = dup_str(s))) return oom(e);
    }
    json_t *f = field(o, "encoding_format");
    if (f && (!json_is_string(f) || (strcmp(json_string_value(f), "float") && strcmp(json_string_value(f), "base64"))))
        return BAD(e, "encoding_format", "'%s' must be \"float\" or \"base64\"");
    r->base64 = f && !strcmp(json_string_value(f), "base64");
    int64_t dims = 0;
    if (!get_int(o, "dimensions", 1, INT32_MAX, &dims, e)) return false;
    r->dimensions = (int)dims;
    return true;
}

static bool parse_generation(json_t *o, int cap, hn_api_request *r, hn_api_error *e) {
    int64_t n = 1, max_tokens = 0, top_k = 0, seed = 0;
    if (!get_int(o, "n", 1, HN_API_MAX_N, &n, e)) return false;
    r->n = (int)n;
    if (!refuse_unsupported(o, r->kind, r->n, e)) return false;
    const char *mt = r->kind == HN_API_CHAT && field(o, "max_completion_tokens") ? "max_completion_tokens"
                                                                                  : "max_tokens";
    json_t *mv = field(o, mt);
    if (mv && json_is_integer(mv) && (json_integer_value(mv) < 1 || json_integer_value(mv) > cap)) {
        hn_api_error_set(e, 400, mt, NULL, "'%s' must be between 1 and %d (this server's limit), got %lld", mt, cap,
                         (long long)json_integer_value(mv));
        return false;
    }
    if (!get_int(o, mt, 1, cap, &max_tokens, e)) return false;
    r->max_tokens = (int)max_tokens;
    // OpenAI's defaults (temperature 1, top_p 1) and nothing else: hone's CLI defaults (top_k 40, min_p 0.05) are
    // not what an API client expects.
    hn_sampler_params sp = hn_sampler_default_params();
    sp.temp = 1, sp.top_k = 0, sp.top_p = 1, sp.min_p = 0, sp.repeat_penalty = 1;
    if (!get_num(o, "temperature", 0, false, 100, &sp.temp, e) || !get_num(o, "top_p", 0, true, 1, &sp.top_p, e) ||
        !get_num(o, "min_p", 0, false, 1, &sp.min_p, e) ||
        !get_num(o, "repetition_penalty", 0, true, 100, &sp.repeat_penalty, e) ||
        !get_int(o, "top_k", -1, INT32_MAX, &top_k, e) || !get_int(o, "seed", INT64_MIN, INT64_MAX, &seed, e))
        return false;
    sp.top_k = top_k < 0 ? 0 : (int)top_k; // vLLM's -1: off
    r->seeded = field(o, "seed") != NULL;
    sp.seed = (uint64_t)seed;
    r->sp = sp;
    if (!parse_stop(o, r, e) || !get_bool(o, "stream", &r->stream, e) ||
        !get_bool(o, "ignore_eos", &r->ignore_eos, e))
        return false;
    json_t *so = field(o, "stream_options");
    if (so) {
        if (!json_is_object(so)) return BAD(e, "stream_options", "'%s' must be an object");
        if (!r->stream) return BAD(e, "stream_options", "'%s' needs \"stream\": true");
        if (!get_bool(so, "include_usage", &r->stream_usage, e)) return false;
    }
    if (!get_bool(o, "vote", &r->vote, e) || !get_str(o, "answer_regex", &r->answer_regex, e)) return false;
    if (r->answer_regex && !r->vote) return BAD(e, "answer_regex", "'%s' needs \"vote\": true");
    if (r->vote && r->n < 2) return BAD(e, "vote", "'%s' needs n > 1 (the samples that vote)");
    if (r->vote && r->stream) return BAD(e, "vote", "'%s' is not available with \"stream\": true");
    return true;
}

// The retrieval extension: true (the default k), false, or {"k": K}. Only chat has a user message to take as the
// question; a completion's prompt is the client's own text, already framed, so it is refused there (false, the
// no-op value, aside).
static bool parse_retrieval(json_t *o, hn_api_request *r, hn_api_error *e) {
    json_t *v = field(o, "retrieval");
    if (!v || json_is_false(v)) return true;
    if (r->kind != HN_API_CHAT)
        return BAD(e, "retrieval", "'%s' is supported on /v1/chat/completions only (the last user message is the "
                                   "question)");
    if (json_is_true(v)) {
        r->retrieval_k = HN_API_RETRIEVAL_K;
        return true;
    }
    if (!json_is_object(v)) return BAD(e, "retrieval", "'%s' must be true, false or {\"k\": N}");
    const char *key;
    json_t *item;
    json_object_foreach(v, key, item) if (strcmp(key, "k")) {
        hn_api_error_set(e, 400, "retrieval", NULL, "'retrieval' has an unknown field '%.100s' (it takes \"k\")",
                         key);
        return false;
    }
    json_t *k = field(v, "k");
    if (!k) {
        r->retrieval_k = HN_API_RETRIEVAL_K;
        return true;
    }
    if (!json_is_integer(k)) return BAD(e, "retrieval.k", "'%s' must be an integer");
    json_int_t x = json_integer_value(k);
    if (x < 1 || x > HN_API_MAX_RETRIEVAL_K) {
        hn_api_error_set(e, 400, "retrieval.k", NULL, "'retrieval.k' must be between 1 and %d, got %lld",
                         HN_API_MAX_RETRIEVAL_K, (long long)x);
        return false;
    }
    r->retrieval_k = (int)x;
    return true;
}

bool hn_api_parse(hn_api_kind kind, const char *body, size_t len, int max_tokens_cap, hn_api_request *out,
                  hn_api_error *err) {
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->n = 1;
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        hn_api_error_set(err, 400, NULL, NULL, "the body is not valid JSON: %s (line %d, column %d)", je.text,
                         je.line, je.column);
        return false;
    }
    bool ok = false;
    if (!json_is_object(o)) hn_api_error_set(err, 400, NULL, NULL, "the body must be a JSON object");
    else if (get_str(o, "model", &out->model, err)) {
        if (kind == HN_API_EMBEDDING) ok = parse_inputs(o, out, err);
        else if (parse_generation(o, max_tokens_cap, out, err) && parse_retrieval(o, out, err))
            ok = kind == HN_API_CHAT ? parse_messages(o, out, err) : parse_prompt(o, out, err);
    }
    json_decref(o);
    if (!ok) hn_api_request_free(out);
    return ok;
}

void hn_api_request_free(hn_api_request *r) {
    free(r->model);
    free(r->prompt);
    free(r->prompt_ids);
    for (int i = 0; i < r->n_msgs; i++) free((char *)r->msgs[i].content);
    free(r->msgs);
    for (int i = 0; i < r->n_inputs; i++) free(r->inputs[i]);
    free(r->inputs);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->stop);
    free(r->answer_regex);
    memset(r, 0, sizeof *r);
}

// ---- responses ----

const char *hn_api_finish_reason(hn_finish f) { return f == HN_FINISH_NONE ? NULL : hn_finish_name(f); }

uint64_t hn_api_random(void) {
    // splitmix64 over a counter whose start mixes the clock and the pid: distinct across calls and processes.
    static _Atomic uint64_t state;
    static atomic_flag seeded = ATOMIC_FLAG_INIT;
    if (!atomic_flag_test_and_set(&seeded)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        atomic_fetch_add(&state, (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec << 20 ^
                                     (uint64_t)getpid() << 40);
    }
    uint64_t z = atomic_fetch_add(&state, 0x9E3779B97F4A7C15ull) + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void hn_api_new_id(hn_api_kind kind, char out[40]) {
    snprintf(out, 40, "%s-%016llx%08llx", kind == HN_API_CHAT ? "chatcmpl" : kind == HN_API_EMBEDDING ? "embd" : "cmpl",
             (unsigned long long)hn_api_random(), (unsigned long long)(hn_api_random() & 0xFFFFFFFFu));
}

char *hn_api_utf8_clean(const char *s, size_t len, size_t *out_len) {
    char *d = malloc(len * 3 + 1); // each bad byte becomes the three bytes of U+FFFD
    if (!d) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned c = u[i];
        int n = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
        bool ok = n && i + n <= len;
        for (int k = 1; ok && k < n; k++) ok = (u[i + k] & 0xC0) == 0x80;
        // overlongs, surrogates and code points past U+10FFFF
        if (ok && n > 2)
            ok = !((c == 0xE0 && u[i + 1] < 0xA0) || (c == 0xED && u[i + 1] >= 0xA0) ||
                   (c == 0xF0 && u[i + 1] < 0x90) || (c == 0xF4 && u[i + 1] >= 0x90));
        if (ok && !(n == 1 && c == 0)) {
            memcpy(d + o, s + i, (size_t)n);
            o += (size_t)n, i += (size_t)n;
        } else {
            memcpy(d + o, "\xEF\xBF\xBD", 3);
            o += 3, i++;
        }
    }
    d[o] = 0;
    if (out_len) *out_len = o;
    return d;
}

static json_t *text_json(const char *s, size_t len) {
    size_t n;
    char *clean = hn_api_utf8_clean(s, len, &n);
    json_t *j = clean ? json_stringn(clean, n) : NULL;
    free(clean);
    return j;
}

static json_t *usage_json(int prompt_tokens, int completion_tokens) {
    json_t *u = json_object();
    if (u && (json_object_set_new(u, "prompt_tokens", json_integer(prompt_tokens)) ||
              json_object_set_new(u, "completion_tokens", json_integer(completion_tokens)) ||
              json_object_set_new(u, "total_tokens", json_integer((json_int_t)prompt_tokens + completion_tokens)))) {
        json_decref(u);
        return NULL;
    }
    return u;
}

// {"id", "object", "created", "model", "choices": []}: the frame every response and chunk shares.
static json_t *frame(const char *object, const char *id, const char *model, int64_t created, json_t **choices) {
    json_t *root = json_object();
    *choices = json_array();
    if (!root || !*choices || json_object_set_new(root, "id", json_string(id)) ||
        json_object_set_new(root, "object", json_string(object)) ||
        json_object_set_new(root, "created", json_integer(created)) ||
        json_object_set_new(root, "model", json_string(model)) || json_object_set(root, "choices", *choices)) {
        json_decref(root);
        json_decref(*choices);
        *choices = NULL;
        return NULL;
    }
    json_decref(*choices); // root holds it
    return root;
}

static json_t *finish_json(hn_finish f) { return str_or_null(hn_api_finish_reason(f)); }

// root["sources"] = [{"index": 1, "text", "score", "source", "id"}, ...]; true when it went in.
static bool add_sources(json_t *root, const hn_api_sources *src) {
    json_t *list = json_array();
    bool ok = list != NULL;
    for (int i = 0; ok && i < src->n; i++) {
        const hn_api_source *x = &src->items[i];
        json_t *o = json_object();
        ok = o && !json_object_set_new(o, "index", json_integer(i + 1)) &&
             !json_object_set_new(o, "text", text_json(x->text, strlen(x->text))) &&
             !json_object_set_new(o, "score", json_real(x->score)) &&
             !json_object_set_new(o, "source", text_json(x->source, strlen(x->source))) &&
             !json_object_set_new(o, "id", json_integer(x->id));
        ok = !json_array_append_new(list, o) && ok;
    }
    return !json_object_set_new(root, "sources", list) && ok;
}

char *hn_api_completion_json(hn_api_kind kind, const char *id, const char *model, int64_t created,
                             const char *const *texts, const hn_finish *finish, int n, int prompt_tokens,
                             int completion_tokens, const hn_api_vote *vote, const hn_api_sources *sources) {
    bool chat = kind == HN_API_CHAT;
    json_t *choices, *root = frame(chat ? "chat.completion" : "text_completion", id, model, created, &choices);
    bool ok = root != NULL;
    for (int i = 0; ok && i < n; i++) {
        json_t *c = json_object();
        ok = c && !json_object_set_new(c, "index", json_integer(i));
        if (ok && chat) {
            json_t *msg = json_object();
            ok = msg && !json_object_set_new(msg, "role", json_string("assistant")) &&
                 !json_object_set_new(msg, "content", text_json(texts[i], strlen(texts[i])));
            ok = !json_object_set_new(c, "message", msg) && ok;
        } else if (ok) {
            ok = !json_object_set_new(c, "text", text_json(texts[i], strlen(texts[i])));
        }
        ok = ok && !json_object_set_new(c, "logprobs", json_null()) &&
             !json_object_set_new(c, "finish_reason", finish_json(finish[i]));
        ok = !json_array_append_new(choices, c) && ok;
    }
    ok = ok && !json_object_set_new(root, "usage", usage_json(prompt_tokens, completion_tokens));
    if (ok && vote) {
        json_t *v = json_object();
        ok = v && !json_object_set_new(v, "answer", vote->answer ? text_json(vote->answer, strlen(vote->answer))
                                                                 : json_null()) &&
             !json_object_set_new(v, "count", json_integer(vote->count)) &&
             !json_object_set_new(v, "of", json_integer(vote->of)) &&
             !json_object_set_new(v, "choice", vote->choice >= 0 ? json_integer(vote->choice) : json_null());
        ok = !json_object_set_new(root, "vote", v) && ok;
    }
    if (ok && sources) ok = add_sources(root, sources);
    return dump(root, ok, JSON_REAL_PRECISION(9)); // the scores: 9 significant digits give a float32 back
}

static char *sse(char *json) {
    if (!json) return NULL;
    size_t n = strlen(json);
    char *s = malloc(n + 9);
    if (s) memcpy(s, "data: ", 6), memcpy(s + 6, json, n), memcpy(s + 6 + n, "\n\n", 3);
    free(json);
    return s;
}

char *hn_api_chunk_sse(hn_api_kind kind, const char *id, const char *model, int64_t created, int index,
                       const char *text, size_t len, bool first, hn_finish finish, const hn_api_sources *sources) {
    bool chat = kind == HN_API_CHAT, done = finish != HN_FINISH_NONE;
    json_t *choices, *root = frame(chat ? "chat.completion.chunk" : "text_completion", id, model, created, &choices);
    json_t *c = root ? json_object() : NULL;
    bool ok = c && !json_object_set_new(c, "index", json_integer(index));
    if (ok && chat) {
        json_t *delta = json_object();
        ok = delta != NULL;
        if (ok && first) ok = !json_object_set_new(delta, "role", json_string("assistant"));
        if (ok && (!done || len)) ok = !json_object_set_new(delta, "content", text_json(text ? text : "", len));
        ok = !json_object_set_new(c, "delta", delta) && ok;
    } else if (ok) {
        ok = !json_object_set_new(c, "text", text_json(text ? text : "", len));
    }
    ok = ok && !json_object_set_new(c, "logprobs", json_null()) &&
         !json_object_set_new(c, "finish_reason", finish_json(finish));
    if (c) ok = !json_array_append_new(choices, c) && ok;
    if (ok && sources) ok = add_sources(root, sources);
    return sse(dump(root, ok, JSON_REAL_PRECISION(9)));
}

char *hn_api_usage_sse(hn_api_kind kind, const char *id, const char *model, int64_t created, int prompt_tokens,
                       int completion_tokens) {
    json_t *choices,
        *root = frame(kind == HN_API_CHAT ? "chat.completion.chunk" : "text_completion", id, model, created, &choices);
    bool ok = root && !json_object_set_new(root, "usage", usage_json(prompt_tokens, completion_tokens));
    return sse(dump(root, ok, 0));
}

// RFC 4648 base64 of n bytes (with padding), NUL-terminated.
static char *base64(const unsigned char *b, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = malloc((n + 2) / 3 * 4 + 1), *o = s;
    if (!s) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = 0;
    return s;
}

char *hn_api_embeddings_json(const char *model, const float *vecs, int n, int dim, bool b64, int prompt_tokens) {
    json_t *root = json_object(), *data = json_array();
    bool ok = root && data && !json_object_set_new(root, "object", json_string("list"));
    for (int i = 0; ok && i < n; i++) {
        const float *v = vecs + (size_t)i * dim;
        json_t *item = json_object(), *emb = NULL;
        if (b64) {
            // little-endian float32, as OpenAI's clients decode it (numpy.frombuffer(..., dtype="float32"))
            unsigned char *bytes = malloc((size_t)dim * 4);
            for (int j = 0; bytes && j < dim; j++) {
                uint32_t u;
                memcpy(&u, &v[j], 4);
                for (int k = 0; k < 4; k++) bytes[(size_t)j * 4 + k] = (unsigned char)(u >> (8 * k));
            }
            char *s = bytes ? base64(bytes, (size_t)dim * 4) : NULL;
            emb = s ? json_string(s) : NULL;
            free(s);
            free(bytes);
        } else if ((emb = json_array())) {
            for (int j = 0; emb && j < dim; j++)
                if (json_array_append_new(emb, json_real(v[j]))) json_decref(emb), emb = NULL; // NaN: no JSON for it
        }
        ok = item && emb && !json_object_set_new(item, "object", json_string("embedding")) &&
             !json_object_set_new(item, "index", json_integer(i));
        ok = emb && !json_object_set_new(item, "embedding", emb) && ok;
        ok = !json_array_append_new(data, item) && ok;
    }
    ok = ok && !json_object_set(root, "data", data) && !json_object_set_new(root, "model", json_string(model));
    json_t *u = usage_json(prompt_tokens, 0);
    if (u) json_object_del(u, "completion_tokens"); // embeddings' usage has prompt and total tokens only
    ok = ok && !json_object_set_new(root, "usage", u);
    json_decref(data);
    return dump(root, ok, JSON_REAL_PRECISION(9)); // 9 significant digits: a float32 round-trips
}

static bool add_model(json_t *data, const char *id, const char *parent, int64_t created) {
    json_t *m = json_object();
    bool ok = m && !json_object_set_new(m, "id", json_string(id)) &&
              !json_object_set_new(m, "object", json_string("model")) &&
              !json_object_set_new(m, "created", json_integer(created)) &&
              !json_object_set_new(m, "owned_by", json_string("hone")) &&
              !json_object_set_new(m, "parent", str_or_null(parent));
    return !json_array_append_new(data, m) && ok;
}

char *hn_api_models_json(const char *base, const char *const *adapters, int n_adapters, const char *embed_model,
                         int64_t created) {
    json_t *root = json_object(), *data = json_array();
    bool ok = root && data && !json_object_set_new(root, "object", json_string("list")) &&
              add_model(data, base, NULL, created);
    for (int i = 0; ok && i < n_adapters; i++) ok = add_model(data, adapters[i], base, created);
    if (ok && embed_model) ok = add_model(data, embed_model, NULL, created);
    ok = ok && !json_object_set(root, "data", data);
    json_decref(data);
    return dump(root, ok, 0);
}

bool hn_api_key_ok(const char *authorization, const char *key) {
    if (!authorization || !key) return false;
    if (strncasecmp(authorization, "Bearer ", 7)) return false;
    const char *g = authorization + 7;
    while (*g == ' ') g++;
    size_t gl = strlen(g), kl = strlen(key);
    // Every byte of the key is compared whatever the earlier ones gave: the loop's length is the key's, and the
    // given value is read up to its own end only (a shorter one compares with zeros, and differs by its length).
    volatile unsigned diff = gl != kl;
    for (size_t i = 0; i < kl; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < gl ? g[i] : 0);
    return diff == 0;
}
