// cli/cmd_eval.c — `hone eval`: a classification run scored on labelled data (--task classify: accuracy, macro-F1,
// the confusion matrix), a retrieval database scored on SQuAD-format questions (--task retrieval: recall@k and MRR,
// a question found where a retrieved chunk holds one of its gold answers), and a model's short answers with and
// without retrieval (--task rag: SQuAD's exact match and token F1).
#include "adapt/rag.h"
#include "cli/adapters.h"
#include "cli/cli.h"
#include "cli/cls.h"
#include "train/qa.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// What the model is asked, with the retrieved sources and without (closed book): a short span, as SQuAD scores it.
#define RAG_EVAL_INSTRUCTION "Answer the question with a short span copied from the sources below."
#define CLOSED_EVAL_INSTRUCTION "Answer the question with a short span."
#define RETRIEVE_BATCH 32 // questions embedded and searched at a time

static void help(void) {
    printf("usage: hone eval -m MODEL --run DIR --data FILE... [--task classify] [--json]\n"
           "       hone eval --task retrieval --db DIR --data QA.json... [--k 10] [--limit N] [--ef N] [--json]\n"
           "       hone eval --task rag --db DIR --data QA.json... -m MODEL [--adapter ...] [--k 5] [--limit N]\n"
           "                 [--max-new 32] [--json]\n\n"
           "classify: scores the classification run in DIR (made by hone train --task classify) on labelled data:\n"
           "accuracy, macro-F1 and the confusion matrix. FILE is as for hone train (JSONL, .csv / .tsv,\n"
           "FILE:LABEL).\n\n"
           "retrieval: asks the database DIR (made by hone index) each question of QA.json (SQuAD-format JSON, or\n"
           "JSONL {\"prompt\", \"answer\"}) and finds the first of the k retrieved chunks whose text holds one of the\n"
           "question's gold answers (a byte substring): recall@1, @5, @10 (those up to k) and the mean reciprocal\n"
           "rank within k (0 for a question not found).\n\n"
           "rag: MODEL answers each question greedily twice, with the k best chunks as numbered sources (\"%s\")\n"
           "and without them (\"%s\"); both are scored by SQuAD's exact match and token F1 (train/qa.h).\n\n"
           "flags:\n"
           "  -m, --model MODEL     classify: the base model the run was trained on; rag: the model that answers\n"
           "  --run DIR             classify: the run directory\n"
           "  --data FILE[:LABEL]   evaluation data (repeatable)\n"
           "  --text-col C, --label-col L   classify: CSV/TSV columns or JSONL keys (default text / label)\n"
           "  --skip-unseen         classify: count and skip examples whose label is not one of the run's classes\n"
           "                        (default: an error)\n"
           "  --db DIR              retrieval, rag: the database (its own embedding model embeds the questions)\n"
           "  --embed-model M       the embedding model to embed the questions with: it must be the database's\n"
           "  --k K                 chunks retrieved a question (retrieval: 10, rag: 5)\n"
           "  --limit N             a seeded choice of N questions (file order kept; default: all)\n"
           "  --seed S              the choice's seed (default 1)\n"
           "  --ef N                the index's search width (hnsw's beam, ivfpq's lists probed)\n"
           "  --max-new N           rag: tokens an answer at most (default 32)\n"
           "  --details             with --json, per question: retrieval's ranks (0: not found); rag's answers\n"
           "  --json                one JSON object\n",
           RAG_EVAL_INSTRUCTION, CLOSED_EVAL_INSTRUCTION);
    fputs(cli_adapters_usage, stdout);
}

typedef struct {
    const char *model, *run, *task, *db, *embed_model;
    const char **data;
    int n_data, k, limit, ef, max_new;
    uint64_t seed;
    bool json, details;
    hn_cls_load_params lp;
    cli_adapters ca;
} eval_opts;

// Prints j compactly on one line (and frees it).
static int print_text(json_t *j) {
    char *text = j ? json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) return cli_fail();
    printf("%s\n", text);
    free(text);
    return 0;
}

