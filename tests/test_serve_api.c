// tests/test_serve_api.c — hone serve's API layer without a model: OpenAI request bodies parsed (fields, defaults,
// every refusal naming its field), error bodies in OpenAI's shape, response and server-sent-event chunk JSON, the
// retrieval extension and its "sources", embeddings as numbers and base64, the /metrics text, the API key check,
// UTF-8 cleaning.
#include "serve/api.h"
#include "serve/metrics.h"
#include "test.h"

#include <jansson.h>
#include <string.h>

static json_t *load(const char *s) {
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    if (!j) fprintf(stderr, "not JSON (%s): %s\n", je.text, s);
    return j;
}

static const char *jstr(json_t *o, const char *path0, const char *path1) {
    json_t *v = json_object_get(o, path0);
    if (path1) v = json_object_get(v, path1);
    return json_string_value(v);
}

// Parses body as kind; returns whether it was accepted, the error in *e otherwise.
static bool parse(hn_api_kind kind, const char *body, hn_api_request *r, hn_api_error *e) {
    return hn_api_parse(kind, body, strlen(body), 4096, r, e);
}

// A body that must be refused with 400 naming param (NULL: none).
static void refused(hn_api_kind kind, const char *body, const char *param) {
    hn_api_request r;
    hn_api_error e = {0};
    bool ok = parse(kind, body, &r, &e);
    CHECK(!ok, "accepted: %s", body);
    if (ok) {
        hn_api_request_free(&r);
        return;
    }
    CHECK(e.http == 400, "%s: status %d", body, e.http);
    CHECK(param ? e.param && !strcmp(e.param, param) : !e.param, "%s: param %s, expected %s", body,
          e.param ? e.param : "null", param ? param : "null");
    CHECK(strlen(e.message) > 10, "%s: message '%s'", body, e.message);
}

