// train/cls_icl.c — in-context learning as a classification method (issue 6): nothing is trained, a prompt is built.
//
// train() chooses what goes into the prompt: the label words of each class (the verbalizer: o->label_words
// "class=word|word2", default the class name) and the shots, either k examples drawn once (seeded and
// class-balanced: each class's examples shuffled, taken round-robin over the classes, the k then shuffled) or, with
// o->nearest, the whole training set with its embeddings, so that predict() picks the k nearest to each query
// (cosine of the model's own pooled, L2-normalised embedding; the most similar shot last, next to the query).
//
// The prompt. A model with a chat template (tokenizer.chat_template) gets a conversation: the first user turn holds
// the instruction ("Classify the text as one of: W0, W1, .... Answer with the label only.", Wc the first word of
// class c, in class order) and the first text, each shot is a user turn "Text: ..." answered by an assistant turn holding
// its class's first label word, the query is the last user turn, and the assistant's turn is opened; the label word
// follows directly. Shots as turns (rather than one block) show the model the exact answer format it is scored on.
// A model without a template (a base model) gets plain text without an instruction (the shots instruct it):
// "Text: ...\nLabel: word\n\n" per shot, then "Text: ...\nLabel:"; the word follows after a space. Texts are cut
// to o->max_len tokens.
//
// Scoring. A label word scores the log-likelihood of its tokens after the prompt (their sum, not divided by their
// number). A class with several words scores the log-sum-exp of its words' scores, i.e. the probability that the
// model says any one of them (OpenPrompt/PEFT verbalizers average instead; summing probabilities keeps a rare
// synonym from dragging its class down). Probabilities: the softmax over the classes of the text's class scores
// less the log of the prompt's prior, the mean class probabilities of 16 training texts (seeded, balanced) that
// train() measures — a calibration (after Zhao et al., 2021, who measure a content-free input "N/A"; with
// SmolLM2-135M-Instruct that over-corrects to one class). Without it (o->no_calibrate) the small model answers
// the label the instruction lists first or the shots favour: zero-shot on 100 rt-polarity sentences, 0.50 with
// "positive, negative" and 0.69 with "negative, positive"; calibrated 0.69 and 0.71; 4 random shots 0.50 -> 0.58.
// The prompt goes through the KV cache once; a word's later tokens run on top of it and are cut off again
// (hn_kv_cache_truncate); consecutive prompts keep their longest common token prefix in the cache (kept between
// calls), so random shots cost their block once.
//
// Run directory: DIR/icl.json {"classes", "shots", "nearest", "max_len", "label_words": [[words of class 0], ...],
// "examples": [{"text", "label"}, ...] (the shots, or with nearest the whole training set), "prior": [log p, ...]},
// and with nearest DIR/icl_embeddings.safetensors ("embeddings": (n_examples, n_embd)).
#include "io/safetensors.h"
#include "model/embed.h"
#include "train/classify.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ICL_FILE "icl.json"
#define ICL_EMB_FILE "icl_embeddings.safetensors"
#define PRIOR_SAMPLE 16 // training texts that estimate the prompt's prior over the classes

typedef struct {
    int n_classes;
    char **classes;
    int *n_words;  // per class
    char ***words; // per class, n_words[c] label words
    int shots, max_len;
    bool nearest;
    double *prior; // (n_classes) log of the mean class probabilities over a sample of training texts, or NULL
    int n_ex;      // the examples: the chosen shots, or (nearest) the whole training set
    char **ex_text;
    int32_t *ex_label;
    float *ex_emb; // (n_ex, n_embd) with nearest, else NULL
    int n_embd;
    // Kept between predict calls (a caller may predict a few texts at a time): the KV cache and the prompt it holds.
    hn_kv_cache *kv;
    const hn_model *kv_model;
    int32_t *prev;
    int64_t prev_n;
} icl_state;

static void icl_free(void *p) {
    icl_state *st = p;
    if (!st) return;
    for (int c = 0; c < st->n_classes; c++) {
        if (st->classes) free(st->classes[c]);
        for (int w = 0; st->words && st->words[c] && w < st->n_words[c]; w++) free(st->words[c][w]);
        if (st->words) free(st->words[c]);
    }
    free(st->classes), free(st->words), free(st->n_words);
    for (int i = 0; st->ex_text && i < st->n_ex; i++) free(st->ex_text[i]);
    free(st->ex_text), free(st->ex_label), free(st->ex_emb);
    hn_kv_cache_destroy(st->kv);
    free(st->prev), free(st->prior);
    free(st);
}

