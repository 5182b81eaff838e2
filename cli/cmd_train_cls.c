// cli/cmd_train_cls.c — `hone train --task classify --method NAME --data FILE... -o DIR`: loads the labelled data,
// holds out a validation part (--val FILE or --val-split F), trains the method, saves it and classify.json into
// DIR, and prints the validation accuracy and macro-F1.
#include "cli/cli.h"
#include "cli/cls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void help(void) {
    printf("usage: hone train --task classify -m MODEL --method NAME --data FILE... -o DIR [flags]\n\n"
           "Trains a text classifier on MODEL and writes it with classify.json into DIR (for hone eval and\n"
           "hone classify). FILE is JSONL {\"text\", \"label\"}, a .csv / .tsv with a header row, or FILE:LABEL for a\n"
           "plain-text file of one example a line (--data pos.txt:pos --data neg.txt:neg).\n\n"
           "flags:\n"
           "  -m, --model MODEL         the base model\n"
           "  --method NAME             the method, one of:\n");
    const hn_cls_method *ms[32];
    int n = hn_cls_method_list(ms, 32);
    for (int i = 0; i < n && i < 32; i++) printf("      %-16s %s\n", ms[i]->name, ms[i]->about);
    printf("  --data FILE[:LABEL]       training data (repeatable)\n"
           "  --val FILE[:LABEL]        validation data (repeatable; default: --val-split of the training data)\n"
           "  --val-split F             fraction held out for validation, stratified (default 0.2; 0: none)\n"
           "  --text-col C, --label-col L   CSV/TSV columns or JSONL keys (default text / label)\n"
           "  --shots K                 icl: examples in the prompt (default 4; 0: zero-shot)\n"
           "  --nearest                 icl: the K nearest training examples by embedding (default: random)\n"
           "  --label-words W           icl: a class's words, 'pos=great|good' (repeatable)\n"
           "  --epochs N, --lr X, --batch N, --weight-decay X   trained methods (default: the method's; epochs 3\n"
           "                            and lr 1e-3 unless it names others: head 40 epochs, as its epochs run on\n"
           "                            pooled states computed once; methods that train the body's weights a\n"
           "                            smaller lr)\n"
           "  --no-head-first           methods that train the body (last-k, gradual, bitfit, full, lora): do not\n"
           "                            fit the head on the frozen model first (linear probing, then fine-tuning)\n"
           "  --last-k K                last-k: the blocks unfrozen from the top (default 2)\n"
           "  --unfreeze-every N        gradual: optimizer steps between unfreezing one more block (default 50)\n"
           "  --max-len N               tokens per text (default 128)\n"
           "  --rank R, --alpha X       LoRA rank and alpha (default 8, 16)\n"
           "  --seed S                  seed of the split, the data order and the initialisation (default 42)\n"
           "  -o, --output DIR          the run directory\n");
}

