// cli/cmd_train.c — `hone train RECIPE.yaml [--set key=value]... [flags]`, or the recipe-free form with flags.
//
// The configuration is built in command-line order over the defaults: the recipe first (wherever it stands), then
// every flag and --set as given, so a later one wins. The flags are the key table's (train/config.h): a flag is a
// key's short name on the command line, parsed and checked exactly as that key in a recipe.
#include "cli/cli.h"
#include "cli/cls.h"
#include "adapt/method.h"
#include "io/adapter.h"
#include "model/model.h"
#include "train/config.h"
#include "train/lm_run.h"
#include "train/trainer.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The key whose flag argv[i] is; *val is the text after '=' in `--flag=VALUE`, else NULL.
static const hn_cfg_key *flag_key(const char *arg, const char **val) {
    *val = NULL;
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        if (!k->flag) continue;
        size_t n = strlen(k->flag);
        if (!strcmp(arg, k->flag) || (k->short_flag && !strcmp(arg, k->short_flag))) return k;
        if (!strncmp(arg, k->flag, n) && arg[n] == '=') {
            *val = arg + n + 1;
            return k;
        }
    }
    return NULL;
}

static const char *metavar(const hn_cfg_key *k, char buf[200]) {
    switch (k->type) {
    case HN_CFG_INT: return "N";
    case HN_CFG_FLOAT: return "X";
    case HN_CFG_BOOL: return "";
    case HN_CFG_LIST: return k->choices ? "A,B,..." : "FILE";
    case HN_CFG_ENUM: {
        size_t o = 0;
        buf[0] = 0;
        for (int i = 0; k->choices[i] && o < 200; i++)
            o += (size_t)snprintf(buf + o, 200 - o, "%s%s", i ? "|" : "", k->choices[i]);
        return buf;
    }
    default: return k->flags & HN_CFG_MODEL ? "MODEL" : "DIR";
    }
}

static void help(void) {
    printf("usage: hone train RECIPE.yaml [--set key=value]... [flags]\n"
           "       hone train -m MODEL --data FILE --method lora -o DIR [flags]\n"
           "       hone train --help-recipe\n"
           "       hone train --task classify -m MODEL --method NAME --data FILE... -o DIR   (--help: its flags)\n\n"
           "Fine-tunes MODEL on the examples in FILE, writing checkpoints, metrics.jsonl and the adapter into DIR.\n"
           "A recipe is a YAML file of keys (`hone train --help-recipe` lists every key with its default); flags and\n"
           "--set change keys after the recipe, in the order given. --data is repeatable.\n\n"
           "flags (each sets the recipe key beside it; hone train --help-recipe describes every key):\n");
    char buf[200], name[300];
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        if (!k->flag) continue;
        const char *mv = metavar(k, buf);
        snprintf(name, sizeof name, "%s%s%s%s%s", k->short_flag ? k->short_flag : "", k->short_flag ? ", " : "",
                 k->flag, *mv ? " " : "", strlen(mv) > 20 ? "NAME" : mv);
        printf("  %-34s sets %s\n", name, k->name);
    }
    printf("  %-34s sets any key, e.g. --set lora.dropout=0.1 or --set lora.target_modules=q_proj,v_proj\n",
           "--set KEY=VALUE");
    printf("  %-34s print the resolved configuration as a YAML recipe and exit\n", "--print-config");
    printf("  %-34s list every recipe key\n", "--help-recipe");
}

static int unknown_flag(const char *arg) {
    // "--lora-dropout" -> "lora_dropout": the key table's suggestion names a flag or a --set.
    char key[64];
    size_t n = 0;
    for (const char *p = arg + strspn(arg, "-"); *p && *p != '=' && n + 1 < sizeof key; p++)
        key[n++] = *p == '-' ? '_' : *p;
    key[n] = 0;
    const char *sug = n ? hn_train_key_suggest(key) : NULL;
    const hn_cfg_key *k = sug ? hn_train_key_find(sug) : NULL;
    if (k && k->flag) return cli_usage_error("train: unknown flag '%s' (did you mean '%s'?)", arg, k->flag);
    if (k) return cli_usage_error("train: unknown flag '%s' (did you mean '--set %s=...'?)", arg, k->name);
    return cli_usage_error("train: unknown flag '%s' (hone train --help lists the flags)", arg);
}

