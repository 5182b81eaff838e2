// cli/cmd_vote.c — `hone vote`: several models, or several adapters of one base, answer every question of a
// JSONL file greedily; each voter's answer is extracted (serve/vote.h: a regex's capture or the last number) and
// the (weighted) majority is the voted answer — the seeds' multi-LLM voting. With gold answers in the file it prints
// each voter's accuracy and the vote's; --json prints one object per question and a summary object.
//
// Every distinct -m is loaded once, into one engine (serve/engine.h); its voters' questions are all submitted at
// once, so that the engine batches them (voters that name different adapters of one base batch together). Models
// run one after the other: two engines at once would only share the same cores.
#define _GNU_SOURCE // getline
#include "cli/adapters.h"
#include "cli/cli.h"
#include "model/registry.h"
#include "serve/engine.h"
#include "serve/vote.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *vote_usage =
    "usage: hone vote -m MODEL [-m MODEL ...] [--adapter [NAME=]PATH[:SCALE] ...] --data FILE [options]\n\n"
    "Each -m is a voter; each --adapter is a voter too: the FIRST model with that adapter applied. Every voter\n"
    "answers every question greedily; the answer is the last number of its text (or --regex's capture), and the\n"
    "answer most voters give (or the most weight) is the voted one; a tie goes to the voter listed first.\n\n"
    "  -m, --model MODEL       GGUF file, Hugging Face directory or pulled model name (repeatable)\n"
    "      --adapter [NAME=]PATH[:SCALE]  a voter: the first model with this adapter (repeatable; any method\n"
    "                          `hone generate --adapter` reads; SCALE multiplies a LoRA-family adapter's alpha/r)\n"
    "      --data FILE         JSONL: {\"question\": ..., \"answer\": ...} or {\"prompt\": ..., \"answer\": ...}; the\n"
    "                          answer is optional; GSM8K's \"... #### 72\" gives 72\n"
    "      --regex RE          the answer is RE's first capture group (or its match) in the last place it matches\n"
    "                          (PCRE2); default: the last number, and the prompt asks to end with it\n"
    "      --weights W1,W2,... one weight per voter, in the order the voters are given (default: 1 each)\n"
    "      --max-tokens N      tokens each answer may take (default 256)\n"
    "      --limit N           only the first N questions\n"
    "      --chat, --no-chat   wrap each question in the model's chat template, or not (default: when the model\n"
    "                          has one)\n"
    "      --json              one object per question {\"question\", \"gold\", \"answers\", \"voted\"} and then\n"
    "                          {\"summary\": ...} on stdout, one per line\n"
    "      --exact             fp32 reference path (dequantized weights, fp32 activations)\n"
    "      --threads N         threads (default: physical cores)\n\n"
    "Gold answers and voted answers compare as numbers when both are numbers (\"1,000\" = \"1000.0\"), else as\n"
    "text without surrounding white space. Accuracies count the questions that have a gold answer.\n";

// The instruction after each question when the answer is the last number.
static const char *number_instruction = "\nEnd your answer with the final number.";

typedef struct {
    const char *model;   // -m as given (the first model's, for an adapter voter)
    char *adapter;       // the adapter's name in the engine, NULL: the bare model
    char *adapter_path;
    float scale;
    char *label;         // MODEL or MODEL+NAME
    float weight;
} voter;

typedef struct {
    char *question;
    char *gold; // NULL: none
    int line;
} item;

typedef struct {
    voter *v;
    int nv;
    const char *data, *regex, *weights;
    int max_tokens, limit;
    int chat; // -1 auto, 0 no, 1 yes
    bool json, exact;
} vote_opts;

#define FAIL()                                                                                                       \
    do {                                                                                                             \
        rc = cli_fail();                                                                                             \
        goto out;                                                                                                    \
    } while (0)

static void trim(char *s) {
    size_t b = 0, e = strlen(s);
    while (b < e && isspace((unsigned char)s[b])) b++;
    while (e > b && isspace((unsigned char)s[e - 1])) e--;
    memmove(s, s + b, e - b);
    s[e - b] = 0;
}

static bool add_voter(vote_opts *o, voter v) {
    voter *nv = realloc(o->v, (size_t)(o->nv + 1) * sizeof *nv);
    if (!nv) return false;
    o->v = nv;
    o->v[o->nv++] = v;
    return true;
}

