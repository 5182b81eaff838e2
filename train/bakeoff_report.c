// train/bakeoff_report.c — the bake-off's report (train/bakeoff.h): report.json (every measured number) and
// report.html, one self-contained page (inline CSS, inline SVG charts drawn here, a small inline script that sorts
// the table and highlights a method's row and points together; no external URL) with the table and the charts, on
// log x axes, each point labelled with its method's name or its variant's label, the baseline as a dashed line.
// Classification: accuracy against trainable parameters and against wall time (the majority class the baseline).
// Generation: exact match and held-out loss, each against trainable parameters and against training time (the
// untrained model the baseline). Every string from the recipe, the data or a message is HTML-escaped. The script
// sets data-script="ok" on <body> as its last act, so a test can tell it ran to the end.
#include "train/bakeoff.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

const char *hn_bakeoff_state_name(hn_bakeoff_state s) {
    static const char *const names[] = {"ran", "not-applicable", "failed", "baseline"};
    return (unsigned)s < 4 ? names[s] : "?";
}

// ---- a growing text buffer

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof tmp) sb_add(b, tmp, (size_t)n);
    else if (n >= 0) { // longer than the stack buffer
        char *big = malloc((size_t)n + 1);
        if (big) vsnprintf(big, (size_t)n + 1, fmt, ap2), sb_add(b, big, (size_t)n);
        else b->oom = true;
        free(big);
    }
    va_end(ap2);
}

// s as HTML text or attribute value.
static void sb_esc(sbuf *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': sb_add(b, "&amp;", 5); break;
        case '<': sb_add(b, "&lt;", 4); break;
        case '>': sb_add(b, "&gt;", 4); break;
        case '"': sb_add(b, "&quot;", 6); break;
        case '\'': sb_add(b, "&#39;", 5); break;
        default: sb_add(b, s, 1);
        }
    }
}

// ---- numbers as people read them

static void fmt_count(char *buf, size_t cap, double v) {
    const char *unit[] = {"", "k", "M", "G", "T"};
    int u = 0;
    while (fabs(v) >= 1000 && u < 4) v /= 1000, u++;
    if (u == 0) snprintf(buf, cap, "%.0f", v);
    else snprintf(buf, cap, "%.3g%s", v, unit[u]); // 4.22k, 22.7M, 1k
}

static void fmt_secs(char *buf, size_t cap, double s) {
    if (s < 10) snprintf(buf, cap, "%.2f s", s);
    else if (s < 100) snprintf(buf, cap, "%.1f s", s);
    else if (s < 3600) snprintf(buf, cap, "%d:%02d min", (int)s / 60, (int)s % 60);
    else snprintf(buf, cap, "%d:%02d h", (int)s / 3600, (int)s % 3600 / 60);
}

// ---- the machine

static void cpu_name(char *buf, size_t cap) {
    snprintf(buf, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) || !colon) continue;
        colon += 1 + (colon[1] == ' ');
        colon[strcspn(colon, "\n")] = 0;
        snprintf(buf, cap, "%s", colon);
        break;
    }
    fclose(f);
}

// ---- report.json

static json_t *num_or_null(bool ran, double v) { return ran ? json_real(v) : json_null(); }

static json_t *row_json(const hn_bakeoff_row *r, const hn_cls_options *o) {
    bool ran = r->state == HN_BAKEOFF_RAN || r->state == HN_BAKEOFF_BASELINE, measured = r->state == HN_BAKEOFF_RAN;
    json_t *j = json_object();
    json_object_set_new(j, "method", json_string(r->method));
    json_object_set_new(j, "label", json_string(r->label));
    json_object_set_new(j, "status", json_string(hn_bakeoff_state_name(r->state)));
    json_object_set_new(j, "message", r->message[0] ? json_string(r->message) : json_null());
    json_object_set_new(j, "accuracy", num_or_null(ran, r->accuracy));
    json_object_set_new(j, "macro_f1", num_or_null(ran, r->macro_f1));
    json_object_set_new(j, "trainable_parameters", ran ? json_integer(r->n_trainable) : json_null());
    json_object_set_new(j, "peak_rss_bytes", r->peak_rss ? json_integer(r->peak_rss) : json_null());
    json_object_set_new(j, "train_seconds", num_or_null(measured || r->train_s > 0, r->train_s));
    json_object_set_new(j, "eval_seconds", num_or_null(measured, r->eval_s));
    json_object_set_new(j, "wall_seconds", num_or_null(measured, r->train_s + r->eval_s));
    json_object_set_new(j, "train_tokens_per_second", num_or_null(measured, r->train_tok_s));
    json_object_set_new(j, "eval_tokens_per_second", num_or_null(measured, r->eval_tok_s));
    if (o) {
        json_t *lw = json_array();
        for (int i = 0; o->label_words && i < o->n_label_words; i++)
            json_array_append_new(lw, json_string(o->label_words[i]));
        json_object_set_new(j, "options",
                            json_pack("{s:i, s:f, s:i, s:f, s:i, s:i, s:b, s:b, s:o, s:i, s:f, s:i, s:i}", "epochs",
                                      o->epochs, "lr", (double)o->lr, "batch", o->batch, "weight_decay",
                                      (double)o->weight_decay, "max_len", o->max_len, "shots", o->shots, "nearest",
                                      o->nearest, "calibrate", !o->no_calibrate, "label_words", lw, "rank", o->lora_r,
                                      "alpha", (double)o->lora_alpha, "last_k", o->last_k, "unfreeze_every",
                                      o->unfreeze_every));
    }
    return j;
}

