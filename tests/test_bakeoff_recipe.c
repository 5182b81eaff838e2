// tests/test_bakeoff_recipe.c — the bake-off recipe (train/bakeoff_recipe.c): the example recipes load with their
// values (paths made absolute from the recipe's folder, `all` = every method of the build, per-method options over
// the budget over the method's defaults; variants: a method again under a label with options of its own), and broken
// recipes are refused with FILE:LINE:COLUMN, the key and what was expected: YAML syntax, aliases, nesting past the
// limit, a second document, missing, unknown and repeated keys, unknown and repeated methods, bad numbers, bad
// options and label words, and bad variants (no method, an unknown one, a label never defined, a method's name
// naming another method, repeated or malformed labels). task: generate: the example recipe, the methods of
// adapt/method.h by name whether this build has them or not, each method's configuration (the budget, the bake-off's
// learning rate and LoRA targets, the options as hone train keys or short names), and its broken inputs (keys of the
// other task, a bad task, format, option value or budget key).
#include "test.h"
#include "adapt/method.h"
#include "train/bakeoff_impl.h"

#include <string.h>

// The methods referenced here are linked into this test (the registry's references are weak).
extern const hn_method_ops hn_method_lora;
extern const hn_cls_method hn_cls_feature, hn_cls_head, hn_cls_lora, hn_cls_icl, hn_cls_last_k, hn_cls_gradual,
    hn_cls_bitfit, hn_cls_full;

static hn_status load(hn_bakeoff_recipe *r, const char *text) {
    return hn_bakeoff_recipe_load_text(r, text, strlen(text), "r.yaml", "/base");
}

static const hn_bakeoff_entry *entry(const hn_bakeoff_recipe *r, const char *label) {
    for (int i = 0; i < r->n_methods; i++)
        if (!strcmp(r->methods[i].label, label)) return &r->methods[i];
    return NULL;
}

static bool ends_with(const char *s, const char *t) {
    size_t n = strlen(s), m = strlen(t);
    return n >= m && !strcmp(s + n - m, t);
}

