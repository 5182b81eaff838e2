// tests/test_bakeoff_recipe.c — the bake-off recipe (train/bakeoff_recipe.c): the example recipes load with their
// values (paths made absolute from the recipe's folder, `all` = every method of the build, per-method options over
// the budget over the method's defaults), and broken recipes are refused with FILE:LINE:COLUMN, the key and what
// was expected: YAML syntax, aliases, nesting past the limit, a second document, missing, unknown and repeated keys,
// unknown and repeated methods, bad numbers, bad options and label words.
#include "test.h"
#include "train/bakeoff.h"

#include <string.h>

// The methods referenced here are linked into this test (the registry's references are weak).
extern const hn_cls_method hn_cls_feature, hn_cls_head, hn_cls_lora, hn_cls_icl;

static hn_status load(hn_bakeoff_recipe *r, const char *text) {
    return hn_bakeoff_recipe_load_text(r, text, strlen(text), "r.yaml", "/base");
}

static const hn_bakeoff_entry *entry(const hn_bakeoff_recipe *r, const char *name) {
    for (int i = 0; i < r->n_methods; i++)
        if (!strcmp(r->methods[i].me->name, name)) return &r->methods[i];
    return NULL;
}

static bool ends_with(const char *s, const char *t) {
    size_t n = strlen(s), m = strlen(t);
    return n >= m && !strcmp(s + n - m, t);
}

