// train/bakeoff_gen.c — the generation bake-off (train/bakeoff.h, task: generate): SFT data made once in the parent
// (SQuAD files split by article, seeded subsamples to the budget, every question's prompt tokenized as training
// renders it), then in each child one method of adapt/method.h trained by hn_train over the LM objective, its
// held-out loss, and its greedy answers to the questions scored by exact match (train/qa.h). The untrained model is
// the baseline row, measured the same way in a child of its own.
#define _GNU_SOURCE // nftw's FTW_DEPTH, mkdtemp
#include "train/bakeoff_impl.h"

#include "model/sample.h"
#include "train/lm_run.h"
#include "train/trainer.h"

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// ---- the methods' configurations (the recipe)

// A short run's learning rates (a few hundred steps at most): PEFT's examples use 3e-2 for prompt tuning and 1e-2
// for prefix tuning; LoRA-family methods and adapters take the larger end of their usual range (1e-4 .. 1e-3),
// IA3's scales a few times more.
static const struct {
    const char *method, *lr;
} gen_lr[] = {{"lora", "1e-3"},         {"dora", "1e-3"},          {"ia3", "5e-3"},
              {"prompt-tuning", "3e-2"}, {"p-tuning", "1e-2"},      {"prefix-tuning", "1e-2"},
              {"adapter-houlsby", "1e-3"}, {"adapter-pfeiffer", "1e-3"}};

hn_status hn_bakeoff_gen_config(const hn_train_config *base, const char *method, hn_train_config **out) {
    hn_train_config *c = *out = hn_alloc(sizeof *c, "a method's configuration");
    if (!c) return HN_ERR_NOMEM;
    hn_status s = hn_train_config_copy(c, base);
    if (s) {
        free(c), *out = NULL;
        return s;
    }
    s = hn_train_config_set(c, "method", method, NULL, "bakeoff");
    // LoRA and DoRA on every linear layer (as QLoRA does, and as the classification bake-off's lora): PEFT's default
    // q_proj/v_proj names no layer of a fused-attention model (GPT-2's c_attn).
    if (!s && (!strcmp(method, "lora") || !strcmp(method, "dora")))
        s = hn_train_config_set(c, "lora.target_modules", "all-linear", NULL, "bakeoff");
    for (size_t i = 0; !s && i < sizeof gen_lr / sizeof gen_lr[0]; i++)
        if (!strcmp(gen_lr[i].method, method)) s = hn_train_config_set(c, "lr", gen_lr[i].lr, NULL, "bakeoff");
    if (s) hn_bakeoff_gen_config_free(c), *out = NULL;
    return s;
}

void hn_bakeoff_gen_config_free(hn_train_config *c) {
    if (c) hn_train_config_deinit(c), free(c);
}

// The recipe's short names, and the hone train keys a method's options may set (not the run's: model, data, output,
// seed, max_len, ...: those are the bake-off's, the same for every method).
static const char *const gen_alias[][2] = {
    {"rank", "lora.r"},        {"alpha", "lora.alpha"}, {"dropout", "lora.dropout"},
    {"target_modules", "lora.target_modules"},          {"batch", "batch_size"},
    {"num_virtual_tokens", "prompt.num_virtual_tokens"}, {"reduction_factor", "adapter.reduction_factor"}};
static const char *const gen_keys[] = {"epochs",        "max_steps",    "lr",           "batch_size", "weight_decay",
                                       "warmup_ratio",  "warmup_steps", "grad_accum",   "max_grad_norm",
                                       "lr_scheduler",  "adam_beta1",   "adam_beta2",   "adam_epsilon",
                                       "grad_checkpointing"};