static void free_voters(vote_opts *o) {
    for (int i = 0; i < o->nv; i++) free(o->v[i].adapter), free(o->v[i].adapter_path), free(o->v[i].label);
    free(o->v);
}

// --weights: exactly one finite, non-negative number per voter.
static int parse_weights(vote_opts *o) {
    int n = 0;
    const char *p = o->weights;
    for (;;) {
        char *end;
        errno = 0;
        double w = strtod(p, &end);
        if (end == p || errno || !isfinite(w) || w < 0 || (*end && *end != ','))
            return cli_usage_error("vote: --weights '%s': expected non-negative numbers separated by commas",
                                   o->weights);
        if (n < o->nv) o->v[n].weight = (float)w;
        n++;
        if (!*end) break;
        p = end + 1;
    }
    if (n != o->nv)
        return cli_usage_error("vote: --weights has %d number%s for %d voters (one per -m and --adapter, in order)", n,
                               n == 1 ? "" : "s", o->nv);
    return -1;
}

// Returns -1 to go on, or an exit code. Voters come in the order of the command line; adapter voters get the first
// -m once every flag is read.
static int parse(int argc, char **argv, vote_opts *o) {
    *o = (vote_opts){.max_tokens = 256, .chat = -1};
    if (cli_wants_help(argc, argv)) {
        fputs(vote_usage, stdout);
        return 0;
    }
    const char *first_model = NULL;
    for (int i = 1; i < argc; i++) {
        bool err = false;
        const char *model = NULL, *spec = NULL;
        if (cli_flag_str(argc, argv, &i, "-m", "--model", &model, &err)) {
            if (err) return 2;
            if (!first_model) first_model = model;
            if (!add_voter(o, (voter){.model = model, .weight = 1})) return cli_usage_error("vote: out of memory");
        } else if (cli_flag_str(argc, argv, &i, NULL, "--adapter", &spec, &err) ||
                   cli_flag_str(argc, argv, &i, NULL, "--lora", &spec, &err)) {
            if (err) return 2;
            cli_adapter a;
            if (cli_adapter_parse(spec, &a)) return cli_usage_error("%s", hn_errmsg());
            for (int k = 0; k < o->nv; k++)
                if (o->v[k].adapter && !strcmp(o->v[k].adapter, a.name)) {
                    cli_usage_error("vote: --adapter '%s': the name '%s' is taken; give another with NAME=PATH",
                                    spec, a.name);
                    free(a.name), free(a.path);
                    return 2;
                }
            if (!add_voter(o, (voter){.adapter = a.name, .adapter_path = a.path, .scale = a.scale, .weight = 1})) {
                free(a.name), free(a.path);
                return cli_usage_error("vote: out of memory");
            }
        } else if (cli_flag_str(argc, argv, &i, NULL, "--data", &o->data, &err) ||
                   cli_flag_str(argc, argv, &i, NULL, "--regex", &o->regex, &err) ||
                   cli_flag_str(argc, argv, &i, NULL, "--weights", &o->weights, &err) ||
                   cli_flag_int(argc, argv, &i, NULL, "--max-tokens", &o->max_tokens, &err) ||
                   cli_flag_int(argc, argv, &i, NULL, "--limit", &o->limit, &err) ||
                   cli_flag_threads(argc, argv, &i, &err)) {
            if (err) return 2;
        } else if (cli_flag_bool(argv, i, NULL, "--chat")) {
            o->chat = 1;
        } else if (cli_flag_bool(argv, i, NULL, "--no-chat")) {
            o->chat = 0;
        } else if (cli_flag_bool(argv, i, NULL, "--json")) {
            o->json = true;
        } else if (cli_flag_bool(argv, i, NULL, "--exact")) {
            o->exact = true;
        } else {
            return cli_usage_error("vote: unknown argument '%s' (hone vote --help)", argv[i]);
        }
    }
    if (!first_model) return cli_usage_error("vote: -m MODEL is required (hone vote --help)");
    if (!o->data) return cli_usage_error("vote: --data FILE is required (hone vote --help)");
    if (o->max_tokens < 1) return cli_usage_error("vote: --max-tokens expects a positive count, got %d", o->max_tokens);
    if (o->limit < 0) return cli_usage_error("vote: --limit expects a count >= 0, got %d", o->limit);
    for (int k = 0; k < o->nv; k++) {
        voter *v = &o->v[k];
        if (v->adapter) v->model = first_model;
        size_t n = strlen(v->model) + (v->adapter ? strlen(v->adapter) + 1 : 0) + 1;
        if (!(v->label = malloc(n))) return cli_usage_error("vote: out of memory");
        snprintf(v->label, n, "%s%s%s", v->model, v->adapter ? "+" : "", v->adapter ? v->adapter : "");
    }
    if (o->weights) return parse_weights(o);
    return -1;
}