static hn_status icl_applies(const hn_model *m) {
    if (m->hp.arch == HN_ARCH_BERT)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: icl needs a generative (decoder) model with a language-model head; "
                       "this is an encoder (bert)", m->path);
    if (!m->tok) return hn_fail(HN_ERR_UNSUPPORTED, "%s: icl needs the model's tokenizer", m->path);
    return HN_OK;
}

static char *dup_str(const char *s) {
    char *d = hn_alloc(strlen(s) + 1, "icl text");
    if (d) strcpy(d, s);
    return d;
}

// The state's classes and words: every class gets its name as its one word unless a spec "class=w1|w2" names it.
static hn_status set_words(icl_state *st, const char *const *specs, int n_specs) {
    st->n_words = hn_calloc(st->n_classes, sizeof *st->n_words, "icl label words");
    st->words = hn_calloc(st->n_classes, sizeof *st->words, "icl label words");
    if (!st->n_words || !st->words) return HN_ERR_NOMEM;
    for (int i = 0; i < n_specs; i++) {
        const char *eq = strchr(specs[i], '=');
        if (!eq) return hn_fail(HN_ERR_ARG, "label words '%s': expected CLASS=WORD[|WORD...]", specs[i]);
        int c = 0;
        while (c < st->n_classes && (strlen(st->classes[c]) != (size_t)(eq - specs[i]) ||
                                     strncmp(st->classes[c], specs[i], eq - specs[i])))
            c++;
        if (c == st->n_classes)
            return hn_fail(HN_ERR_ARG, "label words '%s': no class '%.*s' in the data", specs[i], (int)(eq - specs[i]),
                           specs[i]);
        if (st->words[c]) return hn_fail(HN_ERR_ARG, "label words: class '%s' given twice", st->classes[c]);
        int n = 1;
        for (const char *p = eq + 1; *p; p++) n += *p == '|';
        st->words[c] = hn_calloc(n, sizeof(char *), "icl label words");
        if (!st->words[c]) return HN_ERR_NOMEM;
        const char *p = eq + 1;
        for (int w = 0; w < n; w++) {
            size_t len = strcspn(p, "|");
            if (!len) return hn_fail(HN_ERR_ARG, "label words '%s': an empty word", specs[i]);
            if (!(st->words[c][w] = hn_alloc(len + 1, "icl label word"))) return HN_ERR_NOMEM;
            memcpy(st->words[c][w], p, len), st->words[c][w][len] = 0;
            st->n_words[c]++;
            p += len + (p[len] == '|');
        }
    }
    for (int c = 0; c < st->n_classes; c++)
        if (!st->words[c]) {
            if (!(st->words[c] = hn_calloc(1, sizeof(char *), "icl label words"))) return HN_ERR_NOMEM;
            if (!(st->words[c][0] = dup_str(st->classes[c]))) return HN_ERR_NOMEM;
            st->n_words[c] = 1;
        }
    return HN_OK;
}

static void shuffle(int *a, int n, hn_rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(hn_rng_u64(r) % (uint64_t)(i + 1)), t = a[i];
        a[i] = a[j], a[j] = t;
    }
}

// k examples, class-balanced: each class's indices shuffled, taken round-robin, then the k shuffled.
static hn_status pick_balanced(const hn_cls_data *d, int k, uint64_t seed, int *out) {
    int *order = hn_calloc(d->n, sizeof *order, "icl shots"), *start = hn_calloc(d->n_classes + 1, sizeof *start,
                                                                                  "icl shots");
    int *taken = hn_calloc(d->n_classes, sizeof *taken, "icl shots");
    if (!order || !start || !taken) return free(order), free(start), free(taken), HN_ERR_NOMEM;
    for (int i = 0; i < d->n; i++) start[d->labels[i] + 1]++;
    for (int c = 0; c < d->n_classes; c++) start[c + 1] += start[c];
    for (int i = 0; i < d->n; i++) order[start[d->labels[i]] + taken[d->labels[i]]++] = i;
    hn_rng r;
    hn_rng_seed(&r, seed);
    for (int c = 0; c < d->n_classes; c++) shuffle(order + start[c], start[c + 1] - start[c], &r);
    int n = 0;
    for (int round = 0; n < k; round++)
        for (int c = 0; c < d->n_classes && n < k; c++)
            if (round < start[c + 1] - start[c]) out[n++] = order[start[c] + round];
    shuffle(out, k, &r);
    free(order), free(start), free(taken);
    return HN_OK;
}