// A generation row: the method's numbers and the options it trained with (tc; NULL for the baseline).
static json_t *row_json_gen(const hn_bakeoff_row *r, const hn_train_config *tc) {
    bool ran = r->state == HN_BAKEOFF_RAN || r->state == HN_BAKEOFF_BASELINE, trained = r->state == HN_BAKEOFF_RAN;
    json_t *j = json_object();
    json_object_set_new(j, "method", json_string(r->method));
    json_object_set_new(j, "label", json_string(r->label));
    json_object_set_new(j, "status", json_string(hn_bakeoff_state_name(r->state)));
    json_object_set_new(j, "message", r->message[0] ? json_string(r->message) : json_null());
    json_object_set_new(j, "exact_match", num_or_null(ran, r->exact_match));
    json_object_set_new(j, "correct", ran ? json_integer(r->qa_correct) : json_null());
    json_object_set_new(j, "val_loss", num_or_null(ran, r->val_loss));
    json_object_set_new(j, "trainable_parameters", ran ? json_integer(r->n_trainable) : json_null());
    json_object_set_new(j, "peak_rss_bytes", r->peak_rss ? json_integer(r->peak_rss) : json_null());
    json_object_set_new(j, "train_seconds", num_or_null(trained || r->train_s > 0, r->train_s));
    json_object_set_new(j, "eval_seconds", num_or_null(ran, r->eval_s));
    json_object_set_new(j, "qa_seconds", num_or_null(ran, r->qa_s));
    json_object_set_new(j, "wall_seconds", num_or_null(ran, r->train_s + r->eval_s + r->qa_s));
    json_object_set_new(j, "train_tokens_per_second", num_or_null(trained, r->train_tok_s));
    json_object_set_new(j, "eval_tokens_per_second", num_or_null(ran, r->eval_tok_s));
    json_object_set_new(j, "generated_tokens_per_second", num_or_null(ran, r->gen_tok_s));
    json_t *ans = json_array();
    for (int i = 0; ran && i < 3; i++) {
        json_t *a = json_string(r->answers[i]); // NULL: the model wrote bytes that are not UTF-8
        json_array_append_new(ans, a ? a : json_string("(not UTF-8)"));
    }
    json_object_set_new(j, "first_answers", ans);
    if (tc)
        json_object_set_new(j, "options",
                            json_pack("{s:i, s:i, s:f, s:i, s:f, s:f, s:i, s:f, s:f, s:i, s:i}", "epochs", tc->epochs,
                                      "max_steps", tc->max_steps, "lr", tc->lr, "batch", tc->batch_size,
                                      "weight_decay", tc->weight_decay, "warmup_ratio", tc->warmup_ratio, "rank",
                                      tc->lora.r, "alpha", tc->lora.alpha, "dropout", tc->lora.dropout,
                                      "num_virtual_tokens", tc->prompt.num_virtual_tokens, "reduction_factor",
                                      tc->adapter.reduction_factor));
    return j;
}

static json_t *strings(char *const *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
    return a;
}