static void test_completion(void) {
    hn_api_request r;
    hn_api_error e;
    CHECK(parse(HN_API_COMPLETION, "{\"model\": \"m\", \"prompt\": \"Hello\"}", &r, &e), "%s", e.message);
    CHECK(r.model && !strcmp(r.model, "m") && r.prompt && !strcmp(r.prompt, "Hello") && !r.prompt_ids, "prompt");
    CHECK(r.n == 1 && r.max_tokens == 0 && !r.stream && !r.vote && !r.seeded, "defaults");
    CHECK(r.sp.temp == 1 && r.sp.top_p == 1 && r.sp.top_k == 0 && r.sp.min_p == 0 && r.sp.repeat_penalty == 1,
          "OpenAI's sampling defaults: temp %g top_p %g top_k %d min_p %g", r.sp.temp, r.sp.top_p, r.sp.top_k,
          r.sp.min_p);
    hn_api_request_free(&r);

    const char *full = "{\"prompt\": [1, 2, 3], \"max_tokens\": 7, \"temperature\": 0, \"top_p\": 0.5, \"top_k\": 5,"
                       " \"min_p\": 0.1, \"seed\": -1, \"stop\": [\"a\", \"bc\"], \"n\": 3, \"stream\": true,"
                       " \"stream_options\": {\"include_usage\": true}, \"repetition_penalty\": 1.2,"
                       " \"logprobs\": null, \"echo\": false, \"best_of\": 3, \"frequency_penalty\": 0,"
                       " \"user\": \"ignored\"}";
    CHECK(parse(HN_API_COMPLETION, full, &r, &e), "%s", e.message);
    CHECK(!r.model && !r.prompt && r.n_prompt_ids == 3 && r.prompt_ids[2] == 3, "token ids");
    CHECK(r.max_tokens == 7 && r.sp.temp == 0 && r.sp.top_p == 0.5f && r.sp.top_k == 5 && r.sp.min_p == 0.1f &&
              r.sp.repeat_penalty == 1.2f && r.sp.repeat_last_n == 64,
          "sampling fields");
    CHECK(r.seeded && r.sp.seed == UINT64_MAX, "seed -1 as its 64 bits");
    CHECK(r.n_stop == 2 && !strcmp(r.stop[1], "bc") && r.n == 3 && r.stream && r.stream_usage, "stop, n, stream");
    hn_api_request_free(&r);

    CHECK(parse(HN_API_COMPLETION, "{\"prompt\": [\"one\"], \"stop\": \"x\", \"top_k\": -1}", &r, &e), "%s",
          e.message);
    CHECK(r.prompt && !strcmp(r.prompt, "one") && r.n_stop == 1 && !strcmp(r.stop[0], "x") && r.sp.top_k == 0,
          "a list of one prompt; one stop string; top_k -1 is off");
    hn_api_request_free(&r);
    CHECK(parse(HN_API_COMPLETION, "{\"prompt\": [[5, 6]]}", &r, &e) && r.n_prompt_ids == 2, "a list of one id list");
    hn_api_request_free(&r);
    CHECK(parse(HN_API_COMPLETION, "{\"prompt\": \"q\", \"n\": 5, \"vote\": true, \"answer_regex\": \"= (\\\\d+)\"}",
                &r, &e),
          "%s", e.message);
    CHECK(r.vote && r.answer_regex && !strcmp(r.answer_regex, "= (\\d+)"), "vote and its regex");
    hn_api_request_free(&r);
    CHECK(parse(HN_API_COMPLETION, "{\"prompt\": \"q\", \"ignore_eos\": true}", &r, &e) && r.ignore_eos,
          "ignore_eos: %s", e.message);
    hn_api_request_free(&r);
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"ignore_eos\": 1}", "ignore_eos");

    refused(HN_API_COMPLETION, "{\"prompt\": \"x\",", NULL);
    refused(HN_API_COMPLETION, "[1, 2]", NULL);
    refused(HN_API_COMPLETION, "", NULL);
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"prompt\": \"y\"}", NULL);
    refused(HN_API_COMPLETION, "{}", "prompt");
    refused(HN_API_COMPLETION, "{\"prompt\": 3}", "prompt");
    refused(HN_API_COMPLETION, "{\"prompt\": []}", "prompt");
    refused(HN_API_COMPLETION, "{\"prompt\": [1, -2]}", "prompt");
    refused(HN_API_COMPLETION, "{\"prompt\": [\"a\", \"b\"]}", "prompt");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"max_tokens\": 0}", "max_tokens");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"max_tokens\": -5}", "max_tokens");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"max_tokens\": 4097}", "max_tokens");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"max_tokens\": 99999999999999999}", "max_tokens");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"max_tokens\": 1.5}", "max_tokens");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"max_tokens\": \"9\"}", "max_tokens");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"temperature\": -1}", "temperature");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"top_p\": 0}", "top_p");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"top_p\": 1.5}", "top_p");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"min_p\": 2}", "min_p");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"n\": 0}", "n");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"n\": 65}", "n");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"stop\": \"\"}", "stop");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"stop\": [1]}", "stop");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"stream\": 1}", "stream");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"stream_options\": {\"include_usage\": true}}",
            "stream_options");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"model\": 7}", "model");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"logprobs\": 2}", "logprobs");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"echo\": true}", "echo");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"best_of\": 2}", "best_of");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"logit_bias\": {\"5\": 10}}", "logit_bias");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"suffix\": \"end\"}", "suffix");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"frequency_penalty\": 0.5}", "frequency_penalty");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"presence_penalty\": 1}", "presence_penalty");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"messages\": []}", "messages");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"vote\": true}", "vote");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"n\": 2, \"vote\": true, \"stream\": true}", "vote");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"answer_regex\": \"a\"}", "answer_regex");
}