// The gold answer of a line: a string (GSM8K's worked solution gives the text after its last "####") or a number.
static hn_status gold_of(const json_t *a, const char *file, int line, char **out) {
    *out = NULL;
    if (!a || json_is_null(a)) return HN_OK;
    char buf[64];
    const char *s = buf;
    if (json_is_string(a)) {
        s = json_string_value(a);
        const char *h = s, *f;
        while ((f = strstr(h, "####"))) h = f + 4;
        s = h;
    } else if (json_is_integer(a)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(a));
    } else if (json_is_real(a)) {
        snprintf(buf, sizeof buf, "%.17g", json_real_value(a));
    } else {
        return hn_fail(HN_ERR_FORMAT, "%s:%d: \"answer\": expected a string or a number", file, line);
    }
    if (!(*out = strdup(s))) return hn_fail(HN_ERR_NOMEM, "%s:%d: out of memory", file, line);
    trim(*out);
    return HN_OK;
}

static void free_items(item *it, int n) {
    for (int i = 0; i < n; i++) free(it[i].question), free(it[i].gold);
    free(it);
}

// Reads the questions (blank lines skipped), at most limit of them (0: all).
static hn_status read_items(const char *path, int limit, item **out, int *n_out) {
    *out = NULL, *n_out = 0;
    FILE *f = fopen(path, "r");
    if (!f) return hn_fail(HN_ERR_IO, "vote: cannot open %s: %s", path, strerror(errno));
    item *it = NULL;
    int n = 0, cap = 0, line_no = 0;
    char *line = NULL;
    size_t lc = 0;
    hn_status st = HN_OK;
    while ((limit == 0 || n < limit) && getline(&line, &lc, f) >= 0) {
        line_no++;
        bool blank = true;
        for (const char *p = line; *p && blank; p++) blank = isspace((unsigned char)*p);
        if (blank) continue;
        json_error_t je;
        json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &je);
        if (!o || !json_is_object(o)) {
            st = o ? hn_fail(HN_ERR_FORMAT, "%s:%d: expected a JSON object", path, line_no)
                   : hn_fail(HN_ERR_FORMAT, "%s:%d: not JSON: %s", path, line_no, je.text);
            json_decref(o);
            break;
        }
        const json_t *q = json_object_get(o, "question");
        if (!q) q = json_object_get(o, "prompt");
        if (!json_is_string(q)) {
            st = hn_fail(HN_ERR_FORMAT, "%s:%d: expected a \"question\" (or \"prompt\") string field", path, line_no);
            json_decref(o);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            item *ni = realloc(it, (size_t)cap * sizeof *ni);
            if (!ni) {
                st = hn_fail(HN_ERR_NOMEM, "%s:%d: out of memory", path, line_no);
                json_decref(o);
                break;
            }
            it = ni;
        }
        item x = {.question = strdup(json_string_value(q)), .line = line_no};
        st = gold_of(json_object_get(o, "answer"), path, line_no, &x.gold);
        json_decref(o);
        if (!st && !x.question) st = hn_fail(HN_ERR_NOMEM, "%s:%d: out of memory", path, line_no);
        if (st) {
            free(x.question), free(x.gold);
            break;
        }
        it[n++] = x;
    }
    if (!st && ferror(f)) st = hn_fail(HN_ERR_IO, "vote: reading %s: %s", path, strerror(errno));
    if (!st && n == 0) st = hn_fail(HN_ERR_FORMAT, "%s: no questions (expected JSON lines with \"question\")", path);
    free(line);
    fclose(f);
    if (st) {
        free_items(it, n);
        return st;
    }
    *out = it, *n_out = n;
    return HN_OK;
}