static int print_json(const hn_cls_metrics *mt, const cli_cls_run *r) {
    json_t *cl = json_array(), *cm = json_array();
    for (int c = 0; c < mt->n_classes; c++) {
        json_array_append_new(cl, json_string(r->classes[c]));
        json_t *row = json_array();
        for (int k = 0; k < mt->n_classes; k++)
            json_array_append_new(row, json_integer(mt->confusion[(size_t)c * (size_t)mt->n_classes + (size_t)k]));
        json_array_append_new(cm, row);
    }
    json_t *j = json_pack("{s:f, s:f, s:i, s:s, s:o, s:o}", "accuracy", mt->accuracy, "macro_f1", mt->macro_f1, "n",
                          mt->n, "method", r->method, "classes", cl, "confusion", cm);
    return print_text(j);
}

// ---- retrieval and rag

static hn_status load_questions(const eval_opts *o, hn_qa_set *q) {
    hn_status s = hn_qa_load(q, o->data[0], HN_QA_AUTO);
    for (int i = 1; !s && i < o->n_data; i++) {
        hn_qa_set more;
        if (!(s = hn_qa_load(&more, o->data[i], HN_QA_AUTO))) s = hn_qa_append(q, &more);
    }
    if (!s) s = hn_qa_subsample(q, o->limit, o->seed);
    if (s && q->items) hn_qa_set_deinit(q);
    return s;
}

// The 1-based rank of the first hit whose text holds one of the answers (bytes); 0 when none does.
static int first_rank(const hn_rag_hit *hits, int n, const hn_qa_item *it) {
    for (int r = 0; r < n; r++)
        for (int a = 0; a < it->n_answers; a++)
            if (hits[r].text && *it->answers[a] && strstr(hits[r].text, it->answers[a])) return r + 1;
    return 0;
}

typedef struct {
    hn_model *m;     // rag: the model that answers; NULL for retrieval alone
    int max_prompt;  // rag: tokens the user message may take
    char **with, **without; // rag: (n) the answers
    double f1_with, f1_without;
    int em_with, em_without, sources_used;
} rag_run;

// One question's two answers, scored.
static hn_status rag_one(const eval_opts *o, rag_run *g, const hn_qa_item *it, const hn_rag_hit *hits, int n, int i) {
    int used = 0;
    char *msg = hn_rag_prompt_fit(g->m->tok, hits, n, it->question, RAG_EVAL_INSTRUCTION, g->max_prompt, &used);
    if (!msg) return hn_fail(HN_ERR_NOMEM, "out of memory for a prompt");
    hn_status s = hn_rag_answer(g->m, msg, o->max_new, &g->with[i]);
    free(msg);
    if (s) return s;
    if (!(msg = hn_rag_prompt(NULL, 0, it->question, CLOSED_EVAL_INSTRUCTION)))
        return hn_fail(HN_ERR_NOMEM, "out of memory for a prompt");
    s = hn_rag_answer(g->m, msg, o->max_new, &g->without[i]);
    free(msg);
    if (s) return s;
    const char *const *gold = (const char *const *)it->answers;
    g->sources_used += used;
    g->f1_with += hn_qa_f1(g->with[i], gold, it->n_answers);
    g->f1_without += hn_qa_f1(g->without[i], gold, it->n_answers);
    g->em_with += hn_qa_squad_em(g->with[i], gold, it->n_answers);
    g->em_without += hn_qa_squad_em(g->without[i], gold, it->n_answers);
    return HN_OK;
}

// Every question retrieved in batches; rank[i] as first_rank; with g->m each is answered too.
static hn_status run_questions(const eval_opts *o, hn_rag *r, const hn_qa_set *q, int *rank, rag_run *g,
                               double *retrieve_s) {
    int k = o->k;
    hn_rag_hit *hits = hn_calloc((size_t)RETRIEVE_BATCH * (size_t)k, sizeof *hits, "retrieved chunks");
    const char **qs = hn_calloc(RETRIEVE_BATCH, sizeof *qs, "questions");
    int *n = hn_calloc(RETRIEVE_BATCH, sizeof *n, "hit counts");
    hn_status s = hits && qs && n ? HN_OK : HN_ERR_NOMEM;
    bool tty = g->m && isatty(2) == 1; // a count on the terminal while the answers are generated
    *retrieve_s = 0;
    for (int b = 0; !s && b < q->n; b += RETRIEVE_BATCH) {
        int nb = q->n - b < RETRIEVE_BATCH ? q->n - b : RETRIEVE_BATCH;
        for (int j = 0; j < nb; j++) qs[j] = q->items[b + j].question;
        double t0 = hn_now();
        s = hn_rag_retrieve(r, qs, nb, k, hits, n);
        *retrieve_s += hn_now() - t0;
        for (int j = 0; !s && j < nb; j++) {
            const hn_rag_hit *h = hits + (size_t)j * (size_t)k;
            rank[b + j] = first_rank(h, n[j], &q->items[b + j]);
            if (g->m) s = rag_one(o, g, &q->items[b + j], h, n[j], b + j);
            if (tty) fprintf(stderr, "\rrag: %d / %d questions", b + j + 1, q->n);
        }
        hn_rag_hits_free(hits, nb * k);
    }
    if (tty) fputc('\n', stderr);
    free(hits), free(qs), free(n);
    return s;
}

