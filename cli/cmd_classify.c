// cli/cmd_classify.c — `hone classify -m MODEL --run DIR TEXT...`: the label of each text by a classification run,
// one line each: LABEL<TAB>PROBABILITY<TAB>TEXT. A TEXT of "-" reads texts from stdin, one a line.
#include "cli/cli.h"
#include "cli/cls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: hone classify -m MODEL --run DIR TEXT... (- reads texts from stdin, one a line)\n\n"
           "Labels each TEXT with the classification run in DIR (made by hone train --task classify); prints\n"
           "LABEL, its probability and the text, tab-separated, one line per text.\n");
}

// Appends the lines of stdin to texts (owned copies recorded in owned).
static hn_status read_stdin(char ***texts, int *n, int *cap, char ***owned, int *n_owned) {
    char *line = NULL;
    size_t lc = 0;
    ssize_t len;
    while ((len = getline(&line, &lc, stdin)) >= 0) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len) continue;
        if (*n == *cap) {
            int nc = *cap * 2 + 16;
            char **t = realloc(*texts, (size_t)nc * sizeof *t), **o;
            if (!t) return free(line), hn_fail(HN_ERR_NOMEM, "out of memory");
            *texts = t;
            if (!(o = realloc(*owned, (size_t)nc * sizeof *o)))
                return free(line), hn_fail(HN_ERR_NOMEM, "out of memory");
            *owned = o, *cap = nc;
        }
        char *c = strdup(line);
        if (!c) return free(line), hn_fail(HN_ERR_NOMEM, "out of memory");
        (*owned)[(*n_owned)++] = c;
        (*texts)[(*n)++] = c;
    }
    free(line);
    return HN_OK;
}

int cmd_classify(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *model = NULL, *run = NULL;
    int cap = argc, n = 0, n_owned = 0, rc = 0;
    char **texts = calloc((size_t)cap, sizeof *texts), **owned = calloc((size_t)cap, sizeof *owned);
    bool err = false, from_stdin = false;
    if (!texts || !owned) err = true, rc = cli_usage_error("out of memory");
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag_str(argc, argv, &i, "-m", "--model", &model, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--run", &run, &err)) continue;
        if (cli_flag_threads(argc, argv, &i, &err)) continue;
        if (!strcmp(argv[i], "-")) from_stdin = true;
        else if (argv[i][0] == '-' && argv[i][1] && strcmp(argv[i], "--"))
            err = true, rc = cli_usage_error("classify: unknown flag '%s' (hone classify --help)", argv[i]);
        else if (!strcmp(argv[i], "--"))
            while (++i < argc) texts[n++] = argv[i];
        else texts[n++] = argv[i];
    }
    if (!err && !model) rc = cli_usage_error("classify: no model (-m MODEL)");
    else if (!err && !run) rc = cli_usage_error("classify: no run directory (--run DIR)");
    else if (!err && !n && !from_stdin) rc = cli_usage_error("classify: no text (give TEXT... or - for stdin)");
    if (err || rc) {
        free(texts), free(owned);
        return rc ? rc : 2;
    }
    cli_cls_run r = {0};
    int32_t *pred = NULL;
    float *prob = NULL;
    hn_status s = from_stdin ? read_stdin(&texts, &n, &cap, &owned, &n_owned) : HN_OK;
    if (!s) s = cli_cls_open(&r, model, run);
    if (!s && n) {
        pred = hn_calloc((size_t)n, sizeof *pred, "predictions");
        prob = hn_calloc((size_t)n, sizeof *prob, "predictions");
        s = pred && prob ? cli_cls_predict(r.me, r.m, r.state, (const char *const *)texts, n, r.n_classes, pred, prob)
                         : HN_ERR_NOMEM;
        for (int i = 0; !s && i < n; i++) printf("%s\t%.4f\t%s\n", r.classes[pred[i]], (double)prob[i], texts[i]);
    }
    if (s) rc = cli_fail();
    if (r.m) cli_cls_close(&r);
    free(pred), free(prob);
    for (int i = 0; i < n_owned; i++) free(owned[i]);
    free(texts), free(owned);
    return rc;
}