// The prompt's token ids for one question, framed as `hone generate [--chat]` frames a prompt.
static hn_status question_ids(const hn_model *m, const char *question, bool chat, bool instruct, int32_t **ids,
                              int64_t *n) {
    size_t len = strlen(question) + strlen(number_instruction) + 32;
    char *q = malloc(len), *text = NULL;
    if (!q) return hn_fail(HN_ERR_NOMEM, "vote: out of memory");
    if (chat) snprintf(q, len, "%s%s", question, instruct ? number_instruction : "");
    else snprintf(q, len, "Question: %s%s\nAnswer:", question, instruct ? number_instruction : "");
    hn_status st = HN_OK;
    const char *prompt = q;
    if (chat) {
        hn_chat_msg msg = {"user", q};
        if ((st = hn_chat_render(m->chat, m->default_system, &msg, 1, true, &text))) goto out;
        prompt = text;
    }
    st = hn_tokenizer_encode(m->tok, prompt, -1, HN_TOK_SPECIAL | HN_TOK_ADD_BOS, ids, n);
out:
    free(q);
    free(text);
    return st;
}

// Grows *buf by len bytes of text.
static bool append(char **buf, size_t *n, size_t *cap, const char *text, size_t len) {
    if (*n + len + 1 > *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        while (c < *n + len + 1) c *= 2;
        char *nb = realloc(*buf, c);
        if (!nb) return false;
        *buf = nb, *cap = c;
    }
    memcpy(*buf + *n, text, len);
    *n += len;
    (*buf)[*n] = 0;
    return true;
}

// The whole text of a job (one sample), malloc'd.
static hn_status collect(hn_job *j, char **text) {
    size_t n = 0, cap = 0;
    *text = NULL;
    hn_event ev;
    hn_status st = HN_OK;
    while (hn_job_next(j, &ev, -1)) {
        if (ev.len && !st && !append(text, &n, &cap, ev.text, ev.len)) st = hn_fail(HN_ERR_NOMEM, "vote: out of memory");
        if (ev.done && ev.finish == HN_FINISH_ERROR && !st)
            st = hn_fail(HN_ERR_RANGE, "vote: generation failed: %s", ev.error ? ev.error : "(no message)");
        if (ev.last) break;
    }
    if (!st && !*text && !(*text = strdup(""))) st = hn_fail(HN_ERR_NOMEM, "vote: out of memory");
    return st;
}

// Runs every voter of model o->v[first].model over every question: texts[v * n_items + q].
static hn_status run_model(const vote_opts *o, int first, const item *it, int n_items, char **texts) {
    const char *name = o->v[first].model;
    hn_model *m = NULL;
    hn_engine *e = NULL;
    hn_job **jobs = NULL;
    int32_t **ids = NULL;
    int64_t *n_ids = NULL;
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = o->exact ? HN_MM_EXACT : HN_MM_FAST;
    hn_status st = hn_model_load(&m, name, &mp);
    if (st) goto out;
    bool chat = o->chat < 0 ? m->has_chat : o->chat;
    if (chat && !m->has_chat)
        hn_warn("%s has no chat template; using ChatML, which a base model was not trained on", m->path);
    hn_engine_params ep = hn_engine_default_params();
    if ((st = hn_engine_create(&e, m, &ep))) goto out;
    for (int k = 0; k < o->nv; k++)
        if (!strcmp(o->v[k].model, name) && o->v[k].adapter &&
            (st = hn_engine_load_adapter(e, o->v[k].adapter, o->v[k].adapter_path, o->v[k].scale)))
            goto out;
    ids = calloc((size_t)n_items, sizeof *ids);
    n_ids = calloc((size_t)n_items, sizeof *n_ids);
    jobs = calloc((size_t)o->nv * (size_t)n_items, sizeof *jobs);
    if (!ids || !n_ids || !jobs) {
        st = hn_fail(HN_ERR_NOMEM, "vote: out of memory");
        goto out;
    }
    for (int q = 0; q < n_items; q++)
        if ((st = question_ids(m, it[q].question, chat, !o->regex, &ids[q], &n_ids[q]))) goto out;
    double t0 = hn_now();
    int n_jobs = 0;
    // Every request first, then the answers: the engine batches whatever is queued.
    for (int k = 0; k < o->nv; k++) {
        if (strcmp(o->v[k].model, name)) continue;
        for (int q = 0; q < n_items; q++) {
            hn_request r = hn_request_default();
            r.prompt = ids[q];
            r.n_prompt = n_ids[q] > INT32_MAX ? INT32_MAX : (int)n_ids[q];
            r.adapter = o->v[k].adapter;
            r.sp.temp = 0;
            r.max_tokens = o->max_tokens;
            if ((st = hn_engine_submit(e, &r, &jobs[(size_t)k * n_items + q]))) {
                st = hn_fail(st, "%s:%d: %s: %s", o->data, it[q].line, o->v[k].label, hn_errmsg());
                goto out;
            }
            n_jobs++;
        }
    }
    for (int k = 0; k < o->nv; k++)
        for (int q = 0; q < n_items; q++) {
            size_t at = (size_t)k * n_items + q;
            if (!jobs[at]) continue;
            st = collect(jobs[at], &texts[at]);
            hn_job_free(jobs[at]);
            jobs[at] = NULL;
            if (st) {
                st = hn_fail(st, "%s:%d: %s: %s", o->data, it[q].line, o->v[k].label, hn_errmsg());
                goto out;
            }
        }
    hn_engine_stats es;
    hn_engine_stats_get(e, &es);
    double dt = hn_now() - t0;
    fprintf(stderr, "vote: %s: %d answers in %.1f s (%lld tokens generated, %.1f tok/s)\n", name, n_jobs, dt,
            (long long)es.gen_tokens, dt > 0 ? es.gen_tokens / dt : 0.0);
out:
    if (jobs)
        for (size_t i = 0; i < (size_t)o->nv * n_items; i++)
            if (jobs[i]) hn_job_free(jobs[i]);
    free(jobs);
    if (ids)
        for (int q = 0; q < n_items; q++) free(ids[q]);
    free(ids);
    free(n_ids);
    hn_engine_destroy(e);
    hn_model_destroy(m);
    return st;
}