static hn_status icl_predict(hn_model *m, void *state, const char *const *texts, int n, float *probs);

// The calibration: the prompt's own leaning over the classes, the mean class probabilities of a balanced sample of
// training texts (seeded), kept as their logs and subtracted from every text's class scores.
static hn_status estimate_prior(hn_model *m, icl_state *st, const hn_cls_data *train, uint64_t seed) {
    int ns = train->n < PRIOR_SAMPLE ? train->n : PRIOR_SAMPLE;
    int *pick = hn_calloc(ns, sizeof *pick, "icl prior");
    const char **texts = hn_calloc(ns, sizeof *texts, "icl prior");
    float *p = hn_calloc((size_t)ns * st->n_classes, sizeof *p, "icl prior");
    double *prior = hn_calloc(st->n_classes, sizeof *prior, "icl prior");
    hn_status s = pick && texts && p && prior ? pick_balanced(train, ns, seed ^ 0x9e3779b97f4a7c15ull, pick)
                                              : HN_ERR_NOMEM;
    for (int i = 0; !s && i < ns; i++) texts[i] = train->texts[pick[i]];
    if (!s) s = icl_predict(m, st, texts, ns, p);
    for (int i = 0; !s && i < ns; i++)
        for (int c = 0; c < st->n_classes; c++) prior[c] += p[(size_t)i * st->n_classes + c] / ns;
    for (int c = 0; !s && c < st->n_classes; c++) prior[c] = log(prior[c] > 1e-30 ? prior[c] : 1e-30);
    if (!s) st->prior = prior, prior = NULL;
    free(pick), free(texts), free(p), free(prior);
    return s;
}

static hn_status icl_train(hn_model *m, const hn_cls_data *train, const hn_cls_data *val, const hn_cls_options *o,
                           void **state) {
    (void)val;
    *state = NULL;
    hn_status s = icl_applies(m);
    if (s) return s;
    if (o->shots < 0) return hn_fail(HN_ERR_ARG, "icl: shots %d: expected 0 or more", o->shots);
    icl_state *st = hn_calloc(1, sizeof *st, "icl state");
    if (!st) return HN_ERR_NOMEM;
    st->n_classes = train->n_classes;
    st->shots = o->shots < train->n ? o->shots : train->n;
    st->nearest = o->nearest && st->shots > 0;
    st->max_len = o->max_len;
    st->classes = hn_calloc(st->n_classes, sizeof *st->classes, "icl classes");
    if (!st->classes) return icl_free(st), HN_ERR_NOMEM;
    for (int c = 0; c < st->n_classes; c++)
        if (!(st->classes[c] = dup_str(train->classes[c]))) return icl_free(st), HN_ERR_NOMEM;
    if ((s = set_words(st, o->label_words, o->label_words ? o->n_label_words : 0))) return icl_free(st), s;

    int *pick = NULL;
    st->n_ex = st->nearest ? train->n : st->shots;
    if (!st->nearest && st->n_ex && (!(pick = hn_calloc(st->n_ex, sizeof *pick, "icl shots")) ||
                                     (s = pick_balanced(train, st->n_ex, o->seed, pick))))
        return free(pick), icl_free(st), s ? s : HN_ERR_NOMEM;
    st->ex_text = hn_calloc(st->n_ex ? st->n_ex : 1, sizeof *st->ex_text, "icl examples");
    st->ex_label = hn_calloc(st->n_ex ? st->n_ex : 1, sizeof *st->ex_label, "icl examples");
    if (!st->ex_text || !st->ex_label) return free(pick), icl_free(st), HN_ERR_NOMEM;
    for (int i = 0; i < st->n_ex; i++) {
        int j = pick ? pick[i] : i;
        st->ex_label[i] = train->labels[j];
        if (!(st->ex_text[i] = dup_str(train->texts[j]))) return free(pick), icl_free(st), HN_ERR_NOMEM;
    }
    free(pick);
    // Progress in texts: the candidates embedded (nearest), then the calibration texts scored.
    int64_t n_cal = o->no_calibrate ? 0 : train->n < PRIOR_SAMPLE ? train->n : PRIOR_SAMPLE;
    int64_t total = (st->nearest ? st->n_ex : 0) + n_cal;
    if (st->nearest) {
        st->n_embd = m->hp.n_embd;
        st->ex_emb = hn_calloc((size_t)st->n_ex * st->n_embd, sizeof *st->ex_emb, "icl embeddings");
        if (!st->ex_emb) return icl_free(st), HN_ERR_NOMEM;
        int part = st->n_ex / 20 > 64 ? st->n_ex / 20 : 64; // parts big enough to batch texts of similar lengths
        for (int i = 0; i < st->n_ex; i += part) {
            int k = st->n_ex - i < part ? st->n_ex - i : part;
            if ((s = hn_model_embed_texts(m, (const char *const *)st->ex_text + i, k, HN_POOL_MODEL, true,
                                          st->ex_emb + (size_t)i * st->n_embd)))
                return icl_free(st), s;
            hn_cls_progress(o, i + k, total);
        }
    }
    if (!o->no_calibrate && (s = estimate_prior(m, st, train, o->seed))) return icl_free(st), s;
    if (n_cal) hn_cls_progress(o, total, total);
    *state = st;
    return HN_OK;
}