int main(void) {
    CHECK(hn_method_lora.name && hn_cls_feature.name && hn_cls_head.name && hn_cls_lora.name && hn_cls_icl.name && hn_cls_last_k.name &&
              hn_cls_gradual.name && hn_cls_bitfit.name && hn_cls_full.name,
          "methods linked");
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
        static const char *const labels[] = {"feature", "head", "last-k", "gradual", "bitfit",
                                             "full",    "lora", "icl-0shot", "icl-4shot"};
        CHECK(r.n_methods == 9, "9 methods and variants, got %d", r.n_methods);
        for (int i = 0; i < r.n_methods && i < 9; i++)
            CHECK(!strcmp(r.methods[i].label, labels[i]), "label %d: %s", i, r.methods[i].label);
        CHECK(r.max_train == 800 && r.max_test == 500 && r.max_len == 64 && r.batch == 16 && r.epochs == 0 &&
                  r.seed == 42 && r.test_split == 0.2,
              "budget");
        const hn_bakeoff_entry *icl0 = entry(&r, "icl-0shot"), *icl = entry(&r, "icl-4shot"), *head = entry(&r, "head");
        CHECK(icl0 && icl0->me == &hn_cls_icl && icl0->o.shots == 0 && !icl0->o.nearest &&
                  icl0->o.n_label_words == 2 && !strcmp(icl0->o.label_words[0], "pos=positive"),
              "icl-0shot options");
        CHECK(icl && icl->me == &hn_cls_icl && icl->o.shots == 4 && icl->o.nearest && icl->o.max_len == 64,
              "icl-4shot options");
        CHECK(head && head->o.epochs == hn_cls_head.default_epochs && head->o.epochs > 0, "head: its own epochs");
        CHECK(!strcmp(r.title, "rt-polarity on SmolLM2-135M-Instruct"), "title: %s", r.title);
        hn_bakeoff_recipe_deinit(&r);
    }
    s = hn_bakeoff_recipe_load(&r, "examples/recipes/bakeoff-rt-polarity-minilm.yaml");
    CHECK(s == HN_OK && r.n_methods == hn_cls_method_list(NULL, 0) && !strcmp(r.model, "all-minilm-l6-v2") &&
              r.max_train == 2000 && r.max_test == 0,
          "%s (%d methods)", s ? hn_errmsg() : "all: every method of this build", s ? 0 : r.n_methods);
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
    // Variants: a method again under a label, with its own options (not the method's), in the list's order.
    s = load(&r, "model: a\ndata: x\nbudget: {epochs: 2}\n"
                 "methods: [icl-0, lora, icl-4, lora.r16]\n"
                 "options:\n"
                 "  icl: {shots: 2}\n"
                 "  icl-0: {method: icl, shots: 0}\n"
                 "  icl-4: {method: icl, shots: 4, nearest: true}\n"
                 "  lora.r16: {method: lora, rank: 16}\n"
                 "  lora: {method: lora, rank: 4}     # a method's own name may say so\n"
                 "  unused_V: {method: head, label_words: [a=b]}\n");
    CHECK(s == HN_OK, "variants: %s", hn_errmsg());
    if (!s) {
        const hn_bakeoff_entry *e = r.methods;
        CHECK(r.n_methods == 4 && !strcmp(e[0].label, "icl-0") && !strcmp(e[1].label, "lora") &&
                  !strcmp(e[2].label, "icl-4") && !strcmp(e[3].label, "lora.r16"),
              "variants: labels in order");
        CHECK(e[0].me == &hn_cls_icl && e[2].me == &hn_cls_icl && e[1].me == &hn_cls_lora && e[3].me == &hn_cls_lora,
              "variants: their methods");
        CHECK(e[0].o.shots == 0 && !e[0].o.nearest && e[2].o.shots == 4 && e[2].o.nearest && e[0].o.epochs == 2,
              "icl variants' options over the budget");
        CHECK(e[1].o.lora_r == 4 && e[3].o.lora_r == 16, "lora and lora.r16: rank %d, %d", e[1].o.lora_r,
              e[3].o.lora_r);
        hn_bakeoff_recipe_deinit(&r);
    }
    // all: every method of the build, each followed by its variants.
    s = load(&r, "model: a\ndata: x\nmethods: all\n"
                 "options: {icl-z: {method: icl, shots: 0}, head-1: {method: head, epochs: 1}, head: {epochs: 5}}\n");
    CHECK(s == HN_OK && r.n_methods == n_all + 2, "all with variants: %d entries: %s", r.n_methods, hn_errmsg());
    if (!s) {
        for (int i = 0, k = 0; i < n_all; i++, k++) {
            CHECK(k < r.n_methods && r.methods[k].me == all[i] && !strcmp(r.methods[k].label, all[i]->name),
                  "all: %s at %d", all[i]->name, k);
            const char *var = all[i] == &hn_cls_head ? "head-1" : all[i] == &hn_cls_icl ? "icl-z" : NULL;
            if (!var) continue;
            k++;
            CHECK(k < r.n_methods && r.methods[k].me == all[i] && !strcmp(r.methods[k].label, var), "all: %s after %s",
                  var, all[i]->name);
        }
        CHECK(entry(&r, "head")->o.epochs == 5 && entry(&r, "head-1")->o.epochs == 1 &&
                  entry(&r, "icl-z")->o.shots == 0 && entry(&r, "icl")->o.shots == 4,
              "all: each its own options");
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
         "r.yaml:4:21: budget.max_train: expected 0 (all) or 2 or more (one example a class at least), got 1"},
        {"model: a\ndata: x\nmethods: head\nbudget: {max_test: -1}\n",
         "r.yaml:4:20: budget.max_test: expected a whole number >= 0, got '-1'"},
        {"model: a\ndata: x\nmethods: head\nbudget: {batches: 1}\n", "r.yaml:4:10: budget.batches: unknown key"},
        {"model: a\ndata: x\nmethods: head\nseed: -1\n", "r.yaml:4:7: seed: expected a whole number >= 0, got '-1'"},
        {"model: a\ndata: x\nmethods: head\ntest_split: 0\n",
         "r.yaml:4:13: test_split: expected a fraction strictly between 0 and 1, got '0'"},
        {"model: a\ndata: x\ntest: y\ntest_split: 0.1\nmethods: head\n",
         "r.yaml:4:13: test_split: a recipe with test files holds nothing out of data"},
        {"model: a\ndata: x\nmethods: head\noptions: {nope: {lr: 1}}\n",
         "r.yaml:4:11: options.nope: a variant label needs method: NAME (not a method of this build: feature, "},
        // variants
        {"model: a\ndata: x\nmethods: icl-0\noptions: {icl-0: {shots: 0}}\n",
         "r.yaml:4:11: options.icl-0: a variant label needs method: NAME"},
        {"model: a\ndata: x\nmethods: icl-0\noptions:\n  icl-0:\n", "r.yaml:5:3: options.icl-0: a variant label needs"},
        {"model: a\ndata: x\nmethods: icl-0\noptions: {icl-0: {method: icll}}\n",
         "r.yaml:4:27: options.icl-0.method: unknown method 'icll' (this build has: feature, "},
        {"model: a\ndata: x\nmethods: icl-0\noptions: {icl-0: {method: [icl]}}\n",
         "r.yaml:4:27: options.icl-0.method: expected a text value, got a list"},
        {"model: a\ndata: x\nmethods: [head, icl-0]\noptions: {icl-1: {method: icl}}\n",
         "r.yaml:3:17: methods: unknown method 'icl-0' (this build has: all, "},
        {"model: a\ndata: x\nmethods: icl\noptions: {icl: {method: lora, rank: 4}}\n",
         "r.yaml:4:25: options.icl.method: 'icl' is a method's name, so its method is icl: give the variant of lora a "
         "label of its own"},
        {"model: a\ndata: x\nmethods: v\noptions: {v: {method: icl}, v: {method: head}}\n",
         "r.yaml:4:29: options.v: given twice (first on line 4)"},
        {"model: a\ndata: x\nmethods: [v, v]\noptions: {v: {method: icl}}\n",
         "r.yaml:3:14: methods: 'v' is listed twice"},
        {"model: a\ndata: x\nmethods: head\noptions: {'icl 0': {method: icl}}\n",
         "r.yaml:4:11: options.icl 0: not a variant label (1 to 31 of A-Z a-z 0-9 _ . -, not 'all') nor a method"},
        {"model: a\ndata: x\nmethods: head\noptions: {all: {method: icl}}\n",
         "r.yaml:4:11: options.all: not a variant label"},
        {"model: a\ndata: x\nmethods: head\noptions: {abcdefghijklmnopqrstuvwxyz012345: {method: icl}}\n",
         "r.yaml:4:11: options.abcdefghijklmnopqrstuvwxyz012345: not a variant label"},
        {"model: a\ndata: x\nmethods: v\noptions: {v: {method: icl, shots: -1}}\n",
         "r.yaml:4:35: options.v.shots: expected a whole number >= 0, got '-1'"},
        // errors after label words were read (the sanitizer build checks that nothing leaks)
        {"model: a\ndata: x\nmethods: v\noptions: {v: {method: icl, label_words: [a=b]}, w: {shots: 1}}\n",
         "r.yaml:4:49: options.w: a variant label needs method: NAME"},
        {"model: a\ndata: x\nmethods: [v, w]\noptions: {v: {method: icl, label_words: [a=b]}}\n",
         "r.yaml:3:14: methods: unknown method 'w'"},
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
    // task: generate. The shipped example: SQuAD data beside the repository, every PEFT method.
    s = hn_bakeoff_recipe_load(&r, "examples/recipes/bakeoff-sft-qa.yaml");
    CHECK(s == HN_OK, "%s", hn_errmsg());
    if (!s) {
        // every method, each followed by its variants (the text-initialised prompt and prefix tuning)
        static const char *const gen_all[] = {"lora",     "dora",          "ia3",           "prompt-tuning",
                                              "prompt-tuning", "p-tuning", "prefix-tuning", "prefix-tuning",
                                              "adapter-houlsby", "adapter-pfeiffer"};
        static const char *const labels[] = {"lora",     "dora",          "ia3",           "prompt-tuning",
                                             "prompt-tuning-text", "p-tuning", "prefix-tuning", "prefix-tuning-text",
                                             "adapter-houlsby", "adapter-pfeiffer"};
        CHECK(r.task == HN_BAKEOFF_GENERATE && r.n_methods == 10, "generate: 10 methods, got %d", r.n_methods);
        for (int i = 0; i < r.n_methods && i < 10; i++)
            CHECK(!r.methods[i].me && !strcmp(r.methods[i].gen, gen_all[i]) &&
                      !strcmp(r.methods[i].label, labels[i]) && r.methods[i].tc &&
                      !strcmp(hn_train_method_names[r.methods[i].tc->method], gen_all[i]),
                  "generate: method %d is %s (%s)", i, labels[i], gen_all[i]);
        const hn_bakeoff_entry *ptt = entry(&r, "prefix-tuning-text");
        CHECK(ptt && ptt->tc->prompt.init_text && strstr(ptt->tc->prompt.init_text, "short span"),
              "generate: the prefix-tuning-text variant's init_text");
        CHECK(r.n_data == 1 && ends_with(r.data[0], "shared/data/xquad/xquad.en.part1.json") && r.n_qa == 0 &&
                  r.max_qa == 100 && r.max_new_tokens == 16 && r.max_len == 384 && r.epochs == 1,
              "generate: data and budget");
        const hn_bakeoff_entry *pt = entry(&r, "prompt-tuning"), *lo = entry(&r, "lora");
        CHECK(pt && pt->tc->prompt.num_virtual_tokens == 20 && pt->tc->lr == 3e-2 && pt->tc->epochs == 1 &&
                  pt->tc->max_len == 384 && pt->tc->seed == 42,
              "generate: prompt-tuning's configuration");
        CHECK(lo && lo->tc->lora.r == 8 && lo->tc->lora.alpha == 16 && lo->tc->lr == 1e-3 &&
                  lo->tc->lora.target_modules.n == 1 && !strcmp(lo->tc->lora.target_modules.items[0], "all-linear"),
              "generate: lora's configuration");
        hn_bakeoff_recipe_deinit(&r);
    }
    // Options as hone train keys and short names, over the budget; variants; qa and format.
    s = load(&r, "task: generate\nmodel: m\ndata: d.jsonl\nqa: [q.jsonl]\nformat: alpaca\n"
                 "budget: {epochs: 2, max_steps: 7, batch: 3, max_len: 64, max_qa: 5, max_new_tokens: 9}\n"
                 "methods: [lora, ia3-hi, prefix-tuning]\n"
                 "options:\n"
                 "  lora: {rank: 4, alpha: 8, lr: 0.002, target_modules: [q_proj, v_proj], lora.use_rslora: true}\n"
                 "  ia3-hi: {method: ia3, lr: 0.05, epochs: 3, batch: 2}\n"
                 "  prefix-tuning: {num_virtual_tokens: 5, prompt.projection: true, warmup_ratio: 0.1}\n");
    CHECK(s == HN_OK, "generate options: %s", hn_errmsg());
    if (!s) {
        const hn_bakeoff_entry *lo = entry(&r, "lora"), *ia = entry(&r, "ia3-hi"), *pf = entry(&r, "prefix-tuning");
        CHECK(r.n_qa == 1 && !strcmp(r.qa[0], "/base/q.jsonl") && r.format == HN_DATA_ALPACA && !r.squad &&
                  r.max_qa == 5 && r.max_new_tokens == 9 && r.max_steps == 7,
              "generate: qa, format, budget");
        CHECK(lo && lo->tc->lora.r == 4 && lo->tc->lora.alpha == 8 && lo->tc->lr == 0.002 &&
                  lo->tc->lora.use_rslora && lo->tc->lora.target_modules.n == 2 && lo->tc->epochs == 2 &&
                  lo->tc->max_steps == 7 && lo->tc->batch_size == 3,
              "generate: lora's options over the budget");
        CHECK(ia && !strcmp(ia->gen, "ia3") && ia->tc->method == HN_METHOD_IA3 && ia->tc->lr == 0.05 &&
                  ia->tc->epochs == 3 && ia->tc->batch_size == 2,
              "generate: a variant of ia3");
        CHECK(pf && pf->tc->prompt.num_virtual_tokens == 5 && pf->tc->prompt.projection &&
                  pf->tc->warmup_ratio == 0.1 && pf->tc->lr == 1e-2,
              "generate: prefix tuning's options");
        hn_bakeoff_recipe_deinit(&r);
    }
    s = load(&r, "task: generate\nmodel: m\ndata: d.json\nformat: squad\nmethods: [dora]\n");
    CHECK(s == HN_OK && r.squad && r.max_len == 512 && r.batch == 4 && r.epochs == 1 && r.max_new_tokens == 32 &&
              r.methods[0].tc->lr == 1e-3,
          "generate defaults: %s", hn_errmsg());
    if (!s) hn_bakeoff_recipe_deinit(&r);
    static const struct {
        const char *yaml, *msg;
    } gen_bad[] = {
        {"task: gen\nmodel: a\ndata: x\nmethods: lora\n", "r.yaml:1:7: task: expected classify or generate, got 'gen'"},
        {"task: [generate]\nmodel: a\ndata: x\nmethods: lora\n", "r.yaml:1:7: task: expected classify or generate"},
        {"task: generate\nmodel: a\ndata: x\nmethods: [lora, head]\n",
         "r.yaml:4:17: methods: unknown method 'head' (the methods to generate with: all, lora, dora, ia3, "
         "prompt-tuning, p-tuning, prefix-tuning, adapter-houlsby, adapter-pfeiffer)"},
        {"task: generate\nmodel: a\ndata: x\nmethods: full\n", "r.yaml:4:10: methods: unknown method 'full'"},
        {"task: generate\nmodel: a\ndata: x\nmethods: lora\ntext_col: t\n",
         "r.yaml:5:1: text_col: only for task: classify (this recipe's task is generate)"},
        {"model: a\ndata: x\nmethods: head\nqa: q.jsonl\n",
         "r.yaml:4:1: qa: only for task: generate (this recipe's task is classify)"},
        {"model: a\ndata: x\nmethods: head\nbudget: {max_new_tokens: 3}\n",
         "r.yaml:4:10: budget.max_new_tokens: unknown key (expected max_train, max_test, epochs, max_len or batch; "
         "max_qa, max_steps and max_new_tokens are for task: generate)"},
        {"task: generate\nmodel: a\ndata: x\nmethods: lora\nbudget: {epochs: 0}\n",
         "r.yaml:5:18: budget.epochs: expected a whole number >= 1, got '0'"},
        {"task: generate\nmodel: a\ndata: x\nmethods: lora\nbudget: {max_new_tokens: x}\n",
         "r.yaml:5:26: budget.max_new_tokens: expected a whole number >= 1, got 'x'"},
        {"task: generate\nmodel: a\ndata: x\nmethods: lora\nformat: jsonl\n",
         "r.yaml:5:9: format: expected auto, squad, text, prompt_completion, alpaca, messages or sharegpt, got "
         "'jsonl'"},
        {"task: generate\nmodel: a\ndata: x\nmethods: lora\noptions: {lora: {rank: 0}}\n",
         "r.yaml:5:24: options.lora.rank: expected an integer >= 1, got '0'"},
        {"task: generate\nmodel: a\ndata: x\nmethods: lora\noptions: {lora: {lr: fast}}\n",
         "r.yaml:5:22: options.lora.lr: expected a number > 0, got 'fast'"},
        {"task: generate\nmodel: a\ndata: x\nmethods: lora\noptions: {lora: {shots: 2}}\n",
         "r.yaml:5:18: options.lora.shots: unknown option (expected one of epochs, max_steps, lr, batch"},
        {"task: generate\nmodel: a\ndata: x\nmethods: lora\noptions: {lora: {output_dir: o}}\n",
         "r.yaml:5:18: options.lora.output_dir: unknown option"},
        {"task: generate\nmodel: a\ndata: x\nmethods: lora\noptions: {lora: {lora.rr: 2}}\n",
         "r.yaml:5:18: options.lora.lora.rr: unknown option"},
        {"task: generate\nmodel: a\ndata: x\nmethods: lora\noptions: {lora: {target_modules: [q_proj, nope]}}\n",
         "r.yaml:5:34: options.lora.target_modules: expected "},
        {"task: generate\nmodel: a\ndata: x\nmethods: lora\noptions: {lora: {rank: {a: 1}}}\n",
         "r.yaml:5:24: options.lora.rank: expected a value or a list of values, got a mapping"},
        {"task: generate\nmodel: a\ndata: x\nmethods: v\noptions: {v: {method: head}}\n",
         "r.yaml:5:23: options.v.method: unknown method 'head' (the methods to generate with: lora, "},
        {"task: generate\nmodel: a\ndata: x\nmethods: v\noptions: {v: {lr: 1}}\n",
         "r.yaml:5:11: options.v: a variant label needs method: NAME (not a method to generate with: lora, "},
        // errors after configurations were made (the sanitizer build checks that nothing leaks)
        {"task: generate\nmodel: a\ndata: x\nmethods: [lora, w]\noptions: {lora: {rank: 2}, v: {method: ia3}}\n",
         "r.yaml:4:17: methods: unknown method 'w'"},
        {"task: generate\nmodel: a\ndata: x\nmethods: [lora]\noptions: {lora: , ia3: {rank: -2}}\n",
         "r.yaml:5:31: options.ia3.rank: expected an integer >= 1, got '-2'"},
    };
    for (size_t i = 0; i < sizeof gen_bad / sizeof gen_bad[0]; i++) {
        s = load(&r, gen_bad[i].yaml);
        CHECK(s != HN_OK && !strncmp(hn_errmsg(), gen_bad[i].msg, strlen(gen_bad[i].msg)),
              "generate case %zu: got '%s', want '%s'", i, s ? hn_errmsg() : "(accepted)", gen_bad[i].msg);
        CHECK(r.methods == NULL && r.model == NULL && r.data == NULL, "generate case %zu: nothing left allocated", i);
        if (!s) hn_bakeoff_recipe_deinit(&r);
    }
    // A method this program was linked without (adapt/method.c refers to the methods weakly) is a not-applicable row.
    const char *absent = NULL;
    for (int i = 0; i < HN_METHOD_COUNT && !absent; i++)
        if (i != HN_METHOD_FULL && !hn_method_find(hn_train_method_names[i])) absent = hn_train_method_names[i];
    if (absent) {
        hn_bakeoff_entry e = {.gen = absent};
        hn_bakeoff_row row = {0};
        s = hn_bakeoff_gen_applies(&e, &row);
        char want[64];
        snprintf(want, sizeof want, "%s is not in this build (it has: ", absent);
        CHECK(s == HN_ERR_UNSUPPORTED && row.state == HN_BAKEOFF_NOT_APPLICABLE && !strncmp(row.message, want,
                                                                                           strlen(want)),
              "a method not linked: %s", row.message);
    }
    CHECK(hn_method_find("lora") && hn_bakeoff_gen_applies(&(hn_bakeoff_entry){.gen = "lora"}, &(hn_bakeoff_row){0}) ==
                                        HN_OK,
          "lora applies");
    // A recipe file that is too large, or absent.
    s = hn_bakeoff_recipe_load(&r, "tests/data/no-such-recipe.yaml");
    CHECK(s == HN_ERR_IO && strstr(hn_errmsg(), "no-such-recipe.yaml: cannot read the recipe"), "%s", hn_errmsg());
    return test_done();
}