static void test_chat(void) {
    hn_api_request r;
    hn_api_error e;
    const char *body = "{\"model\": \"sql\", \"messages\": [{\"role\": \"developer\", \"content\": \"Be brief.\"},"
                       " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi \"},"
                       " {\"type\": \"text\", \"text\": \"there\"}]}, {\"role\": \"assistant\", \"content\": null},"
                       " {\"role\": \"user\", \"content\": \"More\"}], \"max_completion_tokens\": 9}";
    CHECK(parse(HN_API_CHAT, body, &r, &e), "%s", e.message);
    CHECK(r.n_msgs == 4 && !strcmp(r.msgs[0].role, "system") && !strcmp(r.msgs[1].content, "Hi there") &&
              !strcmp(r.msgs[2].role, "assistant") && !strcmp(r.msgs[2].content, "") &&
              !strcmp(r.msgs[3].content, "More"),
          "messages: developer as system, text parts joined, null content empty");
    CHECK(r.max_tokens == 9 && !strcmp(r.model, "sql"), "max_completion_tokens");
    hn_api_request_free(&r);
    refused(HN_API_CHAT, "{\"messages\": []}", "messages");
    refused(HN_API_CHAT, "{\"messages\": \"hi\"}", "messages");
    refused(HN_API_CHAT, "{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}", "messages");
    refused(HN_API_CHAT, "{\"messages\": [{\"content\": \"x\"}]}", "messages");
    refused(HN_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", "messages");
    refused(HN_API_CHAT,
            "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {}}]}]}",
            "messages");
    refused(HN_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logprobs\": true}", "logprobs");
    refused(HN_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{}]}", "tools");
    refused(HN_API_CHAT,
            "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"response_format\": {\"type\": \"json_object\"}}",
            "response_format");
    refused(HN_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"prompt\": \"y\"}", "prompt");
    CHECK(parse(HN_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logprobs\": false, "
                             "\"tool_choice\": \"none\", \"response_format\": {\"type\": \"text\"}}",
                &r, &e),
          "no-op values of refused fields are accepted: %s", e.message);
    hn_api_request_free(&r);
}

// The retrieval extension: true (k 5), {"k": K} within 1..20, false or null (off); chat only.
static void test_retrieval_request(void) {
    hn_api_request r;
    hn_api_error e;
#define MSGS "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]"
    CHECK(parse(HN_API_CHAT, "{" MSGS "}", &r, &e) && r.retrieval_k == 0, "off by default: %s", e.message);
    hn_api_request_free(&r);
    CHECK(parse(HN_API_CHAT, "{" MSGS ", \"retrieval\": true}", &r, &e) && r.retrieval_k == HN_API_RETRIEVAL_K &&
              HN_API_RETRIEVAL_K == 5,
          "true: k 5 (%s)", e.message);
    hn_api_request_free(&r);
    CHECK(parse(HN_API_CHAT, "{" MSGS ", \"retrieval\": {\"k\": 3}}", &r, &e) && r.retrieval_k == 3, "k 3: %s",
          e.message);
    hn_api_request_free(&r);
    CHECK(parse(HN_API_CHAT, "{" MSGS ", \"retrieval\": {\"k\": 20}}", &r, &e) && r.retrieval_k == 20, "k 20: %s",
          e.message);
    hn_api_request_free(&r);
    CHECK(parse(HN_API_CHAT, "{" MSGS ", \"retrieval\": {}}", &r, &e) && r.retrieval_k == 5, "{}: k 5 (%s)",
          e.message);
    hn_api_request_free(&r);
    CHECK(parse(HN_API_CHAT, "{" MSGS ", \"retrieval\": false}", &r, &e) && r.retrieval_k == 0, "false: %s",
          e.message);
    hn_api_request_free(&r);
    CHECK(parse(HN_API_CHAT, "{" MSGS ", \"retrieval\": null}", &r, &e) && r.retrieval_k == 0, "null: %s",
          e.message);
    hn_api_request_free(&r);
    refused(HN_API_CHAT, "{" MSGS ", \"retrieval\": {\"k\": 0}}", "retrieval.k");
    refused(HN_API_CHAT, "{" MSGS ", \"retrieval\": {\"k\": 21}}", "retrieval.k");
    refused(HN_API_CHAT, "{" MSGS ", \"retrieval\": {\"k\": -1}}", "retrieval.k");
    refused(HN_API_CHAT, "{" MSGS ", \"retrieval\": {\"k\": 2.5}}", "retrieval.k");
    refused(HN_API_CHAT, "{" MSGS ", \"retrieval\": {\"k\": \"3\"}}", "retrieval.k");
    refused(HN_API_CHAT, "{" MSGS ", \"retrieval\": {\"top_k\": 3}}", "retrieval");
    refused(HN_API_CHAT, "{" MSGS ", \"retrieval\": 3}", "retrieval");
    refused(HN_API_CHAT, "{" MSGS ", \"retrieval\": \"yes\"}", "retrieval");
    refused(HN_API_COMPLETION, "{\"prompt\": \"x\", \"retrieval\": true}", "retrieval");
    CHECK(parse(HN_API_COMPLETION, "{\"prompt\": \"x\", \"retrieval\": false}", &r, &e) && !r.retrieval_k,
          "completions: false, the no-op value, is accepted (%s)", e.message);
    hn_api_request_free(&r);
    hn_api_error e2 = {0};
    CHECK(!parse(HN_API_CHAT, "{" MSGS ", \"retrieval\": {\"k\": 50}}", &r, &e2) &&
              strstr(e2.message, "retrieval.k") && strstr(e2.message, "between 1 and 20") && strstr(e2.message, "50"),
          "the message names the field, the range and the value: %s", e2.message);
#undef MSGS
}

