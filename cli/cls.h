// cli/cls.h — what `hone train --task classify`, `hone eval` and `hone classify` share: predictions in chunks,
// the metrics table, the classification branch of `hone train`.
#ifndef HN_CLI_CLS_H
#define HN_CLI_CLS_H

#include "train/classify.h"

#include <stdio.h>

// The predicted class (argmax, ties to the lower class) of each of n texts, and optionally its probability.
hn_status cli_cls_predict(const hn_cls_method *me, hn_model *m, void *state, const char *const *texts, int n,
                          int n_classes, int32_t *pred, float *prob);
// Accuracy, macro-F1 and the confusion matrix as text.
void cli_cls_print_metrics(FILE *f, const hn_cls_metrics *mt, char *const *classes);
// Loads MODEL and the run in DIR (classify.json checked against the model, then the method's own files).
typedef struct {
    hn_model *m;
    const hn_cls_method *me;
    void *state;
    char *method, **classes;
    int n_classes;
} cli_cls_run;
hn_status cli_cls_open(cli_cls_run *r, const char *model, const char *dir);
void cli_cls_close(cli_cls_run *r);
// `hone train --task classify ...` (argv as cmd_train got it).
int cmd_train_classify(int argc, char **argv);

#endif