hn_status hn_bakeoff_gen_option(hn_train_config *c, const char *key, const char *text, const char *base_dir,
                                const char *where, const char *shown) {
    const char *tk = NULL;
    for (size_t i = 0; !tk && i < sizeof gen_alias / sizeof gen_alias[0]; i++)
        if (!strcmp(key, gen_alias[i][0])) tk = gen_alias[i][1];
    for (size_t i = 0; !tk && i < sizeof gen_keys / sizeof gen_keys[0]; i++)
        if (!strcmp(key, gen_keys[i])) tk = key;
    static const char *const sections[] = {"lora.", "prompt.", "ia3.", "adapter."};
    for (size_t i = 0; !tk && i < 4; i++)
        if (!strncmp(key, sections[i], strlen(sections[i])) && hn_train_key_find(key)) tk = key;
    if (!tk) return HN_ERR_NOTFOUND;
    hn_status s = hn_train_config_set(c, tk, text, base_dir, where);
    if (!s) return HN_OK;
    // "WHERE: lora.r: expected ..." as the recipe spells the key: "WHERE: options.LABEL.rank: expected ..."
    char msg[1024], head[700];
    snprintf(head, sizeof head, "%s: %s: ", where, tk);
    const char *e = hn_errmsg();
    if (!strncmp(e, head, strlen(head))) {
        snprintf(msg, sizeof msg, "%s: %s: %s", where, shown, e + strlen(head));
        hn_fail(s, "%s", msg);
    }
    return s;
}

// ---- the data (the parent)

// Whether a data or test file is SQuAD-format JSON: named so by the recipe, or one JSON object with SQuAD's "data".
static bool is_squad(const hn_bakeoff_recipe *r, const char *path) {
    if (r->squad) return true;
    if (r->format != HN_DATA_AUTO) return false;
    hn_map m;
    if (hn_map_open(&m, path)) return false; // the data reader says what is wrong with it
    size_t k = 0;
    while (k < m.size && (m.data[k] == ' ' || m.data[k] == '\t' || m.data[k] == '\r' || m.data[k] == '\n')) k++;
    bool squad = false;
    if (k < m.size && m.data[k] == '{') { // a JSONL file fails fast: its first line is followed by more
        json_t *o = json_loadb((const char *)m.data, m.size, 0, NULL);
        json_t *d = json_object_get(o, "data");
        squad = json_is_array(d) && json_is_object(json_array_get(d, 0)) &&
                json_object_get(json_array_get(d, 0), "paragraphs");
        json_decref(o);
    }
    hn_map_close(&m);
    return squad;
}

// Files into SFT examples (sft) and SQuAD questions (squad).
static hn_status load_files(const hn_bakeoff *b, char *const *paths, int n, const hn_data_params *dp,
                            hn_dataset *sft, hn_qa_set *squad) {
    for (int i = 0; i < n; i++) {
        hn_status s;
        if (is_squad(b->r, paths[i])) {
            hn_qa_set q;
            if (!(s = hn_qa_load(&q, paths[i], HN_QA_SQUAD)) && (s = hn_qa_append(squad, &q))) hn_qa_set_deinit(&q);
        } else {
            hn_dataset d;
            if (!(s = hn_dataset_load(&d, paths[i], b->m->tok, dp)) && (s = hn_lm_dataset_append(sft, &d)))
                hn_dataset_deinit(&d);
        }
        if (s) return s;
    }
    return HN_OK;
}

// Questions as SFT examples, appended to ds.
static hn_status squad_examples(const hn_bakeoff *b, const hn_qa_set *q, const hn_data_params *dp, hn_dataset *ds) {
    if (!q->n) return HN_OK;
    char *text;
    size_t n;
    hn_status s = hn_qa_sft_jsonl(q, &text, &n);
    hn_dataset d;
    hn_data_params sp = *dp;
    sp.format = HN_DATA_PROMPT_COMPLETION; // what SQuAD questions become
    if (!s && !(s = hn_dataset_parse(&d, q->source, text, n, b->m->tok, &sp)) && (s = hn_lm_dataset_append(ds, &d)))
        hn_dataset_deinit(&d);
    if (!s) free(ds->path), ds->path = strdup(q->source); // messages name the file, not the converted text
    free(text);
    return s;
}

