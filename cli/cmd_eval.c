// cli/cmd_eval.c — `hone eval -m MODEL --run DIR --data FILE... --task classify [--json]`: a classification run on
// labelled data, scored as accuracy, macro-F1 and the confusion matrix.
#include "cli/cli.h"
#include "cli/cls.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: hone eval -m MODEL --run DIR --data FILE... [--task classify] [--json]\n\n"
           "Scores the classification run in DIR (made by hone train --task classify) on labelled data: accuracy,\n"
           "macro-F1 and the confusion matrix. FILE is as for hone train (JSONL, .csv / .tsv, FILE:LABEL).\n\n"
           "flags:\n"
           "  -m, --model MODEL     the base model the run was trained on\n"
           "  --run DIR             the run directory\n"
           "  --data FILE[:LABEL]   evaluation data (repeatable)\n"
           "  --text-col C, --label-col L   CSV/TSV columns or JSONL keys (default text / label)\n"
           "  --skip-unseen         count and skip examples whose label is not one of the run's classes (default:\n"
           "                        an error)\n"
           "  --json                one JSON object: accuracy, macro_f1, n, classes, confusion\n");
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
    char *text = j ? json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) return cli_fail();
    printf("%s\n", text);
    free(text);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char **data = calloc((size_t)argc, sizeof *data);
    if (!data) return cli_usage_error("out of memory");
    int n_data = 0, rc = 0;
    const char *model = NULL, *run = NULL, *task = "classify", *v;
    hn_cls_load_params lp = hn_cls_load_default_params();
    bool json = false, err = false;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag_str(argc, argv, &i, "-m", "--model", &model, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--run", &run, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--task", &task, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--text-col", &lp.text_col, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--label-col", &lp.label_col, &err)) continue;
        if (cli_flag_threads(argc, argv, &i, &err)) continue;
        if (cli_flag_bool(argv, i, NULL, "--json")) {
            json = true;
            continue;
        }
        if (cli_flag_bool(argv, i, NULL, "--skip-unseen")) {
            lp.unseen_ok = true;
            continue;
        }
        v = NULL;
        if (cli_flag_str(argc, argv, &i, NULL, "--data", &v, &err)) {
            if (v) data[n_data++] = v;
            continue;
        }
        rc = cli_usage_error("eval: unknown argument '%s' (hone eval --help lists the flags)", argv[i]);
        err = true;
    }
    if (!err && strcmp(task, "classify")) rc = cli_usage_error("eval: --task %s: only classify is evaluated", task);
    else if (!err && !model) rc = cli_usage_error("eval: no model (-m MODEL)");
    else if (!err && !run) rc = cli_usage_error("eval: no run directory (--run DIR)");
    else if (!err && !n_data) rc = cli_usage_error("eval: no data (--data FILE)");
    if (err || rc) {
        free(data);
        return rc ? rc : 2;
    }
    cli_cls_run r = {0};
    hn_cls_data d = {0};
    int32_t *pred = NULL;
    hn_cls_metrics mt = {0};
    hn_status s = cli_cls_open(&r, model, run);
    if (!s) {
        lp.classes = (const char *const *)r.classes, lp.n_classes = r.n_classes;
        s = hn_cls_data_load(&d, data, n_data, &lp);
    }
    if (!s && !(pred = hn_calloc((size_t)d.n, sizeof *pred, "predictions"))) s = HN_ERR_NOMEM;
    if (!s) s = cli_cls_predict(r.me, r.m, r.state, (const char *const *)d.texts, d.n, d.n_classes, pred, NULL);
    if (!s) s = hn_cls_metrics_compute(&mt, pred, d.labels, d.n, d.n_classes);
    if (s) rc = cli_fail();
    else if (json) rc = print_json(&mt, &r);
    else cli_cls_print_metrics(stdout, &mt, r.classes);
    hn_cls_metrics_deinit(&mt);
    free(pred);
    hn_cls_data_deinit(&d);
    if (r.m) cli_cls_close(&r);
    free(data);
    return rc;
}
