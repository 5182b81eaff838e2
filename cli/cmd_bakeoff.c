// cli/cmd_bakeoff.c — `hone bakeoff RECIPE.yaml [-o DIR]`: runs the recipe's classification methods on one dataset
// and budget (train/bakeoff.h), shows which method runs and its ETA, prints the table, and writes DIR/report.json
// and DIR/report.html.
#include "cli/cli.h"
#include "train/bakeoff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void) {
    printf("usage: hone bakeoff RECIPE.yaml [-o DIR] [--threads N]\n\n"
           "Runs several classification methods on one dataset and budget, each in its own process, and writes\n"
           "DIR/report.html (a table and the charts of accuracy against trainable parameters and against time;\n"
           "self-contained) and DIR/report.json. A method that does not apply to the model is listed, not run.\n"
           "Exit status 1 when a method failed (the report says why), 0 otherwise.\n\n"
           "The recipe (YAML; paths relative to its folder; examples/recipes/bakeoff-rt-polarity.yaml):\n"
           "  model: all-minilm-l6-v2               a pulled name or a model path\n"
           "  data: [pos.txt:pos, neg.txt:neg]      FILE or FILE:LABEL, as hone train --task classify --data\n"
           "  test: [test.jsonl]                    optional; else test_split of data (default 0.2), stratified\n"
           "  text_col: text, label_col: label      CSV/TSV columns or JSONL keys\n"
           "  seed: 42\n"
           "  budget: {max_train: 1000, max_test: 500, epochs: 0, max_len: 128, batch: 16}\n"
           "                                        a seeded stratified subsample of each set (0: all); epochs 0:\n"
           "                                        each method's default\n"
           "  methods: [head, lora, icl-0, icl-4]   method names and variant labels (see options), or all: every\n"
           "                                        variant, and every method of this build:\n"
           "                                        ");
    const hn_cls_method *ms[32];
    int n = hn_cls_method_list(ms, 32);
    for (int i = 0; i < n && i < 32; i++) printf("%s%s", i ? ", " : "", ms[i]->name);
    printf("\n"
           "  options:                              per method: epochs lr batch weight_decay shots nearest\n"
           "    lora: {rank: 8}                     label_words calibrate rank alpha last_k unfreeze_every\n"
           "    icl-0: {method: icl, shots: 0}      a variant: a method again under a label of its own\n"
           "    icl-4: {method: icl, shots: 4}      (1 to 31 of A-Z a-z 0-9 _ . -), with its own options\n\n"
           "flags:\n"
           "  -o, --output DIR   where the report goes (default: the recipe's name without .yaml, here)\n"
           "  --threads N        threads of each method (default: the physical cores)\n");
}

typedef struct {
    bool tty;
    int width;   // of the label column: the longest label (at least 8)
    double last; // when the progress line was last drawn
} display;

static void clock_text(char *buf, size_t cap, double s) {
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%d:%02d", t / 60, t % 60);
}

static void on_event(const hn_bakeoff_event *e, void *user) {
    display *d = user;
    char el[32], eta[32];
    if (e->kind == HN_BAKEOFF_PROGRESS || e->kind == HN_BAKEOFF_START) {
        if (!d->tty || (e->kind == HN_BAKEOFF_PROGRESS && hn_now() - d->last < 0.1)) return;
        d->last = hn_now();
        clock_text(el, sizeof el, e->method_s);
        fprintf(stderr, "\r\033[K[%d/%d] %-*s", e->index + 1, e->count, d->width, e->label);
        if (e->phase && e->total > 0) {
            fprintf(stderr, " %s %lld/%lld", e->phase, (long long)e->done, (long long)e->total);
            if (e->done > 0 && e->done < e->total) {
                clock_text(eta, sizeof eta, e->phase_s / e->done * (e->total - e->done));
                fprintf(stderr, "  ETA %s", eta);
            }
        } else if (e->phase) {
            fprintf(stderr, " %s", e->phase);
        }
        fprintf(stderr, "  (%s)", el);
        fflush(stderr);
        return;
    }
    if (d->tty) fprintf(stderr, "\r\033[K");
    if (e->kind == HN_BAKEOFF_LOG) {
        fprintf(stderr, "hone: warning: %s: %s\n", e->label, e->text);
        return;
    }
    const hn_bakeoff_row *r = e->row;
    fprintf(stderr, "[%d/%d] %-*s ", e->index + 1, e->count, d->width, e->label);
    if (r->state == HN_BAKEOFF_RAN) {
        clock_text(el, sizeof el, r->train_s + r->eval_s);
        fprintf(stderr, "accuracy %.4f  macro-F1 %.4f  %lld trainable  %s\n", r->accuracy, r->macro_f1,
                (long long)r->n_trainable, el);
    } else {
        fprintf(stderr, "%s: %s\n", hn_bakeoff_state_name(r->state), r->message);
    }
}