static void test_embedding_request(void) {
    hn_api_request r;
    hn_api_error e;
    CHECK(parse(HN_API_EMBEDDING, "{\"input\": \"one\"}", &r, &e) && r.n_inputs == 1 && !r.base64, "%s", e.message);
    hn_api_request_free(&r);
    CHECK(parse(HN_API_EMBEDDING, "{\"input\": [\"a\", \"b\"], \"encoding_format\": \"base64\", \"model\": \"e\"}", &r,
                &e) &&
              r.n_inputs == 2 && r.base64 && !strcmp(r.inputs[1], "b"),
          "%s", e.message);
    hn_api_request_free(&r);
    refused(HN_API_EMBEDDING, "{}", "input");
    refused(HN_API_EMBEDDING, "{\"input\": []}", "input");
    refused(HN_API_EMBEDDING, "{\"input\": [\"a\", \"\"]}", "input");
    refused(HN_API_EMBEDDING, "{\"input\": [1, 2]}", "input");
    refused(HN_API_EMBEDDING, "{\"input\": \"a\", \"encoding_format\": \"int8\"}", "encoding_format");
    refused(HN_API_EMBEDDING, "{\"input\": \"a\", \"dimensions\": 0}", "dimensions");
}

static void test_errors(void) {
    hn_api_error e;
    hn_api_error_set(&e, 404, "model", "model_not_found", "the model 'x' does not exist; GET /v1/models lists %d", 2);
    char *s = hn_api_error_json(&e);
    json_t *j = load(s);
    json_t *err = json_object_get(j, "error");
    CHECK(json_is_object(err) && json_object_size(err) == 4, "{\"error\": {4 fields}}: %s", s);
    CHECK(!strcmp(jstr(err, "message", NULL), "the model 'x' does not exist; GET /v1/models lists 2") &&
              !strcmp(jstr(err, "type", NULL), "invalid_request_error") &&
              !strcmp(jstr(err, "param", NULL), "model") && !strcmp(jstr(err, "code", NULL), "model_not_found"),
          "%s", s);
    json_decref(j);
    free(s);
    hn_api_error_set(&e, 401, NULL, "invalid_api_key", "wrong key");
    s = hn_api_error_json(&e);
    j = load(s);
    err = json_object_get(j, "error");
    CHECK(json_is_null(json_object_get(err, "param")) && !strcmp(jstr(err, "type", NULL), "authentication_error"),
          "param null, 401's type: %s", s);
    json_decref(j);
    free(s);
    hn_api_error_set(&e, 500, NULL, NULL, "bad \"quote\"\n");
    s = hn_api_error_json(&e);
    j = load(s);
    err = json_object_get(j, "error");
    CHECK(json_is_null(json_object_get(err, "code")) && !strcmp(jstr(err, "type", NULL), "server_error") &&
              !strcmp(jstr(err, "message", NULL), "bad \"quote\"\n"),
          "escaped message: %s", s);
    json_decref(j);
    free(s);
}

