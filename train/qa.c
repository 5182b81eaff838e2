// train/qa.c — short-answer question sets (train/qa.h): SQuAD-format and JSONL / JSON-array readers, group splits,
// exact-match scoring, and SQuAD's exact match and token F1.
#include "train/qa.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define SQUAD_PROMPT "Answer the question with a short span copied from the text.\n\nText: "

char *hn_qa_squad_prompt(const char *context, const char *question) {
    size_t n = sizeof SQUAD_PROMPT + strlen(context) + strlen(question) + 16;
    char *p = malloc(n);
    if (p) snprintf(p, n, SQUAD_PROMPT "%s\n\nQuestion: %s", context, question);
    return p;
}

static void item_free(hn_qa_item *it) {
    for (int i = 0; i < it->n_answers; i++) free(it->answers[i]);
    free(it->answers), free(it->line);
}

void hn_qa_set_deinit(hn_qa_set *q) {
    for (int i = 0; i < q->n; i++) item_free(&q->items[i]);
    free(q->items), free(q->source);
    memset(q, 0, sizeof *q);
}

// ---- building items

typedef struct {
    hn_qa_set *q;
    int cap;
} builder;

// line (taken) grown to hold the question after its NUL: question, then a blank line and input when input is a
// non-empty string (alpaca's). NULL when out of memory (line freed).
static char *with_question(char *line, const char *question, const char *input) {
    if (!line) return NULL;
    size_t nl = strlen(line), nq = strlen(question), ni = input && *input ? strlen(input) : 0;
    char *p = realloc(line, nl + 1 + nq + (ni ? 2 + ni : 0) + 1);
    if (!p) {
        free(line);
        return NULL;
    }
    char *q = p + nl + 1;
    memcpy(q, question, nq);
    if (ni) memcpy(q + nq, "\n\n", 2), memcpy(q + nq + 2, input, ni);
    q[nq + (ni ? 2 + ni : 0)] = 0;
    return p;
}

// A new item with `line` (taken, from with_question) and no answers yet; NULL when out of memory (line freed).
static hn_qa_item *add_item(builder *b, char *line, int group) {
    if (!line) return NULL;
    if (b->q->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        hn_qa_item *it = realloc(b->q->items, (size_t)cap * sizeof *it);
        if (!it) {
            free(line);
            return NULL;
        }
        b->q->items = it, b->cap = cap;
    }
    hn_qa_item *it = &b->q->items[b->q->n++];
    memset(it, 0, sizeof *it);
    it->line = line, it->question = line + strlen(line) + 1, it->group = group;
    return it;
}

static bool add_answer(hn_qa_item *it, const char *a) {
    char **an = realloc(it->answers, (size_t)(it->n_answers + 1) * sizeof *an);
    if (!an) return false;
    it->answers = an;
    return (an[it->n_answers] = strdup(a)) ? (it->n_answers++, true) : false;
}

// {"prompt": prompt, "completion": answer} as one line.
static char *pc_line(const char *prompt, const char *answer) {
    json_t *o = json_pack("{s:s, s:s}", "prompt", prompt, "completion", answer);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
    return s;
}

// ---- SQuAD

