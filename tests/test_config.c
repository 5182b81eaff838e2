// tests/test_config.c — the training configuration: the key table's consistency and defaults, YAML recipes (nested
// and dotted keys, lists, relative paths), --set, unknown-key suggestions, type and range errors, YAML syntax error
// locations, recipes that are not mappings, empty and missing files, huge and deep input, validation, and the
// print -> parse round trip. Runs from the source root (recipes in tests/data/recipe_*.yaml).
#include "test.h"
#include "train/config.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char cwd[4096];

static bool has(const char *msg, const char *part) { return strstr(msg, part) != NULL; }

// Loads a recipe over the defaults; returns the status and leaves the message in hn_errmsg().
static hn_status load(hn_train_config *c, const char *path) {
    hn_train_config_init(c);
    return hn_train_config_load(c, path);
}

static hn_status load_str(const char *text) {
    hn_train_config c;
    hn_train_config_init(&c);
    hn_status s = hn_train_config_load_text(&c, text, strlen(text), "mem.yaml", "/base");
    hn_train_config_deinit(&c);
    return s;
}

static void test_table(void) {
    // Names, flags and offsets are unique; a section's keys are together (the printer opens it once); every
    // default parses (hn_train_config_init would abort) and passes validation's range checks.
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        CHECK(k->help && *k->help && !strchr(k->help, '\n'), "%s: a one-line description", k->name);
        CHECK(hn_train_key_find(k->name) == k, "%s is found", k->name);
        CHECK((k->type != HN_CFG_ENUM) || (k->choices && k->def), "%s: an enum has choices and a default", k->name);
        CHECK(!k->range || k->type == HN_CFG_INT || k->type == HN_CFG_FLOAT, "%s: ranges are for numbers", k->name);
        for (int j = 0; j < i; j++) {
            const hn_cfg_key *o = &hn_train_keys[j];
            CHECK(strcmp(k->name, o->name), "%s twice", k->name);
            CHECK(k->offset != o->offset, "%s and %s share a field", k->name, o->name);
            CHECK(!k->flag || !o->flag || strcmp(k->flag, o->flag), "flag %s twice", k->flag);
        }
        const char *dot = strchr(k->name, '.');
        if (dot)
            for (int j = 0; j + 1 < i; j++) // no earlier key of this section before a key outside it
                if (!strncmp(hn_train_keys[j].name, k->name, (size_t)(dot - k->name + 1)))
                    CHECK(!strncmp(hn_train_keys[j + 1].name, k->name, (size_t)(dot - k->name + 1)),
                          "section of %s is split", k->name);
        // No name another tool uses is also one of our keys (a suggestion would point elsewhere).
        for (const char *a = k->aka; a && *a;) {
            size_t n = strcspn(a, "|");
            char alias[64];
            snprintf(alias, sizeof alias, "%.*s", (int)n, a);
            const hn_cfg_key *o = hn_train_key_find(alias);
            CHECK(!o, "%s: aka '%s' is a key", k->name, alias);
            CHECK(!strcmp(hn_train_key_suggest(alias), k->name), "'%s' suggests %s, got %s", alias, k->name,
                  hn_train_key_suggest(alias));
            a += n + (a[n] == '|');
        }
    }

    // Each key's field is its own: setting one key changes exactly that key (offsets do not overlap).
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        hn_train_config a, b;
        hn_train_config_init(&a);
        hn_train_config_init(&b);
        // A value unlike the default: enums' defaults are their first name, no int defaults to 5.
        const char *v = k->type == HN_CFG_INT     ? "5"
                        : k->type == HN_CFG_FLOAT ? "0.125"
                        : k->type == HN_CFG_BOOL  ? (k->def && !strcmp(k->def, "true") ? "false" : "true")
                        : k->type == HN_CFG_ENUM  ? k->choices[1]
                        : k->choices              ? "o_proj"
                                                  : "/x/y";
        hn_status s = hn_train_config_set(&b, k->name, v, NULL, "test");
        CHECK(!s, "set %s=%s: %s", k->name, v, hn_errmsg());
        const char *d = hn_train_config_diff(&a, &b);
        CHECK(d && !strcmp(d, k->name), "setting %s changed %s", k->name, d ? d : "nothing");
        hn_train_config_deinit(&a);
        hn_train_config_deinit(&b);
    }
}