static void test_responses(void) {
    const char *texts[] = {"The answer is 4.", "bad \xff byte"};
    hn_finish fin[] = {HN_FINISH_STOP, HN_FINISH_LENGTH};
    hn_api_vote v = {.answer = "4", .count = 1, .of = 2, .choice = 0};
    char *s = hn_api_completion_json(HN_API_CHAT, "chatcmpl-1", "smol", 1700000000, texts, fin, 2, 10, 7, &v, NULL);
    json_t *j = load(s);
    CHECK(j && !strcmp(jstr(j, "object", NULL), "chat.completion") && !strcmp(jstr(j, "id", NULL), "chatcmpl-1") &&
              !strcmp(jstr(j, "model", NULL), "smol") &&
              json_integer_value(json_object_get(j, "created")) == 1700000000,
          "%s", s);
    json_t *c = json_array_get(json_object_get(j, "choices"), 1);
    CHECK(json_integer_value(json_object_get(c, "index")) == 1 &&
              !strcmp(jstr(c, "message", "content"), "bad \xEF\xBF\xBD byte") &&
              !strcmp(jstr(c, "message", "role"), "assistant") && !strcmp(jstr(c, "finish_reason", NULL), "length"),
          "second choice, invalid UTF-8 replaced: %s", s);
    CHECK(!json_object_get(j, "sources"), "no sources without retrieval: %s", s);
    json_t *u = json_object_get(j, "usage");
    CHECK(json_integer_value(json_object_get(u, "prompt_tokens")) == 10 &&
              json_integer_value(json_object_get(u, "completion_tokens")) == 7 &&
              json_integer_value(json_object_get(u, "total_tokens")) == 17,
          "usage");
    json_t *vo = json_object_get(j, "vote");
    CHECK(!strcmp(jstr(vo, "answer", NULL), "4") && json_integer_value(json_object_get(vo, "count")) == 1 &&
              json_integer_value(json_object_get(vo, "of")) == 2 &&
              json_integer_value(json_object_get(vo, "choice")) == 0,
          "vote");
    json_decref(j);
    free(s);
    s = hn_api_completion_json(HN_API_COMPLETION, "cmpl-2", "smol", 1, texts, fin, 1, 3, 4, NULL, NULL);
    j = load(s);
    c = json_array_get(json_object_get(j, "choices"), 0);
    CHECK(!strcmp(jstr(j, "object", NULL), "text_completion") && !strcmp(jstr(c, "text", NULL), texts[0]) &&
              json_is_null(json_object_get(c, "logprobs")) && !json_object_get(j, "vote") &&
              !strcmp(jstr(c, "finish_reason", NULL), "stop"),
          "%s", s);
    json_decref(j);
    free(s);

    // Server-sent events: "data: " + one line of JSON + a blank line.
    s = hn_api_chunk_sse(HN_API_CHAT, "chatcmpl-3", "smol", 5, 0, "Hel\nlo", 6, true, HN_FINISH_NONE, NULL);
    size_t n = strlen(s);
    CHECK(!strncmp(s, "data: {", 7) && n > 9 && !strcmp(s + n - 3, "}\n\n") && !memchr(s, '\n', n - 2),
          "SSE framing: %s", s);
    j = load(s + 6);
    c = json_array_get(json_object_get(j, "choices"), 0);
    CHECK(!strcmp(jstr(j, "object", NULL), "chat.completion.chunk") &&
              !strcmp(jstr(c, "delta", "role"), "assistant") && !strcmp(jstr(c, "delta", "content"), "Hel\nlo") &&
              json_is_null(json_object_get(c, "finish_reason")) && !json_object_get(j, "sources"),
          "first chat chunk: %s", s);
    json_decref(j);
    free(s);
    s = hn_api_chunk_sse(HN_API_CHAT, "chatcmpl-3", "smol", 5, 2, NULL, 0, false, HN_FINISH_STOP, NULL);
    j = load(s + 6);
    c = json_array_get(json_object_get(j, "choices"), 0);
    CHECK(json_object_size(json_object_get(c, "delta")) == 0 && !strcmp(jstr(c, "finish_reason", NULL), "stop") &&
              json_integer_value(json_object_get(c, "index")) == 2,
          "last chat chunk: empty delta, finish_reason: %s", s);
    json_decref(j);
    free(s);
    s = hn_api_chunk_sse(HN_API_COMPLETION, "cmpl-4", "smol", 5, 0, "abc", 2, true, HN_FINISH_NONE, NULL);
    j = load(s + 6);
    c = json_array_get(json_object_get(j, "choices"), 0);
    CHECK(!strcmp(jstr(j, "object", NULL), "text_completion") && !strcmp(jstr(c, "text", NULL), "ab"),
          "completion chunk, len respected: %s", s);
    json_decref(j);
    free(s);
    s = hn_api_usage_sse(HN_API_CHAT, "chatcmpl-3", "smol", 5, 4, 6);
    j = load(s + 6);
    CHECK(json_array_size(json_object_get(j, "choices")) == 0 &&
              json_integer_value(json_object_get(json_object_get(j, "usage"), "total_tokens")) == 10,
          "usage chunk: %s", s);
    json_decref(j);
    free(s);
    CHECK(!strcmp(HN_API_SSE_DONE, "data: [DONE]\n\n"), "done marker");

    char id[40], id2[40];
    hn_api_new_id(HN_API_CHAT, id);
    hn_api_new_id(HN_API_CHAT, id2);
    CHECK(!strncmp(id, "chatcmpl-", 9) && strlen(id) == 9 + 24 && strcmp(id, id2), "ids: %s %s", id, id2);
}

