// cli/cls.c — predictions in chunks and the metrics table, for the classification commands (cli/cls.h).
#include "cli/cls.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Texts go to the method in chunks, so that the probabilities stay small for large evaluation sets.
#define CHUNK 64

hn_status cli_cls_predict(const hn_cls_method *me, hn_model *m, void *state, const char *const *texts, int n,
                          int n_classes, int32_t *pred, float *prob) {
    float *p = hn_calloc((size_t)CHUNK * (size_t)n_classes, sizeof *p, "class probabilities");
    if (!p) return HN_ERR_NOMEM;
    hn_status s = HN_OK;
    bool show = n > CHUNK && isatty(2); // a count on the terminal while a long evaluation runs
    double t0 = hn_now();
    for (int i = 0; i < n && !s; i += CHUNK) {
        if (show && i)
            fprintf(stderr, "\rpredicting: %d of %d texts (%.0f s left)  ", i, n, (hn_now() - t0) / i * (n - i));
        int k = n - i < CHUNK ? n - i : CHUNK;
        if ((s = me->predict(m, state, texts + i, k, p))) break;
        for (int j = 0; j < k; j++) {
            const float *row = p + (size_t)j * (size_t)n_classes;
            int best = 0;
            for (int c = 1; c < n_classes; c++)
                if (row[c] > row[best]) best = c;
            pred[i + j] = best;
            if (prob) prob[i + j] = row[best];
        }
    }
    if (show) fprintf(stderr, "\r%*s\r", 60, "");
    free(p);
    return s;
}

void cli_cls_print_metrics(FILE *f, const hn_cls_metrics *mt, char *const *classes) {
    fprintf(f, "accuracy  %.4f  (%d examples)\nmacro-F1  %.4f\n", mt->accuracy, mt->n, mt->macro_f1);
    int w = 8;
    for (int c = 0; c < mt->n_classes; c++) {
        int l = (int)strlen(classes[c]);
        if (l > w) w = l < 24 ? l : 24;
    }
    fprintf(f, "confusion (rows: gold, columns: predicted)\n%*s", w, "");
    for (int c = 0; c < mt->n_classes; c++) fprintf(f, " %*.*s", w, w, classes[c]);
    fputc('\n', f);
    for (int g = 0; g < mt->n_classes; g++) {
        fprintf(f, "%-*.*s", w, w, classes[g]);
        for (int c = 0; c < mt->n_classes; c++)
            fprintf(f, " %*lld", w, (long long)mt->confusion[(size_t)g * (size_t)mt->n_classes + (size_t)c]);
        fputc('\n', f);
    }
}

hn_status cli_cls_open(cli_cls_run *r, const char *model, const char *dir) {
    memset(r, 0, sizeof *r);
    hn_status s = hn_model_load(&r->m, model, NULL);
    if (!s) s = hn_cls_run_read(dir, r->m, &r->method, &r->classes, &r->n_classes);
    if (!s && !(r->me = hn_cls_method_find(r->method)))
        s = hn_fail(HN_ERR_UNSUPPORTED, "%s: the run's method '%s' is not in this build (%s)", dir, r->method,
                    hn_errmsg());
    if (!s) s = r->me->load(r->m, dir, &r->state);
    if (s) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", hn_errmsg());
        cli_cls_close(r);
        hn_fail(s, "%s", msg);
    }
    return s;
}

void cli_cls_close(cli_cls_run *r) {
    if (r->state) r->me->free(r->state);
    for (int c = 0; c < r->n_classes; c++) free(r->classes[c]);
    free(r->classes), free(r->method);
    hn_model_destroy(r->m);
    memset(r, 0, sizeof *r);
}
