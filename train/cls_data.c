// train/cls_data.c — labelled texts for classification (train/classify.h): JSONL objects, CSV / TSV files with a
// header row, and plain-text files given one label each ("pos.txt:pos"); the stratified validation split.
//
// Every file is checked for UTF-8 as a whole before it is parsed, so that the error names the line. Labels are kept
// as the text the data wrote (an integer label 1 becomes the class "1"), so that a run's class list reads the same
// whether it came from JSONL integers or a TSV column.
#include "io/tokenizer_impl.h"
#include "train/classify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

hn_cls_load_params hn_cls_load_default_params(void) {
    return (hn_cls_load_params){.text_col = "text", .label_col = "label"};
}

// The data being built, with what was skipped.
typedef struct {
    hn_cls_data *d;
    const hn_cls_load_params *p;
    int cap, cap_classes;
    int64_t n_empty, n_unseen;
} builder;

static char *dup_n(const char *s, size_t n) {
    char *r = hn_alloc(n + 1, "classification data");
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return false;
    return true;
}

static int class_index(const hn_cls_data *d, const char *label, size_t n) {
    for (int c = 0; c < d->n_classes; c++)
        if (strlen(d->classes[c]) == n && !memcmp(d->classes[c], label, n)) return c;
    return -1;
}

// Adds one example (text and label borrowed); file and line are for messages.
static hn_status add(builder *b, const char *text, size_t tn, const char *label, size_t ln, const char *file,
                     int64_t line) {
    hn_cls_data *d = b->d;
    if (blank(text, tn)) {
        b->n_empty++;
        return HN_OK;
    }
    if (!ln) return hn_fail(HN_ERR_FORMAT, "%s:%lld: empty label", file, (long long)line);
    int c = class_index(d, label, ln);
    if (c < 0 && b->p->classes) {
        if (b->p->unseen_ok) {
            b->n_unseen++;
            return HN_OK;
        }
        return hn_fail(HN_ERR_FORMAT, "%s:%lld: label '%.*s' is not one of the %d classes (first '%s')", file,
                       (long long)line, (int)(ln > 80 ? 80 : ln), label, d->n_classes, d->classes[0]);
    }
    if (c < 0) {
        if (d->n_classes == b->cap_classes) {
            int nc = b->cap_classes ? 2 * b->cap_classes : 8;
            char **cl = realloc(d->classes, (size_t)nc * sizeof *cl);
            if (!cl) return hn_fail(HN_ERR_NOMEM, "classification data: out of memory");
            d->classes = cl, b->cap_classes = nc;
        }
        if (!(d->classes[d->n_classes] = dup_n(label, ln))) return HN_ERR_NOMEM;
        c = d->n_classes++;
    }
    if (d->n == b->cap) {
        int nc = b->cap ? 2 * b->cap : 256;
        char **t = realloc(d->texts, (size_t)nc * sizeof *t);
        if (!t) return hn_fail(HN_ERR_NOMEM, "classification data: out of memory");
        d->texts = t;
        int32_t *l = realloc(d->labels, (size_t)nc * sizeof *l);
        if (!l) return hn_fail(HN_ERR_NOMEM, "classification data: out of memory");
        d->labels = l, b->cap = nc;
    }
    if (!(d->texts[d->n] = dup_n(text, tn))) return HN_ERR_NOMEM;
    d->labels[d->n++] = c;
    return HN_OK;
}

// The whole file must be UTF-8; the error names the line and column of the first bad byte.
static hn_status check_utf8(const uint8_t *s, size_t n, const char *file) {
    int64_t line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = hn_utf8_next(s + i, n - i, &cp);
        if (!k)
            return hn_fail(HN_ERR_FORMAT, "%s:%lld: invalid UTF-8 (byte 0x%02X at column %zu)", file, (long long)line,
                           s[i], i - line_start + 1);
        if (s[i] == '\n') line++, line_start = i + 1;
        i += (size_t)k;
    }
    return HN_OK;
}