static int eval_qa(eval_opts *o, bool rag) {
    hn_qa_set q = {0};
    hn_rag *r = NULL;
    rag_run g = {0};
    int *rank = NULL;
    hn_rag_open_params op = {.embed_model = o->embed_model};
    hn_status s = load_questions(o, &q);
    if (!s) s = hn_rag_open(&r, o->db, &op);
    if (!s && o->ef > 0) hn_rag_set_search_width(r, o->ef);
    if (!s && rag) {
        hn_model_params mp = hn_model_default_params();
        s = hn_model_load(&g.m, o->model, &mp);
        if (!s) s = cli_adapters_attach(&o->ca, g.m);
        if (!s && !g.m->tok) s = hn_fail(HN_ERR_ARG, "%s: the model has no tokenizer", o->model);
        // The user message's share of the context: the answer and the chat template's markup need the rest.
        if (!s) g.max_prompt = g.m->hp.n_ctx_train - o->max_new - 64;
        if (!s && g.max_prompt < 64)
            s = hn_fail(HN_ERR_RANGE, "%s: a context of %d tokens leaves no room for the sources and a %d-token answer",
                        o->model, g.m->hp.n_ctx_train, o->max_new);
        if (!s && (!(g.with = hn_calloc((size_t)q.n, sizeof *g.with, "answers")) ||
                   !(g.without = hn_calloc((size_t)q.n, sizeof *g.without, "answers"))))
            s = HN_ERR_NOMEM;
    }
    if (!s && !(rank = hn_calloc((size_t)q.n, sizeof *rank, "ranks"))) s = HN_ERR_NOMEM;
    double retrieve_s = 0, t0 = hn_now();
    if (!s) s = run_questions(o, r, &q, rank, &g, &retrieve_s);
    double total_s = hn_now() - t0;
    int rc = 0;
    if (s) {
        rc = cli_fail();
    } else {
        // recall at 1, 5, 10 (those up to k), and at k itself when it is none of them
        static const int marks[] = {1, 5, 10};
        int at[4], n_at = 0, found[4] = {0};
        for (int c = 0; c < 3; c++)
            if (marks[c] <= o->k) at[n_at++] = marks[c];
        if (o->k != 1 && o->k != 5 && o->k != 10) at[n_at++] = o->k;
        double mrr = 0;
        for (int i = 0; i < q.n; i++) {
            for (int c = 0; c < n_at; c++) found[c] += rank[i] && rank[i] <= at[c];
            mrr += rank[i] ? 1.0 / rank[i] : 0;
        }
        mrr /= q.n;
        json_t *j = json_object();
        json_object_set_new(j, "task", json_string(rag ? "rag" : "retrieval"));
        json_object_set_new(j, "n", json_integer(q.n));
        json_object_set_new(j, "k", json_integer(o->k));
        json_object_set_new(j, "index", json_string(hn_vindex_kind_name(hn_rag_index_kind(r))));
        json_object_set_new(j, "chunks", json_integer(hn_rag_n_chunks(r)));
        json_object_set_new(j, "embed_model", json_string(hn_rag_embed_model(r)));
        char key[32];
        for (int c = 0; c < n_at; c++) {
            snprintf(key, sizeof key, "recall@%d", at[c]);
            json_object_set_new(j, key, json_real((double)found[c] / q.n));
        }
        json_object_set_new(j, "mrr", json_real(mrr));
        if (rag) {
            json_object_set_new(j, "model", json_string(o->model));
            json_object_set_new(j, "with_retrieval", json_pack("{s:f, s:f}", "exact_match", (double)g.em_with / q.n,
                                                               "f1", g.f1_with / q.n));
            json_object_set_new(j, "without_retrieval", json_pack("{s:f, s:f}", "exact_match",
                                                                  (double)g.em_without / q.n, "f1",
                                                                  g.f1_without / q.n));
            json_object_set_new(j, "sources_used", json_real((double)g.sources_used / q.n));
        }
        json_object_set_new(j, "retrieve_s", json_real(retrieve_s));
        json_object_set_new(j, "total_s", json_real(total_s));
        if (o->json && o->details) {
            json_t *d = json_array();
            for (int i = 0; i < q.n; i++)
                json_array_append_new(d, rag ? json_pack("{s:i, s:s, s:s, s:s}", "rank", rank[i], "gold",
                                                         q.items[i].answers[0], "with", g.with[i], "without",
                                                         g.without[i])
                                             : json_integer(rank[i]));
            json_object_set_new(j, rag ? "answers" : "ranks", d);
        }
        if (o->json) {
            rc = print_text(j);
        } else {
            printf("%s on %d question%s (%s, k %d; database %s: %s index, %lld chunks, %s)\n",
                   rag ? "rag" : "retrieval", q.n, q.n == 1 ? "" : "s", q.source, o->k, o->db,
                   hn_vindex_kind_name(hn_rag_index_kind(r)), (long long)hn_rag_n_chunks(r), hn_rag_embed_model(r));
            for (int c = 0; c < n_at; c++)
                printf("  recall@%-3d %.4f  (%d)\n", at[c], (double)found[c] / q.n, found[c]);
            printf("  MRR@%-6d %.4f\n", o->k, mrr);
            if (rag) {
                printf("  with retrieval     exact match %.4f  F1 %.4f  (%.2f sources a question)\n",
                       (double)g.em_with / q.n, g.f1_with / q.n, (double)g.sources_used / q.n);
                printf("  without retrieval  exact match %.4f  F1 %.4f\n", (double)g.em_without / q.n,
                       g.f1_without / q.n);
            }
            fprintf(stderr, "%d questions retrieved in %.2f s (%.1f a second), %.2f s in all\n", q.n, retrieve_s,
                    retrieve_s > 0 ? q.n / retrieve_s : 0.0, total_s);
            json_decref(j);
        }
    }
    for (int i = 0; g.with && i < q.n; i++) free(g.with[i]), free(g.without[i]);
    free(g.with), free(g.without), free(rank);
    cli_adapters_deinit(&o->ca); // before the model it is attached to
    if (g.m) hn_model_destroy(g.m);
    if (r) hn_rag_close(r);
    hn_qa_set_deinit(&q);
    return rc;
}

