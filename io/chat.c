// io/chat.c — chat templates recognised from `tokenizer.chat_template` and rendered in C.
//
// hone has no Jinja engine: it recognises which known format a template writes and renders that format itself.
// tests/test_chat.c checks the rendering against jinja2's rendering of SmolLM2's own template
// (tools/reference/tokenizer_ref.py) and of the Llama 2, Llama 3 and Qwen2 templates
// (tools/reference/chat_templates_ref.py).
#include "io/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"chatml", "llama2", "llama3"};
_Static_assert(sizeof names / sizeof names[0] == HN_CHAT_TEMPLATE_COUNT, "chat template names out of step");

const char *hn_chat_template_name(hn_chat_template t) {
    return (unsigned)t < HN_CHAT_TEMPLATE_COUNT ? names[t] : "?";
}

static const char *find(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(s + i, needle, k)) return s + i;
    return NULL;
}

// The default system prompt of a ChatML template that writes one as a literal when the conversation has none, e.g.
// SmolLM2's {{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}.
// The text between "<|im_start|>system" + newline and "<|im_end|>" counts only if it is plain literal text (no quote,
// brace or expression), with Jinja's string escapes undone. NULL if there is none.
static char *default_system(const char *t, size_t n) {
    const char *tag = "<|im_start|>system";
    for (const char *p = find(t, n, tag); p; p = find(p + 1, n - (size_t)(p + 1 - t), tag)) {
        const char *q = p + strlen(tag), *end = t + n;
        if (q < end && *q == '\n') q++;
        else if (end - q >= 2 && q[0] == '\\' && q[1] == 'n') q += 2;
        else continue;
        const char *stop = find(q, (size_t)(end - q), "<|im_end|>");
        if (!stop || stop == q) continue;
        char *out = malloc((size_t)(stop - q) + 1);
        if (!out) return NULL;
        size_t k = 0;
        bool literal = true;
        for (const char *c = q; c < stop && literal; c++) {
            if (*c == '\'' || *c == '"' || *c == '{' || *c == '}') literal = false;
            else if (*c == '\\' && c + 1 < stop) {
                c++;
                out[k++] = *c == 'n' ? '\n' : *c == 't' ? '\t' : *c;
            } else {
                out[k++] = *c;
            }
        }
        out[k] = '\0';
        if (literal) return out;
        free(out);
    }
    return NULL;
}

bool hn_chat_known(const char *t, size_t n) {
    return find(t, n, "<|im_start|>") || (find(t, n, "<|start_header_id|>") && find(t, n, "<|eot_id|>")) ||
           (find(t, n, "[INST]") && find(t, n, "<<SYS>>"));
}

hn_chat_template hn_chat_detect(const hn_gguf *g, char **default_sys) {
    *default_sys = NULL;
    hn_gguf_str t;
    if (hn_gguf_get_str(g, "tokenizer.chat_template", &t)) {
        hn_warn("%s: no tokenizer.chat_template; falling back to ChatML", g->path ? g->path : "model");
        return HN_CHAT_CHATML;
    }
    if (find(t.str, t.len, "<|im_start|>")) {
        *default_sys = default_system(t.str, t.len);
        return HN_CHAT_CHATML;
    }
    if (find(t.str, t.len, "<|start_header_id|>") && find(t.str, t.len, "<|eot_id|>")) return HN_CHAT_LLAMA3;
    if (find(t.str, t.len, "[INST]") && find(t.str, t.len, "<<SYS>>")) return HN_CHAT_LLAMA2;
    hn_warn("%s: tokenizer.chat_template is not a format hone knows (ChatML, Llama 2, Llama 3); falling back to "
            "ChatML", g->path ? g->path : "model");
    return HN_CHAT_CHATML;
}

typedef struct {
    char *s;
    size_t n, cap;
    bool failed;
} sbuf;

static void put(sbuf *b, const char *s) {
    size_t k = strlen(s);
    if (b->failed) return;
    if (b->n + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + k + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, k + 1);
    b->n += k;
}

typedef struct {
    hn_chat_span *v;
    int n, cap;
    bool failed;
} spans;

// put, and when sp is given, a span of kind for message msg covering the text put.
static void emit(sbuf *b, spans *sp, const char *s, int msg, hn_chat_span_kind kind) {
    size_t off = b->n;
    put(b, s);
    if (!sp || b->failed || sp->failed || b->n == off) return;
    if (sp->n == sp->cap) {
        int cap = sp->cap ? 2 * sp->cap : 16;
        hn_chat_span *p = realloc(sp->v, (size_t)cap * sizeof *p);
        if (!p) {
            sp->failed = true;
            return;
        }
        sp->v = p;
        sp->cap = cap;
    }
    sp->v[sp->n++] = (hn_chat_span){off, b->n - off, msg, kind};
}