// "sources" at the top level of a retrieval response, and of a stream's first chunk: [{"index" from 1, "text",
// "score" (a float32 that reads back equal), "source", "id"}]; an empty list when nothing was retrieved.
static void test_sources(void) {
    const char *texts[] = {"Zorbia's capital is Quell [1]."};
    hn_finish fin[] = {HN_FINISH_STOP};
    hn_api_source items[] = {{.id = 42, .score = 0.7312345f, .text = "Quell is the capital of Zorbia.\n",
                              .source = "docs/zorbia.txt"},
                             {.id = 7, .score = -0.125f, .text = "bad \xff", .source = "data.jsonl#r1"}};
    hn_api_sources src = {items, 2};
    char *s = hn_api_completion_json(HN_API_CHAT, "chatcmpl-5", "smol", 1, texts, fin, 1, 100, 9, NULL, &src);
    json_t *j = load(s), *l = json_object_get(j, "sources");
    json_t *a = json_array_get(l, 0), *b = json_array_get(l, 1);
    CHECK(json_array_size(l) == 2 && json_integer_value(json_object_get(a, "index")) == 1 &&
              json_integer_value(json_object_get(b, "index")) == 2,
          "two sources numbered from 1: %s", s);
    CHECK(a && !strcmp(jstr(a, "text", NULL), items[0].text) && !strcmp(jstr(a, "source", NULL), "docs/zorbia.txt") &&
              json_integer_value(json_object_get(a, "id")) == 42 &&
              (float)json_number_value(json_object_get(a, "score")) == items[0].score,
          "the first source's fields, its score read back as the same float: %s", s);
    CHECK(b && !strcmp(jstr(b, "text", NULL), "bad \xEF\xBF\xBD") &&
              (float)json_number_value(json_object_get(b, "score")) == -0.125f &&
              !strcmp(jstr(b, "source", NULL), "data.jsonl#r1"),
          "invalid UTF-8 in a chunk replaced; a negative score: %s", s);
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    CHECK(!strcmp(jstr(c, "message", "content"), texts[0]) && json_object_get(j, "usage"),
          "the standard fields stay as they are: %s", s);
    json_decref(j);
    free(s);
    hn_api_sources none = {NULL, 0};
    s = hn_api_completion_json(HN_API_CHAT, "chatcmpl-6", "smol", 1, texts, fin, 1, 10, 9, NULL, &none);
    j = load(s);
    CHECK(json_is_array(json_object_get(j, "sources")) && json_array_size(json_object_get(j, "sources")) == 0,
          "nothing retrieved: an empty list: %s", s);
    json_decref(j);
    free(s);
    s = hn_api_chunk_sse(HN_API_CHAT, "chatcmpl-7", "smol", 5, 0, "", 0, true, HN_FINISH_NONE, &src);
    j = load(s + 6);
    c = json_array_get(json_object_get(j, "choices"), 0);
    CHECK(!strcmp(jstr(c, "delta", "role"), "assistant") && !strcmp(jstr(c, "delta", "content"), "") &&
              json_is_null(json_object_get(c, "finish_reason")) &&
              json_array_size(json_object_get(j, "sources")) == 2 &&
              json_integer_value(json_object_get(json_array_get(json_object_get(j, "sources"), 1), "id")) == 7,
          "a retrieval stream's opening chunk: the role, empty content, the sources: %s", s);
    json_decref(j);
    free(s);
}