static void test_defaults(void) {
    hn_train_config c;
    hn_train_config_init(&c);
    CHECK(c.lora.r == 8 && c.lora.alpha == 16 && c.lora.dropout == 0.05, "PEFT-like LoRA defaults");
    CHECK(c.lora.target_modules.n == 2 && !strcmp(c.lora.target_modules.items[0], "q_proj") &&
              !strcmp(c.lora.target_modules.items[1], "v_proj"),
          "default targets q_proj, v_proj");
    CHECK(!c.lora.use_rslora && c.lora.init == HN_LORA_INIT_DEFAULT, "rslora off, PEFT init");
    CHECK(c.lr == 2e-4 && c.lr_scheduler == HN_SCHED_COSINE && c.warmup_steps == 0 && c.warmup_ratio == 0, "lr");
    CHECK(c.batch_size == 4 && c.grad_accum == 1 && c.max_len == 512 && c.epochs == 3 && c.max_steps == 0, "sizes");
    CHECK(c.adam_beta1 == 0.9 && c.adam_beta2 == 0.999 && c.adam_epsilon == 1e-8 && c.weight_decay == 0, "adam");
    CHECK(c.max_grad_norm == 1 && c.seed == 42 && c.threads == 0 && c.log_every == 1, "misc");
    CHECK(c.method == HN_METHOD_LORA && c.loss_on == HN_LOSS_ON_COMPLETION && c.nan_policy == HN_NAN_STOP, "enums");
    CHECK(c.format == HN_DATA_AUTO && c.shuffle && !c.packing && !c.resume && !c.grad_checkpointing, "flags");
    // The format key's names are the data pipeline's.
    const hn_cfg_key *fk = hn_train_key_find("format");
    for (int i = 0; i < HN_DATA_FORMAT_COUNT; i++)
        CHECK(fk && !strcmp(fk->choices[i], hn_data_format_name((hn_data_format)i)), "format %d: %s vs %s", i,
              fk->choices[i], hn_data_format_name((hn_data_format)i));
    CHECK(!c.model && !c.output_dir && c.data.n == 0 && c.val_data.n == 0, "required keys start unset");
    // The defaults alone are not a runnable configuration: the model is named first.
    CHECK(hn_train_config_validate(&c) == HN_ERR_ARG && has(hn_errmsg(), "no model given"), "%s", hn_errmsg());
    hn_train_config_deinit(&c);
}