// The next line of [*pos, n) without its "\n" / "\r\n"; false at the end.
static bool next_line(const char *s, size_t n, size_t *pos, const char **line, size_t *len) {
    if (*pos >= n) return false;
    const char *nl = memchr(s + *pos, '\n', n - *pos);
    size_t end = nl ? (size_t)(nl - s) : n;
    *line = s + *pos;
    *len = end - *pos;
    if (*len && (*line)[*len - 1] == '\r') (*len)--;
    *pos = nl ? end + 1 : n;
    return true;
}

static hn_status load_plain(builder *b, const char *s, size_t n, const char *file, const char *label) {
    size_t pos = 0, len;
    const char *line;
    int64_t ln = 0;
    while (next_line(s, n, &pos, &line, &len)) {
        ln++;
        if (blank(line, len)) continue; // blank lines separate nothing: skipped, not counted as empty texts
        hn_status st = add(b, line, len, label, strlen(label), file, ln);
        if (st) return st;
    }
    return HN_OK;
}

static hn_status load_jsonl(builder *b, const char *s, size_t n, const char *file) {
    const char *tk = b->p->text_col, *lk = b->p->label_col;
    size_t pos = 0, len;
    const char *line;
    int64_t ln = 0;
    while (next_line(s, n, &pos, &line, &len)) {
        ln++;
        if (blank(line, len)) continue;
        json_error_t e;
        json_t *o = json_loadb(line, len, 0, &e);
        if (!o) return hn_fail(HN_ERR_FORMAT, "%s:%lld: invalid JSON: %s (column %d)", file, (long long)ln, e.text,
                               e.column);
        hn_status st = HN_OK;
        json_t *t = json_object_get(o, tk), *l = json_object_get(o, lk);
        char num[32];
        const char *lab = NULL;
        size_t lab_n = 0;
        if (!json_is_object(o)) st = hn_fail(HN_ERR_FORMAT, "%s:%lld: expected a JSON object per line", file,
                                             (long long)ln);
        else if (!json_is_string(t))
            st = hn_fail(HN_ERR_FORMAT, "%s:%lld: field '%s': expected a string%s", file, (long long)ln, tk,
                         t ? "" : " (missing; set the key with --text-col)");
        else if (json_is_string(l)) lab = json_string_value(l), lab_n = json_string_length(l);
        else if (json_is_integer(l)) {
            lab_n = (size_t)snprintf(num, sizeof num, "%lld", (long long)json_integer_value(l));
            lab = num;
        } else
            st = hn_fail(HN_ERR_FORMAT, "%s:%lld: field '%s': expected a string or an integer%s", file,
                         (long long)ln, lk, l ? "" : " (missing; set the key with --label-col)");
        if (!st) st = add(b, json_string_value(t), json_string_length(t), lab, lab_n, file, ln);
        json_decref(o);
        if (st) return st;
    }
    return HN_OK;
}

// One record of a CSV (RFC 4180: quoted fields, "" inside quotes, line breaks inside quotes) or TSV (tab-separated,
// no quoting, as GLUE writes it) file: fields as (start, length) into *buf (unquoted), from *pos. *line counts the
// lines consumed. false at the end of the file.
typedef struct {
    char *buf;
    size_t len, cap;
    size_t *off, *flen;
    int n, cap_f;
} record;

static bool rec_push_field(record *r, size_t start) {
    if (r->n == r->cap_f) {
        int nc = r->cap_f ? 2 * r->cap_f : 16;
        size_t *o = realloc(r->off, (size_t)nc * sizeof *o), *l;
        if (!o) return false;
        r->off = o;
        if (!(l = realloc(r->flen, (size_t)nc * sizeof *l))) return false;
        r->flen = l, r->cap_f = nc;
    }
    r->off[r->n] = start;
    r->flen[r->n++] = r->len - start;
    return true;
}

static bool rec_put(record *r, char c) {
    if (r->len == r->cap) {
        size_t nc = r->cap ? 2 * r->cap : 256;
        char *nb = realloc(r->buf, nc);
        if (!nb) return false;
        r->buf = nb, r->cap = nc;
    }
    r->buf[r->len++] = c;
    return true;
}

