// tests/test_cls_metrics.c — accuracy, macro-F1 and the confusion matrix (train/cls_metrics.c) against
// scikit-learn's accuracy_score, f1_score(average="macro") and confusion_matrix on the same cases
// (tools/reference/cls_metrics_ref.py prints the numbers of the table), and bad labels refused.
#include "test.h"
#include "train/classify.h"

#include <math.h>
#include <string.h>

typedef struct {
    const char *name;
    int k, n;
    int32_t gold[8], pred[8];
    double accuracy, macro_f1; // sklearn's
    int64_t confusion[16];     // [gold][pred], sklearn's
} mcase;

static const mcase cases[] = {
    {"perfect", 2, 4, {0, 1, 0, 1}, {0, 1, 0, 1}, 1, 1, {2, 0, 0, 2}},
    {"binary", 2, 8, {0, 0, 0, 1, 1, 1, 1, 0}, {0, 1, 0, 1, 1, 0, 1, 0}, 0.75, 0.75, {3, 1, 1, 3}},
    {"three", 3, 7, {0, 0, 1, 1, 2, 2, 2}, {0, 1, 1, 1, 2, 0, 1}, 0.5714285714285714, 0.55555555555555547,
     {1, 1, 0, 0, 2, 0, 1, 1, 1}},
    // class 2 is never predicted: its F1 is 0 and it counts in the average
    {"never_predicted", 3, 4, {0, 1, 2, 2}, {0, 1, 1, 1}, 0.5, 0.5, {1, 0, 0, 0, 1, 0, 0, 2, 0}},
    // classes 2 and 3 are neither gold nor predicted: they do not exist for the average
    {"absent_class", 4, 5, {0, 1, 0, 1, 1}, {0, 1, 1, 1, 0}, 0.59999999999999998, 0.58333333333333326,
     {1, 1, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    // class 2 is predicted but never gold: F1 0, counted
    {"predicted_never_gold", 3, 4, {0, 0, 1, 1}, {0, 2, 1, 1}, 0.75, 0.55555555555555547,
     {1, 0, 1, 0, 2, 0, 0, 0, 0}},
};

int main(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const mcase *c = &cases[i];
        hn_cls_metrics mt;
        hn_status s = hn_cls_metrics_compute(&mt, c->pred, c->gold, c->n, c->k);
        CHECK(s == HN_OK, "%s: %s", c->name, hn_errmsg());
        if (s) continue;
        CHECK(fabs(mt.accuracy - c->accuracy) < 1e-12, "%s: accuracy %.17g, sklearn %.17g", c->name, mt.accuracy,
              c->accuracy);
        CHECK(fabs(mt.macro_f1 - c->macro_f1) < 1e-12, "%s: macro-F1 %.17g, sklearn %.17g", c->name, mt.macro_f1,
              c->macro_f1);
        CHECK(mt.n == c->n && mt.n_classes == c->k, "%s: n %d classes %d", c->name, mt.n, mt.n_classes);
        CHECK(!memcmp(mt.confusion, c->confusion, (size_t)(c->k * c->k) * sizeof(int64_t)),
              "%s: confusion matrix differs from sklearn's", c->name);
        hn_cls_metrics_deinit(&mt);
    }
    // A label outside the classes is the caller's bug: refused, not read past the matrix.
    hn_cls_metrics mt;
    int32_t gold[2] = {0, 1}, bad[2] = {0, 2}, neg[2] = {-1, 0};
    CHECK(hn_cls_metrics_compute(&mt, bad, gold, 2, 2) == HN_ERR_ARG, "prediction 2 of 2 classes accepted");
    CHECK(strstr(hn_errmsg(), "outside"), "message: %s", hn_errmsg());
    CHECK(hn_cls_metrics_compute(&mt, gold, neg, 2, 2) == HN_ERR_ARG, "gold -1 accepted");
    // No examples: zeros, not NaN.
    CHECK(hn_cls_metrics_compute(&mt, gold, gold, 0, 2) == HN_OK && mt.accuracy == 0 && mt.macro_f1 == 0,
          "empty: accuracy %g macro-F1 %g", mt.accuracy, mt.macro_f1);
    hn_cls_metrics_deinit(&mt);
    return test_done();
}