static void test_recipes(void) {
    hn_train_config a, b;
    hn_status s = load(&a, "tests/data/recipe_basic.yaml");
    CHECK(!s, "basic recipe: %s", hn_errmsg());
    char want[8192];
    CHECK(a.model && !strcmp(a.model, "smollm2-135m-instruct"), "a model name stays a name: %s", a.model);
    snprintf(want, sizeof want, "%s/tests/data/runs/basic", cwd);
    CHECK(a.output_dir && !strcmp(a.output_dir, want), "output_dir from the recipe's directory: %s", a.output_dir);
    CHECK(a.data.n == 2, "two data files");
    snprintf(want, sizeof want, "%s/tests/data/more/extra.jsonl", cwd);
    CHECK(a.data.n == 2 && !strcmp(a.data.items[1], want), "data[1] = %s", a.data.n == 2 ? a.data.items[1] : "");
    CHECK(a.val_data.n == 1, "a scalar for a list key is a one-item list");
    CHECK(a.format == HN_DATA_MESSAGES && a.max_len == 256 && a.seed == 7 && a.lr == 1e-4, "scalars");
    CHECK(a.lr_scheduler == HN_SCHED_LINEAR && a.warmup_steps == 10 && a.epochs == 2, "schedule");
    CHECK(a.batch_size == 8 && a.grad_accum == 2 && a.packing, "yes is true");
    CHECK(a.lora.r == 16 && a.lora.alpha == 32 && a.lora.dropout == 0.1 && a.lora.use_rslora, "nested lora keys");
    CHECK(a.lora.target_modules.n == 4 && !strcmp(a.lora.target_modules.items[3], "o_proj"), "target list");
    CHECK(!hn_train_config_validate(&a), "valid: %s", hn_errmsg());

    // The same settings written dotted, flow-style, quoted and with other spellings of values.
    s = load(&b, "tests/data/recipe_dotted.yaml");
    CHECK(!s, "dotted recipe: %s", hn_errmsg());
    const char *d = hn_train_config_diff(&a, &b);
    CHECK(!d, "dotted == nested, first difference: %s", d ? d : "");
    hn_train_config_deinit(&b);

    // --set over a recipe: the same parser, paths from the current directory, null clears.
    CHECK(!hn_train_config_set_arg(&a, "lora.r=32", NULL) && a.lora.r == 32, "--set lora.r");
    CHECK(!hn_train_config_set_arg(&a, "data=x.jsonl, sub/y.jsonl", NULL) && a.data.n == 2, "--set a list");
    snprintf(want, sizeof want, "%s/sub/y.jsonl", cwd);
    CHECK(a.data.n == 2 && !strcmp(a.data.items[1], want), "--set paths from the cwd: %s", a.data.items[1]);
    CHECK(!hn_train_config_set_arg(&a, "lora.target_modules=[all-linear]", NULL) && a.lora.target_modules.n == 1 &&
              !strcmp(a.lora.target_modules.items[0], "all-linear"),
          "--set a bracketed list");
    CHECK(!hn_train_config_set_arg(&a, "lora.target_modules=Q_PROJ,q_proj,v-proj", NULL) &&
              a.lora.target_modules.n == 2 && !strcmp(a.lora.target_modules.items[1], "v_proj"),
          "choices are case- and dash-insensitive, stored canonically, once");
    CHECK(!hn_train_config_set_arg(&a, "val_data=", NULL) && a.val_data.n == 0, "--set list= empties it");
    CHECK(!hn_train_config_set_arg(&a, "model=~", NULL) && !a.model, "--set model=~ unsets");
    CHECK(!hn_train_config_set_arg(&a, "model=sub/m.gguf", NULL) && a.model && a.model[0] == '/', "a model path");
    CHECK(!hn_train_config_set_arg(&a, "model=m.gguf", NULL) && a.model && a.model[0] == '/', ".gguf is a path");
    CHECK(!hn_train_config_set_arg(&a, "lr=3e-5", NULL) && a.lr == 3e-5, "--set lr");
    CHECK(!hn_train_config_set_arg(&a, "packing=off", NULL) && !a.packing, "off is false");
    CHECK(!hn_train_config_set_arg(&a, "output_dir=/abs/run", NULL) && !strcmp(a.output_dir, "/abs/run"), "abs");
    CHECK(!hn_train_config_set_arg(&a, "output_dir=~/runs/x", NULL) && a.output_dir[0] == '/' &&
              has(a.output_dir, "/runs/x") && !has(a.output_dir, "~"),
          "~/ is the home directory: %s", a.output_dir);
    CHECK(!hn_train_config_append(&a, "data", "third,with,commas.jsonl", "/d", "--data") && a.data.n == 3 &&
              !strcmp(a.data.items[2], "/d/third,with,commas.jsonl"),
          "appending one item keeps its commas");
    // Paths are normalised lexically: "." and ".." components and doubled slashes go.
    struct {
        const char *v, *want;
    } paths[] = {{"../x/./y//z.jsonl", "/b/x/y/z.jsonl"},
                 {"/../a/", "/a"},
                 {"./a/b/../../c", "/b/c/c"},
                 {"../../../..", "/"},
                 {"/a/b/.", "/a/b"},
                 {"..a/.b", "/b/c/..a/.b"}};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        hn_status st = hn_train_config_set(&a, "output_dir", paths[i].v, "/b/c", "t");
        CHECK(!st && !strcmp(a.output_dir, paths[i].want), "%s -> %s, want %s", paths[i].v, a.output_dir,
              paths[i].want);
    }
    hn_train_config_deinit(&a);

    // An empty section is allowed; `lora: {}` is in recipe_dotted. Keys that are sections of nothing are not.
    CHECK(!load_str("lora:\nmodel: x\n"), "an empty section: %s", hn_errmsg());
}