static hn_status read_record(record *r, const char *s, size_t n, size_t *pos, bool tsv, const char *file,
                             int64_t *line) {
    r->len = 0, r->n = 0;
    if (*pos >= n) return HN_ERR_NOTFOUND;
    char sep = tsv ? '\t' : ',';
    size_t i = *pos, start = 0;
    int64_t first = *line + 1;
    bool quoted = false, at_start = true, after_quote = false;
    for (;;) {
        if (i >= n) {
            if (quoted) return hn_fail(HN_ERR_FORMAT, "%s:%lld: a quoted field is not closed", file, (long long)first);
            break;
        }
        char c = s[i++];
        if (quoted) {
            if (c == '"' && i < n && s[i] == '"') i++;
            else if (c == '"') {
                quoted = false, after_quote = true;
                continue;
            } else if (c == '\n') (*line)++;
            if (!rec_put(r, c)) return hn_fail(HN_ERR_NOMEM, "%s: out of memory", file);
            continue;
        }
        if (c == '\n') break;
        if (c == '\r' && (i >= n || s[i] == '\n')) continue;
        if (c == sep) {
            if (!rec_put(r, 0) || !rec_push_field(r, start)) return hn_fail(HN_ERR_NOMEM, "%s: out of memory", file);
            r->flen[r->n - 1]--; // without the NUL just written
            start = r->len, at_start = true, after_quote = false;
            continue;
        }
        if (!tsv && c == '"' && at_start) {
            quoted = true, at_start = false;
            continue;
        }
        if (after_quote)
            return hn_fail(HN_ERR_FORMAT, "%s:%lld: text after a closing quote (expected ',' or the end of the line)",
                           file, (long long)*line + 1);
        at_start = false;
        if (!rec_put(r, c)) return hn_fail(HN_ERR_NOMEM, "%s: out of memory", file);
    }
    if (!rec_put(r, 0) || !rec_push_field(r, start)) return hn_fail(HN_ERR_NOMEM, "%s: out of memory", file);
    r->flen[r->n - 1]--;
    (*line)++;
    *pos = i;
    return HN_OK;
}

static int find_column(const record *h, const char *name) {
    for (int i = 0; i < h->n; i++)
        if (h->flen[i] == strlen(name) && !memcmp(h->buf + h->off[i], name, h->flen[i])) return i;
    return -1;
}

static hn_status missing_column(const record *h, const char *name, const char *file, const char *flag) {
    char have[512];
    size_t k = 0;
    for (int i = 0; i < h->n && k + 8 < sizeof have; i++) {
        int w = snprintf(have + k, sizeof have - k, "%s'%s'", i ? ", " : "", h->buf + h->off[i]);
        if (w < 0) break;
        k += (size_t)w;
        if (k >= sizeof have) k = sizeof have - 1;
    }
    have[k] = 0;
    return hn_fail(HN_ERR_FORMAT, "%s: no column '%s' (the header has %s; choose one with %s)", file, name, have,
                   flag);
}