// Finds the recipe (the one positional argument) and refuses unknown flags and missing values.
static int scan(int argc, char **argv, const char **recipe) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--print-config") || !strcmp(a, "--help-recipe") || !strncmp(a, "--set=", 6)) continue;
        const hn_cfg_key *k = flag_key(a, &v);
        if (!strcmp(a, "--set") || (k && !v && k->type != HN_CFG_BOOL)) {
            if (i + 1 >= argc) return cli_usage_error("train: %s needs a value", a);
            i++;
        } else if (!k && a[0] == '-' && a[1]) {
            return unknown_flag(a);
        } else if (!k) {
            size_t n = strlen(a);
            if (n > 5 && !strcmp(a + n - 5, ".gguf"))
                return cli_usage_error("train: '%s' is a model, not a recipe: give it with -m", a);
            if (*recipe) return cli_usage_error("train: more than one recipe given ('%s' and '%s')", *recipe, a);
            *recipe = a;
        }
    }
    return 0;
}

// Applies the flags and --set in order. A list flag given on the command line replaces the recipe's list.
static hn_status apply(hn_train_config *c, int argc, char **argv) {
    bool replaced[128] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        hn_status s = HN_OK;
        const hn_cfg_key *k = flag_key(a, &v);
        if (!strcmp(a, "--set")) {
            s = hn_train_config_set_arg(c, argv[++i], NULL);
        } else if (!strncmp(a, "--set=", 6)) {
            s = hn_train_config_set_arg(c, a + 6, NULL);
        } else if (k && k->type == HN_CFG_BOOL) {
            s = hn_train_config_set(c, k->name, v ? v : "true", NULL, a);
        } else if (k) {
            const char *where = k->flag;
            if (!v) v = argv[++i];
            int ix = (int)(k - hn_train_keys);
            if (k->type == HN_CFG_LIST) {
                if (ix < (int)sizeof replaced && !replaced[ix]) hn_train_config_clear(c, k->name);
                replaced[ix] = true;
                if (!k->choices) {
                    s = hn_train_config_append(c, k->name, v, NULL, where); // a path may hold a comma
                } else {
                    // --target-modules q_proj,v_proj: items split on commas
                    char *copy = strdup(v), *save = NULL;
                    if (!copy) return hn_fail(HN_ERR_NOMEM, "out of memory");
                    for (char *t = strtok_r(copy, ",", &save); t && !s; t = strtok_r(NULL, ",", &save))
                        s = hn_train_config_append(c, k->name, t, NULL, where);
                    free(copy);
                }
            } else {
                s = hn_train_config_set(c, k->name, v, NULL, where);
            }
        }
        if (s) return s;
    }
    return HN_OK;
}

// ---- running a configuration

// DIR/adapter/ in the method's format (PEFT's where PEFT has the method); LoRA also as DIR/adapter.gguf
// (llama.cpp's layout). Prints where they went.
static hn_status method_save(hn_lm_run *mr, const char *out_dir) {
    size_t n = strlen(out_dir) + 32;
    char *path = hn_alloc(n, "a path");
    if (!path) return HN_ERR_NOMEM;
    snprintf(path, n, "%s/adapter", out_dir);
    hn_status s = hn_method_save(mr->me, path);
    hn_lora *lo = hn_method_as_lora(mr->me);
    hn_adapter *ad = NULL;
    if (!s && lo && !(s = hn_lora_export(lo, &ad))) {
        snprintf(path, n, "%s/adapter.gguf", out_dir);
        s = hn_lora_gguf_write(ad, path);
        hn_adapter_destroy(ad);
    }
    if (!s)
        fprintf(stderr, "adapter: %s/adapter/ (%s)%s%s; metrics: %s/metrics.jsonl\n", out_dir,
                mr->me->ops->peft_type ? "PEFT" : "hone's format", lo ? " and " : "", lo ? path : "", out_dir);
    free(path);
    return s;
}