static const char *str_of(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static hn_status read_squad(builder *b, const char *name, json_t *root) {
    json_t *data = json_object_get(root, "data");
    if (!json_is_array(data))
        return hn_fail(HN_ERR_FORMAT, "%s: data: expected SQuAD's list of articles ({\"data\": [{\"title\", "
                       "\"paragraphs\"}]})", name);
    for (size_t a = 0; a < json_array_size(data); a++) {
        json_t *art = json_array_get(data, a), *paras = json_object_get(art, "paragraphs");
        if (!json_is_array(paras))
            return hn_fail(HN_ERR_FORMAT, "%s: data[%zu].paragraphs: expected a list of {context, qas}", name, a);
        for (size_t p = 0; p < json_array_size(paras); p++) {
            json_t *para = json_array_get(paras, p), *qas = json_object_get(para, "qas");
            const char *ctx = str_of(para, "context");
            if (!ctx)
                return hn_fail(HN_ERR_FORMAT, "%s: data[%zu].paragraphs[%zu].context: expected a string", name, a, p);
            if (!json_is_array(qas))
                return hn_fail(HN_ERR_FORMAT, "%s: data[%zu].paragraphs[%zu].qas: expected a list of {question, "
                               "answers}", name, a, p);
            for (size_t k = 0; k < json_array_size(qas); k++) {
                json_t *qa = json_array_get(qas, k), *ans = json_object_get(qa, "answers");
                const char *question = str_of(qa, "question");
                if (!question)
                    return hn_fail(HN_ERR_FORMAT, "%s: data[%zu].paragraphs[%zu].qas[%zu].question: expected a string",
                                   name, a, p, k);
                if (!json_is_array(ans))
                    return hn_fail(HN_ERR_FORMAT, "%s: data[%zu].paragraphs[%zu].qas[%zu].answers: expected a list of "
                                   "{text, answer_start}", name, a, p, k);
                for (size_t j = 0; j < json_array_size(ans); j++)
                    if (!str_of(json_array_get(ans, j), "text"))
                        return hn_fail(HN_ERR_FORMAT, "%s: data[%zu].paragraphs[%zu].qas[%zu].answers[%zu].text: "
                                       "expected a string", name, a, p, k, j);
                if (json_array_size(ans) == 0) { // SQuAD 2.0's unanswerable questions: nothing to match
                    b->q->n_skipped++;
                    continue;
                }
                char *prompt = hn_qa_squad_prompt(ctx, question);
                const char *first = str_of(json_array_get(ans, 0), "text");
                hn_qa_item *it = prompt ? add_item(b, with_question(pc_line(prompt, first), question, NULL), (int)a)
                                        : NULL;
                free(prompt);
                if (!it) return hn_fail(HN_ERR_NOMEM, "%s: out of memory", name);
                for (size_t j = 0; j < json_array_size(ans); j++) {
                    const char *t = str_of(json_array_get(ans, j), "text");
                    bool seen = false;
                    for (int x = 0; x < it->n_answers && !seen; x++) seen = !strcmp(it->answers[x], t);
                    if (!seen && !add_answer(it, t)) return hn_fail(HN_ERR_NOMEM, "%s: out of memory", name);
                }
            }
        }
    }
    b->q->n_groups = (int)json_array_size(data);
    return HN_OK;
}

// ---- JSONL and JSON arrays

// One object; where is "FILE:LINE" or "FILE: item N".
static hn_status read_object(builder *b, const char *where, json_t *o) {
    if (!json_is_object(o)) return hn_fail(HN_ERR_FORMAT, "%s: expected a JSON object", where);
    int group = b->q->n;
    json_t *prompt = json_object_get(o, "prompt");
    if (prompt) {
        if (!json_is_string(prompt)) return hn_fail(HN_ERR_FORMAT, "%s: prompt: expected a string", where);
        json_t *ans = json_object_get(o, "answer"), *comp = json_object_get(o, "completion");
        if (!ans && !comp)
            return hn_fail(HN_ERR_FORMAT, "%s: answer: missing (expected a string or a list of strings beside "
                           "prompt)", where);
        if (!ans) ans = comp;
        if (json_is_array(ans) && json_array_size(ans) == 0)
            return hn_fail(HN_ERR_FORMAT, "%s: answer: expected a string or a non-empty list of strings", where);
        for (size_t j = 0; json_is_array(ans) && j < json_array_size(ans); j++)
            if (!json_is_string(json_array_get(ans, j)))
                return hn_fail(HN_ERR_FORMAT, "%s: answer[%zu]: expected a string", where, j);
        if (!json_is_array(ans) && !json_is_string(ans))
            return hn_fail(HN_ERR_FORMAT, "%s: %s: expected a string%s", where, ans == comp ? "completion" : "answer",
                           ans == comp ? "" : " or a list of strings");
        const char *first = json_string_value(json_is_array(ans) ? json_array_get(ans, 0) : ans);
        hn_qa_item *it = add_item(b, with_question(pc_line(json_string_value(prompt), first),
                                                  json_string_value(prompt), NULL), group);
        if (!it) return HN_ERR_NOMEM;
        for (size_t j = 0; j < (json_is_array(ans) ? json_array_size(ans) : 1); j++)
            if (!add_answer(it, json_string_value(json_is_array(ans) ? json_array_get(ans, j) : ans)))
                return HN_ERR_NOMEM;
        return HN_OK;
    }
    json_t *ins = json_object_get(o, "instruction"), *out = json_object_get(o, "output");
    if (!ins)
        return hn_fail(HN_ERR_FORMAT, "%s: expected {\"prompt\", \"answer\"}, {\"prompt\", \"completion\"} or "
                       "alpaca's {\"instruction\", \"input\", \"output\"}", where);
    if (!json_is_string(ins)) return hn_fail(HN_ERR_FORMAT, "%s: instruction: expected a string", where);
    if (!json_is_string(out)) return hn_fail(HN_ERR_FORMAT, "%s: output: expected a string", where);
    json_t *input = json_object_get(o, "input");
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    hn_qa_item *it = add_item(b, with_question(line, json_string_value(ins), json_string_value(input)), group);
    return it && add_answer(it, json_string_value(out)) ? HN_OK : HN_ERR_NOMEM;
}

static hn_status read_lines(builder *b, const char *name, const char *data, size_t size) {
    char where[600];
    size_t pos = 0;
    for (int line = 1; pos < size; line++) {
        const char *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) : size, n = end - pos;
        size_t k = 0;
        while (k < n && (data[pos + k] == ' ' || data[pos + k] == '\t' || data[pos + k] == '\r')) k++;
        if (k < n) {
            snprintf(where, sizeof where, "%.500s:%d", name, line);
            json_error_t err;
            json_t *o = json_loadb(data + pos, n, JSON_REJECT_DUPLICATES, &err);
            if (!o) return hn_fail(HN_ERR_FORMAT, "%s: invalid JSON: %s", where, err.text);
            hn_status s = read_object(b, where, o);
            json_decref(o);
            if (s) return s == HN_ERR_NOMEM ? hn_fail(s, "%s: out of memory", where) : s;
        }
        pos = end + 1;
    }
    return HN_OK;
}