static hn_status load_table(builder *b, const char *s, size_t n, const char *file, bool tsv) {
    record r = {0}, h = {0};
    size_t pos = 0;
    int64_t line = 0;
    hn_status st = read_record(&h, s, n, &pos, tsv, file, &line);
    if (st == HN_ERR_NOTFOUND) st = hn_fail(HN_ERR_FORMAT, "%s: empty file (expected a header row)", file);
    int tc = -1, lc = -1;
    if (!st) {
        tc = find_column(&h, b->p->text_col);
        lc = find_column(&h, b->p->label_col);
        if (tc < 0) st = missing_column(&h, b->p->text_col, file, "--text-col");
        else if (lc < 0) st = missing_column(&h, b->p->label_col, file, "--label-col");
    }
    while (!st) {
        int64_t at = line + 1;
        st = read_record(&r, s, n, &pos, tsv, file, &line);
        if (st == HN_ERR_NOTFOUND) {
            st = HN_OK;
            break;
        }
        if (st) break;
        if (r.n == 1 && r.flen[0] == 0) continue; // an empty line
        if (r.n != h.n) {
            st = hn_fail(HN_ERR_FORMAT, "%s:%lld: %d fields, the header has %d", file, (long long)at, r.n, h.n);
            break;
        }
        st = add(b, r.buf + r.off[tc], r.flen[tc], r.buf + r.off[lc], r.flen[lc], file, at);
    }
    free(r.buf), free(r.off), free(r.flen);
    free(h.buf), free(h.off), free(h.flen);
    return st;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

static bool is_file(const char *path) {
    struct stat st;
    return !stat(path, &st) && S_ISREG(st.st_mode);
}

// One spec: "FILE" (JSONL, .csv, .tsv) or "FILE:LABEL" (plain text). A spec that names an existing file as a whole
// is a file, so that paths holding ':' still work.
static hn_status load_spec(builder *b, const char *spec) {
    char *file = NULL;
    const char *label = NULL;
    const char *colon = strrchr(spec, ':');
    if (!is_file(spec) && colon && colon[1] && colon != spec) {
        if (!(file = dup_n(spec, (size_t)(colon - spec)))) return HN_ERR_NOMEM;
        label = colon + 1;
    } else if (!(file = dup_n(spec, strlen(spec))))
        return HN_ERR_NOMEM;
    hn_map m;
    hn_status st = hn_map_open(&m, file);
    if (st) {
        st = hn_fail(HN_ERR_IO, "%s: cannot read the data file%s", file, label ? "" :
                     " (give a plain-text file a label as FILE:LABEL)");
        free(file);
        return st;
    }
    const char *s = (const char *)m.data;
    size_t n = m.size;
    if (n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3, n -= 3; // a byte-order mark
    st = check_utf8((const uint8_t *)s, n, file);
    if (!st) {
        if (label) st = load_plain(b, s, n, file, label);
        else if (ends_with(file, ".csv")) st = load_table(b, s, n, file, false);
        else if (ends_with(file, ".tsv")) st = load_table(b, s, n, file, true);
        else st = load_jsonl(b, s, n, file);
    }
    hn_map_close(&m);
    free(file);
    return st;
}

hn_status hn_cls_data_load(hn_cls_data *d, const char *const *specs, int n_specs, const hn_cls_load_params *p) {
    memset(d, 0, sizeof *d);
    hn_cls_load_params def = hn_cls_load_default_params();
    if (!p) p = &def;
    if (!p->text_col || !p->label_col) {
        def.classes = p->classes, def.n_classes = p->n_classes, def.unseen_ok = p->unseen_ok;
        if (p->text_col) def.text_col = p->text_col;
        if (p->label_col) def.label_col = p->label_col;
        p = &def;
    }
    if (n_specs < 1) return hn_fail(HN_ERR_ARG, "no classification data given (expected --data FILE)");
    builder b = {.d = d, .p = p};
    hn_status st = HN_OK;
    size_t src_len = 1;
    for (int i = 0; i < n_specs; i++) src_len += strlen(specs[i]) + 3;
    if (!(d->source = hn_alloc(src_len, "classification data"))) return HN_ERR_NOMEM;
    d->source[0] = 0;
    for (int i = 0; i < n_specs; i++) {
        if (i) strcat(d->source, " + ");
        strcat(d->source, specs[i]);
    }
    if (p->classes) {
        if (p->n_classes < 2)
            st = hn_fail(HN_ERR_ARG, "a class list needs at least two classes (got %d)", p->n_classes);
        if (!st && !(d->classes = hn_calloc((size_t)p->n_classes, sizeof *d->classes, "classes"))) st = HN_ERR_NOMEM;
        for (int c = 0; !st && c < p->n_classes; c++) {
            if (!(d->classes[c] = dup_n(p->classes[c], strlen(p->classes[c])))) st = HN_ERR_NOMEM;
            else d->n_classes++;
        }
        b.cap_classes = d->n_classes;
    }
    for (int i = 0; !st && i < n_specs; i++) st = load_spec(&b, specs[i]);
    if (!st && b.n_empty) hn_warn("%s: %lld empty texts skipped", d->source, (long long)b.n_empty);
    if (!st && b.n_unseen)
        hn_warn("%s: %lld examples skipped, their labels are not among the %d classes", d->source,
                (long long)b.n_unseen, d->n_classes);
    if (!st && !d->n) st = hn_fail(HN_ERR_FORMAT, "%s: no examples", d->source);
    if (!st && d->n_classes < 2)
        st = hn_fail(HN_ERR_FORMAT, "%s: every example has the label '%s': one class only, nothing to classify",
                     d->source, d->classes[0]);
    if (st) hn_cls_data_deinit(d);
    return st;
}

void hn_cls_data_deinit(hn_cls_data *d) {
    for (int i = 0; i < d->n; i++) free(d->texts[i]);
    for (int c = 0; c < d->n_classes; c++) free(d->classes[c]);
    free(d->texts), free(d->labels), free(d->classes), free(d->source);
    memset(d, 0, sizeof *d);
}

// Per class, a seeded shuffle of its examples; the class's share of the validation set is frac of its size, the
// rounding remainders handed out largest first (ties to the lower class) so that the total is round(frac * n).
hn_status hn_cls_data_split(hn_cls_data *d, hn_cls_data *val, double frac, uint64_t seed) {
    memset(val, 0, sizeof *val);
    if (!(frac > 0 && frac < 1)) return hn_fail(HN_ERR_ARG, "validation fraction %g: expected a value in (0, 1)", frac);
    int K = d->n_classes, n = d->n;
    int *count = hn_calloc((size_t)K, sizeof *count, "split"), *take = hn_calloc((size_t)K, sizeof *take, "split");
    double *rem = hn_calloc((size_t)K, sizeof *rem, "split");
    int *idx = hn_calloc((size_t)(n ? n : 1), sizeof *idx, "split");
    char *to_val = hn_calloc((size_t)(n ? n : 1), 1, "split");
    hn_status st = HN_OK;
    if (!count || !take || !rem || !idx || !to_val) {
        st = HN_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < n; i++) count[d->labels[i]]++;
    int total = (int)(frac * n + 0.5), given = 0;
    for (int c = 0; c < K; c++) {
        double want = frac * count[c];
        take[c] = (int)want;
        rem[c] = want - take[c];
        given += take[c];
    }
    while (given < total) {
        int best = -1;
        for (int c = 0; c < K; c++)
            if (take[c] < count[c] && (best < 0 || rem[c] > rem[best])) best = c;
        if (best < 0) break;
        take[best]++, rem[best] = -1, given++;
    }
    hn_rng rng;
    hn_rng_seed(&rng, seed);
    for (int c = 0; c < K; c++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (d->labels[i] == c) idx[m++] = i;
        for (int i = m - 1; i > 0; i--) { // Fisher-Yates
            int j = (int)(hn_rng_u64(&rng) % (uint64_t)(i + 1));
            int t = idx[i];
            idx[i] = idx[j], idx[j] = t;
        }
        for (int i = 0; i < take[c]; i++) to_val[idx[i]] = 1;
    }
    // Both sides keep the data's order.
    val->classes = hn_calloc((size_t)K, sizeof *val->classes, "split");
    val->texts = hn_calloc((size_t)(given ? given : 1), sizeof *val->texts, "split");
    val->labels = hn_calloc((size_t)(given ? given : 1), sizeof *val->labels, "split");
    size_t sl = strlen(d->source) + 32;
    val->source = hn_alloc(sl, "split");
    if (!val->classes || !val->texts || !val->labels || !val->source) {
        hn_cls_data_deinit(val);
        st = HN_ERR_NOMEM;
        goto done;
    }
    snprintf(val->source, sl, "%s (validation split)", d->source);
    for (int c = 0; c < K; c++) {
        if (!(val->classes[c] = dup_n(d->classes[c], strlen(d->classes[c])))) {
            hn_cls_data_deinit(val);
            st = HN_ERR_NOMEM;
            goto done;
        }
        val->n_classes++;
    }
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (to_val[i]) {
            val->texts[val->n] = d->texts[i];
            val->labels[val->n++] = d->labels[i];
        } else {
            d->texts[kept] = d->texts[i];
            d->labels[kept++] = d->labels[i];
        }
    }
    d->n = kept;
done:
    free(count), free(take), free(rem), free(idx), free(to_val);
    return st;
}