// ---- prompts

// text cut to max_len tokens (max_len <= 0: whole); malloc'd.
static hn_status cut_text(const hn_tokenizer *tk, const char *text, int max_len, char **out) {
    int32_t *ids;
    int64_t n;
    hn_status s = hn_tokenizer_encode(tk, text, -1, 0, &ids, &n);
    if (s) return s;
    if (max_len <= 0 || n <= max_len) {
        free(ids);
        return (*out = dup_str(text)) ? HN_OK : HN_ERR_NOMEM;
    }
    s = hn_tokenizer_decode(tk, ids, max_len, out);
    free(ids);
    return s;
}

// A growing string.
typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s) {
    size_t len = strlen(s);
    if (b->oom) return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = (b->n + len + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, len + 1);
    b->n += len;
}

static void instruction(const icl_state *st, sbuf *b) {
    sb_add(b, "Classify the text as one of: ");
    for (int c = 0; c < st->n_classes; c++) {
        if (c) sb_add(b, ", ");
        sb_add(b, st->words[c][0]);
    }
    sb_add(b, ". Answer with the label only.");
}

// The prompt's token ids for query text q with shots ex[0..k) (indices into the examples).
static hn_status build_prompt(const hn_model *m, const icl_state *st, bool chat, const char *q, const int *ex, int k,
                              int32_t **ids, int64_t *n) {
    int nt = k + 1;
    char **texts = hn_calloc(nt, sizeof *texts, "icl prompt");
    hn_chat_msg *msgs = hn_calloc(2 * nt, sizeof *msgs, "icl prompt");
    sbuf *user = hn_calloc(nt, sizeof *user, "icl prompt");
    sbuf b = {0};
    hn_status s = texts && msgs && user ? HN_OK : HN_ERR_NOMEM;
    for (int i = 0; !s && i < nt; i++) s = cut_text(m->tok, i < k ? st->ex_text[ex[i]] : q, st->max_len, &texts[i]);
    if (!s && chat) {
        int nm = 0;
        for (int i = 0; i < nt; i++) {
            if (!i) instruction(st, &user[i]), sb_add(&user[i], "\n\n");
            sb_add(&user[i], "Text: "), sb_add(&user[i], texts[i]);
            if (user[i].oom) {
                s = hn_fail(HN_ERR_NOMEM, "out of memory building an icl prompt");
                break;
            }
            msgs[nm++] = (hn_chat_msg){"user", user[i].p};
            if (i < k) msgs[nm++] = (hn_chat_msg){"assistant", st->words[st->ex_label[ex[i]]][0]};
        }
        if (!s) s = hn_chat_render(m->chat, m->default_system, msgs, nm, true, &b.p);
    } else if (!s) {
        for (int i = 0; i < nt; i++) {
            sb_add(&b, "Text: "), sb_add(&b, texts[i]), sb_add(&b, "\nLabel:");
            if (i < k) sb_add(&b, " "), sb_add(&b, st->words[st->ex_label[ex[i]]][0]), sb_add(&b, "\n\n");
        }
        if (b.oom) s = hn_fail(HN_ERR_NOMEM, "out of memory building an icl prompt");
    }
    if (!s) s = hn_tokenizer_encode(m->tok, b.p, -1, HN_TOK_SPECIAL | HN_TOK_ADD_BOS, ids, n);
    if (!s && *n == 0) s = hn_fail(HN_ERR_FORMAT, "icl: an empty prompt");
    for (int i = 0; texts && i < nt; i++) free(texts[i]);
    for (int i = 0; user && i < nt; i++) free(user[i].p);
    free(texts), free(msgs), free(user), free(b.p);
    return s;
}