// Keeps a seeded `keep` of ds's examples (keep 0: all).
static hn_status subsample(hn_dataset *ds, int keep, uint64_t seed) {
    if (keep <= 0 || ds->n <= keep) return HN_OK;
    hn_dataset drop;
    hn_status s = hn_dataset_split(ds, &drop, (double)(ds->n - keep) / ds->n, seed);
    hn_dataset_deinit(&drop);
    return s;
}

// Each question's prompt: its example tokenized as training tokenizes it, up to where the last run of loss tokens
// (the answer: the completion, or the last assistant turn) begins. A prompt longer than max_len (training would
// cut it) leaves the question out, counted.
static hn_status prompts(hn_bakeoff *b, const hn_data_params *dp) {
    hn_bakeoff_gen *g = &b->gen;
    hn_data_params qp = *dp;
    qp.max_len = INT_MAX / 2; // the whole prompt, however long, to tell the long ones
    qp.format = HN_DATA_AUTO; // each line is read alone: prompt/completion or alpaca, whatever the data's format
    if (!(g->prompt = hn_calloc((size_t)g->qa.n + 1, sizeof *g->prompt, "prompts")) ||
        !(g->n_prompt = hn_calloc((size_t)g->qa.n + 1, sizeof *g->n_prompt, "prompt lengths")))
        return HN_ERR_NOMEM;
    int kept = 0;
    for (int i = 0; i < g->qa.n; i++) {
        hn_qa_item it = g->qa.items[i];
        hn_dataset one;
        hn_status s = hn_dataset_parse(&one, g->qa.source, it.line, strlen(it.line), b->m->tok, &qp);
        if (s) return s;
        int start = -1;
        if (one.n == 1) {
            const hn_example *x = &one.ex[0];
            start = x->n;
            while (start > 0 && !x->mask[start - 1]) start--;
            while (start > 0 && x->mask[start - 1]) start--;
        }
        if (start <= 0 || start > g->max_len) { // no prompt, or one that training would cut
            g->qa_long += start > 0;
            hn_dataset_deinit(&one);
            free(it.line);
            for (int k = 0; k < it.n_answers; k++) free(it.answers[k]);
            free(it.answers);
            continue;
        }
        g->prompt[kept] = hn_calloc((size_t)start, sizeof **g->prompt, "a prompt");
        if (g->prompt[kept]) memcpy(g->prompt[kept], one.ex[0].ids, (size_t)start * sizeof **g->prompt);
        hn_dataset_deinit(&one);
        g->n_prompt[kept] = start;
        g->qa.items[kept++] = it;
        if (!g->prompt[kept - 1]) {
            g->qa.n = kept + (g->qa.n - i - 1); // the rest are still owned by the set
            return HN_ERR_NOMEM;
        }
    }
    g->qa.n = kept;
    return HN_OK;
}

