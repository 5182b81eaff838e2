// train/data_read.c — dataset files: JSONL lines or JSON array elements, UTF-8 checked, parsed by jansson, turned
// into samples of one of the shapes of data.h.
//
// A JSON array is walked by a small scanner that finds where each element starts and ends (strings and bracket
// depth only), so that every element is parsed on its own: errors name the element's line, a bad element can be
// skipped, and nesting depth costs the scanner nothing (jansson refuses depth past its own limit).
#include "train/data_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const format_names[] = {"auto", "text", "prompt_completion", "alpaca", "messages", "sharegpt"};
_Static_assert(sizeof format_names / sizeof format_names[0] == HN_DATA_FORMAT_COUNT, "format names out of step");

const char *hn_data_format_name(hn_data_format f) {
    return (unsigned)f < HN_DATA_FORMAT_COUNT ? format_names[f] : "?";
}

hn_status hn_data_format_parse(const char *name, hn_data_format *out) {
    for (int i = 0; i < HN_DATA_FORMAT_COUNT; i++)
        if (!strcmp(name, format_names[i])) {
            *out = (hn_data_format)i;
            return HN_OK;
        }
    return hn_fail(HN_ERR_ARG, "data format '%s': expected auto, text, prompt_completion, alpaca, messages or sharegpt",
                   name);
}

// The offset of the first byte that does not belong to valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing past U+10FFFF), or n if all of s is valid.
static size_t utf8_invalid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            if (c == 0xE0) lo = 0xA0;      // overlong
            else if (c == 0xED) hi = 0x9F; // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            if (c == 0xF0) lo = 0x90;      // overlong
            else if (c == 0xF4) hi = 0x8F; // past U+10FFFF
        } else return i;
        if (i + 1 >= n || s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t j = 2; j <= k; j++)
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80) return i;
        i += k + 1;
    }
    return n;
}

// ---- samples ----

void hn_data_sample_reset(hn_data_sample *s) {
    for (int i = 0; i < s->n_owned; i++) free(s->owned[i]);
    s->n_owned = s->n_msgs = s->n_pieces = 0;
    s->chat = s->eos = false;
}

void hn_data_sample_deinit(hn_data_sample *s) {
    hn_data_sample_reset(s);
    free(s->msgs);
    free(s->pieces);
    free(s->owned);
    memset(s, 0, sizeof *s);
}

static bool grow(void **p, int *cap, int need, size_t size) {
    if (need <= *cap) return true;
    int c = *cap ? *cap : 8;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * size);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static hn_status add_msg(hn_data_sample *s, const char *role, const char *content) {
    if (!grow((void **)&s->msgs, &s->cap_msgs, s->n_msgs + 1, sizeof *s->msgs))
        return hn_fail(HN_ERR_NOMEM, "out of memory");
    s->msgs[s->n_msgs++] = (hn_chat_msg){role, content};
    return HN_OK;
}

static hn_status add_piece(hn_data_sample *s, const char *str, bool loss) {
    if (!grow((void **)&s->pieces, &s->cap_pieces, s->n_pieces + 1, sizeof *s->pieces))
        return hn_fail(HN_ERR_NOMEM, "out of memory");
    s->pieces[s->n_pieces++] = (hn_data_piece){str, strlen(str), loss};
    return HN_OK;
}