// The k nearest examples to embedding e (most similar last).
static void nearest(const icl_state *st, const float *e, int k, int *out) {
    float *best = malloc((size_t)k * sizeof *best); // best[0] the largest
    if (!best) k = 0;
    int have = 0;
    for (int i = 0; i < st->n_ex; i++) {
        const float *x = st->ex_emb + (size_t)i * st->n_embd;
        float sim = 0;
        for (int j = 0; j < st->n_embd; j++) sim += x[j] * e[j];
        int pos = have < k ? have : k; // insertion into the sorted list
        while (pos > 0 && best[pos - 1] < sim) pos--;
        if (pos >= k) continue;
        int last = have < k ? have : k - 1;
        for (int j = last; j > pos; j--) best[j] = best[j - 1], out[j] = out[j - 1];
        best[pos] = sim, out[pos] = i;
        if (have < k) have++;
    }
    for (int i = 0; i < have / 2; i++) {
        int t = out[i];
        out[i] = out[have - 1 - i], out[have - 1 - i] = t;
    }
    free(best);
}

static void log_softmax_row(const float *logits, int nv, double *out) {
    double mx = -INFINITY, sum = 0;
    for (int v = 0; v < nv; v++) mx = logits[v] > mx ? logits[v] : mx;
    for (int v = 0; v < nv; v++) sum += exp(logits[v] - mx);
    double lse = mx + log(sum);
    for (int v = 0; v < nv; v++) out[v] = logits[v] - lse;
}