static void test_errors(void) {
    hn_train_config c;
    struct {
        const char *file;
        hn_status status;
        const char *parts[3];
    } cases[] = {
        {"recipe_unknown_key.yaml",
         HN_ERR_ARG,
         {"recipe_unknown_key.yaml:6:3:", "unknown key 'lora.rank'", "did you mean 'lora.r'?"}},
        {"recipe_unknown_aka.yaml",
         HN_ERR_ARG,
         {"recipe_unknown_aka.yaml:2:1:", "'learning_rate'", "did you mean 'lr'?"}},
        {"recipe_type_error.yaml",
         HN_ERR_ARG,
         {"recipe_type_error.yaml:3:6:", "lora.r: expected an integer >= 1", "got 'sixteen'"}},
        {"recipe_list_for_scalar.yaml", HN_ERR_ARG, {":2:5:", "lr: expected a number > 0", "got a list"}},
        {"recipe_range.yaml", HN_ERR_ARG, {":2:12:", "lora.dropout: expected a number >= 0 and < 1", "got '1.0'"}},
        {"recipe_bad_enum.yaml", HN_ERR_ARG, {":1:15:", "one of cosine, linear, constant", "did you mean 'cosine'?"}},
        {"recipe_bad_target.yaml", HN_ERR_ARG, {":2:28:", "lora.target_modules", "got 'qkv_proj'"}},
        {"recipe_syntax.yaml",
         HN_ERR_FORMAT,
         {"recipe_syntax.yaml:4:2:", "YAML syntax error", "did not find expected key"}},
        {"recipe_unclosed.yaml", HN_ERR_FORMAT, {"recipe_unclosed.yaml:3:", "YAML syntax error", "flow sequence"}},
        {"recipe_sequence.yaml", HN_ERR_FORMAT, {"recipe_sequence.yaml:1:1:", "must be a mapping", "not a list"}},
        {"recipe_scalar.yaml", HN_ERR_FORMAT, {"recipe_scalar.yaml:1:1:", "must be a mapping", "a single value"}},
        {"recipe_empty.yaml", HN_ERR_FORMAT, {"recipe_empty.yaml:", "the recipe is empty", ""}},
        {"recipe_comment.yaml", HN_ERR_FORMAT, {"recipe_comment.yaml:", "the recipe is empty", ""}},
        {"recipe_duplicate.yaml", HN_ERR_ARG, {"recipe_duplicate.yaml:4:1:", "lora.r is given twice", "line 3"}},
        {"recipe_alias.yaml", HN_ERR_FORMAT, {"recipe_alias.yaml:2:11:", "aliases", "*files"}},
        {"recipe_two_docs.yaml", HN_ERR_FORMAT, {"recipe_two_docs.yaml:2:1:", "second YAML document", ""}},
        {"recipe_map_item.yaml", HN_ERR_FORMAT, {"recipe_map_item.yaml:2:5:", "data: a list item", "got a mapping"}},
        {"no_such_recipe.yaml", HN_ERR_IO, {"tests/data/no_such_recipe.yaml", "No such file", ""}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/%s", cases[i].file);
        hn_status s = load(&c, path);
        const char *m = hn_errmsg();
        CHECK(s == cases[i].status, "%s: status %s, want %s (%s)", cases[i].file, hn_status_name(s),
              hn_status_name(cases[i].status), m);
        for (int j = 0; j < 3; j++)
            CHECK(has(m, cases[i].parts[j]), "%s: '%s' in: %s", cases[i].file, cases[i].parts[j], m);
        CHECK(!strchr(m, '\n'), "one line: %s", m);
        hn_train_config_deinit(&c);
    }

    // --set: the same checks and suggestions, the key named.
    struct {
        const char *arg, *parts[2];
    } sets[] = {
        {"lora.rnak=3", {"--set: unknown key 'lora.rnak'", "did you mean 'lora.r'?"}},
        {"learning_rate=1e-3", {"unknown key 'learning_rate'", "did you mean 'lr'?"}},
        {"epoch=3", {"unknown key 'epoch'", "did you mean 'epochs'?"}},
        {"gradient_accumulation_steps=4", {"'gradient_accumulation_steps'", "did you mean 'grad_accum'?"}},
        {"zzzzzzzz=1", {"unknown key 'zzzzzzzz'", "--help-recipe"}},
        {"lora.r", {"--set expects key=value", "'lora.r'"}},
        {"=5", {"--set expects key=value", ""}},
        {"lora.r=0", {"lora.r: expected an integer >= 1", "got '0'"}},
        {"lora.r=1.5", {"expected an integer", "got '1.5'"}},
        {"lora.r=99999999999", {"expected an integer", "got '99999999999'"}},
        {"lora.r=", {"expected an integer", "got ''"}},
        {"lr=0", {"lr: expected a number > 0", "got '0'"}},
        {"lr=nan", {"expected a number", "got 'nan'"}},
        {"lr=inf", {"expected a number", "got 'inf'"}},
        {"lr=1e400", {"expected a number", "got '1e400'"}},
        {"lr=2e-4x", {"expected a number", "got '2e-4x'"}},
        {"packing=maybe", {"packing: expected true or false", "got 'maybe'"}},
        {"method=lorra", {"method: expected one of lora, full", "did you mean 'lora'?"}},
        {"threads=2000", {"threads: expected an integer >= 0 and <= 1024", ""}},
        {"lora.target_modules=q_proj,,v_proj", {"lora.target_modules: an empty list item", ""}},
        {"model=a\nb\x01", {"", ""}}, // a control character in a value is fine for a string
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        hn_train_config_init(&c);
        hn_status s = hn_train_config_set_arg(&c, sets[i].arg, NULL);
        const char *m = hn_errmsg();
        if (i == sizeof sets / sizeof sets[0] - 1) {
            CHECK(!s && !strcmp(c.model, "a\nb\x01"), "a string takes any bytes");
        } else {
            CHECK(s == HN_ERR_ARG, "--set %s fails", sets[i].arg);
            for (int j = 0; j < 2; j++)
                CHECK(has(m, sets[i].parts[j]), "--set %s: '%s' in: %s", sets[i].arg, sets[i].parts[j], m);
            CHECK(!strchr(m, '\n'), "one line: %s", m);
        }
        hn_train_config_deinit(&c);
    }
    // A long or multi-line bad value is shown escaped and cut, so the message stays one line.
    hn_train_config_init(&c);
    char longv[300] = "lr=\n";
    memset(longv + 4, 'x', 250);
    CHECK(hn_train_config_set_arg(&c, longv, NULL) && !strchr(hn_errmsg(), '\n') && has(hn_errmsg(), "\\x0a") &&
              has(hn_errmsg(), "...") && strlen(hn_errmsg()) < 200,
          "shown value: %s", hn_errmsg());
    hn_train_config_deinit(&c);

    // Wrong shapes in memory: a key that must be a name, a nested mapping for a plain key.
    CHECK(load_str("lora:\n  r: {a: 1}\n") == HN_ERR_ARG && has(hn_errmsg(), "mem.yaml:2:6: lora.r") &&
              has(hn_errmsg(), "got a mapping"),
          "%s", hn_errmsg());
    CHECK(load_str("? [a, b]\n: 1\n") == HN_ERR_FORMAT && has(hn_errmsg(), "a key must be a plain name"), "%s",
          hn_errmsg());
    CHECK(load_str("lroa:\n  r: 4\n") == HN_ERR_ARG && has(hn_errmsg(), "unknown key 'lroa.r'") &&
              has(hn_errmsg(), "did you mean 'lora.r'?"),
          "%s", hn_errmsg());
    CHECK(load_str("training:\n  lr: 1e-4\n") == HN_ERR_ARG && has(hn_errmsg(), "did you mean 'lr'?"), "%s",
          hn_errmsg());
    CHECK(load_str("a: 1\n") == HN_ERR_ARG && !has(hn_errmsg(), "did you mean"), "no far-fetched suggestion: %s",
          hn_errmsg());
    CHECK(load_str("model: \xff\xfe\n") == HN_ERR_FORMAT && has(hn_errmsg(), "mem.yaml:1:") &&
              has(hn_errmsg(), "UTF-8"),
          "invalid UTF-8: %s", hn_errmsg());
    CHECK(load_str("data: [a\n") == HN_ERR_FORMAT && has(hn_errmsg(), "YAML syntax error"), "%s", hn_errmsg());
    CHECK(load_str("---\n") == HN_ERR_FORMAT && has(hn_errmsg(), "empty"), "%s", hn_errmsg());
    hn_train_config_init(&c);
    const char nul[] = "model: a\0b\n";
    CHECK(hn_train_config_load_text(&c, nul, sizeof nul - 1, "nul.yaml", "/") == HN_ERR_FORMAT &&
              has(hn_errmsg(), "nul.yaml:1:"),
          "a NUL byte: %s", hn_errmsg());
    hn_train_config_deinit(&c);
}

static void test_validate(void) {
    struct {
        const char *set[6], *part;
    } cases[] = {
        {{"output_dir=o", "data=d"}, "no model given (set `model` in the recipe or give -m MODEL)"},
        {{"model=m", "data=d"}, "no output_dir given (set `output_dir` in the recipe or give -o DIR)"},
        {{"model=m", "output_dir=o"}, "no data given (set `data` in the recipe or give --data FILE)"},
        {{"model=m", "output_dir=o", "data=d", "lora.target_modules="}, "lora.target_modules is empty"},
        {{"model=m", "output_dir=o", "data=d", "warmup_steps=5", "warmup_ratio=0.1"}, "warmup_steps and warmup_ratio"},
        {{"model=m", "output_dir=o", "data=d", "val_data=v", "val_split=0.1"}, "val_data and val_split"},
        {{"model=m", "output_dir=o", "data=d", "early_stopping_patience=3"},
         "early_stopping_patience needs validation"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hn_train_config c;
        hn_train_config_init(&c);
        for (int j = 0; j < 6 && cases[i].set[j]; j++)
            CHECK(!hn_train_config_set_arg(&c, cases[i].set[j], NULL), "%s: %s", cases[i].set[j], hn_errmsg());
        CHECK(hn_train_config_validate(&c) == HN_ERR_ARG && has(hn_errmsg(), cases[i].part), "case %zu: %s", i,
              hn_errmsg());
        hn_train_config_deinit(&c);
    }
    // Values put into the struct by code get the table's range checks too.
    hn_train_config c;
    hn_train_config_init(&c);
    hn_train_config_set_arg(&c, "model=m", NULL);
    hn_train_config_set_arg(&c, "output_dir=o", NULL);
    hn_train_config_set_arg(&c, "data=d", NULL);
    CHECK(!hn_train_config_validate(&c), "complete: %s", hn_errmsg());
    c.lora.r = 0;
    CHECK(hn_train_config_validate(&c) && has(hn_errmsg(), "lora.r: expected an integer >= 1"), "%s", hn_errmsg());
    c.lora.r = 8;
    c.lora.dropout = 1;
    CHECK(hn_train_config_validate(&c) && has(hn_errmsg(), "lora.dropout"), "%s", hn_errmsg());
    c.lora.dropout = 0;
    c.lr = NAN;
    CHECK(hn_train_config_validate(&c) && has(hn_errmsg(), "lr:"), "%s", hn_errmsg());
    c.lr = 1e-3;
    c.lr_scheduler = (hn_lr_sched)7;
    CHECK(hn_train_config_validate(&c) && has(hn_errmsg(), "lr_scheduler"), "%s", hn_errmsg());
    c.lr_scheduler = HN_SCHED_CONSTANT;
    c.method = HN_METHOD_FULL;
    hn_train_config_clear(&c, "lora.target_modules");
    CHECK(!hn_train_config_validate(&c), "full fine-tuning needs no LoRA targets: %s", hn_errmsg());
    hn_train_config_deinit(&c);
}

static void test_round_trip(void) {
    hn_train_config a, b;
    CHECK(!load(&a, "tests/data/recipe_basic.yaml"), "%s", hn_errmsg());
    // Values that need care in YAML: quotes, backslashes, newlines, a comma, '#', ': ', UTF-8, odd floats, nulls.
    hn_train_config_set_arg(&a, "model=/m/a \"quoted\" \\ back\nslash: #x.gguf", NULL);
    hn_train_config_append(&a, "data", "/d/with, comma - and: colon #hash é.jsonl", NULL, "t");
    hn_train_config_set_arg(&a, "val_data=", NULL);
    hn_train_config_set_arg(&a, "val_split=0.1", NULL);
    hn_train_config_set_arg(&a, "lr=0.00030000000000000003", NULL);
    hn_train_config_set_arg(&a, "lora.alpha=0.3333333333333333", NULL);
    hn_train_config_set_arg(&a, "adam_epsilon=1e-12", NULL);
    hn_train_config_set_arg(&a, "format=prompt_completion", NULL);
    hn_train_config_set_arg(&a, "lora.target_modules=all-linear", NULL);
    for (int round = 0; round < 2; round++) {
        char *y = hn_train_config_to_yaml(&a);
        CHECK(y != NULL, "printed");
        if (!y) break;
        hn_train_config_init(&b);
        hn_status s = hn_train_config_load_text(&b, y, strlen(y), "printed.yaml", "/elsewhere");
        CHECK(!s, "printed config loads: %s\n%s", hn_errmsg(), y);
        const char *d = hn_train_config_diff(&a, &b);
        CHECK(!d, "round %d: printed -> parsed differs at %s: [%s] [%s]\n%s", round, d ? d : "", a.model, b.model, y);
        char *y2 = hn_train_config_to_yaml(&b);
        CHECK(y2 && !strcmp(y, y2), "printing is stable");
        free(y);
        free(y2);
        hn_train_config_deinit(&b);
        // Second round: the unset strings print as null and come back unset.
        hn_train_config_clear(&a, "model");
        hn_train_config_clear(&a, "output_dir");
    }
    // copy is deep and equal.
    CHECK(!hn_train_config_copy(&b, &a) && !hn_train_config_diff(&a, &b), "copy");
    hn_train_config_deinit(&a);
    CHECK(b.data.n == 3 && strstr(b.data.items[2], "é"), "the copy owns its strings");
    hn_train_config_deinit(&b);
}

static void test_huge_and_deep(const char *dir) {
    size_t n = 3u << 20;
    char *big = malloc(n + 64), path[4200];
    CHECK(big != NULL, "memory");
    if (!big) return;
    hn_train_config c;

    // Block mappings nested 100,000 deep: refused at the depth limit, with the place.
    size_t o = 0;
    for (int i = 0; i < 100000 && o + 64 < n; i++) o += (size_t)snprintf(big + o, 64, "%*sa:\n", i % 200, "");
    hn_train_config_init(&c);
    hn_status s = hn_train_config_load_text(&c, big, o, "deep.yaml", "/");
    CHECK(s && has(hn_errmsg(), "deep.yaml:"), "deep block mappings: %s", hn_errmsg());
    hn_train_config_deinit(&c);
    // Flow mappings and sequences nested a million deep, as a value and as the root.
    const char *shapes[][2] = {{"lora: ", "{a: "}, {"data: ", "["}, {"", "["}, {"", "{"}, {"model: ", "["}};
    for (int k = 0; k < 5; k++) {
        o = (size_t)snprintf(big, 64, "%s", shapes[k][0]);
        while (o + 8 < n) o += (size_t)snprintf(big + o, 8, "%s", shapes[k][1]);
        hn_train_config_init(&c);
        s = hn_train_config_load_text(&c, big, o, "deepflow.yaml", "/");
        CHECK(s && has(hn_errmsg(), "deepflow.yaml:") && !strchr(hn_errmsg(), '\n'), "shape %d: %s", k, hn_errmsg());
        hn_train_config_deinit(&c);
    }
    // A file over the size limit is refused before parsing.
    snprintf(path, sizeof path, "%s/huge.yaml", dir);
    FILE *f = fopen(path, "wb");
    memset(big, '#', n);
    fwrite(big, 1, n, f);
    fclose(f);
    CHECK(load(&c, path) == HN_ERR_FORMAT && has(hn_errmsg(), "larger than"), "%s", hn_errmsg());
    hn_train_config_deinit(&c);
    // Many list items, and a long value, are fine.
    o = (size_t)snprintf(big, 64, "data:\n");
    for (int i = 0; i < 20000; i++) o += (size_t)snprintf(big + o, 64, "  - f%d.jsonl\n", i);
    o += (size_t)snprintf(big + o, 64, "model: /");
    memset(big + o, 'm', 500000);
    o += 500000;
    hn_train_config_init(&c);
    s = hn_train_config_load_text(&c, big, o, "long.yaml", "/base");
    CHECK(!s && c.data.n == 20000 && !strcmp(c.data.items[19999], "/base/f19999.jsonl") && strlen(c.model) == 500001,
          "20000 items and a 500 kB value: %s", hn_errmsg());
    hn_train_config_deinit(&c);
    // A million unknown keys: the first one stops it.
    o = 0;
    for (int i = 0; o + 64 < n; i++) o += (size_t)snprintf(big + o, 64, "k%d: 1\n", i);
    hn_train_config_init(&c);
    CHECK(hn_train_config_load_text(&c, big, o, "many.yaml", "/") == HN_ERR_ARG && has(hn_errmsg(), "many.yaml:1:1:"),
          "%s", hn_errmsg());
    hn_train_config_deinit(&c);
    // Random bytes and every prefix of a good recipe: an answer, never a crash.
    hn_rng r;
    hn_rng_seed(&r, 5);
    for (int t = 0; t < 300; t++) {
        size_t len = 1 + hn_rng_u64(&r) % 200;
        for (size_t i = 0; i < len; i++) big[i] = "ab: -[]{},\n #&*!|>'\"\x01\xc3\xa9lora.r16"[hn_rng_u64(&r) % 30];
        hn_train_config_init(&c);
        hn_train_config_load_text(&c, big, len, "random.yaml", "/");
        hn_train_config_deinit(&c);
    }
    f = fopen("tests/data/recipe_basic.yaml", "rb");
    size_t m = f ? fread(big, 1, n, f) : 0;
    if (f) fclose(f);
    for (size_t i = 0; i <= m; i++) {
        hn_train_config_init(&c);
        hn_train_config_load_text(&c, big, i, "prefix.yaml", "/");
        hn_train_config_deinit(&c);
    }
    CHECK(m > 100, "prefixes of recipe_basic.yaml");
    unlink(path);
    free(big);
}

static void test_help(void) {
    char *h = hn_train_config_help();
    CHECK(h != NULL, "help");
    if (!h) return;
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        char line[128];
        snprintf(line, sizeof line, "\n%s  %s", k->name, hn_cfg_type_name(k->type));
        CHECK(has(h, line), "help lists %s", k->name);
        CHECK(has(h, k->help), "help describes %s", k->name);
    }
    CHECK(has(h, "lora.r  int >= 1, default 8; flag --rank"), "lora.r's line");
    CHECK(has(h, "lr_scheduler  enum cosine|linear|constant, default cosine"), "an enum's line");
    free(h);
}

int main(void) {
    if (!getcwd(cwd, sizeof cwd)) return 1;
    char dir[] = "/tmp/hone_test_config_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    test_table();
    test_defaults();
    test_recipes();
    test_errors();
    test_validate();
    test_round_trip();
    test_huge_and_deep(dir);
    test_help();
    rmdir(dir);
    return test_done();
}