// ---- classify

static int eval_classify(eval_opts *o) {
    int rc = 0;
    cli_cls_run r = {0};
    hn_cls_data d = {0};
    int32_t *pred = NULL;
    hn_cls_metrics mt = {0};
    hn_status s = cli_cls_open(&r, o->model, o->run);
    if (!s) {
        o->lp.classes = (const char *const *)r.classes, o->lp.n_classes = r.n_classes;
        s = hn_cls_data_load(&d, o->data, o->n_data, &o->lp);
    }
    if (!s && !(pred = hn_calloc((size_t)d.n, sizeof *pred, "predictions"))) s = HN_ERR_NOMEM;
    if (!s) s = cli_cls_predict(r.me, r.m, r.state, (const char *const *)d.texts, d.n, d.n_classes, pred, NULL);
    if (!s) s = hn_cls_metrics_compute(&mt, pred, d.labels, d.n, d.n_classes);
    if (s) rc = cli_fail();
    else if (o->json) rc = print_json(&mt, &r);
    else cli_cls_print_metrics(stdout, &mt, r.classes);
    hn_cls_metrics_deinit(&mt);
    free(pred);
    hn_cls_data_deinit(&d);
    if (r.m) cli_cls_close(&r);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    eval_opts o = {.task = "classify", .k = -1, .max_new = 32, .seed = 1, .lp = hn_cls_load_default_params()};
    if (!(o.data = calloc((size_t)argc, sizeof *o.data))) return cli_usage_error("out of memory");
    int rc = 0;
    bool err = false;
    const char *v;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag_str(argc, argv, &i, "-m", "--model", &o.model, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--run", &o.run, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--task", &o.task, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--db", &o.db, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--embed-model", &o.embed_model, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--text-col", &o.lp.text_col, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--label-col", &o.lp.label_col, &err)) continue;
        if (cli_flag_int(argc, argv, &i, NULL, "--k", &o.k, &err)) continue;
        if (cli_flag_int(argc, argv, &i, NULL, "--limit", &o.limit, &err)) continue;
        if (cli_flag_int(argc, argv, &i, NULL, "--ef", &o.ef, &err)) continue;
        if (cli_flag_int(argc, argv, &i, NULL, "--max-new", &o.max_new, &err)) continue;
        if (cli_flag_u64(argc, argv, &i, NULL, "--seed", &o.seed, &err)) continue;
        if (cli_flag_threads(argc, argv, &i, &err)) continue;
        if (cli_adapters_flag(&o.ca, argc, argv, &i, &err)) continue;
        if (cli_flag_bool(argv, i, NULL, "--json")) {
            o.json = true;
            continue;
        }
        if (cli_flag_bool(argv, i, NULL, "--details")) {
            o.details = true;
            continue;
        }
        if (cli_flag_bool(argv, i, NULL, "--skip-unseen")) {
            o.lp.unseen_ok = true;
            continue;
        }
        v = NULL;
        if (cli_flag_str(argc, argv, &i, NULL, "--data", &v, &err)) {
            if (v) o.data[o.n_data++] = v;
            continue;
        }
        rc = cli_usage_error("eval: unknown argument '%s' (hone eval --help lists the flags)", argv[i]);
        err = true;
    }
    bool cls = !strcmp(o.task, "classify"), ret = !strcmp(o.task, "retrieval"), rag = !strcmp(o.task, "rag");
    if (o.k < 0) o.k = rag ? 5 : 10;
    if (err || rc) {
        rc = rc ? rc : 2;
    } else if (!cls && !ret && !rag) {
        rc = cli_usage_error("eval: --task %s: expected classify, retrieval or rag", o.task);
    } else if (cls) {
        if (!o.model) rc = cli_usage_error("eval: no model (-m MODEL)");
        else if (!o.run) rc = cli_usage_error("eval: no run directory (--run DIR)");
        else if (!o.n_data) rc = cli_usage_error("eval: no data (--data FILE)");
        else if (o.db || o.ca.n || o.embed_model)
            rc = cli_usage_error("eval: --task classify takes no %s",
                                 o.db ? "--db" : o.ca.n ? "--adapter" : "--embed-model");
    } else {
        if (!o.db) rc = cli_usage_error("eval: --task %s: no database (--db DIR, made by hone index)", o.task);
        else if (!o.n_data) rc = cli_usage_error("eval: --task %s: no questions (--data QA.json)", o.task);
        else if (rag && !o.model) rc = cli_usage_error("eval: --task rag: no model to answer (-m MODEL)");
        else if (ret && (o.model || o.ca.n))
            rc = cli_usage_error("eval: --task retrieval takes no %s (the database's own embedding model embeds the "
                                 "questions)", o.model ? "-m" : "--adapter");
        else if (o.run) rc = cli_usage_error("eval: --task %s takes no --run", o.task);
        else if (o.k < 1 || o.k > 1000) rc = cli_usage_error("eval: --k expects 1 to 1000, got %d", o.k);
        else if (o.limit < 0) rc = cli_usage_error("eval: --limit expects a count >= 0, got %d", o.limit);
        else if (o.ef < 0) rc = cli_usage_error("eval: --ef expects a width >= 1, got %d", o.ef);
        else if (o.max_new < 1) rc = cli_usage_error("eval: --max-new expects a count >= 1, got %d", o.max_new);
    }
    if (!rc) rc = cls ? eval_classify(&o) : eval_qa(&o, rag);
    cli_adapters_deinit(&o.ca);
    free(o.data);
    return rc;
}