static hn_status icl_predict(hn_model *m, void *state, const char *const *texts, int n, float *probs) {
    icl_state *st = state;
    hn_status s = icl_applies(m);
    if (s || n <= 0) return s;
    bool chat = hn_gguf_find(&m->gguf, "tokenizer.chat_template") != NULL; // base models see plain text
    int nv = m->hp.n_vocab, k = st->nearest ? st->shots : st->n_ex;
    // Every word's tokens (the continuation of the prompt).
    int n_all = 0;
    for (int c = 0; c < st->n_classes; c++) n_all += st->n_words[c];
    int32_t **wid = hn_calloc(n_all, sizeof *wid, "icl words");
    int64_t *wn = hn_calloc(n_all, sizeof *wn, "icl words"), max_wn = 0;
    int np = n;
    int32_t **pid = hn_calloc(np, sizeof *pid, "icl prompts");
    int64_t *pn = hn_calloc(np, sizeof *pn, "icl prompts"), max_pn = 0;
    int *ex = hn_calloc(k ? k : 1, sizeof *ex, "icl shots");
    float *qemb = st->nearest ? hn_calloc((size_t)n * st->n_embd, sizeof *qemb, "icl query embeddings") : NULL;
    double *base = hn_calloc(nv, sizeof *base, "icl log-probabilities"), *row = hn_calloc(nv, sizeof *row, "icl");
    double *wscore = hn_calloc(n_all, sizeof *wscore, "icl scores");
    double *cscore = hn_calloc((size_t)np * st->n_classes, sizeof *cscore, "icl scores");
    int32_t *prev = st->prev, *old = st->prev; // the prompt in st->kv; given back to st at the end
    int64_t prev_n = st->prev_n;
    st->prev = NULL, st->prev_n = 0;
    if (!wid || !wn || !pid || !pn || !ex || (st->nearest && !qemb) || !base || !row || !wscore || !cscore)
        s = HN_ERR_NOMEM;
    for (int c = 0, w = 0; !s && c < st->n_classes; c++)
        for (int j = 0; !s && j < st->n_words[c]; j++, w++) {
            char sp[1024];
            snprintf(sp, sizeof sp, "%s%s", chat ? "" : " ", st->words[c][j]);
            s = hn_tokenizer_encode(m->tok, sp, -1, HN_TOK_CONTINUE, &wid[w], &wn[w]);
            if (!s && !wn[w]) s = hn_fail(HN_ERR_ARG, "icl: label word '%s' has no tokens", st->words[c][j]);
            if (!s && wn[w] > max_wn) max_wn = wn[w];
        }
    if (!s && st->nearest && st->n_embd != m->hp.n_embd)
        s = hn_fail(HN_ERR_FORMAT, "icl: the stored embeddings have %d dimensions, the model %d", st->n_embd,
                    m->hp.n_embd);
    if (!s && st->nearest) s = hn_model_embed_texts(m, texts, n, HN_POOL_MODEL, true, qemb);
    for (int i = 0; !s && i < n; i++) {
        if (st->nearest) nearest(st, qemb + (size_t)i * st->n_embd, k, ex);
        else
            for (int j = 0; j < k; j++) ex[j] = j;
        s = build_prompt(m, st, chat, texts[i], ex, k, &pid[i], &pn[i]);
        if (!s && pn[i] > max_pn) max_pn = pn[i];
    }
    int64_t need = max_pn + max_wn, limit = m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : need;
    if (!s && need > limit)
        s = hn_fail(HN_ERR_RANGE, "icl: a prompt of %lld tokens (with its label word) is longer than the model's "
                    "context of %lld; use fewer shots or a smaller max_len", (long long)need, (long long)limit);
    if (!s && st->kv && (st->kv_model != m || hn_kv_cache_size(st->kv) < need)) {
        hn_kv_cache_destroy(st->kv);
        st->kv = NULL, prev_n = 0;
    }
    if (!s && !st->kv) {
        int64_t size = 2 * need < limit ? 2 * need : limit; // room for longer texts in later calls
        if (!(st->kv = hn_kv_cache_create(m, (int)size))) s = HN_ERR_NOMEM;
        st->kv_model = m, prev_n = 0;
    }
    hn_kv_cache *kv = st->kv;
    for (int i = 0; !s && i < np; i++) {
        // Keep the tokens this prompt shares with the last one; at least one token runs, for its logits.
        int64_t common = 0;
        while (common < prev_n && common < pn[i] && prev[common] == pid[i][common]) common++;
        if (common >= pn[i]) common = pn[i] - 1;
        hn_kv_cache_truncate(kv, (int)common);
        float *logits;
        if ((s = hn_model_forward(m, kv, pid[i] + common, (int)(pn[i] - common), HN_LOGITS_LAST, &logits))) break;
        log_softmax_row(logits, nv, base);
        prev = pid[i], prev_n = pn[i];
        for (int w = 0; !s && w < n_all; w++) {
            double sc = base[wid[w][0]];
            if (wn[w] > 1) {
                if ((s = hn_model_forward(m, kv, wid[w], (int)wn[w] - 1, HN_LOGITS_ALL, &logits))) break;
                for (int64_t t = 1; t < wn[w]; t++) {
                    log_softmax_row(logits + (size_t)(t - 1) * nv, nv, row);
                    sc += row[wid[w][t]];
                }
                hn_kv_cache_truncate(kv, (int)pn[i]);
            }
            wscore[w] = sc;
        }
        // Class scores: log-sum-exp over the class's words.
        for (int c = 0, w = 0; c < st->n_classes; c++) {
            double wm = -INFINITY, sum = 0;
            for (int j = 0; j < st->n_words[c]; j++) wm = wscore[w + j] > wm ? wscore[w + j] : wm;
            for (int j = 0; j < st->n_words[c]; j++) sum += exp(wscore[w + j] - wm);
            cscore[(size_t)i * st->n_classes + c] = wm + log(sum);
            w += st->n_words[c];
        }
    }
    // Probabilities: the softmax over the classes of the text's scores, less the log prior.
    for (int i = 0; !s && i < n; i++) {
        const double *q = cscore + (size_t)i * st->n_classes, *cf = st->prior;
        double mx = -INFINITY, z = 0, *v = wscore; // free again, and n_all >= n_classes
        for (int c = 0; c < st->n_classes; c++) v[c] = q[c] - (cf ? cf[c] : 0), mx = v[c] > mx ? v[c] : mx;
        for (int c = 0; c < st->n_classes; c++) z += exp(v[c] - mx);
        for (int c = 0; c < st->n_classes; c++) probs[(size_t)i * st->n_classes + c] = (float)(exp(v[c] - mx) / z);
    }
    if (!s) { // what the cache holds now (after an error: unknown, so the next call starts afresh)
        st->prev = pid[np - 1], st->prev_n = pn[np - 1];
        pid[np - 1] = NULL;
    }
    free(old);
    for (int w = 0; wid && w < n_all; w++) free(wid[w]);
    for (int i = 0; pid && i < np; i++) free(pid[i]);
    free(wid), free(wn), free(pid), free(pn), free(ex), free(qemb), free(base), free(row), free(wscore),
        free(cscore);
    return s;
}