// A plain number (after "$" and grouping commas): its value.
static bool as_number(const char *s, double *x) {
    char buf[128];
    size_t n = 0;
    while (isspace((unsigned char)*s)) s++;
    if (*s == '$') s++;
    for (; *s && n + 1 < sizeof buf; s++)
        if (*s != ',') buf[n++] = *s;
    if (*s) return false;
    while (n && isspace((unsigned char)buf[n - 1])) n--;
    buf[n] = 0;
    if (!n) return false;
    char *end;
    errno = 0;
    *x = strtod(buf, &end);
    return !*end && !errno && isfinite(*x) && !isalpha((unsigned char)buf[0]); // not "nan", "inf"
}

// Equal without surrounding white space, as hn_vote_majority compares answers.
static bool same_text(const char *a, const char *b) {
    while (isspace((unsigned char)*a)) a++;
    while (isspace((unsigned char)*b)) b++;
    size_t na = strlen(a), nb = strlen(b);
    while (na && isspace((unsigned char)a[na - 1])) na--;
    while (nb && isspace((unsigned char)b[nb - 1])) nb--;
    return na == nb && !memcmp(a, b, na);
}

// Whether an answer is the gold one: as numbers when both are plain numbers, else as text.
static bool same(const char *answer, const char *gold) {
    if (!answer || !gold) return false;
    double a, g;
    if (as_number(answer, &a) && as_number(gold, &g)) return a == g || fabs(a - g) <= 1e-9 * fmax(fabs(a), fabs(g));
    return same_text(answer, gold);
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

int cmd_vote(int argc, char **argv) {
    vote_opts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0) {
        free_voters(&o);
        return rc;
    }
    item *it = NULL;
    int n_items = 0;
    char **texts = NULL, **answers = NULL;
    int *voted = NULL, *correct = NULL;
    if (read_items(o.data, o.limit, &it, &n_items)) FAIL();
    if (o.regex) { // a pattern that does not compile fails here, before any model loads
        char *a;
        if (hn_vote_extract("", o.regex, &a)) FAIL();
        free(a);
    }
    for (int k = 0; k < o.nv; k++) { // every model found before the first one runs for minutes
        char *path;
        if (hn_model_resolve(o.v[k].model, &path)) FAIL();
        free(path);
    }
    size_t n_ans = (size_t)o.nv * n_items;
    texts = calloc(n_ans, sizeof *texts);
    answers = calloc(n_ans, sizeof *answers);
    voted = calloc((size_t)n_items, sizeof *voted);
    correct = calloc((size_t)o.nv + 1, sizeof *correct);
    if (!texts || !answers || !voted || !correct) {
        rc = cli_usage_error("vote: out of memory");
        goto out;
    }
    for (int k = 0; k < o.nv; k++) {
        bool seen = false;
        for (int j = 0; j < k && !seen; j++) seen = !strcmp(o.v[j].model, o.v[k].model);
        if (!seen && run_model(&o, k, it, n_items, texts)) FAIL();
    }
    for (size_t i = 0; i < n_ans; i++) {
        if (hn_vote_extract(texts[i], o.regex, &answers[i])) FAIL();
        if (answers[i]) trim(answers[i]);
    }
    float *w = malloc((size_t)o.nv * sizeof *w);
    const char **col = malloc((size_t)o.nv * sizeof *col);
    if (!w || !col) {
        free(w), free(col);
        rc = cli_usage_error("vote: out of memory");
        goto out;
    }
    for (int k = 0; k < o.nv; k++) w[k] = o.v[k].weight;
    int with_gold = 0;
    for (int q = 0; q < n_items; q++) {
        for (int k = 0; k < o.nv; k++) col[k] = answers[(size_t)k * n_items + q];
        int win = hn_vote_majority(col, o.weights ? w : NULL, o.nv);
        voted[q] = win;
        const char *va = win >= 0 ? col[win] : NULL;
        if (it[q].gold) {
            with_gold++;
            for (int k = 0; k < o.nv; k++) correct[k] += same(col[k], it[q].gold);
            correct[o.nv] += same(va, it[q].gold);
        }
        if (o.json) {
            json_t *arr = json_array();
            for (int k = 0; k < o.nv; k++) json_array_append_new(arr, str_or_null(col[k]));
            json_t *obj = json_pack("{s:s, s:o, s:o, s:o}", "question", it[q].question, "gold",
                                    str_or_null(it[q].gold), "answers", arr, "voted", str_or_null(va));
            char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
            if (s) puts(s);
            free(s);
            json_decref(obj);
        } else {
            printf("%d: voted %s (", it[q].line, va ? va : "-");
            for (int k = 0; k < o.nv; k++) printf("%s%s", k ? ", " : "", col[k] ? col[k] : "-");
            if (it[q].gold) printf(") gold %s %s\n", it[q].gold, same(va, it[q].gold) ? "right" : "wrong");
            else printf(")\n");
        }
    }
    free(w), free(col);
    if (o.json) {
        json_t *vs = json_array();
        for (int k = 0; k < o.nv; k++) {
            json_t *acc = with_gold ? json_real((double)correct[k] / with_gold) : json_null();
            json_array_append_new(vs, json_pack("{s:s, s:s, s:o, s:f, s:i, s:o}", "name", o.v[k].label, "model",
                                                o.v[k].model, "adapter", str_or_null(o.v[k].adapter), "weight",
                                                (double)o.v[k].weight, "correct", correct[k], "accuracy", acc));
        }
        json_t *sum = json_pack(
            "{s:{s:i, s:i, s:o, s:{s:i, s:o}}}", "summary", "questions", n_items, "with_gold", with_gold, "voters", vs,
            "voted", "correct", correct[o.nv], "accuracy",
            with_gold ? json_real((double)correct[o.nv] / with_gold) : json_null());
        char *s = sum ? json_dumps(sum, JSON_COMPACT) : NULL;
        if (s) puts(s);
        free(s);
        json_decref(sum);
    } else if (with_gold) {
        int width = 5;
        for (int k = 0; k < o.nv; k++)
            if ((int)strlen(o.v[k].label) > width) width = (int)strlen(o.v[k].label);
        printf("\n%-*s  %7s  %8s\n", width, "voter", "correct", "accuracy");
        for (int k = 0; k <= o.nv; k++)
            printf("%-*s  %3d/%-3d  %8.3f\n", width, k < o.nv ? o.v[k].label : "voted", correct[k], with_gold,
                   (double)correct[k] / with_gold);
    } else {
        printf("\n(no gold answers in %s: no accuracy)\n", o.data);
    }
    fflush(stdout);
    rc = 0;
out:
    for (size_t i = 0; texts && i < n_ans; i++) free(texts[i]);
    for (size_t i = 0; answers && i < n_ans; i++) free(answers[i]);
    free(texts), free(answers), free(voted), free(correct);
    free_items(it, n_items);
    free_voters(&o);
    return rc;
}