// Values in the model's tensors (for the trainable share).
static int64_t model_values(const hn_model *m) {
    int64_t n = 0;
    for (uint64_t i = 0; i < m->gguf.n_tensors; i++) n += hn_nelem(&m->gguf.tensors[i]);
    return n;
}


// Every file of a list, described on stderr one line each, into one dataset.
static hn_status load_files(hn_dataset *ds, const hn_strlist *files, const hn_model *m, const hn_data_params *dp,
                            int max_len) {
    memset(ds, 0, sizeof *ds);
    for (int i = 0; i < files->n; i++) {
        hn_dataset one;
        hn_status s = hn_dataset_load(&one, files->items[i], m->tok, dp);
        if (s) return s;
        char line[1024];
        hn_dataset_describe(&one, max_len, line, sizeof line);
        fprintf(stderr, "%s\n", line);
        if ((s = hn_lm_dataset_append(ds, &one))) {
            hn_dataset_deinit(&one);
            return s;
        }
    }
    return HN_OK;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    interrupted = 1;
    signal(sig, SIG_DFL); // a second Ctrl-C ends the process at once
}

static int run(const hn_train_config *c) {
    hn_threads_set(c->threads);
    hn_model *m = NULL;
    hn_dataset ds = {0}, val = {0};
    hn_loader ld = {0}, lv = {0};
    hn_lm_run mr = {0};
    bool have_ld = false, have_lv = false;
    int rc = 1;
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT; // training runs the fp32 reference path
    mp.quantize = c->quantize == HN_LOAD_NF4 ? HN_NF4 : 0;
    hn_status s = hn_model_load(&m, c->model, &mp);
    if (s) goto out;
    int max_len = c->max_len;
    if (m->pos_embd && max_len > m->hp.n_ctx_train) { // learned positions (GPT-2): none past the table
        max_len = m->hp.n_ctx_train;
        fprintf(stderr, "max_len %d: the model has %d learned positions; sequences are cut to %d tokens\n",
                c->max_len, max_len, max_len);
    }

    hn_data_params dp = hn_data_default_params();
    dp.format = c->format;
    dp.max_len = max_len;
    dp.loss_all = c->loss_on == HN_LOSS_ON_ALL;
    dp.skip_bad = c->skip_bad_lines;
    dp.chat = hn_gguf_find(&m->gguf, "tokenizer.chat_template") != NULL; // base models see plain text
    dp.chat_template = m->chat;
    dp.system_prompt = m->default_system;
    if ((s = load_files(&ds, &c->data, m, &dp, max_len))) goto out;
    if (c->val_data.n) s = load_files(&val, &c->val_data, m, &dp, max_len);
    else if (c->val_split > 0) {
        s = hn_dataset_split(&ds, &val, c->val_split, (uint64_t)c->seed);
        if (!s) fprintf(stderr, "validation: %d of %d examples held out\n", val.n, ds.n + val.n);
    }
    if (s) goto out;

    hn_loader_params lp = hn_loader_default_params();
    lp.batch = c->batch_size;
    lp.seq_len = max_len;
    lp.pack = c->packing;
    lp.shuffle = c->shuffle;
    lp.seed = (uint64_t)c->seed;
    int32_t eos = hn_tokenizer_eos(m->tok);
    lp.pad_id = eos >= 0 ? eos : 0;
    if ((s = hn_loader_init(&ld, &ds, &lp))) goto out;
    have_ld = true;
    if (val.n) {
        lp.shuffle = false;
        if ((s = hn_loader_init(&lv, &val, &lp))) goto out;
        have_lv = true;
    }

    if ((s = hn_lm_run_init(&mr, m, c))) goto out;
    int64_t n_train = hn_param_count(mr.obj.params), n_model = model_values(m);
    fprintf(stderr, "training %lld values (%.3f%% of the model's %lld) in %d tensors on %d examples, %lld tokens "
            "(%lld in the loss), for %lld steps into %s\n", (long long)n_train,
            n_model ? 100.0 * (double)n_train / (double)n_model : 0.0, (long long)n_model, mr.obj.params->n, ds.n,
            (long long)ds.n_tokens, (long long)ds.n_loss_tokens, (long long)hn_train_total_steps(&ld, c),
            c->output_dir);
    if (have_lv && !c->resume) {
        double v;
        // the untrained model's (LoRA's B starts at zero)
        if ((s = hn_lm_eval_loss(&mr.obj, &lv, NULL, NULL, &v))) goto out;
        fprintf(stderr, "validation loss before training: %.4f\n", v);
    }
    hn_progress_bar bar = hn_progress_bar_init(stderr);
    hn_train_hooks hooks = {.stop = &interrupted, .progress = hn_progress_print, .user = &bar};
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    hn_train_result res;
    s = hn_train(&mr.obj, &ld, have_lv ? &lv : NULL, c, &hooks, &res);
    sigaction(SIGINT, &old, NULL);
    hn_progress_end(&bar);
    if (s) goto out;
    if (res.end == HN_TRAIN_INTERRUPTED) {
        fprintf(stderr, "hone: train: interrupted at step %lld of %lld; checkpoint in %s/checkpoint (continue with "
                "--resume)\n", (long long)res.step, (long long)res.total, c->output_dir);
        rc = 130;
        goto out;
    }
    if (res.end == HN_TRAIN_EARLY_STOPPED)
        fprintf(stderr, "early stop at step %lld: no lower validation loss in %d evaluations (best %.4f)\n",
                (long long)res.step, c->early_stopping_patience, res.best_val_loss);
    if (res.n_skipped) fprintf(stderr, "%lld steps skipped (loss not finite)\n", (long long)res.n_skipped);

    if ((s = method_save(&mr, c->output_dir))) goto out;
    rc = 0;
out:
    if (s) rc = cli_fail();
    hn_lm_run_deinit(&mr);
    if (have_lv) hn_loader_deinit(&lv);
    if (have_ld) hn_loader_deinit(&ld);
    hn_dataset_deinit(&val);
    hn_dataset_deinit(&ds);
    hn_model_destroy(m);
    return rc;
}

