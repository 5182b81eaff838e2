// train/data_tok.c — a sample (conversation or plain pieces) to token ids and a loss mask, truncated to max_len.
#include "train/data_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hn_data_params hn_data_default_params(void) {
    return (hn_data_params){
        .format = HN_DATA_AUTO,
        .max_len = 1024,
        .loss_all = false,
        .skip_bad = false,
        .chat = true,
        .chat_template = HN_CHAT_CHATML,
        .system_prompt = NULL,
    };
}

void hn_dataset_deinit(hn_dataset *ds) {
    for (int i = 0; i < ds->n; i++) free(ds->ex[i].ids);
    free(ds->ex);
    free(ds->path);
    memset(ds, 0, sizeof *ds);
}

void hn_dataset_describe(const hn_dataset *ds, int max_len, char *buf, size_t cap) {
    if (!cap) return;
    int k = snprintf(buf, cap, "%s: %d example%s (%s), %lld tokens, %lld in the loss", ds->path ? ds->path : "data",
                     ds->n, ds->n == 1 ? "" : "s", hn_data_format_name(ds->format), (long long)ds->n_tokens,
                     (long long)ds->n_loss_tokens);
    if (ds->n_truncated && k >= 0 && (size_t)k < cap)
        k += snprintf(buf + k, cap - (size_t)k, "; %lld truncated to %d tokens", (long long)ds->n_truncated, max_len);
    if (ds->n_no_loss && k >= 0 && (size_t)k < cap)
        k += snprintf(buf + k, cap - (size_t)k, "; %lld dropped with no token in the loss", (long long)ds->n_no_loss);
    if (ds->n_skipped && k >= 0 && (size_t)k < cap)
        k += snprintf(buf + k, cap - (size_t)k, "; %lld malformed skipped (first: %s)", (long long)ds->n_skipped,
                      ds->skip_msg);
}

// The example being built: ids and mask up to max tokens.
typedef struct {
    int32_t *ids;
    uint8_t *mask;
    int n, cap, max;
    bool truncated;
} tokbuf;

static hn_status push_ids(tokbuf *b, const int32_t *ids, int64_t n, bool loss) {
    if (n > b->max - b->n) {
        b->truncated = true;
        n = b->max - b->n;
    }
    if (b->n + n > b->cap) {
        int cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap = cap > b->max / 2 ? b->max : 2 * cap;
        int32_t *i2 = realloc(b->ids, (size_t)cap * sizeof *i2);
        if (!i2) return hn_fail(HN_ERR_NOMEM, "out of memory tokenizing an example");
        b->ids = i2;
        uint8_t *m2 = realloc(b->mask, (size_t)cap);
        if (!m2) return hn_fail(HN_ERR_NOMEM, "out of memory tokenizing an example");
        b->mask = m2;
        b->cap = cap;
    }
    memcpy(b->ids + b->n, ids, (size_t)n * sizeof *ids);
    memset(b->mask + b->n, loss, (size_t)n);
    b->n += (int)n;
    return HN_OK;
}