// a + sep + b, owned by s (NULL on failure, with the message set).
static const char *own_join(hn_data_sample *s, const char *a, const char *sep, const char *b) {
    size_t na = strlen(a), ns = strlen(sep), nb = strlen(b);
    if (!grow((void **)&s->owned, &s->cap_owned, s->n_owned + 1, sizeof *s->owned)) {
        hn_fail(HN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    char *r = hn_alloc(na + ns + nb + 1, "a dataset string");
    if (!r) return NULL;
    memcpy(r, a, na);
    memcpy(r + na, sep, ns);
    memcpy(r + na + ns, b, nb + 1);
    s->owned[s->n_owned++] = r;
    return r;
}

// ---- fields ----

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

// The string at key (field names it in messages). Optional: missing or null gives *out = NULL.
static hn_status get_str(const json_t *obj, const char *key, const char *field, bool required, const char **out) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || (!required && json_is_null(v))) {
        if (required) return hn_fail(HN_ERR_FORMAT, "field '%s': missing", field);
        return HN_OK;
    }
    if (!json_is_string(v)) return hn_fail(HN_ERR_FORMAT, "field '%s': expected a string, got %s", field, json_kind(v));
    *out = json_string_value(v);
    return HN_OK;
}

static hn_status get_array(const json_t *obj, const char *key, bool required, json_t **out) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || (!required && json_is_null(v))) {
        if (required) return hn_fail(HN_ERR_FORMAT, "field '%s': missing", key);
        return HN_OK;
    }
    if (!json_is_array(v)) return hn_fail(HN_ERR_FORMAT, "field '%s': expected an array, got %s", key, json_kind(v));
    *out = v;
    return HN_OK;
}

static hn_data_format detect(const json_t *obj) {
    if (json_object_get(obj, "messages")) return HN_DATA_MESSAGES;
    if (json_object_get(obj, "conversations")) return HN_DATA_SHAREGPT;
    if (json_object_get(obj, "instruction")) return HN_DATA_ALPACA;
    if (json_object_get(obj, "prompt") && json_object_get(obj, "completion")) return HN_DATA_PROMPT_COMPLETION;
    if (json_object_get(obj, "text")) return HN_DATA_TEXT;
    return HN_DATA_AUTO;
}

static hn_status undetected(const json_t *obj) {
    if (json_object_get(obj, "rejected"))
        return hn_fail(HN_ERR_UNSUPPORTED, "preference data (chosen/rejected) is not a supervised fine-tuning shape");
    char keys[160] = "";
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int w = snprintf(keys + k, sizeof keys - k, "%s'%s'", k ? ", " : "", key);
        if (w < 0 || (size_t)w >= sizeof keys - k) break;
        k += (size_t)w;
    }
    return hn_fail(HN_ERR_FORMAT,
                   "cannot tell the data format from the keys {%s}: expected 'text', 'prompt'+'completion', "
                   "'instruction'+'output', 'messages' or 'conversations'",
                   keys);
}

static hn_status conv_text(const json_t *o, const hn_data_params *p, hn_data_sample *s) {
    const char *t;
    hn_status st = get_str(o, "text", "text", true, &t);
    if (st) return st;
    s->eos = true;
    return add_piece(s, t, true);
}

static hn_status conv_prompt_completion(const json_t *o, const hn_data_params *p, hn_data_sample *s) {
    const char *pr, *co;
    hn_status st;
    if ((st = get_str(o, "prompt", "prompt", true, &pr)) || (st = get_str(o, "completion", "completion", true, &co)))
        return st;
    if (p->chat) {
        s->chat = true;
        if ((st = add_msg(s, "user", pr))) return st;
        return add_msg(s, "assistant", co);
    }
    s->eos = true;
    if ((st = add_piece(s, pr, false))) return st;
    return add_piece(s, co, true);
}