int cmd_train(int argc, char **argv) {
    // --task classify is the classification branch (cli/cmd_train_cls.c); --task lm, the default, is taken out here.
    for (int i = 1; i < argc; i++) {
        bool two = !strcmp(argv[i], "--task") && i + 1 < argc;
        const char *t = two ? argv[i + 1] : !strncmp(argv[i], "--task=", 7) ? argv[i] + 7 : NULL;
        if (!t) continue;
        if (!strcmp(t, "classify")) return cmd_train_classify(argc, argv);
        if (strcmp(t, "lm")) return cli_usage_error("train: --task expects lm or classify, got '%s'", t);
        int k = two ? 2 : 1;
        memmove(argv + i, argv + i + k, (size_t)(argc - i - k) * sizeof *argv);
        argc -= k, i--;
    }
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help-recipe")) {
            char *text = hn_train_config_help();
            if (!text) return cli_fail();
            fputs(text, stdout);
            free(text);
            return 0;
        }
    if (argc < 2) {
        help();
        return 2;
    }
    const char *recipe = NULL;
    int rc = scan(argc, argv, &recipe);
    if (rc) return rc;
    bool print = false;
    for (int i = 1; i < argc; i++) print |= !strcmp(argv[i], "--print-config");

    hn_train_config c;
    hn_train_config_init(&c);
    hn_status s = recipe ? hn_train_config_load(&c, recipe) : HN_OK;
    if (s == HN_OK) s = apply(&c, argc, argv);
    if (s == HN_OK) s = hn_train_config_validate(&c);
    if (s) {
        // A recipe that cannot be read is a failure (1); anything said wrongly in it or on the line is usage (2).
        rc = s == HN_ERR_IO || s == HN_ERR_NOMEM ? cli_fail() : cli_usage_error("%s", hn_errmsg());
        hn_train_config_deinit(&c);
        return rc;
    }
    if (print) {
        char *yaml = hn_train_config_to_yaml(&c);
        rc = yaml ? (fputs(yaml, stdout), 0) : cli_fail();
        free(yaml);
    } else {
        rc = run(&c);
    }
    hn_train_config_deinit(&c);
    return rc;
}