// ---- loading

hn_status hn_qa_parse(hn_qa_set *q, const char *name, const char *data, size_t size, hn_qa_format format) {
    memset(q, 0, sizeof *q);
    builder b = {.q = q};
    if (!(q->source = strdup(name))) return hn_fail(HN_ERR_NOMEM, "%s: out of memory", name);
    if (size >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) data += 3, size -= 3; // a UTF-8 byte order mark
    size_t k = 0;
    while (k < size && (data[k] == ' ' || data[k] == '\t' || data[k] == '\r' || data[k] == '\n')) k++;
    json_error_t err;
    json_t *whole = NULL;
    // A whole-file JSON value: SQuAD's object or an array of questions (a one-line JSONL file parses too).
    if (k < size && (data[k] == '{' || data[k] == '['))
        whole = json_loadb(data, size, JSON_REJECT_DUPLICATES, &err);
    bool squad = whole && json_is_object(whole) && json_object_get(whole, "data");
    hn_status s = HN_OK;
    if (format == HN_QA_SQUAD && !squad) {
        s = whole ? hn_fail(HN_ERR_FORMAT, "%s: data: missing (expected SQuAD's {\"data\": [{\"title\", "
                            "\"paragraphs\"}]})", name)
                  : hn_fail(HN_ERR_FORMAT, "%s: expected one SQuAD JSON object%s%s", name, k < size ? ": " : " (the "
                            "file is empty)", k < size ? err.text : "");
    } else if (squad) {
        q->format = HN_QA_SQUAD;
        s = read_squad(&b, name, whole);
    } else if (whole && json_is_array(whole)) {
        q->format = HN_QA_JSONL;
        char where[600];
        for (size_t i = 0; !s && i < json_array_size(whole); i++) {
            snprintf(where, sizeof where, "%.500s: item %zu", name, i + 1);
            s = read_object(&b, where, json_array_get(whole, i));
            if (s == HN_ERR_NOMEM) hn_fail(s, "%s: out of memory", where);
        }
        q->n_groups = q->n;
    } else {
        q->format = HN_QA_JSONL;
        s = read_lines(&b, name, data, size);
        q->n_groups = q->n;
    }
    json_decref(whole);
    if (!s && q->n == 0)
        s = hn_fail(HN_ERR_FORMAT, "%s: no question%s", name,
                    q->n_skipped ? " with an answer (every one is unanswerable)" : " in the file");
    if (s) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", hn_errmsg());
        hn_qa_set_deinit(q);
        hn_fail(s, "%s", msg);
    }
    return s;
}