// Alpaca: instance k of self-instruct's "instances", or the object itself.
static hn_status conv_alpaca(const json_t *o, int k, const hn_data_params *p, hn_data_sample *s) {
    const char *ins, *in, *out, *sys;
    json_t *hist, *insts;
    hn_status st;
    char field[64];
    if ((st = get_str(o, "instruction", "instruction", true, &ins)) || (st = get_str(o, "system", "system", false, &sys)) ||
        (st = get_array(o, "history", false, &hist)) || (st = get_array(o, "instances", false, &insts)))
        return st;
    if (insts && !json_object_get(o, "output")) {
        json_t *it = json_array_get(insts, (size_t)k);
        if (!json_is_object(it))
            return hn_fail(HN_ERR_FORMAT, "field 'instances[%d]': expected an object, got %s", k,
                           it ? json_kind(it) : "nothing");
        snprintf(field, sizeof field, "instances[%d].input", k);
        if ((st = get_str(it, "input", field, false, &in))) return st;
        snprintf(field, sizeof field, "instances[%d].output", k);
        if ((st = get_str(it, "output", field, true, &out))) return st;
    } else if ((st = get_str(o, "input", "input", false, &in)) || (st = get_str(o, "output", "output", true, &out))) {
        return st;
    }
    const char *query = ins;
    if (in && *in) query = *ins ? own_join(s, ins, "\n\n", in) : in;
    if (!query) return HN_ERR_NOMEM;

    size_t nh = hist ? json_array_size(hist) : 0;
    s->chat = p->chat;
    if (s->chat && sys && (st = add_msg(s, "system", sys))) return st;
    for (size_t i = 0; i < nh; i++) {
        json_t *pair = json_array_get(hist, i);
        if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_string(json_array_get(pair, 0)) ||
            !json_is_string(json_array_get(pair, 1)))
            return hn_fail(HN_ERR_FORMAT, "field 'history[%zu]': expected a pair of strings [user, assistant], got %s",
                           i, json_is_array(pair) ? "another array" : json_kind(pair));
        const char *q = json_string_value(json_array_get(pair, 0)), *a = json_string_value(json_array_get(pair, 1));
        if (s->chat) {
            if ((st = add_msg(s, "user", q)) || (st = add_msg(s, "assistant", a))) return st;
        } else if ((st = add_piece(s, q, false)) || (st = add_piece(s, "\n\n", false)) || (st = add_piece(s, a, true)) ||
                   (st = add_piece(s, "\n\n", false))) {
            return st;
        }
    }
    if (s->chat) {
        if ((st = add_msg(s, "user", query))) return st;
        return add_msg(s, "assistant", out);
    }
    s->eos = true;
    if ((st = add_piece(s, query, false)) || (st = add_piece(s, "\n\n", false))) return st;
    return add_piece(s, out, true);
}

static const char *message_role(const char *r) {
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (!strcmp(r, roles[i])) return roles[i];
    return NULL;
}

static const char *sharegpt_role(const char *r) {
    static const char *const map[][2] = {{"human", "user"},         {"user", "user"},          {"gpt", "assistant"},
                                         {"assistant", "assistant"}, {"function_call", "assistant"},
                                         {"observation", "tool"},   {"tool", "tool"},          {"system", "system"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(r, map[i][0])) return map[i][1];
    return NULL;
}

// messages ({"role","content"}) or ShareGPT conversations ({"from","value"}).
static hn_status conv_turns(const json_t *o, bool sharegpt, const hn_data_params *p, hn_data_sample *s) {
    const char *key = sharegpt ? "conversations" : "messages", *rk = sharegpt ? "from" : "role",
               *ck = sharegpt ? "value" : "content";
    json_t *list;
    hn_status st = get_array(o, key, true, &list);
    if (st) return st;
    size_t n = json_array_size(list);
    if (n == 0) return hn_fail(HN_ERR_FORMAT, "field '%s': empty conversation", key);
    s->chat = true;
    if (sharegpt) {
        const char *sys, *tools;
        if ((st = get_str(o, "system", "system", false, &sys)) || (st = get_str(o, "tools", "tools", false, &tools)))
            return st;
        if (tools && *tools) {
            const char *base = sys ? sys : p->system_prompt;
            sys = base && *base ? own_join(s, base, "\n\nTools:\n", tools) : own_join(s, "Tools:\n", "", tools);
            if (!sys) return HN_ERR_NOMEM;
        }
        if (sys && (st = add_msg(s, "system", sys))) return st;
    }
    char field[96];
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(list, i);
        if (!json_is_object(m))
            return hn_fail(HN_ERR_FORMAT, "field '%s[%zu]': expected an object, got %s", key, i, json_kind(m));
        const char *role, *content;
        snprintf(field, sizeof field, "%s[%zu].%s", key, i, rk);
        if ((st = get_str(m, rk, field, true, &role))) return st;
        const char *r = sharegpt ? sharegpt_role(role) : message_role(role);
        if (!r)
            return hn_fail(HN_ERR_FORMAT, "field '%s': expected %s, got '%.40s'", field,
                           sharegpt ? "human, gpt, system, function_call or observation"
                                    : "system, user, assistant or tool",
                           role);
        snprintf(field, sizeof field, "%s[%zu].%s", key, i, ck);
        if ((st = get_str(m, ck, field, true, &content))) return st;
        if ((st = add_msg(s, r, content))) return st;
    }
    return HN_OK;
}