hn_status hn_bakeoff_gen_prepare(hn_bakeoff *b) {
    const hn_bakeoff_recipe *r = b->r;
    hn_bakeoff_gen *g = &b->gen;
    hn_model *m = b->m;
    if (!m->tok) return hn_fail(HN_ERR_ARG, "%s: %s has no tokenizer: generation needs one", r->path, r->model);
    g->max_len = r->max_len;
    if (m->pos_embd && g->max_len > m->hp.n_ctx_train) g->max_len = m->hp.n_ctx_train; // learned positions (GPT-2)
    hn_data_params dp = hn_data_default_params();
    dp.format = r->format;
    dp.max_len = g->max_len;
    dp.chat = hn_gguf_find(&m->gguf, "tokenizer.chat_template") != NULL; // base models see plain text
    dp.chat_template = m->chat;
    dp.system_prompt = m->default_system;
    hn_dataset sft = {0}, sft_test = {0};
    hn_qa_set squad = {0}, squad_test = {0}, qa = {0};
    char test_src[96], qa_src[128];
    hn_status s = load_files(b, r->data, r->n_data, &dp, &sft, &squad);
    if (!s && r->n_test) {
        s = load_files(b, r->test, r->n_test, &dp, &sft_test, &squad_test);
        snprintf(test_src, sizeof test_src, "the test files");
    } else if (!s) { // held out of data: SQuAD by article, the rest by example
        if (squad.n) s = hn_qa_split(&squad, &squad_test, r->test_split, r->seed);
        if (!s && sft.n) s = hn_dataset_split(&sft, &sft_test, r->test_split, r->seed);
        snprintf(test_src, sizeof test_src, "%g%% of the data%s", r->test_split * 100,
                 squad.n ? ", by article" : "");
    }
    if (!s) s = squad_examples(b, &squad, &dp, &g->train);
    if (!s) s = hn_lm_dataset_append(&g->train, &sft);
    if (!s) s = squad_examples(b, &squad_test, &dp, &g->test);
    if (!s) s = hn_lm_dataset_append(&g->test, &sft_test);
    // The questions: the qa files, else the held-out SQuAD questions.
    for (int i = 0; !s && i < r->n_qa; i++) {
        hn_qa_set one;
        if (!(s = hn_qa_load(&one, r->qa[i], r->squad ? HN_QA_SQUAD : HN_QA_AUTO)) && (s = hn_qa_append(&qa, &one)))
            hn_qa_set_deinit(&one);
    }
    if (!s && r->n_qa) {
        snprintf(qa_src, sizeof qa_src, "the qa files");
    } else if (!s && squad_test.n) {
        qa = squad_test, memset(&squad_test, 0, sizeof squad_test);
        snprintf(qa_src, sizeof qa_src, "the held-out SQuAD questions");
    } else if (!s) {
        s = hn_fail(HN_ERR_ARG, "%s: qa: missing (the held-out data holds no SQuAD questions to ask: give qa: "
                    "[FILE], short-answer questions as {\"prompt\", \"answer\"} JSONL)", r->path);
    }
    g->qa = qa, memset(&qa, 0, sizeof qa);
    if (!s) s = subsample(&g->train, r->max_train, r->seed + 1);
    if (!s) s = subsample(&g->test, r->max_test, r->seed + 2);
    if (!s) s = hn_qa_subsample(&g->qa, r->max_qa, r->seed + 3);
    if (!s) s = prompts(b, &dp);
    if (!s && (g->train.n < 1 || g->test.n < 1 || g->qa.n < 1))
        s = hn_fail(HN_ERR_ARG, "%s: %d training examples, %d held-out examples and %d questions%s: too few to "
                    "compare methods", r->path, g->train.n, g->test.n, g->qa.n,
                    g->qa_long ? " (the others' prompts are longer than max_len)" : "");
    if (!s && (!(b->test_source = strdup(test_src)) || !(g->qa_source = strdup(qa_src)))) s = HN_ERR_NOMEM;
    if (!s) {
        b->train_tokens = g->train.n_tokens, b->test_tokens = g->test.n_tokens;
        hn_bakeoff_row *row = &b->baseline;
        snprintf(row->method, sizeof row->method, "base");
        snprintf(row->label, sizeof row->label, "base");
        row->state = HN_BAKEOFF_BASELINE;
        snprintf(row->message, sizeof row->message, "the model as loaded, untrained");
    }
    hn_dataset_deinit(&sft), hn_dataset_deinit(&sft_test);
    hn_qa_set_deinit(&squad), hn_qa_set_deinit(&squad_test), hn_qa_set_deinit(&qa);
    return s;
}

void hn_bakeoff_gen_deinit(hn_bakeoff_gen *g) {
    for (int i = 0; g->prompt && i < g->qa.n; i++) free(g->prompt[i]);
    free(g->prompt), free(g->n_prompt), free(g->qa_source);
    hn_dataset_deinit(&g->train), hn_dataset_deinit(&g->test);
    hn_qa_set_deinit(&g->qa);
    memset(g, 0, sizeof *g);
}

hn_status hn_bakeoff_gen_applies(const hn_bakeoff_entry *e, hn_bakeoff_row *row) {
    if (hn_method_find(e->gen)) return HN_OK;
    row->state = HN_BAKEOFF_NOT_APPLICABLE;
    snprintf(row->message, sizeof row->message, "%s is not in this build (it has: %.300s)", e->gen,
             hn_method_names());
    return HN_ERR_UNSUPPORTED;
}