hn_status hn_qa_load(hn_qa_set *q, const char *path, hn_qa_format format) {
    memset(q, 0, sizeof *q);
    hn_map m;
    hn_status s = hn_map_open(&m, path);
    if (s) return s;
    s = hn_qa_parse(q, path, (const char *)m.data, m.size, format);
    hn_map_close(&m);
    return s;
}

hn_status hn_qa_append(hn_qa_set *dst, hn_qa_set *src) {
    hn_qa_item *it = realloc(dst->items, (size_t)(dst->n + src->n + 1) * sizeof *it);
    if (!it) return hn_fail(HN_ERR_NOMEM, "out of memory for the questions");
    dst->items = it;
    int base = 0; // src's groups after every group of dst's
    for (int i = 0; i < dst->n; i++) base = it[i].group + 1 > base ? it[i].group + 1 : base;
    for (int i = 0; i < src->n; i++) {
        it[dst->n + i] = src->items[i];
        it[dst->n + i].group += base;
    }
    dst->n += src->n, dst->n_groups += src->n_groups, dst->n_skipped += src->n_skipped;
    if (!dst->source) dst->source = src->source, src->source = NULL;
    if (!dst->format) dst->format = src->format;
    src->n = 0;
    hn_qa_set_deinit(src);
    return HN_OK;
}

// ---- splits

static void shuffle(int *a, int n, hn_rng *r) {
    for (int i = 0; i < n; i++) a[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(hn_rng_u64(r) % (uint64_t)(i + 1)), t = a[i];
        a[i] = a[j], a[j] = t;
    }
}

// Moves the items whose pick[] is set into to (both keep file order); groups are left as they were.
static hn_status move_items(hn_qa_set *q, hn_qa_set *to, const uint8_t *pick) {
    int n_to = 0;
    for (int i = 0; i < q->n; i++) n_to += pick[i];
    hn_qa_item *t = hn_calloc((size_t)(to->n + n_to + 1), sizeof *t, "questions");
    if (!t) return HN_ERR_NOMEM;
    if (to->n) memcpy(t, to->items, (size_t)to->n * sizeof *t);
    free(to->items);
    to->items = t;
    int kept = 0;
    for (int i = 0; i < q->n; i++) {
        if (pick[i]) to->items[to->n++] = q->items[i];
        else q->items[kept++] = q->items[i];
    }
    q->n = kept;
    return HN_OK;
}