static char *report_json(const hn_bakeoff *b) {
    const hn_bakeoff_recipe *r = b->r;
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    struct utsname u;
    if (uname(&u) != 0) memset(&u, 0, sizeof u);
    bool gen = r->task == HN_BAKEOFF_GENERATE;
    json_t *j = json_object(), *cl = json_array(), *rows = json_array();
    for (int c = 0; c < b->train.n_classes; c++) json_array_append_new(cl, json_string(b->train.classes[c]));
    for (int i = 0; i < r->n_methods; i++)
        json_array_append_new(rows, gen ? row_json_gen(&b->rows[i], r->methods[i].tc)
                                        : row_json(&b->rows[i], &r->methods[i].o));
    json_object_set_new(j, "format", json_string("hone-bakeoff"));
    json_object_set_new(j, "version", json_integer(1));
    json_object_set_new(j, "task", json_string(gen ? "generate" : "classify"));
    json_object_set_new(j, "title", json_string(r->title));
    json_object_set_new(j, "recipe", json_string(r->path));
    json_object_set_new(j, "date", json_string(b->date));
    json_object_set_new(j, "wall_seconds", json_real(b->wall_s));
    json_object_set_new(j, "machine",
                        json_pack("{s:s, s:s, s:s, s:i, s:i}", "cpu", cpu, "os", u.sysname, "arch", u.machine,
                                  "physical_cores", hn_physical_cores(), "threads", b->threads));
    json_object_set_new(j, "model",
                        json_pack("{s:s, s:s, s:s, s:I}", "model", r->model, "name", b->model_name, "architecture",
                                  b->model_arch, "parameters", (json_int_t)b->model_params));
    if (gen) {
        json_decref(cl);
        json_object_set_new(j, "data",
                            json_pack("{s:o, s:o, s:o, s:s, s:s, s:i, s:i, s:i, s:i, s:I, s:I}", "files",
                                      strings(r->data, r->n_data), "test_files", strings(r->test, r->n_test),
                                      "qa_files", strings(r->qa, r->n_qa), "test_from", b->test_source, "qa_from",
                                      b->gen.qa_source, "train_examples", b->gen.train.n, "test_examples",
                                      b->gen.test.n, "qa_questions", b->gen.qa.n, "qa_too_long", b->gen.qa_long,
                                      "train_tokens", (json_int_t)b->train_tokens, "test_tokens",
                                      (json_int_t)b->test_tokens));
        json_t *gold = json_array(); // the first questions' gold answers, beside each row's first_answers
        for (int i = 0; i < 3 && i < b->gen.qa.n; i++)
            json_array_append_new(gold, strings(b->gen.qa.items[i].answers, b->gen.qa.items[i].n_answers));
        json_object_set_new(json_object_get(j, "data"), "first_gold_answers", gold);
        json_object_set_new(j, "budget",
                            json_pack("{s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "seed", (json_int_t)r->seed,
                                      "max_train", r->max_train, "max_test", r->max_test, "max_qa", r->max_qa,
                                      "epochs", r->epochs, "max_steps", r->max_steps, "max_len", b->gen.max_len,
                                      "batch", r->batch, "max_new_tokens", r->max_new_tokens));
    } else {
        json_object_set_new(j, "data",
                            json_pack("{s:o, s:o, s:s, s:o, s:i, s:i, s:I, s:I}", "files", strings(r->data, r->n_data),
                                      "test_files", strings(r->test, r->n_test), "test_from", b->test_source,
                                      "classes", cl, "train_examples", b->train.n, "test_examples", b->test.n,
                                      "train_tokens", (json_int_t)b->train_tokens, "test_tokens",
                                      (json_int_t)b->test_tokens));
        json_object_set_new(j, "budget",
                            json_pack("{s:I, s:i, s:i, s:i, s:i, s:i}", "seed", (json_int_t)r->seed, "max_train",
                                      r->max_train, "max_test", r->max_test, "epochs", r->epochs, "max_len",
                                      r->max_len, "batch", r->batch));
    }
    json_object_set_new(j, "baseline", gen ? row_json_gen(&b->baseline, NULL) : row_json(&b->baseline, NULL));
    json_object_set_new(j, "methods", rows);
    if (gen)
        json_object_set_new(j, "definitions",
                            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "label",
                                      "what the report shows for the row: the method's name, or the label of the "
                                      "recipe's variant of it (options: {LABEL: {method: NAME, ...}})",
                                      "val_loss", "the mean cross-entropy per loss token (the answers' tokens and "
                                      "the end of the turn) over the held-out examples",
                                      "exact_match",
                                      "the share of the questions whose greedy answer (up to max_new_tokens) equals a "
                                      "gold answer after normalising both: the first line only, white space trimmed "
                                      "and collapsed, final punctuation (. , ; : ! ?) removed, Unicode case folding",
                                      "base", "the untrained model, measured as the methods are",
                                      "train_tokens_per_second",
                                      "the non-padding tokens trained on (every epoch's) / train_seconds",
                                      "generated_tokens_per_second", "the answers' tokens / qa_seconds (each "
                                      "question's prompt pass included)", "peak_rss_bytes",
                                      "the method's process's peak resident memory (getrusage ru_maxrss): the model "
                                      "pages it touched plus its own"));
    else json_object_set_new(j, "definitions",
                        json_pack("{s:s, s:s, s:s, s:s, s:s}", "label",
                                  "what the report shows for the row: the method's name, or the label of the "
                                  "recipe's variant of it (options: {LABEL: {method: NAME, ...}})",
                                  "tokens",
                                  "the data's own tokens: each text as the model's tokenizer splits it, without "
                                  "special tokens, cut at max_len",
                                  "train_tokens_per_second",
                                  "the training set's tokens / train_seconds, however many passes the method makes",
                                  "eval_tokens_per_second", "the test set's tokens / eval_seconds", "peak_rss_bytes",
                                  "the method's process's peak resident memory (getrusage ru_maxrss): the model "
                                  "pages it touched plus its own"));
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(j);
    return text;
}

// ---- the charts

#define CW 540 // chart size in SVG units
#define CH 340
#define ML 58 // margins
#define MR 24
#define MT 26
#define MB 46
#define ZERO_W 42 // room left of a log axis for the values that are 0 (icl trains nothing)

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                      "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"};

typedef struct {
    const char *label;
    double x, y;
    int color;
} point;

typedef struct {
    double lo, hi, step;   // the range and the grid's spacing
    const char *name;      // "accuracy", "exact match", "held-out loss"
    const char *base_name; // the baseline's line: "majority class", "base model"
} yaxis;

// A score in [0, 1] (accuracy, exact match): 0.05 steps around the points and the baseline, 0.2 wide at least.
static yaxis share_axis(double lo, double hi, const char *name, const char *base_name) {
    yaxis a = {fmax(0, floor(lo * 20 - 0.5) / 20), fmin(1, ceil(hi * 20 + 0.5) / 20), 0, name, base_name};
    if (a.hi - a.lo < 0.2) a.lo = fmax(0, a.hi - 0.2), a.hi = a.lo + 0.2;
    a.step = a.hi - a.lo > 0.31 ? 0.1 : 0.05;
    return a;
}

// Any other score (a loss): a 1-2-5 step that gives 4 to 10 grid lines, the range padded to whole steps.
static yaxis value_axis(double lo, double hi, const char *name, const char *base_name) {
    double span = hi - lo > 1e-9 ? hi - lo : fmax(fabs(hi), 1) * 0.1, step = pow(10, floor(log10(span / 4)));
    if (span / step > 20) step *= 5;
    else if (span / step > 8) step *= 2;
    yaxis a = {floor(lo / step - 0.5) * step, ceil(hi / step + 0.5) * step, step, name, base_name};
    if (lo >= 0 && a.lo < 0) a.lo = 0;
    return a;
}

static double ymap(const yaxis *a, double v) { return MT + (CH - MT - MB) * (1 - (v - a->lo) / (a->hi - a->lo)); }

