// cli/cmd_train.c — `hone train RECIPE.yaml [--set key=value]... [flags]`, or the recipe-free form with flags.
//
// The configuration is built in command-line order over the defaults: the recipe first (wherever it stands), then
// every flag and --set as given, so a later one wins. The flags are the key table's (train/config.h): a flag is a
// key's short name on the command line, parsed and checked exactly as that key in a recipe.
#include "cli/cli.h"
#include "train/config.h"

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
           "       hone train --help-recipe\n\n"
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

int cmd_train(int argc, char **argv) {
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
        // The trainer (train/trainer.c) is wired in here when it lands.
        fprintf(stderr, "hone: train: the training engine is not built yet\n");
        rc = 1;
    }
    hn_train_config_deinit(&c);
    return rc;
}