static void test_embeddings_models(void) {
    float v[6] = {0.1f, -2.5f, 3e-8f, 1, 0, -0.333333343f};
    char *s = hn_api_embeddings_json("minilm", v, 2, 3, false, 5);
    json_t *j = load(s);
    json_t *d = json_object_get(j, "data");
    json_t *e1 = json_object_get(json_array_get(d, 1), "embedding");
    CHECK(json_array_size(d) == 2 && !strcmp(jstr(j, "object", NULL), "list") &&
              !strcmp(jstr(json_array_get(d, 0), "object", NULL), "embedding") &&
              json_integer_value(json_object_get(json_array_get(d, 1), "index")) == 1,
          "%s", s);
    bool same = json_array_size(e1) == 3;
    for (int k = 0; same && k < 3; k++) same = (float)json_number_value(json_array_get(e1, k)) == v[3 + k];
    CHECK(same, "floats round-trip through JSON: %s", s);
    CHECK(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")) == 5 &&
              !json_object_get(json_object_get(j, "usage"), "completion_tokens"),
          "usage");
    json_decref(j);
    free(s);
    // base64 of little-endian float32 {1.0f, -2.0f}: 00 00 80 3f 00 00 00 c0
    float w[2] = {1.0f, -2.0f};
    s = hn_api_embeddings_json("minilm", w, 1, 2, true, 1);
    j = load(s);
    const char *b = jstr(json_array_get(json_object_get(j, "data"), 0), "embedding", NULL);
    CHECK(b && !strcmp(b, "AACAPwAAAMA="), "base64: %s", b ? b : "(none)");
    json_decref(j);
    free(s);

    const char *ad[] = {"sql", "chat"};
    s = hn_api_models_json("smollm2", ad, 2, "minilm", 7);
    j = load(s);
    d = json_object_get(j, "data");
    CHECK(json_array_size(d) == 4 && !strcmp(jstr(json_array_get(d, 0), "id", NULL), "smollm2") &&
              json_is_null(json_object_get(json_array_get(d, 0), "parent")) &&
              !strcmp(jstr(json_array_get(d, 2), "id", NULL), "chat") &&
              !strcmp(jstr(json_array_get(d, 2), "parent", NULL), "smollm2") &&
              !strcmp(jstr(json_array_get(d, 3), "id", NULL), "minilm") &&
              !strcmp(jstr(json_array_get(d, 1), "object", NULL), "model"),
          "%s", s);
    json_decref(j);
    free(s);
}