// ---- run directory

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = hn_alloc(n, "path");
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static hn_status write_json(json_t *j, const char *path) {
    char *text = j ? json_dumps(j, JSON_INDENT(1)) : NULL;
    json_decref(j);
    if (!text) return hn_fail(HN_ERR_NOMEM, "%s: out of memory encoding JSON", path);
    hn_afile f;
    hn_status s = hn_afile_open(&f, path);
    if (!s) s = hn_afile_write(&f, text, strlen(text));
    if (!s) s = hn_afile_write(&f, "\n", 1);
    s = s ? (hn_afile_abort(&f), s) : hn_afile_commit(&f);
    free(text);
    return s;
}

static hn_status icl_save(const hn_model *m, void *state, const char *dir) {
    (void)m;
    icl_state *st = state;
    json_t *j = json_object(), *cl = json_array(), *lw = json_array(), *exs = json_array();
    for (int c = 0; c < st->n_classes; c++) {
        json_array_append_new(cl, json_string(st->classes[c]));
        json_t *ws = json_array();
        for (int w = 0; w < st->n_words[c]; w++) json_array_append_new(ws, json_string(st->words[c][w]));
        json_array_append_new(lw, ws);
    }
    for (int i = 0; i < st->n_ex; i++)
        json_array_append_new(exs, json_pack("{s:s, s:i}", "text", st->ex_text[i], "label", (int)st->ex_label[i]));
    json_object_set_new(j, "classes", cl);
    json_object_set_new(j, "shots", json_integer(st->shots));
    json_object_set_new(j, "nearest", json_boolean(st->nearest));
    if (st->prior) {
        json_t *pr = json_array();
        for (int c = 0; c < st->n_classes; c++) json_array_append_new(pr, json_real(st->prior[c]));
        json_object_set_new(j, "prior", pr);
    }
    json_object_set_new(j, "max_len", json_integer(st->max_len));
    json_object_set_new(j, "label_words", lw);
    json_object_set_new(j, "examples", exs);
    char *path = join(dir, ICL_FILE);
    if (!path) return json_decref(j), HN_ERR_NOMEM;
    hn_status s = write_json(j, path);
    free(path);
    if (s || !st->nearest) return s;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    if (!w) return HN_ERR_NOMEM;
    int64_t ne[2] = {st->n_embd, st->n_ex};
    s = hn_safetensors_writer_add(w, "embeddings", HN_F32, 2, ne, st->ex_emb);
    if (!s && !(path = join(dir, ICL_EMB_FILE))) s = HN_ERR_NOMEM;
    if (!s) s = hn_safetensors_writer_write(w, path), free(path);
    hn_safetensors_writer_destroy(w);
    return s;
}