// ---- the child

static void train_progress(const hn_train_progress *p, void *user) {
    hn_bakeoff_child_progress(user, p->step, p->total);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f) {
    (void)st, (void)flag, (void)f;
    return remove(path);
}

typedef struct {
    char text[512]; // the answer's first line is all that is scored
    size_t n;
} answer;

static bool on_text(const char *text, size_t len, void *user) {
    answer *a = user;
    size_t k = len < sizeof a->text - 1 - a->n ? len : sizeof a->text - 1 - a->n;
    memcpy(a->text + a->n, text, k);
    a->n += k;
    a->text[a->n] = 0;
    return !memchr(a->text, '\n', a->n) && a->n < sizeof a->text - 1; // the first line is complete
}

// Greedy answers to every question, with the KV cache; *correct of them match a gold answer.
static hn_status answer_all(const hn_bakeoff *b, hn_bakeoff_child *c, hn_bakeoff_row *row, int *correct,
                            int64_t *generated) {
    const hn_bakeoff_gen *g = &b->gen;
    hn_model *m = b->m;
    int max_prompt = 0, nv = hn_model_n_virtual(m);
    for (int i = 0; i < g->qa.n; i++) max_prompt = g->n_prompt[i] > max_prompt ? g->n_prompt[i] : max_prompt;
    int n_ctx = nv + max_prompt + b->r->max_new_tokens;
    if (m->pos_embd && n_ctx > m->hp.n_ctx_train) n_ctx = m->hp.n_ctx_train; // learned positions end there
    int n_vocab = hn_tokenizer_n_vocab(m->tok) < m->hp.n_vocab ? hn_tokenizer_n_vocab(m->tok) : m->hp.n_vocab;
    hn_sampler_params sp = hn_sampler_default_params();
    sp.temp = 0; // greedy
    hn_kv_cache *kv = hn_kv_cache_create(m, n_ctx);
    hn_sampler *smp = kv ? hn_sampler_create(&sp, n_vocab) : NULL;
    hn_status s = kv && smp ? HN_OK : HN_ERR_NOMEM;
    *correct = 0, *generated = 0;
    for (int i = 0; !s && i < g->qa.n; i++) {
        answer a = {.n = 0};
        a.text[0] = 0;
        hn_generate_params gp = {.n_predict = b->r->max_new_tokens, .on_text = on_text, .user = &a};
        hn_generate_stats st;
        hn_kv_cache_truncate(kv, 0);
        if (nv + g->n_prompt[i] >= n_ctx) continue; // no room left to answer: counted wrong
        if ((s = hn_generate(m, kv, smp, g->prompt[i], g->n_prompt[i], &gp, &st))) break;
        *generated += st.n_gen;
        if (i < (int)(sizeof row->answers / sizeof row->answers[0])) { // the first line, cut at a character
            size_t n = strcspn(a.text, "\n"), cap = sizeof row->answers[0] - 1;
            if (n > cap)
                for (n = cap; n > 0 && ((unsigned char)a.text[n] & 0xC0) == 0x80; n--) {
                }
            memcpy(row->answers[i], a.text, n);
            row->answers[i][n] = 0;
        }
        *correct += hn_qa_match(a.text, (const char *const *)g->qa.items[i].answers, g->qa.items[i].n_answers);
        hn_bakeoff_child_progress(c, i + 1, g->qa.n);
    }
    hn_sampler_destroy(smp);
    hn_kv_cache_destroy(kv);
    return s;
}