// ---- files ----

typedef struct {
    hn_dataset *ds;
    const char *name;
    const hn_tokenizer *tk;
    const hn_data_params *p;
    hn_data_format fmt; // resolved from the first valid object when p->format is auto
    hn_data_sample sample;
    int64_t n_objects;
} reader;

// Records a failure of the object at line (element >= 0: its index in a JSON array): an error with file:line, or a
// counted skip. The message of the failure is in hn_errmsg().
static hn_status bad(reader *r, hn_status st, int64_t line, int64_t element) {
    char msg[768];
    snprintf(msg, sizeof msg, "%s", hn_errmsg());
    char where[64] = "";
    if (element >= 0) snprintf(where, sizeof where, "element %lld: ", (long long)element);
    if (r->p->skip_bad && st != HN_ERR_NOMEM) {
        if (!r->ds->n_skipped) {
            char full[1024];
            snprintf(full, sizeof full, "%s:%lld: %s%s", r->name, (long long)line, where, msg);
            size_t k = strnlen(full, sizeof r->ds->skip_msg - 1);
            memcpy(r->ds->skip_msg, full, k);
            r->ds->skip_msg[k] = '\0';
        }
        r->ds->n_skipped++;
        return HN_OK;
    }
    return hn_fail(st, "%s:%lld: %s%s", r->name, (long long)line, where, msg);
}

// One JSON object: text[0..len) starting at the file's line `line` and byte `off`.
static hn_status object(reader *r, const uint8_t *text, size_t len, int64_t line, size_t off, int64_t element) {
    size_t k = utf8_invalid(text, len);
    if (k < len) {
        int64_t l = line;
        size_t col = 0;
        for (size_t i = 0; i < k; i++) {
            if (text[i] == '\n') l++, col = 0;
            else col++;
        }
        hn_fail(HN_ERR_FORMAT, "invalid UTF-8 at byte %zu of the file (byte 0x%02X, column %zu)", off + k, text[k],
                col + 1);
        return bad(r, HN_ERR_FORMAT, l, element);
    }
    json_error_t e;
    json_t *o = json_loadb((const char *)text, len, JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY, &e);
    if (!o) {
        hn_fail(HN_ERR_FORMAT, "invalid JSON: %s (column %d)", e.text, e.column);
        return bad(r, HN_ERR_FORMAT, line + (e.line > 0 ? e.line - 1 : 0), element);
    }
    hn_status st = HN_OK;
    hn_data_format f = r->fmt;
    if (!json_is_object(o)) {
        st = hn_fail(HN_ERR_FORMAT, "expected a JSON object, got %s", json_kind(o));
        goto out;
    }
    if (f == HN_DATA_AUTO && (json_object_get(o, "rejected") || (f = detect(o)) == HN_DATA_AUTO)) {
        st = undetected(o);
        goto out;
    }
    int count = 1;
    json_t *insts = json_object_get(o, "instances");
    if (f == HN_DATA_ALPACA && json_is_array(insts) && !json_object_get(o, "output")) {
        count = (int)json_array_size(insts);
        if (!count) {
            st = hn_fail(HN_ERR_FORMAT, "field 'instances': empty");
            goto out;
        }
    }
    int64_t before = r->ds->n;
    for (int i = 0; i < count && !st; i++) {
        hn_data_sample_reset(&r->sample);
        switch (f) {
        case HN_DATA_TEXT: st = conv_text(o, r->p, &r->sample); break;
        case HN_DATA_PROMPT_COMPLETION: st = conv_prompt_completion(o, r->p, &r->sample); break;
        case HN_DATA_ALPACA: st = conv_alpaca(o, i, r->p, &r->sample); break;
        case HN_DATA_MESSAGES: st = conv_turns(o, false, r->p, &r->sample); break;
        case HN_DATA_SHAREGPT: st = conv_turns(o, true, r->p, &r->sample); break;
        default: st = hn_fail(HN_ERR_ARG, "data format %d unknown", (int)f);
        }
        if (!st) st = hn_data_add(r->ds, &r->sample, r->tk, r->p);
    }
    if (st) { // an object counts whole: drop the instances already added
        while (r->ds->n > before) {
            hn_example *x = &r->ds->ex[--r->ds->n];
            r->ds->n_tokens -= x->n;
            for (int j = 0; j < x->n; j++) r->ds->n_loss_tokens -= x->mask[j];
            free(x->ids);
        }
    } else {
        r->fmt = f; // the first valid object fixes the format of the file
    }
out:
    json_decref(o);
    if (st) return bad(r, st, line, element);
    r->n_objects++;
    return HN_OK;
}

static bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static hn_status read_jsonl(reader *r, const uint8_t *d, size_t n, size_t start) {
    int64_t line = 1;
    for (size_t i = 0; i < start; i++) line += d[i] == '\n';
    size_t i = start;
    while (i < n) {
        const uint8_t *nl = memchr(d + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - d) : n, a = i, b = end;
        while (a < b && is_ws(d[a])) a++;
        while (b > a && is_ws(d[b - 1])) b--;
        if (a < b) {
            hn_status st = object(r, d + a, b - a, line, a, -1);
            if (st) return st;
        }
        i = end + 1;
        line++;
    }
    return HN_OK;
}

// d[i] is '"': the index just past the closing quote, or n if the string does not end.
static size_t skip_string(const uint8_t *d, size_t n, size_t i, int64_t *line) {
    for (i++; i < n; i++) {
        if (d[i] == '\\') i++;
        else if (d[i] == '"') return i + 1;
        else if (d[i] == '\n') ++*line;
    }
    return n;
}

static hn_status read_array(reader *r, const uint8_t *d, size_t n, size_t start) {
    int64_t line = 1;
    for (size_t i = 0; i < start; i++) line += d[i] == '\n';
    size_t i = start + 1;
    int64_t element = 0;
    for (;;) {
        while (i < n && is_ws(d[i])) line += d[i++] == '\n';
        if (i >= n) return hn_fail(HN_ERR_FORMAT, "%s:%lld: the JSON array does not end", r->name, (long long)line);
        if (d[i] == ']') {
            if (element > 0)
                return hn_fail(HN_ERR_FORMAT, "%s:%lld: invalid JSON: ',' before ']'", r->name, (long long)line);
            i++;
            break;
        }
        size_t es = i;
        int64_t eline = line;
        if (d[i] == '{' || d[i] == '[') {
            size_t depth = 0;
            while (i < n) {
                uint8_t c = d[i];
                if (c == '"') {
                    i = skip_string(d, n, i, &line);
                    continue;
                }
                if (c == '{' || c == '[') depth++;
                else if (c == '}' || c == ']') depth--;
                else if (c == '\n') line++;
                i++;
                if (depth == 0) break;
            }
            if (depth)
                return hn_fail(HN_ERR_FORMAT, "%s:%lld: element %lld: the JSON value does not end", r->name,
                               (long long)eline, (long long)element);
        } else if (d[i] == '"') {
            i = skip_string(d, n, i, &line);
        } else {
            while (i < n && !is_ws(d[i]) && d[i] != ',' && d[i] != ']') i++;
        }
        hn_status st = object(r, d + es, i - es, eline, es, element);
        if (st) return st;
        element++;
        while (i < n && is_ws(d[i])) line += d[i++] == '\n';
        if (i >= n) return hn_fail(HN_ERR_FORMAT, "%s:%lld: the JSON array does not end", r->name, (long long)line);
        if (d[i] == ',') {
            i++;
            continue;
        }
        if (d[i] == ']') {
            i++;
            break;
        }
        return hn_fail(HN_ERR_FORMAT, "%s:%lld: invalid JSON: expected ',' or ']' after element %lld", r->name,
                       (long long)line, (long long)(element - 1));
    }
    while (i < n && is_ws(d[i])) line += d[i++] == '\n';
    if (i < n) return hn_fail(HN_ERR_FORMAT, "%s:%lld: data after the end of the JSON array", r->name, (long long)line);
    return HN_OK;
}