int main(void) {
    CHECK(hn_cls_feature.name && hn_cls_head.name && hn_cls_lora.name && hn_cls_icl.name, "methods linked");
    hn_bakeoff_recipe r;
    const hn_cls_method *all[32];
    int n_all = hn_cls_method_list(all, 32);

    // The shipped example.
    hn_status s = hn_bakeoff_recipe_load(&r, "examples/recipes/bakeoff-rt-polarity.yaml");
    CHECK(s == HN_OK, "%s", hn_errmsg());
    if (!s) {
        CHECK(!strcmp(r.model, "smollm2-135m-instruct"), "a pulled name stays a name: %s", r.model);
        CHECK(r.n_data == 2 && r.data[0][0] == '/' &&
                  ends_with(r.data[0], "examples/recipes/../../../shared/data/rt-polarity/rt-polarity.pos:pos"),
              "data beside the recipe, absolute: %s", r.n_data ? r.data[0] : "");
        CHECK(r.n_methods == n_all, "all: %d methods, the build has %d", r.n_methods, n_all);
        CHECK(r.max_train == 1000 && r.max_test == 500 && r.max_len == 64 && r.batch == 16 && r.epochs == 0 &&
                  r.seed == 42 && r.test_split == 0.2,
              "budget");
        const hn_bakeoff_entry *icl = entry(&r, "icl"), *head = entry(&r, "head");
        CHECK(icl && icl->o.shots == 4 && icl->o.nearest && icl->o.max_len == 64, "icl options");
        CHECK(head && head->o.epochs == hn_cls_head.default_epochs && head->o.epochs > 0, "head: its own epochs");
        CHECK(!strcmp(r.title, "rt-polarity on SmolLM2-135M-Instruct"), "title: %s", r.title);
        hn_bakeoff_recipe_deinit(&r);
    }
    s = hn_bakeoff_recipe_load(&r, "examples/recipes/bakeoff-rt-polarity-minilm.yaml");
    CHECK(s == HN_OK && r.n_methods == 3 && !strcmp(r.model, "all-minilm-l6-v2"), "%s", hn_errmsg());
    if (!s) hn_bakeoff_recipe_deinit(&r);

    // Values: relative paths, options over the budget, defaults.
    s = load(&r, "model: m.gguf\n"
                 "data: [a.txt:pos, /abs/b.txt:neg]\n"
                 "test: t.jsonl\n"
                 "text_col: review\n"
                 "seed: 7\n"
                 "budget: {epochs: 2, max_len: 32, batch: 4, max_train: 100}\n"
                 "methods: [icl, head]\n"
                 "options:\n"
                 "  icl: {shots: 0, label_words: ['pos=good|great', neg=bad], calibrate: false}\n"
                 "  head: {lr: 0.05, epochs: 9}\n"
                 "  feature: {lr: 1}   # a method not in the list: its options are unused\n");
    CHECK(s == HN_OK, "%s", hn_errmsg());
    if (!s) {
        CHECK(!strcmp(r.model, "/base/m.gguf"), "model path: %s", r.model);
        CHECK(!strcmp(r.data[0], "/base/a.txt:pos") && !strcmp(r.data[1], "/abs/b.txt:neg"), "data paths");
        CHECK(r.n_test == 1 && !strcmp(r.test[0], "/base/t.jsonl"), "one test file as a scalar");
        CHECK(!strcmp(r.text_col, "review") && !r.label_col, "columns");
        CHECK(!strcmp(r.title, "r"), "default title: the file's name: %s", r.title);
        const hn_bakeoff_entry *icl = entry(&r, "icl"), *head = entry(&r, "head");
        CHECK(r.n_methods == 2 && r.methods[0].me == &hn_cls_icl, "methods in order");
        CHECK(icl && icl->o.shots == 0 && icl->o.n_label_words == 2 &&
                  !strcmp(icl->o.label_words[0], "pos=good|great") && icl->o.no_calibrate && icl->o.epochs == 2 &&
                  icl->o.seed == 7,
              "icl options");
        CHECK(head && head->o.epochs == 9 && head->o.lr == 0.05f && head->o.batch == 4 && head->o.max_len == 32,
              "head options over the budget");
        hn_bakeoff_recipe_deinit(&r);
    }
    s = load(&r, "model: some-name\ndata: x.txt\nmethods: head\n");
    CHECK(s == HN_OK && !strcmp(r.model, "some-name") && r.methods[0].o.epochs == hn_cls_head.default_epochs &&
              r.methods[0].o.max_len == 128 && r.test_split == 0.2,
          "defaults: %s", hn_errmsg());
    if (!s) hn_bakeoff_recipe_deinit(&r);

    // Broken recipes: the message, exactly where it starts.
    static const struct {
        const char *yaml, *msg;
    } bad[] = {
        {"", "r.yaml:1:1: the recipe is empty"},
        {"- a\n- b\n", "r.yaml:1:1: the recipe must be a mapping"},
        {"model: [a\n", "r.yaml:2:1: YAML syntax error"},
        {"model: a\n---\nmodel: b\n", "r.yaml:2:1: a second YAML document"},
        {"model: &x a\ndata: *x\nmethods: head\n", "r.yaml:2:7: YAML aliases (*x) are not supported"},
        {"model: a\ndata: [[[[[[x]]]]]]\nmethods: head\n", "r.yaml:2:"},
        {"data: x\nmethods: head\n", "r.yaml:1:1: model: missing (expected a pulled model name or a model path)"},
        {"model: a\nmethods: head\n", "r.yaml:1:1: data: missing (expected a list of FILE or FILE:LABEL)"},
        {"model: a\ndata: x\n", "r.yaml:1:1: methods: missing (expected a list of method names, or all)"},
        {"model: a\ndata: x\nmethods:\n", "r.yaml:3:9: methods: missing"},
        {"model: a\ndata: []\nmethods: head\n", "r.yaml:2:7: data: expected a list of values, got an empty list"},
        {"model: a\ndata: x\nmethods: [head, 3x]\n",
         "r.yaml:3:17: methods: unknown method '3x' (this build has: all, "},
        {"model: a\ndata: x\nmethods: [head, all]\n", "r.yaml:3:17: methods: 'all' stands alone"},
        {"model: a\ndata: x\nmethods: [icl, icl]\n", "r.yaml:3:16: methods: 'icl' is listed twice"},
        {"model: a\ndata: x\nmethods: head\nmodel: b\n", "r.yaml:4:1: model: given twice (first on line 1)"},
        {"model: a\ndata: x\nmethods: head\nbugdet: {}\n", "r.yaml:4:1: bugdet: unknown key (expected title, model"},
        {"model: a\ndata: x\nmethods: head\nbudget: 3\n", "r.yaml:4:9: budget: expected a mapping"},
        {"model: a\ndata: x\nmethods: head\nbudget: {max_len: 1.5}\n",
         "r.yaml:4:19: budget.max_len: expected a whole number >= 1, got '1.5'"},
        {"model: a\ndata: x\nmethods: head\nbudget: {max_train: 1}\n",
         "r.yaml:4:21: budget.max_train: expected a whole number >= 2, got '1'"},
        {"model: a\ndata: x\nmethods: head\nbudget: {batches: 1}\n", "r.yaml:4:10: budget.batches: unknown key"},
        {"model: a\ndata: x\nmethods: head\nseed: -1\n", "r.yaml:4:7: seed: expected a whole number >= 0, got '-1'"},
        {"model: a\ndata: x\nmethods: head\ntest_split: 0\n",
         "r.yaml:4:13: test_split: expected a fraction strictly between 0 and 1, got '0'"},
        {"model: a\ndata: x\ntest: y\ntest_split: 0.1\nmethods: head\n",
         "r.yaml:4:13: test_split: a recipe with test files holds nothing out of data"},
        {"model: a\ndata: x\nmethods: head\noptions: {nope: {lr: 1}}\n", "r.yaml:4:11: options.nope: not a method"},
        {"model: a\ndata: x\nmethods: head\noptions: {head: 3}\n", "r.yaml:4:17: options.head: expected a mapping"},
        {"model: a\ndata: x\nmethods: head\noptions: {head: {lr: -1}}\n",
         "r.yaml:4:22: options.head.lr: expected a number in [0, 1e+09], got '-1'"},
        {"model: a\ndata: x\nmethods: head\noptions: {head: {lr: 1, lr: 2}}\n",
         "r.yaml:4:25: options.head.lr: given twice (first on line 4)"},
        {"model: a\ndata: x\nmethods: icl\noptions: {icl: {nearest: maybe}}\n",
         "r.yaml:4:26: options.icl.nearest: expected true or false, got 'maybe'"},
        {"model: a\ndata: x\nmethods: icl\noptions: {icl: {label_words: [good]}}\n",
         "r.yaml:4:31: options.icl.label_words: expected CLASS=WORD[|WORD...], got 'good'"},
        {"model: a\ndata: x\nmethods: icl\noptions: {icl: {shot: 2}}\n",
         "r.yaml:4:17: options.icl.shot: unknown option (expected one of epochs"},
        {"model: {a: b}\ndata: x\nmethods: head\n", "r.yaml:1:8: model: expected a text value, got a mapping"},
        {"model: a\ndata: [x, [y]]\nmethods: head\n",
         "r.yaml:2:11: data: a list item must be a text value, got a list"},
        {"? [a]\n: b\n", "r.yaml:1:3: a key must be a plain name, got a list"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = load(&r, bad[i].yaml);
        CHECK(s != HN_OK && !strncmp(hn_errmsg(), bad[i].msg, strlen(bad[i].msg)), "case %zu: got '%s', want '%s'", i,
              s ? hn_errmsg() : "(accepted)", bad[i].msg);
        CHECK(r.methods == NULL && r.model == NULL && r.data == NULL, "case %zu: nothing left allocated", i);
        if (!s) hn_bakeoff_recipe_deinit(&r);
    }
    // A recipe file that is too large, or absent.
    s = hn_bakeoff_recipe_load(&r, "tests/data/no-such-recipe.yaml");
    CHECK(s == HN_ERR_IO && strstr(hn_errmsg(), "no-such-recipe.yaml: cannot read the recipe"), "%s", hn_errmsg());
    return test_done();
}