void hn_bakeoff_gen_child(const hn_bakeoff *b, int ix, hn_bakeoff_child *c, hn_bakeoff_row *row) {
    const hn_bakeoff_gen *g = &b->gen;
    const hn_bakeoff_entry *e = ix >= 0 ? &b->r->methods[ix] : NULL;
    hn_train_config cfg;
    hn_lm_run run = {0};
    hn_loader ld = {0}, lv = {0};
    bool have_cfg = false;
    const char *tmp = getenv("TMPDIR");
    char tdir[4096];
    snprintf(tdir, sizeof tdir, "%s/hone-bakeoff-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    bool have_dir = false;
    hn_bakeoff_child_phase(c, HN_BAKEOFF_PHASE_TRAIN, 0);
    hn_status s = HN_OK;
    if (e) {
        if (!(s = hn_train_config_copy(&cfg, e->tc))) have_cfg = true;
        // The trainer writes its metrics and configuration into a run directory: a fresh one, removed at the end.
        if (!s && !(have_dir = mkdtemp(tdir) != NULL))
            s = hn_fail(HN_ERR_IO, "%s: cannot make a run directory: %s", tdir, strerror(errno));
        if (!s) {
            free(cfg.output_dir);
            if (!(cfg.output_dir = strdup(tdir))) s = HN_ERR_NOMEM;
            cfg.threads = b->threads;
        }
        if (!s) s = hn_lm_run_init(&run, b->m, &cfg);
        if (s == HN_ERR_UNSUPPORTED) { // the method does not attach to this model
            row->state = HN_BAKEOFF_NOT_APPLICABLE;
            snprintf(row->message, sizeof row->message, "%s", hn_errmsg());
        }
    } else {
        s = hn_lm_run_init_base(&run, b->m);
    }
    hn_loader_params lp = hn_loader_default_params();
    lp.batch = e ? cfg.batch_size : b->r->batch;
    lp.seq_len = g->max_len;
    lp.seed = e ? (uint64_t)cfg.seed : b->r->seed;
    int32_t eos = hn_tokenizer_eos(b->m->tok);
    lp.pad_id = eos >= 0 ? eos : 0;
    bool have_ld = false, have_lv = false;
    if (!s && e && !(s = hn_loader_init(&ld, &g->train, &lp))) have_ld = true;
    lp.shuffle = false;
    if (!s && !(s = hn_loader_init(&lv, &g->test, &lp))) have_lv = true;
    if (!s && e) {
        hn_train_hooks hooks = {.progress = train_progress, .user = c};
        hn_train_result res;
        double t = hn_now();
        s = hn_train(&run.obj, &ld, NULL, &cfg, &hooks, &res);
        row->train_s = hn_now() - t;
        if (!s) row->train_tok_s = row->train_s > 0 ? (double)res.tokens / row->train_s : 0;
    }
    if (!s) {
        row->n_trainable = hn_param_count(run.obj.params);
        hn_bakeoff_child_phase(c, HN_BAKEOFF_PHASE_EVAL, hn_loader_count_batches(&lv, 1));
        double t = hn_now();
        s = hn_lm_eval_loss(&run.obj, &lv, hn_bakeoff_child_progress, c, &row->val_loss);
        row->eval_s = hn_now() - t;
        row->eval_tok_s = row->eval_s > 0 ? b->test_tokens / row->eval_s : 0;
    }
    if (!s) {
        hn_bakeoff_child_phase(c, HN_BAKEOFF_PHASE_QA, g->qa.n);
        int64_t generated = 0;
        double t = hn_now();
        s = answer_all(b, c, row, &row->qa_correct, &generated);
        row->qa_s = hn_now() - t;
        row->exact_match = g->qa.n ? (double)row->qa_correct / g->qa.n : 0;
        row->gen_tok_s = row->qa_s > 0 ? generated / row->qa_s : 0;
    }
    if (s && row->state != HN_BAKEOFF_NOT_APPLICABLE) {
        static const char *const phases[] = {"train", "eval", "qa"};
        row->state = HN_BAKEOFF_FAILED;
        snprintf(row->message, sizeof row->message, "%s failed: %s", phases[c->phase], hn_errmsg());
    }
    if (have_dir) nftw(tdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    if (have_lv) hn_loader_deinit(&lv);
    if (have_ld) hn_loader_deinit(&ld);
    hn_lm_run_deinit(&run);
    if (have_cfg) hn_train_config_deinit(&cfg);
}
