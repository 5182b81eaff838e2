// cli/cmd_bakeoff.c — `hone bakeoff RECIPE.yaml [-o DIR]`: runs the recipe's methods (classification, or generation
// with every parameter-efficient method) on one dataset and budget (train/bakeoff.h), shows which method runs and
// its ETA, prints the table, and writes DIR/report.json and DIR/report.html.
#include "cli/cli.h"
#include "adapt/method.h"
#include "train/bakeoff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void) {
    printf("usage: hone bakeoff RECIPE.yaml [-o DIR] [--threads N]\n\n"
           "Runs several methods on one dataset and budget, each in its own process, and writes DIR/report.html\n"
           "(a table and charts of the score against trainable parameters and against time; self-contained) and\n"
           "DIR/report.json. A method that does not apply to the model is listed, not run. Exit status 1 when a\n"
           "method failed (the report says why), 0 otherwise.\n\n"
           "task: classify (the default; examples/recipes/bakeoff-rt-polarity.yaml). The recipe (YAML; paths\n"
           "relative to its folder):\n"
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
           "task: generate (examples/recipes/bakeoff-sft-qa.yaml): every parameter-efficient method trained by SFT,\n"
           "scored by held-out loss and by exact match of greedy answers to short questions; the row base is the\n"
           "untrained model. Keys as above, except text_col and label_col, and:\n"
           "  data: [train.jsonl]                   SFT files as hone train reads them, or SQuAD JSON (context +\n"
           "                                        question -> answer)\n"
           "  test: [val.jsonl]                     held-out SFT files; else test_split of data (SQuAD: by article)\n"
           "  qa: [questions.jsonl]                 {\"prompt\", \"answer\"} JSONL, alpaca or SQuAD; default: the\n"
           "                                        held-out SQuAD questions\n"
           "  format: auto                          or squad, text, prompt_completion, alpaca, messages, sharegpt\n"
           "  budget: {max_train: 300, max_test: 100, max_qa: 100, epochs: 1, max_steps: 0, max_len: 512,\n"
           "           batch: 4, max_new_tokens: 32}\n"
           "  methods: all                          of: lora, dora, ia3, prompt-tuning, p-tuning, prefix-tuning,\n"
           "                                        adapter-houlsby, adapter-pfeiffer (this build has: %s)\n"
           "  options:                              per method: epochs max_steps lr batch weight_decay\n"
           "    lora: {rank: 8, alpha: 16}          warmup_ratio rank alpha dropout target_modules\n"
           "    pt-50: {method: prompt-tuning,      num_virtual_tokens reduction_factor, or any hone train key\n"
           "            num_virtual_tokens: 50}     of lora., prompt., ia3., adapter.\n\n"
           "flags:\n"
           "  -o, --output DIR   where the report goes (default: the recipe's name without .yaml, here)\n"
           "  --threads N        threads of each method (default: the physical cores)\n",
           hn_method_names());
}

typedef struct {
    bool tty, gen;
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
    if (d->gen && (r->state == HN_BAKEOFF_RAN || r->state == HN_BAKEOFF_BASELINE)) {
        clock_text(el, sizeof el, r->train_s + r->eval_s + r->qa_s);
        fprintf(stderr, "exact match %.4f (%d)  held-out loss %.4f  %lld trainable  %s\n", r->exact_match,
                r->qa_correct, r->val_loss, (long long)r->n_trainable, el);
    } else if (r->state == HN_BAKEOFF_RAN) {
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
    if (b->r->task == HN_BAKEOFF_GENERATE) {
        printf("%-*s %-15s %11s %13s %12s %9s %10s\n", w, "method", "status", "exact-match", "held-out-loss",
               "trainable", "peak MiB", "seconds");
        for (int i = 0; i <= b->r->n_methods; i++) {
            const hn_bakeoff_row *r = i < b->r->n_methods ? &b->rows[i] : &b->baseline;
            printf("%-*s %-15s ", w, r->label, hn_bakeoff_state_name(r->state));
            if (r->state == HN_BAKEOFF_RAN || r->state == HN_BAKEOFF_BASELINE)
                printf("%11.4f %13.4f %12lld %9.0f %10.1f\n", r->exact_match, r->val_loss, (long long)r->n_trainable,
                       r->peak_rss / 1048576.0, r->train_s + r->eval_s + r->qa_s);
            else printf("%11s %13s %12s %9s %10s\n", "-", "-", "-", "-", "-");
        }
        return;
    }
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
        if (r.task == HN_BAKEOFF_GENERATE)
            fprintf(stderr, "bakeoff: %s (%s) on %d training and %d held-out examples, %d questions; %d method%s and "
                    "the base model\n", b.model_name[0] ? b.model_name : r.model, b.model_arch, b.gen.train.n,
                    b.gen.test.n, b.gen.qa.n, r.n_methods, r.n_methods == 1 ? "" : "s");
        else
            fprintf(stderr, "bakeoff: %s (%s) on %d training and %d test examples, %d classes; %d method%s\n",
                    b.model_name[0] ? b.model_name : r.model, b.model_arch, b.train.n, b.test.n, b.train.n_classes,
                    r.n_methods, r.n_methods == 1 ? "" : "s");
        display d = {.tty = isatty(2) == 1, .gen = r.task == HN_BAKEOFF_GENERATE, .width = 8};
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