// A tick label on a log axis.
static void tick_text(char *buf, size_t cap, double v, bool seconds) {
    if (!seconds) fmt_count(buf, cap, v);
    else if (v < 1) snprintf(buf, cap, "%.*f s", (int)ceil(-log10(v) - 1e-9), v);
    else snprintf(buf, cap, "%.0f s", v);
}

static void draw_chart(sbuf *h, const char *id, const char *xlabel, bool seconds, const point *p, int n,
                       const yaxis *ya, double base) {
    double vmin = INFINITY, vmax = 0;
    bool zero = false;
    for (int i = 0; i < n; i++) {
        if (p[i].x > 0) vmin = fmin(vmin, p[i].x), vmax = fmax(vmax, p[i].x);
        else zero = true;
    }
    if (!(vmax > 0)) vmin = vmax = 1;
    int d0 = (int)floor(log10(vmin)), d1 = (int)ceil(log10(vmax));
    if (d1 <= d0) d1 = d0 + 1;
    double xl = ML + (zero ? ZERO_W : 0), xr = CW - MR;
#define XMAP(v) ((v) > 0 ? xl + (xr - xl) * (log10(v) - d0) / (d1 - d0) : ML + ZERO_W / 3.0)
    sb_printf(h, "<svg id=\"%s\" class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\">\n", id, CW, CH);
    // the grid, the axes and their labels
    double step = ya->step;
    for (double t = ceil(ya->lo / step - 1e-9) * step; t <= ya->hi + step * 1e-6; t += step)
        sb_printf(h,
                  "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/><text class=\"tick\" x=\"%d\" "
                  "y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n",
                  ML, CW - MR, ymap(ya, t), ymap(ya, t), ML - 6, ymap(ya, t) + 4, fabs(t) < 1e-9 ? 0.0 : t); // not -0
    for (int d = d0; d <= d1; d++)
        for (int m = 1; m <= 5; m++) { // decades, and 2 and 5 between them when the axis spans few
            double v = m * pow(10, d);
            if ((m != 1 && m != 2 && m != 5) || (m > 1 && (d == d1 || d1 - d0 > 2))) continue;
            char lab[32];
            tick_text(lab, sizeof lab, v, seconds);
            sb_printf(h,
                      "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/><text class=\"tick\" "
                      "x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                      XMAP(v), XMAP(v), MT, CH - MB, XMAP(v), CH - MB + 16, lab);
        }
    if (zero)
        sb_printf(h,
                  "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">0</text><line class=\"break\" "
                  "x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/>\n",
                  XMAP(0), CH - MB + 16, xl - 8, xl - 8, MT, CH - MB);
    sb_printf(h,
              "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/><line class=\"axis\" x1=\"%d\" x2=\"%d\" "
              "y1=\"%d\" y2=\"%d\"/>\n",
              ML, CW - MR, CH - MB, CH - MB, ML, ML, MT, CH - MB);
    sb_printf(h, "<text class=\"label\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", (ML + CW - MR) / 2,
              CH - 8, xlabel);
    sb_printf(h,
              "<text class=\"label\" transform=\"translate(14 %d) rotate(-90)\" text-anchor=\"middle\">%s"
              "</text>\n",
              (MT + CH - MB) / 2, ya->name);
    sb_printf(h,
              "<line class=\"baseline\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/><text class=\"note\" x=\"%d\" "
              "y=\"%.1f\" text-anchor=\"end\">%s %.3f</text>\n",
              ML, CW - MR, ymap(ya, base), ymap(ya, base), CW - MR - 4, ymap(ya, base) - 5, ya->base_name, base);
    // Each label goes to the first of four places beside its point that no earlier label covers (boxes estimated
    // from the name's length at the chart's font size).
    double(*box)[4] = calloc((size_t)(n ? n : 1), sizeof *box);
    if (!box) h->oom = true;
    for (int i = 0; box && i < n; i++) {
        double x = XMAP(p[i].x), y = ymap(ya, p[i].y), w = 6.2 * strlen(p[i].label) + 2, lx = x + 8, ly = y - 7;
        bool end = false;
        for (int c = 0; c < 4; c++) {
            end = c % 2 == 1 || x + 8 + w > CW - 4;
            lx = end ? x - 8 : x + 8, ly = c < 2 ? y - 7 : y + 15;
            double x0 = end ? lx - w : lx;
            double clash = ly - 10 < 2 || ly > CH - MB - 2 || x0 < ML + 2; // outside the plot
            for (int j = 0; j < i; j++)
                clash += x0 < box[j][2] && box[j][0] < x0 + w && ly - 10 < box[j][3] && box[j][1] < ly + 2;
            box[i][0] = x0, box[i][1] = ly - 10, box[i][2] = x0 + w, box[i][3] = ly + 2;
            if (!clash) break;
        }
        char xv[48];
        if (seconds) fmt_secs(xv, sizeof xv, p[i].x);
        else snprintf(xv, sizeof xv, "%.0f trainable parameters", p[i].x);
        sb_printf(h, "<g class=\"point\" data-label=\"");
        sb_esc(h, p[i].label);
        sb_printf(h, "\"><circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"><title>", x, y, palette[p[i].color % 10]);
        sb_esc(h, p[i].label);
        sb_printf(h, ": %s %.4f, %s</title></circle><text x=\"%.1f\" y=\"%.1f\"%s>", ya->name, p[i].y, xv, lx, ly,
                  end ? " text-anchor=\"end\"" : "");
        sb_esc(h, p[i].label);
        sb_printf(h, "</text></g>\n");
    }
    free(box);
    sb_printf(h, "</svg>\n");
#undef XMAP
}

// ---- report.html

static const char css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1180px;"
    "padding:0 16px;color:#222}\n"
    "h1{font-size:22px;margin:0 0 8px}dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 12px;"
    "margin:0 0 16px;color:#444}dl.meta dt{font-weight:600}dl.meta dd{margin:0}\n"
    "table{border-collapse:collapse;width:100%;margin:8px 0}th,td{padding:5px 8px;border-bottom:1px solid #ddd;"
    "text-align:right;white-space:nowrap}th{cursor:pointer;background:#f4f4f4;user-select:none}\n"
    "th:first-child,td:first-child,th:nth-child(2),td:nth-child(2),td.msg{text-align:left}\n"
    "td.msg{white-space:normal;font-size:12px}tr.baseline td{color:#777;font-style:italic}\n"
    "tr.na td,tr.failed td{color:#999}tr.failed td:nth-child(2){color:#c00}tr.hi td{background:#fff7d6}\n"
    ".swatch{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px}\n"
    ".charts{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0;flex:1 1 520px}figcaption{color:#555;"
    "font-size:13px;text-align:center}\n"
    "svg.chart{width:100%;height:auto;font-size:11px}.grid{stroke:#eee}.axis{stroke:#888}.break{stroke:#bbb;"
    "stroke-dasharray:3 3}.tick{fill:#666}.label{fill:#333;font-size:12px}.note{fill:#888;font-style:italic}\n"
    ".baseline{stroke:#999;stroke-dasharray:6 4}.point text{fill:#222}.point.hi circle{stroke:#000;"
    "stroke-width:2.5}\n"
    "dl.defs{color:#555;font-size:13px}dl.defs dt{font-weight:600;margin-top:6px}dl.defs dd{margin-left:16px}\n";

static const char script[] =
    "(function () {\n"
    "  'use strict';\n"
    "  var table = document.getElementById('results'), tbody = table.tBodies[0], heads = table.tHead.rows[0].cells;\n"
    "  Array.prototype.forEach.call(heads, function (th, col) {\n"
    "    th.addEventListener('click', function () {\n"
    "      var up = th.getAttribute('data-dir') !== 'up', rows = Array.prototype.slice.call(tbody.rows);\n"
    "      rows.sort(function (a, b) {\n"
    "        var x = parseFloat(a.cells[col].getAttribute('data-v')),\n"
    "            y = parseFloat(b.cells[col].getAttribute('data-v'));\n"
    "        if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y) ||\n"
    "          (up ? 1 : -1) * a.cells[col].textContent.localeCompare(b.cells[col].textContent);\n"
    "        return up ? x - y : y - x;\n"
    "      });\n"
    "      rows.forEach(function (r) { tbody.appendChild(r); });\n"
    "      th.setAttribute('data-dir', up ? 'up' : 'down');\n"
    "    });\n"
    "  });\n"
    "  var marked = document.querySelectorAll('[data-label]');\n"
    "  function mark(m, on) {\n"
    "    Array.prototype.forEach.call(marked, function (el) {\n"
    "      if (el.getAttribute('data-label') === m) el.classList.toggle('hi', on);\n"
    "    });\n"
    "  }\n"
    "  Array.prototype.forEach.call(marked, function (el) {\n"
    "    el.addEventListener('mouseenter', function () { mark(el.getAttribute('data-label'), true); });\n"
    "    el.addEventListener('mouseleave', function () { mark(el.getAttribute('data-label'), false); });\n"
    "  });\n"
    "  document.body.setAttribute('data-points', String(document.querySelectorAll('svg .point').length));\n"
    "  document.body.setAttribute('data-script', 'ok');\n"
    "})();\n";

// A row's first two cells (the label with its colour, the state) and, for a method that did not run, why, across
// the span number columns; false when that ended the row.
static bool row_head(sbuf *h, const hn_bakeoff_row *r, int color, int span) {
    bool run = r->state == HN_BAKEOFF_RAN, base = r->state == HN_BAKEOFF_BASELINE;
    const char *cls = base ? "baseline" : run ? "ran" : r->state == HN_BAKEOFF_FAILED ? "failed" : "na";
    sb_printf(h, "<tr class=\"%s\" data-label=\"", cls);
    sb_esc(h, r->label);
    sb_printf(h, "\"><td data-v=\"\"");
    if (base || strcmp(r->label, r->method)) { // the baseline's rule, a variant's method
        sb_printf(h, " title=\"");
        if (!base) sb_printf(h, "a variant of ");
        sb_esc(h, base ? r->message : r->method);
        sb_printf(h, "\"");
    }
    sb_printf(h, ">");
    if (run) sb_printf(h, "<span class=\"swatch\" style=\"background:%s\"></span>", palette[color % 10]);
    sb_esc(h, r->label);
    sb_printf(h, "</td><td data-v=\"\">%s</td>", hn_bakeoff_state_name(r->state));
    if (run || base) return true;
    sb_printf(h, "<td colspan=\"%d\" class=\"msg\" data-v=\"\">", span);
    sb_esc(h, r->message);
    sb_printf(h, "</td></tr>\n");
    return false;
}

// One cell with its sort value.
static void cell(sbuf *h, double v, const char *text) {
    if (isnan(v)) sb_printf(h, "<td data-v=\"\">%s</td>", text);
    else sb_printf(h, "<td data-v=\"%.9g\">%s</td>", v, text);
}

// A classification row: accuracy, macro-F1, trainable parameters, memory, times, throughput.
static void table_row(sbuf *h, const hn_bakeoff *b, const hn_bakeoff_row *r, int color) {
    bool base = r->state == HN_BAKEOFF_BASELINE;
    char t[96];
    if (!row_head(h, r, color, 9)) return;
    snprintf(t, sizeof t, "%.4f", r->accuracy), cell(h, r->accuracy, t);
    snprintf(t, sizeof t, "%.4f", r->macro_f1), cell(h, r->macro_f1, t);
    if (base) {
        sb_printf(h, "<td data-v=\"0\">0</td><td colspan=\"6\" class=\"msg\" data-v=\"\">");
        sb_esc(h, r->message);
        sb_printf(h, "</td></tr>\n");
        return;
    }
    char a[48];
    fmt_count(a, sizeof a, (double)r->n_trainable);
    if (b->model_params > 0 && r->n_trainable > 0)
        snprintf(t, sizeof t, "%s (%.3g%%)", a, 100.0 * r->n_trainable / b->model_params);
    else snprintf(t, sizeof t, "%s", a);
    cell(h, (double)r->n_trainable, t);
    snprintf(t, sizeof t, "%.0f MiB", r->peak_rss / 1048576.0), cell(h, (double)r->peak_rss, t);
    fmt_secs(t, sizeof t, r->train_s), cell(h, r->train_s, t);
    fmt_secs(t, sizeof t, r->eval_s), cell(h, r->eval_s, t);
    fmt_secs(t, sizeof t, r->train_s + r->eval_s), cell(h, r->train_s + r->eval_s, t);
    fmt_count(t, sizeof t, r->train_tok_s), cell(h, r->train_tok_s, t);
    fmt_count(t, sizeof t, r->eval_tok_s), cell(h, r->eval_tok_s, t);
    sb_printf(h, "</tr>\n");
}

// A generation row: exact match, held-out loss, trainable parameters, memory, times, throughput.
static void table_row_gen(sbuf *h, const hn_bakeoff *b, const hn_bakeoff_row *r, int color) {
    bool run = r->state == HN_BAKEOFF_RAN;
    char t[96], a[48];
    if (!row_head(h, r, color, 10)) return;
    snprintf(t, sizeof t, "%.4f (%d/%d)", r->exact_match, r->qa_correct, b->gen.qa.n), cell(h, r->exact_match, t);
    snprintf(t, sizeof t, "%.4f", r->val_loss), cell(h, r->val_loss, t);
    fmt_count(a, sizeof a, (double)r->n_trainable);
    if (b->model_params > 0 && r->n_trainable > 0)
        snprintf(t, sizeof t, "%s (%.3g%%)", a, 100.0 * r->n_trainable / b->model_params);
    else snprintf(t, sizeof t, "%s", a);
    cell(h, (double)r->n_trainable, t);
    snprintf(t, sizeof t, "%.0f MiB", r->peak_rss / 1048576.0), cell(h, (double)r->peak_rss, t);
    if (run) fmt_secs(t, sizeof t, r->train_s), cell(h, r->train_s, t);
    else cell(h, 0, "-");
    fmt_secs(t, sizeof t, r->eval_s), cell(h, r->eval_s, t);
    fmt_secs(t, sizeof t, r->qa_s), cell(h, r->qa_s, t);
    fmt_secs(t, sizeof t, r->train_s + r->eval_s + r->qa_s), cell(h, r->train_s + r->eval_s + r->qa_s, t);
    if (run) fmt_count(t, sizeof t, r->train_tok_s), cell(h, r->train_tok_s, t);
    else cell(h, NAN, "-");
    snprintf(t, sizeof t, "%.1f", r->gen_tok_s), cell(h, r->gen_tok_s, t);
    sb_printf(h, "</tr>\n");
}

// Generation's table, its four charts (exact match and held-out loss, each against trainable parameters and
// against training time) and the definitions.
static void body_gen(sbuf *h, const hn_bakeoff *b, const char *params) {
    const hn_bakeoff_recipe *r = b->r;
    sb_printf(h, "<table id=\"results\">\n<thead><tr><th>method</th><th>status</th><th>exact match</th>"
                 "<th>held-out loss</th><th>trainable</th><th>peak RSS</th><th>train</th><th>eval</th><th>qa</th>"
                 "<th>wall time</th><th>train tok/s</th><th>generated tok/s</th></tr></thead>\n<tbody>\n");
    for (int i = 0; i < r->n_methods; i++) table_row_gen(h, b, &b->rows[i], i);
    table_row_gen(h, b, &b->baseline, 0);
    sb_printf(h, "</tbody>\n</table>\n");
    point *em = calloc((size_t)r->n_methods + 1, sizeof *em), *loss = calloc((size_t)r->n_methods + 1, sizeof *loss);
    if (!em || !loss) h->oom = true;
    int n = 0;
    const hn_bakeoff_row *base = &b->baseline;
    double elo = base->exact_match, ehi = elo, llo = base->val_loss, lhi = llo;
    for (int i = 0; em && loss && i < r->n_methods; i++) {
        const hn_bakeoff_row *x = &b->rows[i];
        if (x->state != HN_BAKEOFF_RAN) continue;
        em[n] = (point){x->label, (double)x->n_trainable, x->exact_match, i};
        loss[n++] = (point){x->label, (double)x->n_trainable, x->val_loss, i};
        elo = fmin(elo, x->exact_match), ehi = fmax(ehi, x->exact_match);
        llo = fmin(llo, x->val_loss), lhi = fmax(lhi, x->val_loss);
    }
    yaxis ye = share_axis(elo, ehi, "exact match", "base model"), yl = value_axis(llo, lhi, "held-out loss", "base model");
    static const char *const id[] = {"chart-em-params", "chart-loss-params", "chart-em-time", "chart-loss-time"};
    static const char *const cap[] = {"exact match against trainable parameters",
                                      "held-out loss against trainable parameters (lower is better)",
                                      "exact match against training time",
                                      "held-out loss against training time (lower is better)"};
    sb_printf(h, "<div class=\"charts\">\n");
    for (int c = 0; em && loss && c < 4; c++) {
        if (c == 2)
            for (int i = 0; i < n; i++) em[i].x = loss[i].x = b->rows[em[i].color].train_s;
        sb_printf(h, "<figure>\n");
        draw_chart(h, id[c], c < 2 ? "trainable parameters (log scale)" : "training time (log scale)", c >= 2,
                   c % 2 ? loss : em, n, c % 2 ? &yl : &ye, c % 2 ? base->val_loss : base->exact_match);
        sb_printf(h, "<figcaption>%s</figcaption>\n</figure>\n", cap[c]);
    }
    sb_printf(h, "</div>\n");
    free(em), free(loss);
    sb_printf(h,
              "<dl class=\"defs\">\n<dt>exact match</dt><dd>the share of the %d questions whose greedy answer (at "
              "most %d new tokens, the prompt rendered as in training) equals a gold answer after both are "
              "normalised: the first line only, white space trimmed and collapsed, final punctuation (. , ; : ! ?) "
              "removed, Unicode case folding</dd>\n<dt>held-out loss</dt><dd>the mean cross-entropy per loss "
              "token (the answers and the end of their turn) over the %d held-out examples</dd>\n<dt>trainable "
              "parameters</dt><dd>the values the method trained; the percentage is of the model's %s parameters"
              "</dd>\n<dt>peak RSS</dt><dd>the peak resident memory of the method's own process (each method runs "
              "in a fresh child of the process that loaded the model): the model's pages it touched plus its own"
              "</dd>\n<dt>train, eval, qa, wall time</dt><dd>seconds of training, of the held-out loss (%lld "
              "tokens) and of answering the questions; wall time is their sum</dd>\n<dt>tok/s</dt><dd>train: the "
              "non-padding tokens trained on (%lld an epoch) / train time; generated: the answers' tokens / qa time "
              "(the prompts' passes included)</dd>\n<dt>base</dt><dd>the "
              "baseline: the model as loaded, untrained, measured as the methods are</dd>\n</dl>\n",
              b->gen.qa.n, r->max_new_tokens, b->gen.test.n, params, (long long)b->test_tokens,
              (long long)b->train_tokens);
}

static char *report_html(const hn_bakeoff *b) {
    const hn_bakeoff_recipe *r = b->r;
    sbuf h = {0};
    char cpu[256], a[64], c[64];
    cpu_name(cpu, sizeof cpu);
    sb_printf(&h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>hone bakeoff: ");
    sb_esc(&h, r->title);
    sb_printf(&h, "</title>\n<style>\n%s</style>\n</head>\n<body data-methods=\"%d\">\n<h1>", css, r->n_methods);
    sb_esc(&h, r->title);
    sb_printf(&h, "</h1>\n<dl class=\"meta\">\n<dt>model</dt><dd>");
    sb_esc(&h, r->model);
    if (b->model_name[0] && strcmp(b->model_name, r->model)) {
        sb_printf(&h, " (");
        sb_esc(&h, b->model_name);
        sb_printf(&h, ")");
    }
    fmt_count(a, sizeof a, (double)b->model_params);
    sb_printf(&h, ": ");
    sb_esc(&h, b->model_arch[0] ? b->model_arch : "?");
    sb_printf(&h, ", %s parameters</dd>\n<dt>data</dt><dd>", a);
    bool gen = r->task == HN_BAKEOFF_GENERATE;
    char ep[32], mt[32] = "all", mv[32] = "all", mq[32] = "all";
    snprintf(ep, sizeof ep, "%d", r->epochs);
    if (r->max_train) snprintf(mt, sizeof mt, "%d", r->max_train);
    if (r->max_test) snprintf(mv, sizeof mv, "%d", r->max_test);
    if (r->max_qa) snprintf(mq, sizeof mq, "%d", r->max_qa);
    if (gen) {
        sb_esc(&h, b->gen.train.path);
        sb_printf(&h, ": %d training and %d held-out examples (held out: ", b->gen.train.n, b->gen.test.n);
        sb_esc(&h, b->test_source);
        sb_printf(&h, "); %d questions (", b->gen.qa.n);
        sb_esc(&h, b->gen.qa_source);
        if (b->gen.qa_long) sb_printf(&h, "; %d more left out: prompts longer than max_len", b->gen.qa_long);
        sb_printf(&h, ")</dd>\n<dt>budget</dt><dd>max_train %s, max_test %s, max_qa %s, max_len %d, batch %d, "
                      "epochs %d, max_steps %d, max_new_tokens %d, seed %llu</dd>\n<dt>machine</dt><dd>%d threads on ",
                  mt, mv, mq, b->gen.max_len, r->batch, r->epochs, r->max_steps, r->max_new_tokens,
                  (unsigned long long)r->seed, b->threads);
    } else {
        sb_esc(&h, b->train.source);
        sb_printf(&h, ": %d training and %d test examples (test: ", b->train.n, b->test.n);
        sb_esc(&h, b->test_source);
        sb_printf(&h, "), %d classes (", b->train.n_classes);
        for (int k = 0; k < b->train.n_classes; k++) {
            if (k) sb_printf(&h, ", ");
            sb_esc(&h, b->train.classes[k]);
        }
        sb_printf(&h,
                  ")</dd>\n<dt>budget</dt><dd>max_train %s, max_test %s, max_len %d, batch %d, epochs %s, seed %llu"
                  "</dd>\n<dt>machine</dt><dd>%d threads on ",
                  mt, mv, r->max_len, r->batch, r->epochs ? ep : "each method's default",
                  (unsigned long long)r->seed, b->threads);
    }
    sb_esc(&h, cpu);
    fmt_secs(c, sizeof c, b->wall_s);
    sb_printf(&h, "</dd>\n<dt>run</dt><dd>%s, %s in all; recipe ", b->date, c);
    sb_esc(&h, r->path);
    sb_printf(&h, "</dd>\n</dl>\n");
    if (gen) {
        body_gen(&h, b, a);
        sb_printf(&h, "<script>\n%s</script>\n</body>\n</html>\n", script);
        if (!h.oom) return h.p;
        free(h.p);
        return NULL;
    }

    // the table
    sb_printf(&h, "<table id=\"results\">\n<thead><tr><th>method</th><th>status</th><th>accuracy</th><th>macro-F1</th>"
                  "<th>trainable parameters</th><th>peak RSS</th><th>train</th><th>eval</th><th>wall time</th>"
                  "<th>train tokens/s</th><th>eval tokens/s</th></tr></thead>\n<tbody>\n");
    for (int i = 0; i < r->n_methods; i++) table_row(&h, b, &b->rows[i], i);
    table_row(&h, b, &b->baseline, 0);
    sb_printf(&h, "</tbody>\n</table>\n");

    // the charts: one point per method that ran
    point *p = calloc((size_t)(r->n_methods ? r->n_methods : 1), sizeof *p);
    int n = 0;
    double lo = b->baseline.accuracy, hi = b->baseline.accuracy;
    for (int i = 0; p && i < r->n_methods; i++)
        if (b->rows[i].state == HN_BAKEOFF_RAN) {
            p[n++] = (point){b->rows[i].label, (double)b->rows[i].n_trainable, b->rows[i].accuracy, i};
            lo = fmin(lo, b->rows[i].accuracy), hi = fmax(hi, b->rows[i].accuracy);
        }
    yaxis ya = share_axis(lo, hi, "accuracy", "majority class");
    sb_printf(&h, "<div class=\"charts\">\n<figure>\n");
    if (p) draw_chart(&h, "chart-params", "trainable parameters (log scale)", false, p, n, &ya, b->baseline.accuracy);
    sb_printf(&h, "<figcaption>accuracy against trainable parameters</figcaption>\n</figure>\n<figure>\n");
    for (int i = 0; i < n; i++) p[i].x = b->rows[p[i].color].train_s + b->rows[p[i].color].eval_s;
    if (p)
        draw_chart(&h, "chart-time", "wall time: training + evaluation (log scale)", true, p, n, &ya,
                   b->baseline.accuracy);
    sb_printf(&h, "<figcaption>accuracy against wall time</figcaption>\n</figure>\n</div>\n");
    if (!p) h.oom = true;
    free(p);

    sb_printf(
        &h,
        "<dl class=\"defs\">\n<dt>accuracy, macro-F1</dt><dd>on the %d test examples; macro-F1 is the mean of the "
        "classes' "
        "F1 scores</dd>\n<dt>trainable parameters</dt><dd>the values the method trained (0 for in-context "
        "learning); the percentage is of the model's %s parameters</dd>\n<dt>peak RSS</dt><dd>the peak "
        "resident memory of the method's own process (each method runs in a fresh child of the process that "
        "loaded the model): the model's pages it touched plus its own</dd>\n<dt>train, eval, wall time</dt>"
        "<dd>seconds of training (embedding, fitting, choosing examples: whatever the method does before it can "
        "predict) and of predicting the test set; wall time is their sum</dd>\n<dt>tokens/s</dt><dd>in the data's "
        "own tokens (each text as the tokenizer splits it, cut at max_len): %lld in the training set / train "
        "time, however many passes the method makes; %lld in the test set / eval time</dd>\n"
        "<dt>majority class</dt><dd>the baseline: the training set's most frequent class for every text</dd>\n"
        "</dl>\n",
        b->test.n, a, (long long)b->train_tokens, (long long)b->test_tokens);
    sb_printf(&h, "<script>\n%s</script>\n</body>\n</html>\n", script);
    if (h.oom) {
        free(h.p);
        return NULL;
    }
    return h.p;
}

// ---- writing

static hn_status write_file(const char *dir, const char *name, const char *text) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = hn_alloc(n, "path");
    if (!path) return HN_ERR_NOMEM;
    snprintf(path, n, "%s/%s", dir, name);
    hn_afile f;
    hn_status s = hn_afile_open(&f, path);
    if (!s) s = hn_afile_write(&f, text, strlen(text));
    if (!s) s = hn_afile_commit(&f);
    else hn_afile_abort(&f);
    free(path);
    return s;
}

hn_status hn_bakeoff_write(const hn_bakeoff *b, const char *dir) {
    char *json = report_json(b), *html = json ? report_html(b) : NULL;
    hn_status s = json && html ? HN_OK : hn_fail(HN_ERR_NOMEM, "%s: out of memory writing the report", dir);
    if (!s) s = hn_mkdir_p(dir);
    if (!s) s = write_file(dir, "report.json", json);
    if (!s) s = write_file(dir, "report.html", html);
    free(json), free(html);
    return s;
}