int cmd_train_classify(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char **data = calloc((size_t)argc, sizeof *data), **val = calloc((size_t)argc, sizeof *val);
    const char **words = calloc((size_t)argc, sizeof *words);
    if (!data || !val || !words) {
        free(data), free(val), free(words);
        return cli_usage_error("out of memory");
    }
    int n_data = 0, n_val = 0, n_words = 0;
    const char *model = NULL, *method = NULL, *out = NULL, *task = NULL, *v = NULL;
    float val_split = 0.2f;
    hn_cls_options o = hn_cls_default_options();
    hn_cls_load_params lp = hn_cls_load_default_params();
    bool err = false;
    int rc = 0;
    for (int i = 1; i < argc && !err; i++) {
        const char *a = argv[i];
        if (cli_flag_str(argc, argv, &i, NULL, "--task", &task, &err)) continue;
        if (cli_flag_str(argc, argv, &i, "-m", "--model", &model, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--method", &method, &err)) continue;
        if (cli_flag_str(argc, argv, &i, "-o", "--output", &out, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--text-col", &lp.text_col, &err)) continue;
        if (cli_flag_str(argc, argv, &i, NULL, "--label-col", &lp.label_col, &err)) continue;
        if (cli_flag_float(argc, argv, &i, NULL, "--val-split", &val_split, &err)) continue;
        if (cli_flag_int(argc, argv, &i, NULL, "--shots", &o.shots, &err)) continue;
        if (cli_flag_int(argc, argv, &i, NULL, "--epochs", &o.epochs, &err)) continue;
        if (cli_flag_int(argc, argv, &i, NULL, "--batch", &o.batch, &err)) continue;
        if (cli_flag_int(argc, argv, &i, NULL, "--max-len", &o.max_len, &err)) continue;
        if (cli_flag_int(argc, argv, &i, NULL, "--rank", &o.lora_r, &err)) continue;
        if (cli_flag_int(argc, argv, &i, NULL, "--last-k", &o.last_k, &err)) continue;
        if (cli_flag_int(argc, argv, &i, NULL, "--unfreeze-every", &o.unfreeze_every, &err)) continue;
        if (cli_flag_float(argc, argv, &i, NULL, "--alpha", &o.lora_alpha, &err)) continue;
        if (cli_flag_float(argc, argv, &i, NULL, "--lr", &o.lr, &err)) continue;
        if (cli_flag_float(argc, argv, &i, NULL, "--weight-decay", &o.weight_decay, &err)) continue;
        if (cli_flag_u64(argc, argv, &i, NULL, "--seed", &o.seed, &err)) continue;
        if (cli_flag_threads(argc, argv, &i, &err)) continue;
        if (cli_flag_bool(argv, i, NULL, "--nearest")) {
            o.nearest = true;
            continue;
        }
        if (cli_flag_bool(argv, i, NULL, "--no-head-first")) {
            o.no_head_first = true;
            continue;
        }
        v = NULL;
        if (cli_flag_str(argc, argv, &i, NULL, "--data", &v, &err)) {
            if (v) data[n_data++] = v;
            continue;
        }
        if (cli_flag_str(argc, argv, &i, NULL, "--val", &v, &err)) {
            if (v) val[n_val++] = v;
            continue;
        }
        if (cli_flag_str(argc, argv, &i, NULL, "--label-words", &v, &err)) {
            if (v) words[n_words++] = v;
            continue;
        }
        rc = cli_usage_error("train --task classify: unknown argument '%s' (hone train --task classify --help)", a);
        err = true;
    }
    if (!err && (!task || strcmp(task, "classify")))
        rc = cli_usage_error("train: --task %s: this is the classification branch", task ? task : "(none)");
    else if (!err && !model) rc = cli_usage_error("train --task classify: no model (-m MODEL)");
    else if (!err && !method) rc = cli_usage_error("train --task classify: no method (--method NAME)");
    else if (!err && !n_data) rc = cli_usage_error("train --task classify: no data (--data FILE)");
    else if (!err && !out) rc = cli_usage_error("train --task classify: no run directory (-o DIR)");
    else if (!err && (val_split < 0 || val_split >= 1))
        rc = cli_usage_error("--val-split expects a fraction in [0, 1), got %g", (double)val_split);
    else if (!err && (o.epochs < 0 || o.batch < 1 || o.max_len < 1 || o.shots < 0 || o.lora_r < 1 || o.lr < 0 ||
                      o.last_k < 1 || o.unfreeze_every < 1))
        rc = cli_usage_error("train --task classify: --batch, --max-len, --rank, --last-k and --unfreeze-every must "
                             "be positive, --epochs, --lr and --shots 0 or more (0: the method's default)");
    const hn_cls_method *me = NULL;
    if (!err && !rc && !(me = hn_cls_method_find(method))) rc = cli_usage_error("%s", hn_errmsg());
    if (me) hn_cls_resolve_options(me, &o); // epochs and lr the user left at 0
    if (err || rc) {
        free(data), free(val), free(words);
        return rc ? rc : 2;
    }
    o.label_words = n_words ? words : NULL;
    o.n_label_words = n_words;
    o.run_dir = out;
    o.threads = hn_threads_get();

    hn_model *m = NULL;
    hn_cls_data d = {0}, vd = {0};
    void *st = NULL;
    int32_t *pred = NULL;
    hn_cls_metrics mt = {0};
    hn_status s = hn_model_load(&m, model, NULL);
    if (!s) s = me->applies(m);
    if (!s) s = hn_cls_data_load(&d, data, n_data, &lp);
    if (!s && n_val) {
        hn_cls_load_params vp = lp;
        vp.classes = (const char *const *)d.classes, vp.n_classes = d.n_classes;
        s = hn_cls_data_load(&vd, val, n_val, &vp);
    } else if (!s && val_split > 0)
        s = hn_cls_data_split(&d, &vd, val_split, o.seed);
    if (s) goto done;
    fprintf(stderr, "data: %d training examples, %d classes (", d.n, d.n_classes);
    for (int c = 0; c < d.n_classes; c++) fprintf(stderr, "%s%s", c ? ", " : "", d.classes[c]);
    fprintf(stderr, "), %d for validation\n", vd.n);
    if ((s = hn_mkdir_p(out))) goto done;
    double t0 = hn_now();
    if ((s = me->train(m, &d, vd.n ? &vd : NULL, &o, &st))) goto done;
    if ((s = me->save(m, st, out)) || (s = hn_cls_run_write(out, m, me->name, &d, &o))) goto done;
    fprintf(stderr, "trained %s in %.1f s (%lld trainable values); run: %s/classify.json\n", me->name, hn_now() - t0,
            (long long)me->n_trainable(st), out);
    if (vd.n) {
        if (!(pred = hn_calloc((size_t)vd.n, sizeof *pred, "predictions"))) {
            s = HN_ERR_NOMEM;
            goto done;
        }
        if ((s = cli_cls_predict(me, m, st, (const char *const *)vd.texts, vd.n, vd.n_classes, pred, NULL))) goto done;
        if ((s = hn_cls_metrics_compute(&mt, pred, vd.labels, vd.n, vd.n_classes))) goto done;
        printf("validation: accuracy %.4f, macro-F1 %.4f (%d examples)\n", mt.accuracy, mt.macro_f1, vd.n);
    }
done:
    rc = s ? cli_fail() : 0;
    hn_cls_metrics_deinit(&mt);
    free(pred);
    if (st) me->free(st);
    hn_cls_data_deinit(&vd), hn_cls_data_deinit(&d);
    hn_model_destroy(m);
    free(data), free(val), free(words);
    return rc;
}