hn_status hn_dataset_parse(hn_dataset *ds, const char *name, const void *data, size_t size, const hn_tokenizer *tk,
                           const hn_data_params *p) {
    memset(ds, 0, sizeof *ds);
    if (!tk || !p || (size && !data)) return hn_fail(HN_ERR_ARG, "%s: dataset: no tokenizer, params or data", name);
    if (p->max_len < 2) return hn_fail(HN_ERR_ARG, "%s: max_len %d: expected at least 2 tokens", name, p->max_len);
    if ((unsigned)p->format >= HN_DATA_FORMAT_COUNT)
        return hn_fail(HN_ERR_ARG, "%s: data format %d unknown", name, (int)p->format);
    if (!(ds->path = strdup(name))) return hn_fail(HN_ERR_NOMEM, "out of memory");
    const uint8_t *d = data;
    size_t start = size >= 3 && !memcmp(d, "\xEF\xBB\xBF", 3) ? 3 : 0; // byte order mark
    size_t first = start;
    while (first < size && is_ws(d[first])) first++;
    if (first >= size) {
        hn_dataset_deinit(ds);
        return hn_fail(HN_ERR_FORMAT, "%s: empty file: expected JSON lines or a JSON array of examples", name);
    }
    reader r = {.ds = ds, .name = name, .tk = tk, .p = p, .fmt = p->format};
    hn_status st = d[first] == '[' ? read_array(&r, d, size, first) : read_jsonl(&r, d, size, start);
    hn_data_sample_deinit(&r.sample);
    ds->format = r.fmt;
    if (!st && ds->n == 0) {
        if (ds->n_no_loss)
            st = hn_fail(HN_ERR_FORMAT, "%s: no example has a token in the loss (%lld dropped, e.g. prompts longer "
                         "than max_len %d or no assistant turn)", name, (long long)ds->n_no_loss, p->max_len);
        else if (ds->n_skipped)
            st = hn_fail(HN_ERR_FORMAT, "%s: no usable example: all %lld skipped; the first: %s", name,
                         (long long)ds->n_skipped, ds->skip_msg);
        else st = hn_fail(HN_ERR_FORMAT, "%s: no examples (an empty JSON array)", name);
    }
    if (st) {
        hn_dataset_deinit(ds);
        return st;
    }
    ds->n_loaded = ds->n;
    return HN_OK;
}

hn_status hn_dataset_load(hn_dataset *ds, const char *path, const hn_tokenizer *tk, const hn_data_params *p) {
    memset(ds, 0, sizeof *ds);
    hn_map m;
    hn_status st = hn_map_open(&m, path);
    if (st) return st;
    st = hn_dataset_parse(ds, path, m.data, m.size, tk, p);
    hn_map_close(&m);
    return st;
}