hn_status hn_qa_split(hn_qa_set *q, hn_qa_set *test, double frac, uint64_t seed) {
    memset(test, 0, sizeof *test);
    if (!(frac > 0 && frac < 1)) return hn_fail(HN_ERR_ARG, "%s: held-out fraction %g: expected above 0 and below 1",
                                                 q->source ? q->source : "questions", frac);
    int G = 0;
    for (int i = 0; i < q->n; i++) G = q->items[i].group + 1 > G ? q->items[i].group + 1 : G;
    int *count = hn_calloc((size_t)G + 1, sizeof *count, "group sizes"), *order = hn_calloc((size_t)G + 1,
                                                                                         sizeof *order, "an order");
    uint8_t *held = hn_calloc((size_t)G + 1, 1, "a split"), *pick = hn_calloc((size_t)q->n + 1, 1, "a split");
    hn_status s = count && order && held && pick ? HN_OK : HN_ERR_NOMEM;
    int groups = 0;
    for (int i = 0; !s && i < q->n; i++) groups += count[q->items[i].group]++ == 0;
    if (!s && groups < 2)
        s = hn_fail(HN_ERR_ARG, "%s: %d question%s in %d %s: too few to hold out a share", q->source, q->n,
                    q->n == 1 ? "" : "s", groups, q->format == HN_QA_SQUAD ? "article" : "group");
    if (!s) {
        hn_rng r;
        hn_rng_seed(&r, seed);
        shuffle(order, G, &r);
        int want = (int)llround(frac * q->n), have = 0, used = 0;
        for (int i = 0; i < G && have < want && used < groups - 1; i++)
            if (count[order[i]]) held[order[i]] = 1, have += count[order[i]], used++;
        if (!used) // every group is larger than the share: the first one still goes
            for (int i = 0; i < G && !used; i++)
                if (count[order[i]]) held[order[i]] = 1, used++;
        for (int i = 0; i < q->n; i++) pick[i] = held[q->items[i].group];
        test->format = q->format, test->n_groups = used, q->n_groups = groups - used;
        if (!(test->source = strdup(q->source ? q->source : ""))) s = HN_ERR_NOMEM;
    }
    if (!s) s = move_items(q, test, pick);
    free(count), free(order), free(held), free(pick);
    if (s) hn_qa_set_deinit(test);
    return s;
}

hn_status hn_qa_subsample(hn_qa_set *q, int keep, uint64_t seed) {
    if (keep <= 0 || keep >= q->n) return HN_OK;
    int *order = hn_calloc((size_t)q->n, sizeof *order, "an order");
    uint8_t *drop = hn_calloc((size_t)q->n, 1, "a subsample");
    hn_status s = order && drop ? HN_OK : HN_ERR_NOMEM;
    if (!s) {
        hn_rng r;
        hn_rng_seed(&r, seed);
        shuffle(order, q->n, &r);
        for (int i = keep; i < q->n; i++) drop[order[i]] = 1;
        int kept = 0;
        for (int i = 0; i < q->n; i++) {
            if (drop[i]) item_free(&q->items[i]);
            else q->items[kept++] = q->items[i];
        }
        q->n = kept;
    }
    free(order), free(drop);
    return s;
}

hn_status hn_qa_sft_jsonl(const hn_qa_set *q, char **out, size_t *len) {
    size_t n = 1;
    for (int i = 0; i < q->n; i++) n += strlen(q->items[i].line) + 1;
    char *p = hn_alloc(n, "the questions as JSONL");
    if (!p) return HN_ERR_NOMEM;
    size_t k = 0;
    for (int i = 0; i < q->n; i++) {
        size_t m = strlen(q->items[i].line);
        memcpy(p + k, q->items[i].line, m);
        k += m;
        p[k++] = '\n';
    }
    p[k] = 0;
    *out = p, *len = k;
    return HN_OK;
}