// A string field of a JSON object, or NULL.
static const char *jstr(json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

static hn_status icl_load(hn_model *m, const char *dir, void **state) {
    *state = NULL;
    char *path = join(dir, ICL_FILE);
    if (!path) return HN_ERR_NOMEM;
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    icl_state *st = hn_calloc(1, sizeof *st, "icl state");
    hn_status s = HN_OK;
    if (!st) s = HN_ERR_NOMEM;
    else if (!j) s = hn_fail(HN_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
#define BAD(field, what) (s = hn_fail(HN_ERR_FORMAT, "%s: \"%s\": expected %s", path, field, what))
    json_t *cl = json_object_get(j, "classes"), *lw = json_object_get(j, "label_words");
    json_t *exs = json_object_get(j, "examples");
    if (s) {
    } else if (!json_is_array(cl) || json_array_size(cl) < 2) BAD("classes", "an array of two or more names");
    else if (!json_is_integer(json_object_get(j, "shots")) || json_integer_value(json_object_get(j, "shots")) < 0)
        BAD("shots", "an integer >= 0");
    else if (!json_is_boolean(json_object_get(j, "nearest"))) BAD("nearest", "true or false");
    else if (!json_is_array(lw) || json_array_size(lw) != json_array_size(cl))
        BAD("label_words", "an array of word lists, one per class");
    else if (!json_is_array(exs)) BAD("examples", "an array of {\"text\", \"label\"}");
    if (!s) {
        st->n_classes = (int)json_array_size(cl);
        st->shots = (int)json_integer_value(json_object_get(j, "shots"));
        st->nearest = json_is_true(json_object_get(j, "nearest"));
        json_t *pr = json_object_get(j, "prior");
        if (pr && (!json_is_array(pr) || json_array_size(pr) != (size_t)st->n_classes))
            BAD("prior", "an array of one log-probability per class");
        else if (pr && !(st->prior = hn_calloc(st->n_classes, sizeof *st->prior, "icl prior")))
            s = HN_ERR_NOMEM;
        for (int c = 0; !s && pr && c < st->n_classes; c++) {
            json_t *v = json_array_get(pr, c);
            if (!json_is_number(v)) BAD("prior", "numbers");
            else st->prior[c] = json_number_value(v);
        }
        st->max_len = (int)json_integer_value(json_object_get(j, "max_len"));
        st->n_ex = (int)json_array_size(exs);
        st->classes = hn_calloc(st->n_classes, sizeof *st->classes, "icl classes");
        st->n_words = hn_calloc(st->n_classes, sizeof *st->n_words, "icl label words");
        st->words = hn_calloc(st->n_classes, sizeof *st->words, "icl label words");
        st->ex_text = hn_calloc(st->n_ex ? st->n_ex : 1, sizeof *st->ex_text, "icl examples");
        st->ex_label = hn_calloc(st->n_ex ? st->n_ex : 1, sizeof *st->ex_label, "icl examples");
        if (!st->classes || !st->n_words || !st->words || !st->ex_text || !st->ex_label) s = HN_ERR_NOMEM;
    }
    for (int c = 0; !s && c < st->n_classes; c++) {
        json_t *ws = json_array_get(lw, c);
        const char *name = json_string_value(json_array_get(cl, c));
        if (!name) {
            BAD("classes", "strings");
            break;
        }
        if (!json_is_array(ws) || !json_array_size(ws)) {
            BAD("label_words", "a non-empty array of words for every class");
            break;
        }
        if (!(st->classes[c] = dup_str(name))) s = HN_ERR_NOMEM;
        if (!s && !(st->words[c] = hn_calloc(json_array_size(ws), sizeof(char *), "icl label words")))
            s = HN_ERR_NOMEM;
        for (size_t w = 0; !s && w < json_array_size(ws); w++) {
            const char *word = json_string_value(json_array_get(ws, w));
            if (!word || !*word) BAD("label_words", "non-empty strings");
            else if (!(st->words[c][w] = dup_str(word))) s = HN_ERR_NOMEM;
            else st->n_words[c]++;
        }
    }
    for (int i = 0; !s && i < st->n_ex; i++) {
        json_t *e = json_array_get(exs, i), *lab = json_object_get(e, "label");
        const char *text = jstr(e, "text");
        if (!text || !json_is_integer(lab) || json_integer_value(lab) < 0 ||
            json_integer_value(lab) >= st->n_classes)
            BAD("examples", "objects {\"text\": string, \"label\": class index}");
        else if (!(st->ex_text[i] = dup_str(text))) s = HN_ERR_NOMEM;
        else st->ex_label[i] = (int32_t)json_integer_value(lab);
    }
#undef BAD
    json_decref(j);
    free(path);
    if (!s && st->nearest) {
        hn_safetensors sf;
        if (!(path = join(dir, ICL_EMB_FILE))) s = HN_ERR_NOMEM;
        else if (!(s = hn_safetensors_open(&sf, path))) {
            const hn_tensor *t = hn_safetensors_tensor(&sf, "embeddings");
            if (!t || t->type != HN_F32 || t->ne[1] != st->n_ex || t->ne[0] != m->hp.n_embd)
                s = hn_fail(HN_ERR_FORMAT, "%s: \"embeddings\": expected F32 (%d, %d) for the examples of %s", path,
                            st->n_ex, m->hp.n_embd, ICL_FILE);
            else if (!(st->ex_emb = hn_alloc((size_t)st->n_ex * m->hp.n_embd * sizeof(float), "icl embeddings")))
                s = HN_ERR_NOMEM;
            else {
                memcpy(st->ex_emb, t->data, (size_t)st->n_ex * m->hp.n_embd * sizeof(float));
                st->n_embd = m->hp.n_embd;
            }
            hn_safetensors_close(&sf);
        }
        free(path);
    }
    if (s) return icl_free(st), s;
    *state = st;
    return HN_OK;
}

static int64_t icl_n_trainable(void *state) {
    (void)state;
    return 0;
}

const hn_cls_method hn_cls_icl = {
    .name = "icl",
    .about = "in-context learning: k-shot prompts (random balanced or nearest), label words scored by likelihood",
    .applies = icl_applies,
    .train = icl_train,
    .predict = icl_predict,
    .save = icl_save,
    .load = icl_load,
    .free = icl_free,
    .n_trainable = icl_n_trainable,
};
