// train/cls_metrics.c — accuracy, macro-F1 and the confusion matrix of a classification (train/classify.h).
//
// Macro-F1 follows scikit-learn's f1_score(average="macro"): the classes averaged over are those that occur in the
// gold labels or the predictions (a class of the list that neither holds does not count), and a class whose F1 is
// undefined (never predicted, or never gold) counts as 0. Per class F1 = 2 tp / (2 tp + fp + fn), which is
// 2 P R / (P + R) whenever both are defined and 0 in the undefined cases sklearn sets to 0.
#include "train/classify.h"

#include <stdlib.h>
#include <string.h>

hn_status hn_cls_metrics_compute(hn_cls_metrics *mt, const int32_t *pred, const int32_t *gold, int n,
                                 int n_classes) {
    memset(mt, 0, sizeof *mt);
    if (n_classes < 1) return hn_fail(HN_ERR_ARG, "metrics: %d classes", n_classes);
    for (int i = 0; i < n; i++)
        if (pred[i] < 0 || pred[i] >= n_classes || gold[i] < 0 || gold[i] >= n_classes)
            return hn_fail(HN_ERR_ARG, "metrics: example %d has label %d / prediction %d, outside [0, %d)", i,
                           gold[i], pred[i], n_classes);
    size_t cells;
    if (!hn_mul_ok((size_t)n_classes, (size_t)n_classes, &cells))
        return hn_fail(HN_ERR_RANGE, "metrics: too many classes");
    mt->confusion = hn_calloc(cells, sizeof *mt->confusion, "confusion matrix");
    if (!mt->confusion) return HN_ERR_NOMEM;
    mt->n_classes = n_classes, mt->n = n;
    int64_t right = 0;
    for (int i = 0; i < n; i++) {
        mt->confusion[(size_t)gold[i] * (size_t)n_classes + (size_t)pred[i]]++;
        right += pred[i] == gold[i];
    }
    mt->accuracy = n ? (double)right / n : 0;
    double f1_sum = 0;
    int present = 0;
    for (int c = 0; c < n_classes; c++) {
        int64_t tp = mt->confusion[(size_t)c * (size_t)n_classes + (size_t)c], row = 0, col = 0;
        for (int k = 0; k < n_classes; k++) {
            row += mt->confusion[(size_t)c * (size_t)n_classes + (size_t)k]; // gold c
            col += mt->confusion[(size_t)k * (size_t)n_classes + (size_t)c]; // predicted c
        }
        if (!row && !col) continue;
        int64_t fn = row - tp, fp = col - tp;
        f1_sum += 2.0 * (double)tp / (double)(2 * tp + fp + fn);
        present++;
    }
    mt->macro_f1 = present ? f1_sum / present : 0;
    return HN_OK;
}

void hn_cls_metrics_deinit(hn_cls_metrics *mt) {
    free(mt->confusion);
    memset(mt, 0, sizeof *mt);
}