// ---- exact match

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }
static bool is_final_punct(char c) { return c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?'; }

size_t hn_qa_normalize(const char *s, size_t len, char *out, size_t cap) {
    const char *nl = memchr(s, '\n', len);
    if (nl) len = (size_t)(nl - s);
    size_t a = 0, b = len;
    for (;;) { // trim, then final punctuation, until neither changes anything
        while (a < b && is_space(s[a])) a++;
        while (b > a && is_space(s[b - 1])) b--;
        if (b > a && is_final_punct(s[b - 1])) {
            while (b > a && is_final_punct(s[b - 1])) b--;
            continue;
        }
        break;
    }
    // Collapse white space runs, then case-fold (utf8proc: Unicode case folding; invalid UTF-8 is kept as bytes,
    // folded only in ASCII).
    char *tmp = malloc(b - a + 1);
    size_t n = 0;
    if (!tmp) {
        if (cap) out[0] = 0;
        return cap; // "cut": never matches
    }
    for (size_t i = a; i < b; i++) {
        if (is_space(s[i])) {
            if (n && tmp[n - 1] != ' ') tmp[n++] = ' ';
        } else {
            tmp[n++] = s[i];
        }
    }
    tmp[n] = 0;
    utf8proc_uint8_t *folded = NULL;
    utf8proc_ssize_t fn = utf8proc_map((const utf8proc_uint8_t *)tmp, (utf8proc_ssize_t)n, &folded,
                                       UTF8PROC_STABLE | UTF8PROC_CASEFOLD);
    const char *src = tmp;
    size_t sn = n;
    if (fn >= 0) src = (const char *)folded, sn = (size_t)fn;
    else
        for (size_t i = 0; i < n; i++) tmp[i] = tmp[i] >= 'A' && tmp[i] <= 'Z' ? tmp[i] + 32 : tmp[i];
    if (cap) {
        size_t c = sn < cap ? sn : cap - 1;
        while (c > 0 && c < sn && ((unsigned char)src[c] & 0xC0) == 0x80) c--; // not inside a character
        memcpy(out, src, c);
        out[c] = 0;
    }
    free(folded), free(tmp);
    return sn;
}

bool hn_qa_match(const char *generated, const char *const *answers, int n_answers) {
    char g[1024], a[1024];
    size_t ng = hn_qa_normalize(generated, strlen(generated), g, sizeof g);
    if (ng >= sizeof g) return false; // longer than any short answer
    for (int i = 0; i < n_answers; i++) {
        size_t na = hn_qa_normalize(answers[i], strlen(answers[i]), a, sizeof a);
        if (na < sizeof a && na == ng && !memcmp(a, g, ng)) return true;
    }
    return false;
}

// ---- SQuAD's exact match and token F1 (SQuAD v1.1's evaluate script; MLQA's for Chinese)

#define CP_INVALID 0x110000u // a byte that is not UTF-8: beyond Unicode, so no letter, punctuation or space

static bool ascii_punct(uint32_t c) { return c < 128 && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", (int)c) && c; }

static bool is_cjk(uint32_t c) {
    return (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF);
}

static bool uni_punct(uint32_t c) {
    if (c >= CP_INVALID) return false;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

// Python's str.isspace(), which str.split() splits at.
static bool uni_space(uint32_t c) {
    if ((c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x20) || c == 0x85) return true;
    if (c < 128 || c >= CP_INVALID) return false;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

// Python's \w: letters, digits and other numbers, '_'.
static bool uni_word(uint32_t c) {
    if (c == '_') return true;
    if (c >= CP_INVALID) return false;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) || (k >= UTF8PROC_CATEGORY_ND &&
                                                                       k <= UTF8PROC_CATEGORY_NO);
}

typedef struct {
    uint32_t *cp;     // the normalised text's code points
    size_t *at, *len; // (n) each token's start and length in cp
    size_t n;
} squad_toks;

static void toks_free(squad_toks *t) { free(t->cp), free(t->at), free(t->len); }

// The first line's code points (invalid bytes become CP_INVALID + byte); *n gets their count. NULL: out of memory.
static uint32_t *first_line_cps(const char *s, size_t *n) {
    size_t len = strcspn(s, "\n");
    uint32_t *cp = malloc((len + 1) * sizeof *cp);
    if (!cp) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t m = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &c);
        if (m <= 0) cp[k++] = CP_INVALID + (unsigned char)s[i++];
        else cp[k++] = (uint32_t)c, i += (size_t)m;
    }
    *n = k;
    return cp;
}

static bool text_has_cjk(const char *s) {
    size_t n;
    uint32_t *cp = first_line_cps(s, &n);
    bool any = false;
    for (size_t i = 0; cp && i < n && !any; i++) any = is_cjk(cp[i]);
    free(cp);
    return any;
}

static bool cps_are(const uint32_t *cp, size_t n, const char *ascii) {
    if (strlen(ascii) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (cp[i] != (unsigned char)ascii[i]) return false;
    return true;
}

// Steps 1-4 of train/qa.h's SQuAD normalisation; false when out of memory.
static bool squad_tokens(const char *s, bool zh, squad_toks *t) {
    memset(t, 0, sizeof *t);
    size_t n;
    if (!(t->cp = first_line_cps(s, &n))) return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) { // lower case, then punctuation out
        uint32_t c = t->cp[i] < CP_INVALID ? (uint32_t)utf8proc_tolower((utf8proc_int32_t)t->cp[i]) : t->cp[i];
        if (!ascii_punct(c) && !(zh && uni_punct(c))) t->cp[k++] = c;
    }
    n = k;
    if (!zh) // articles out: a whole word a, an or the becomes a space
        for (size_t i = 0; i < n;) {
            if (!uni_word(t->cp[i])) {
                i++;
                continue;
            }
            size_t j = i;
            while (j < n && uni_word(t->cp[j])) j++;
            if (cps_are(t->cp + i, j - i, "a") || cps_are(t->cp + i, j - i, "an") || cps_are(t->cp + i, j - i, "the"))
                for (size_t x = i; x < j; x++) t->cp[x] = ' ';
            i = j;
        }
    t->at = malloc((n + 1) * sizeof *t->at), t->len = malloc((n + 1) * sizeof *t->len);
    if (!t->at || !t->len) {
        toks_free(t);
        return false;
    }
    for (size_t i = 0; i < n;) {
        if (uni_space(t->cp[i])) {
            i++;
        } else if (zh && is_cjk(t->cp[i])) {
            t->at[t->n] = i, t->len[t->n++] = 1, i++;
        } else {
            size_t j = i;
            while (j < n && !uni_space(t->cp[j]) && !(zh && is_cjk(t->cp[j]))) j++;
            t->at[t->n] = i, t->len[t->n++] = j - i, i = j;
        }
    }
    return true;
}

static bool tok_eq(const squad_toks *a, size_t i, const squad_toks *b, size_t j) {
    return a->len[i] == b->len[j] && !memcmp(a->cp + a->at[i], b->cp + b->at[j], a->len[i] * sizeof *a->cp);
}

// Scores one generation (tokenised both ways, on demand) against each answer: the best exact match and F1.
static void squad_score(const char *generated, const char *const *answers, int n_answers, bool *em, double *f1) {
    *em = false, *f1 = 0;
    squad_toks g[2]; // [zh]
    bool have[2] = {false, false}, g_cjk = text_has_cjk(generated);
    for (int a = 0; a < n_answers; a++) {
        bool zh = g_cjk || text_has_cjk(answers[a]);
        squad_toks t;
        if (!have[zh] && !(have[zh] = squad_tokens(generated, zh, &g[zh]))) continue;
        if (!squad_tokens(answers[a], zh, &t)) continue;
        const squad_toks *p = &g[zh];
        bool same = p->n == t.n;
        for (size_t i = 0; same && i < p->n; i++) same = tok_eq(p, i, &t, i);
        *em |= same;
        // Shared tokens as multisets: each generated token takes one equal gold token not yet taken.
        uint8_t *taken = calloc(t.n + 1, 1);
        size_t common = 0;
        for (size_t i = 0; taken && i < p->n; i++)
            for (size_t j = 0; j < t.n; j++)
                if (!taken[j] && tok_eq(p, i, &t, j)) {
                    taken[j] = 1, common++;
                    break;
                }
        if (common) {
            double prec = (double)common / (double)p->n, rec = (double)common / (double)t.n;
            double f = 2 * prec * rec / (prec + rec);
            if (f > *f1) *f1 = f;
        }
        free(taken);
        toks_free(&t);
    }
    for (int z = 0; z < 2; z++)
        if (have[z]) toks_free(&g[z]);
}

bool hn_qa_squad_em(const char *generated, const char *const *answers, int n_answers) {
    bool em;
    double f1;
    squad_score(generated, answers, n_answers, &em, &f1);
    return em;
}

double hn_qa_f1(const char *generated, const char *const *answers, int n_answers) {
    bool em;
    double f1;
    squad_score(generated, answers, n_answers, &em, &f1);
    return f1;
}