// ChatML as SmolLM2's template writes it: the default system turn before the first message when that message is not
// a system message (so nothing for an empty conversation), then each turn, then the opening of the assistant's turn.
static void render_chatml(sbuf *b, spans *sp, const char *default_sys, const hn_chat_msg *msgs, int n, bool gen) {
    for (int i = 0; i < n; i++) {
        if (i == 0 && default_sys && strcmp(msgs[0].role, "system") != 0) {
            emit(b, sp, "<|im_start|>system\n", -1, HN_CHAT_SPAN_MARKUP);
            emit(b, sp, default_sys, -1, HN_CHAT_SPAN_CONTENT);
            emit(b, sp, "<|im_end|>", -1, HN_CHAT_SPAN_END);
            emit(b, sp, "\n", -1, HN_CHAT_SPAN_MARKUP);
        }
        emit(b, sp, "<|im_start|>", i, HN_CHAT_SPAN_MARKUP);
        emit(b, sp, msgs[i].role, i, HN_CHAT_SPAN_MARKUP);
        emit(b, sp, "\n", i, HN_CHAT_SPAN_MARKUP);
        emit(b, sp, msgs[i].content, i, HN_CHAT_SPAN_CONTENT);
        emit(b, sp, "<|im_end|>", i, HN_CHAT_SPAN_END);
        emit(b, sp, "\n", i, HN_CHAT_SPAN_MARKUP);
    }
    if (gen) emit(b, sp, "<|im_start|>assistant\n", -1, HN_CHAT_SPAN_MARKUP);
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Llama 3 instruct: each message as a header and its content with Jinja's trim, then <|eot_id|>; the generation
// prompt opens an assistant header. (The template's leading <|begin_of_text|> is the tokenizer's BOS.)
static void render_llama3(sbuf *b, spans *sp, const hn_chat_msg *msgs, int n, bool gen) {
    for (int i = 0; i < n; i++) {
        const char *c = msgs[i].content, *e = c + strlen(c);
        while (c < e && is_space(*c)) c++;
        while (e > c && is_space(e[-1])) e--;
        char *trimmed = strndup(c, (size_t)(e - c));
        if (!trimmed) {
            b->failed = true;
            return;
        }
        emit(b, sp, "<|start_header_id|>", i, HN_CHAT_SPAN_MARKUP);
        emit(b, sp, msgs[i].role, i, HN_CHAT_SPAN_MARKUP);
        emit(b, sp, "<|end_header_id|>\n\n", i, HN_CHAT_SPAN_MARKUP);
        emit(b, sp, trimmed, i, HN_CHAT_SPAN_CONTENT);
        emit(b, sp, "<|eot_id|>", i, HN_CHAT_SPAN_END);
        free(trimmed);
    }
    if (gen) emit(b, sp, "<|start_header_id|>assistant<|end_header_id|>\n\n", -1, HN_CHAT_SPAN_MARKUP);
}

// A run of parts that the template joins and then strips as one string (Python's str.strip()): each part emitted
// with its own kind, clipped to the stripped range.
typedef struct {
    const char *text;
    int msg;
    hn_chat_span_kind kind;
} part;

static void emit_stripped(sbuf *b, spans *sp, const part *parts, int n) {
    size_t total = 0, lo, hi, at = 0;
    for (int i = 0; i < n; i++) total += strlen(parts[i].text);
    // The stripped range [lo, hi) of the joined text, found without joining it.
    for (lo = 0; lo < total; lo++) {
        size_t k = lo;
        int i = 0;
        while (k >= strlen(parts[i].text)) k -= strlen(parts[i++].text);
        if (!is_space(parts[i].text[k])) break;
    }
    for (hi = total; hi > lo; hi--) {
        size_t k = hi - 1;
        int i = 0;
        while (k >= strlen(parts[i].text)) k -= strlen(parts[i++].text);
        if (!is_space(parts[i].text[k])) break;
    }
    for (int i = 0; i < n; i++) {
        size_t len = strlen(parts[i].text), a = lo > at ? lo - at : 0, z = hi < at + len ? (hi > at ? hi - at : 0) : len;
        if (a < z) {
            char *piece = strndup(parts[i].text + a, z - a);
            if (!piece) {
                b->failed = true;
                return;
            }
            emit(b, sp, piece, parts[i].msg, parts[i].kind);
            free(piece);
        }
        at += len;
    }
}

// Llama 2 chat: a first system message is folded into the first user turn inside <<SYS>> markers; user turns are
// "<s>[INST] " + strip(content) + " [/INST]" (the first <s> is the tokenizer's BOS), assistant turns " " +
// strip(content) + " </s>"; roles must alternate user/assistant as the template checks. No generation prompt
// (the model continues after [/INST]).
static hn_status render_llama2(sbuf *b, spans *sp, const hn_chat_msg *msgs, int n) {
    int first = n > 0 && !strcmp(msgs[0].role, "system") ? 1 : 0;
    for (int i = first; i < n; i++) {
        int k = i - first;
        bool user = !strcmp(msgs[i].role, "user");
        if (user != (k % 2 == 0))
            return hn_fail(HN_ERR_ARG, "chat: the Llama 2 template needs user and assistant turns alternating, "
                                       "starting with user (message %d is '%s')", i, msgs[i].role);
        if (user) {
            emit(b, sp, k == 0 ? "[INST] " : "<s>[INST] ", i, HN_CHAT_SPAN_MARKUP);
            if (k == 0 && first) {
                part p[] = {{"<<SYS>>\n", 0, HN_CHAT_SPAN_MARKUP}, {msgs[0].content, 0, HN_CHAT_SPAN_CONTENT},
                            {"\n<</SYS>>\n\n", 0, HN_CHAT_SPAN_MARKUP}, {msgs[i].content, i, HN_CHAT_SPAN_CONTENT}};
                emit_stripped(b, sp, p, 4);
            } else {
                part p[] = {{msgs[i].content, i, HN_CHAT_SPAN_CONTENT}};
                emit_stripped(b, sp, p, 1);
            }
            emit(b, sp, " [/INST]", i, HN_CHAT_SPAN_MARKUP);
        } else if (!strcmp(msgs[i].role, "assistant")) {
            emit(b, sp, " ", i, HN_CHAT_SPAN_MARKUP);
            part p[] = {{msgs[i].content, i, HN_CHAT_SPAN_CONTENT}};
            emit_stripped(b, sp, p, 1);
            emit(b, sp, " ", i, HN_CHAT_SPAN_MARKUP);
            emit(b, sp, "</s>", i, HN_CHAT_SPAN_END);
        }
    }
    return HN_OK;
}

static hn_status render(hn_chat_template t, const char *default_sys, const hn_chat_msg *msgs, int n, bool gen,
                        char **out, spans *sp) {
    *out = NULL;
    if (n < 0 || (n > 0 && !msgs)) return hn_fail(HN_ERR_ARG, "chat: %d messages given", n);
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return hn_fail(HN_ERR_ARG, "chat: message %d has no %s", i, msgs[i].role ? "content" : "role");
    sbuf b = {0};
    switch (t) {
    case HN_CHAT_CHATML: render_chatml(&b, sp, default_sys, msgs, n, gen); break;
    case HN_CHAT_LLAMA3: render_llama3(&b, sp, msgs, n, gen); break;
    case HN_CHAT_LLAMA2: {
        hn_status st = render_llama2(&b, sp, msgs, n);
        if (st) {
            free(b.s);
            return st;
        }
        break;
    }
    default: return hn_fail(HN_ERR_ARG, "chat: template %d is not one of hone's", (int)t);
    }
    put(&b, ""); // an empty conversation still gives a string
    if (b.failed || (sp && sp->failed)) {
        free(b.s);
        return hn_fail(HN_ERR_NOMEM, "chat: out of memory rendering %d messages", n);
    }
    *out = b.s;
    return HN_OK;
}

hn_status hn_chat_render(hn_chat_template t, const char *default_sys, const hn_chat_msg *msgs, int n,
                         bool add_generation_prompt, char **out) {
    return render(t, default_sys, msgs, n, add_generation_prompt, out, NULL);
}

hn_status hn_chat_render_spans(hn_chat_template t, const char *default_sys, const hn_chat_msg *msgs, int n,
                               bool add_generation_prompt, char **out, hn_chat_span **spans_out, int *n_spans) {
    spans sp = {0};
    *spans_out = NULL;
    *n_spans = 0;
    hn_status s = render(t, default_sys, msgs, n, add_generation_prompt, out, &sp);
    if (s) {
        free(sp.v);
        return s;
    }
    *spans_out = sp.v;
    *n_spans = sp.n;
    return HN_OK;
}