static void print_table(const hn_bakeoff *b) {
    int w = 10;
    for (int i = 0; i < b->r->n_methods; i++)
        if ((int)strlen(b->rows[i].label) > w) w = (int)strlen(b->rows[i].label);
    printf("%-*s %-15s %8s %8s %12s %9s %10s\n", w, "method", "status", "accuracy", "macro-F1", "trainable",
           "peak MiB", "seconds");
    for (int i = 0; i <= b->r->n_methods; i++) {
        const hn_bakeoff_row *r = i < b->r->n_methods ? &b->rows[i] : &b->baseline;
        printf("%-*s %-15s ", w, r->label, hn_bakeoff_state_name(r->state));
        if (r->state == HN_BAKEOFF_RAN)
            printf("%8.4f %8.4f %12lld %9.0f %10.1f\n", r->accuracy, r->macro_f1, (long long)r->n_trainable,
                   r->peak_rss / 1048576.0, r->train_s + r->eval_s);
        else if (r->state == HN_BAKEOFF_BASELINE)
            printf("%8.4f %8.4f %12d %9s %10s\n", r->accuracy, r->macro_f1, 0, "-", "-");
        else printf("%8s %8s %12s %9s %10s\n", "-", "-", "-", "-", "-");
    }
}

int cmd_bakeoff(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *recipe = NULL, *out = NULL;
    bool err = false;
    for (int i = 1; i < argc && !err; i++) {
        if (cli_flag_str(argc, argv, &i, "-o", "--output", &out, &err)) continue;
        if (cli_flag_threads(argc, argv, &i, &err)) continue;
        if (argv[i][0] == '-' || recipe)
            return cli_usage_error("bakeoff: unexpected argument '%s' (hone bakeoff --help)", argv[i]);
        recipe = argv[i];
    }
    if (err) return 2;
    if (!recipe) return cli_usage_error("bakeoff: no recipe (hone bakeoff RECIPE.yaml [-o DIR])");
    char *dir = NULL;
    if (!out) { // the recipe's name without its folder and extension
        const char *base = strrchr(recipe, '/') ? strrchr(recipe, '/') + 1 : recipe, *dot = strrchr(base, '.');
        dir = strndup(base, dot && dot > base ? (size_t)(dot - base) : strlen(base));
        if (!dir) return cli_usage_error("out of memory");
        if (!*dir || !strcmp(dir, ".") || !strcmp(dir, "..")) {
            free(dir);
            return cli_usage_error("bakeoff: no name for the report's folder in '%s': give one with -o DIR", recipe);
        }
        out = dir;
    }
    hn_bakeoff_recipe r;
    hn_bakeoff b = {0};
    hn_status s = hn_bakeoff_recipe_load(&r, recipe);
    if (s) {
        free(dir);
        return cli_fail();
    }
    if (!(s = hn_bakeoff_prepare(&b, &r))) {
        fprintf(stderr, "bakeoff: %s (%s) on %d training and %d test examples, %d classes; %d method%s\n",
                b.model_name[0] ? b.model_name : r.model, b.model_arch, b.train.n, b.test.n, b.train.n_classes,
                r.n_methods, r.n_methods == 1 ? "" : "s");
        display d = {.tty = isatty(2) == 1, .width = 8};
        for (int i = 0; i < r.n_methods; i++)
            if ((int)strlen(r.methods[i].label) > d.width) d.width = (int)strlen(r.methods[i].label);
        s = hn_bakeoff_run(&b, on_event, &d);
    }
    if (!s) s = hn_bakeoff_write(&b, out);
    int rc = 0;
    if (s) {
        rc = cli_fail();
    } else {
        print_table(&b);
        int failed = 0;
        for (int i = 0; i < r.n_methods; i++) failed += b.rows[i].state == HN_BAKEOFF_FAILED;
        printf("report: %s/report.html (and report.json)\n", out);
        if (failed) {
            fprintf(stderr, "hone: %d of %d methods failed (their rows in %s/report.html say why)\n", failed,
                    r.n_methods, out);
            rc = 1;
        }
    }
    if (b.r) hn_bakeoff_deinit(&b);
    hn_bakeoff_recipe_deinit(&r);
    free(dir);
    return rc;
}