static bool word_end(const char *s, size_t i) {
    unsigned char a = (unsigned char)s[i - 1], c = (unsigned char)s[i];
    bool alnum = (a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z') || (a >= '0' && a <= '9');
    return alnum && (c == ' ' || c == '\n' || c == '\t');
}

// Appends the tokens of s[0..len) that fit. A long text is tokenized only as far as the room left needs: it is cut
// before an ASCII blank that follows an ASCII letter or digit, where the GPT-2-style pre-tokenizer always splits (no
// pre-token spans that point and BPE merges stay inside pre-tokens), so the first tokens of the prefix are the
// first tokens of the whole text. A 2-million-character example costs a few thousand tokens' work, not a million.
static hn_status push_text(tokbuf *b, const hn_tokenizer *tk, const char *s, size_t len, int flags, bool loss) {
    if (!len) return HN_OK;
    int64_t room = b->max - b->n;
    if (room <= 0) {
        b->truncated = true;
        return HN_OK;
    }
    int32_t *ids = NULL;
    int64_t n = 0;
    size_t window = (size_t)room * 16 + 4096;
    if (len > 2 * window) {
        size_t cut = window;
        while (cut > window / 2 && !word_end(s, cut)) cut--;
        if (cut > window / 2) {
            hn_status st = hn_tokenizer_encode(tk, s, (int64_t)cut, flags, &ids, &n);
            if (st) return st;
            if (n > room) {
                hn_status st = push_ids(b, ids, n, loss); // marks the truncation
                free(ids);
                return st;
            }
            free(ids);
            ids = NULL;
        }
    }
    hn_status st = hn_tokenizer_encode(tk, s, (int64_t)len, flags, &ids, &n);
    if (st) return st;
    st = push_ids(b, ids, n, loss);
    free(ids);
    return st;
}

static hn_status push_id(tokbuf *b, int32_t id, bool loss) { return push_ids(b, &id, 1, loss); }

// Whether a span of a rendered conversation is in the loss: an assistant's content and end-of-turn marker.
static bool span_loss(const hn_data_sample *s, const hn_chat_span *sp) {
    bool assistant = sp->msg >= 0 && !strcmp(s->msgs[sp->msg].role, "assistant");
    return assistant && (sp->kind == HN_CHAT_SPAN_CONTENT || sp->kind == HN_CHAT_SPAN_END);
}

static hn_status render_chat(tokbuf *b, const hn_data_sample *s, const hn_tokenizer *tk, const hn_data_params *p) {
    char *text;
    hn_chat_span *sp;
    int nsp;
    hn_status st = hn_chat_render_spans(p->chat_template, p->system_prompt, s->msgs, s->n_msgs, false, &text, &sp, &nsp);
    if (st) return st;
    // The rendering is tokenized in runs of parts with the same loss (a loss run: an assistant's content and its
    // end-of-turn marker), so that each token's loss is known and the tokens come out as the whole rendering's:
    // within a run, merges cross from markup into content as they would in the whole text (SentencePiece has no
    // pre-tokenizer, so Llama 2 merges "." and "\n" across them). A run goes on from the one before without a special
    // token between (HN_TOK_CONTINUE: no SentencePiece space prefix), and spaces that end a run move to the loss run
    // after it, as tokenizers attach a space to the word it precedes ("[/INST] " + "4": "▁4"). A message's content
    // is never read as special tokens: a run whose content holds special-token text is tokenized a part at a time,
    // its content as plain text.
    size_t carry = 0; // trailing spaces of the run before, taken over by this one
    bool first = true;
    for (int i = 0, j; i < nsp && !st; i = j) {
        bool loss = span_loss(s, &sp[i]), plain_content = false;
        size_t off = sp[i].off - carry, len = carry;
        for (j = i; j < nsp && span_loss(s, &sp[j]) == loss; j++) {
            len += sp[j].len;
            plain_content = plain_content || (sp[j].kind == HN_CHAT_SPAN_CONTENT &&
                                              hn_tokenizer_has_special_text(tk, text + sp[j].off, sp[j].len));
        }
        carry = 0;
        if (!loss && j < nsp)
            while (carry < len && text[off + len - 1 - carry] == ' ') carry++;
        len -= carry;
        for (int k = i; k < (plain_content ? j : i + 1) && !st; k++) {
            size_t o = plain_content ? (k == i ? off : sp[k].off) : off;
            size_t l = plain_content ? (k == i ? sp[k].off + sp[k].len - off : sp[k].len) : len;
            if (plain_content && k == j - 1) l = off + len - o; // the run's end (less what moved on)
            bool content = plain_content && sp[k].kind == HN_CHAT_SPAN_CONTENT;
            bool cont = !first && b->n > 0 && !hn_tokenizer_is_control(tk, b->ids[b->n - 1]);
            st = push_text(b, tk, text + o, l, (content ? 0 : HN_TOK_SPECIAL) | (cont ? HN_TOK_CONTINUE : 0), loss);
            first = first && !l;
        }
    }
    free(sp);
    free(text);
    return st;
}

hn_status hn_data_add(hn_dataset *ds, const hn_data_sample *s, const hn_tokenizer *tk, const hn_data_params *p) {
    tokbuf b = {.max = p->max_len};
    hn_status st = HN_OK;
    if (hn_tokenizer_wants_bos(tk)) st = push_id(&b, hn_tokenizer_bos(tk), false);
    if (!st && s->chat) st = render_chat(&b, s, tk, p);
    else if (!st) {
        for (int i = 0; i < s->n_pieces && !st; i++) // later pieces go on from the text before them
            st = push_text(&b, tk, s->pieces[i].s, s->pieces[i].len, i ? HN_TOK_CONTINUE : 0, s->pieces[i].loss);
        int32_t eos = hn_tokenizer_eos(tk);
        if (!st && s->eos && eos >= 0) st = push_id(&b, eos, s->n_pieces ? s->pieces[s->n_pieces - 1].loss : true);
    }
    if (st) goto fail;
    if (b.n > 0) b.mask[0] = 0; // nothing predicts the first token
    int64_t loss = 0;
    for (int i = 1; i < b.n; i++) {
        if (p->loss_all) b.mask[i] = 1;
        loss += b.mask[i];
    }
    ds->n_truncated += b.truncated;
    if (loss == 0) {
        ds->n_no_loss++;
        goto done;
    }
    if (ds->n == 0 || (ds->n >= 16 && (ds->n & (ds->n - 1)) == 0)) { // capacity: 16, then powers of two
        hn_example *ex = realloc(ds->ex, (size_t)(ds->n ? 2 * ds->n : 16) * sizeof *ex);
        if (!ex) {
            st = hn_fail(HN_ERR_NOMEM, "out of memory: %d examples", ds->n);
            goto fail;
        }
        ds->ex = ex;
    }
    // One allocation per example: ids, then the mask.
    int32_t *ids = hn_alloc((size_t)b.n * (sizeof *ids + 1), "an example");
    if (!ids) {
        st = HN_ERR_NOMEM;
        goto fail;
    }
    memcpy(ids, b.ids, (size_t)b.n * sizeof *ids);
    uint8_t *mask = (uint8_t *)(ids + b.n);
    memcpy(mask, b.mask, (size_t)b.n);
    ds->ex[ds->n++] = (hn_example){ids, mask, b.n};
    ds->n_tokens += b.n;
    ds->n_loss_tokens += loss;
done:
fail:
    free(b.ids);
    free(b.mask);
    return st;
}