static void test_key_and_utf8(void) {
    CHECK(hn_api_key_ok("Bearer s3cret", "s3cret"), "right key");
    CHECK(hn_api_key_ok("bearer   s3cret", "s3cret"), "scheme case and spaces");
    CHECK(!hn_api_key_ok("Bearer s3cre", "s3cret"), "a prefix");
    CHECK(!hn_api_key_ok("Bearer s3cretX", "s3cret"), "longer");
    CHECK(!hn_api_key_ok("Bearer s3creT", "s3cret"), "last byte");
    CHECK(!hn_api_key_ok("Bearer ", "s3cret"), "empty");
    CHECK(!hn_api_key_ok("s3cret", "s3cret"), "no scheme");
    CHECK(!hn_api_key_ok("Basic s3cret", "s3cret"), "other scheme");
    CHECK(!hn_api_key_ok(NULL, "s3cret"), "no header");

    size_t n;
    char *s = hn_api_utf8_clean("a\xc3\xa9\xe4\xbd\xa0\xf0\x9f\x98\x80", 10, &n);
    CHECK(n == 10 && !memcmp(s, "a\xc3\xa9\xe4\xbd\xa0\xf0\x9f\x98\x80", 10), "valid text unchanged");
    free(s);
    s = hn_api_utf8_clean("x\xe4\xbd", 3, &n); // a character cut at the end
    CHECK(n == 7 && !strcmp(s, "x\xEF\xBF\xBD\xEF\xBF\xBD"), "cut character: %s", s);
    free(s);
    s = hn_api_utf8_clean("\xc0\xaf\xed\xa0\x80!", 6, &n); // an overlong '/', a surrogate
    CHECK(!strcmp(s, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD!"), "overlong and surrogate");
    free(s);
}

static void test_metrics(void) {
    hn_metrics *mx = hn_metrics_create();
    CHECK(hn_endpoint_of("/v1/chat/completions?x=1") == HN_EP_CHAT && hn_endpoint_of("/v1/chat") == HN_EP_OTHER &&
              hn_endpoint_of("/health") == HN_EP_HEALTH && hn_endpoint_of("/") == HN_EP_OTHER,
          "endpoints");
    hn_metrics_request(mx, HN_EP_CHAT, 200, 0.3);
    hn_metrics_request(mx, HN_EP_CHAT, 200, 2.0);
    hn_metrics_request(mx, HN_EP_COMPLETIONS, 400, 0.001);
    hn_metrics_request(mx, HN_EP_OTHER, 418, 0.001);
    hn_metrics_first_token(mx, 0.07);
    hn_metrics_disconnect(mx);
    hn_metrics_in_flight(mx, 2);
    hn_metrics_in_flight(mx, -1);
    hn_engine_stats st = {.requests = 3, .prompt_tokens = 40, .cached_tokens = 16, .gen_tokens = 25, .steps = 30,
                          .batch_hist = {20, 10}, .running = 2, .waiting = 1, .blocks_used = 5, .blocks_total = 100,
                          .block_tokens = 16};
    char *t = hn_metrics_text(mx, &st);
    CHECK(t != NULL, "text");
    const char *want[] = {
        "hone_http_requests_total{endpoint=\"/v1/chat/completions\",code=\"200\"} 2\n",
        "hone_http_requests_total{endpoint=\"/v1/completions\",code=\"400\"} 1\n",
        "hone_http_requests_total{endpoint=\"other\",code=\"other\"} 1\n",
        "# TYPE hone_request_duration_seconds histogram\n",
        "hone_request_duration_seconds_bucket{le=\"0.005\"} 2\n",
        "hone_request_duration_seconds_bucket{le=\"0.5\"} 3\n",
        "hone_request_duration_seconds_bucket{le=\"2.5\"} 4\n",
        "hone_request_duration_seconds_bucket{le=\"+Inf\"} 4\n",
        "hone_request_duration_seconds_count 4\n",
        "hone_time_to_first_token_seconds_bucket{le=\"0.05\"} 0\n",
        "hone_time_to_first_token_seconds_bucket{le=\"0.1\"} 1\n",
        "hone_time_to_first_token_seconds_sum 0.070000\n",
        "hone_client_disconnects_total 1\n",
        "hone_http_requests_in_flight 1\n",
        "hone_prompt_tokens_total 40\n",
        "hone_generation_tokens_total 25\n",
        "hone_requests_running 2\n",
        "hone_requests_waiting 1\n",
        "hone_kv_blocks_used 5\n",
        "hone_kv_blocks_total 100\n",
        "hone_engine_steps_total{batch=\"1\"} 20\n",
        "hone_engine_steps_total{batch=\"2\"} 10\n",
        "hone_engine_steps_total{batch=\"128+\"} 0\n",
    };
    for (size_t i = 0; t && i < sizeof want / sizeof want[0]; i++) CHECK(strstr(t, want[i]), "missing: %s", want[i]);
    // Every line is a comment or `name{labels} value`; every metric has a TYPE line before it.
    bool lines_ok = t != NULL;
    for (char *p = t; lines_ok && p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (*p == '#') continue;
        char name[128];
        int k = 0;
        while (k < 127 && (p[k] == '_' || (p[k] >= 'a' && p[k] <= 'z'))) name[k] = p[k], k++;
        name[k] = 0;
        // declared by a TYPE line before it (a histogram's _bucket, _sum and _count lines by the histogram's)
        char type[200];
        snprintf(type, sizeof type, "# TYPE %s ", name);
        bool declared = strstr(t, type) && strstr(t, type) < p;
        const char *sufs[] = {"_bucket", "_sum", "_count"};
        for (int q = 0; q < 3 && !declared; q++) {
            int sl = (int)strlen(sufs[q]);
            if (k > sl && !strcmp(name + k - sl, sufs[q])) {
                snprintf(type, sizeof type, "# TYPE %.*s histogram\n", k - sl, name);
                declared = strstr(t, type) && strstr(t, type) < p;
            }
        }
        lines_ok = k > 0 && (p[k] == ' ' || p[k] == '{') && declared;
        if (!lines_ok) fprintf(stderr, "bad line: %.60s\n", p);
    }
    CHECK(lines_ok, "line syntax");
    free(t);
    t = hn_metrics_text(mx, NULL);
    CHECK(t && !strstr(t, "hone_kv_blocks_used") && strstr(t, "hone_client_disconnects_total 1"),
          "no engine: no engine lines");
    free(t);
    hn_metrics_destroy(mx);
}

int main(void) {
    test_completion();
    test_chat();
    test_embedding_request();
    test_errors();
    test_responses();
    test_retrieval_request();
    test_sources();
    test_embeddings_models();
    test_key_and_utf8();
    test_metrics();
    return test_done();
}
