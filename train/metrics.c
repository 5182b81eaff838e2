// train/metrics.c — metrics.jsonl lines and the progress bar (train/trainer.h).
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// JSON has no NaN: a missing number is null. %.17g reads back as the same double.
static size_t num(char *buf, size_t cap, const char *key, double v) {
    if (!isfinite(v)) return (size_t)snprintf(buf, cap, ",\"%s\":null", key);
    return (size_t)snprintf(buf, cap, ",\"%s\":%.17g", key, v);
}

size_t hn_metrics_line(const hn_train_progress *p, int64_t tokens, char *buf, size_t cap) {
    size_t o = (size_t)snprintf(buf, cap, "{\"step\":%lld,\"epoch\":%lld", (long long)p->step, (long long)p->epoch);
#define ADD(expr)                                                                                                    \
    do {                                                                                                             \
        if (o >= cap) return 0;                                                                                      \
        o += (expr);                                                                                                 \
    } while (0)
    ADD(num(buf + o, cap - o, "loss", p->skipped ? NAN : p->loss));
    ADD(num(buf + o, cap - o, "lr", p->lr));
    ADD(num(buf + o, cap - o, "grad_norm", p->grad_norm));
    ADD((size_t)snprintf(buf + o, cap - o, ",\"tokens\":%lld", (long long)tokens));
    ADD((size_t)snprintf(buf + o, cap - o, ",\"tokens_per_s\":%.1f", isfinite(p->tokens_per_s) ? p->tokens_per_s : 0));
    ADD((size_t)snprintf(buf + o, cap - o, ",\"elapsed_s\":%.3f", p->elapsed_s));
    if (!isnan(p->val_loss)) ADD(num(buf + o, cap - o, "val_loss", p->val_loss));
    if (p->skipped) ADD((size_t)snprintf(buf + o, cap - o, ",\"skipped\":true"));
    ADD((size_t)snprintf(buf + o, cap - o, "}\n"));
#undef ADD
    return o < cap ? o : 0;
}

hn_status hn_metrics_truncate(const char *path, int64_t step) {
    hn_map m;
    if (access(path, F_OK) != 0) return HN_OK;
    hn_status s = hn_map_open(&m, path);
    if (s) return s;
    // Whole lines (ending in '\n') in order, up to the first with a larger step or without one.
    size_t keep = 0;
    for (size_t i = 0; i < m.size;) {
        const uint8_t *nl = memchr(m.data + i, '\n', m.size - i);
        if (!nl) break;
        size_t end = (size_t)(nl - m.data) + 1;
        const char *k = "{\"step\":";
        if (end - i < 9 || memcmp(m.data + i, k, 8)) break;
        long long st = strtoll((const char *)m.data + i + 8, NULL, 10);
        if (st > step) break;
        keep = end;
        i = end;
    }
    hn_afile f;
    s = hn_afile_open(&f, path);
    if (!s) s = hn_afile_write(&f, m.data, keep);
    s = s ? (hn_afile_abort(&f), s) : hn_afile_commit(&f);
    hn_map_close(&m);
    return s;
}

hn_progress_bar hn_progress_bar_init(FILE *fp) {
    return (hn_progress_bar){.fp = fp, .tty = isatty(fileno(fp)) == 1};
}

static void fmt_time(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, cap, "?");
    else if (s < 60) snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

void hn_progress_print(const hn_train_progress *p, void *user) {
    hn_progress_bar *bar = user;
    bool val = !isnan(p->val_loss);
    if (!bar->tty && !(p->step % (p->log_every > 0 ? p->log_every : 1) == 0 || val || p->last || p->skipped)) return;
    char eta[32], loss[32], vl[48] = "";
    fmt_time(eta, sizeof eta, p->eta_s);
    if (p->skipped) snprintf(loss, sizeof loss, "skipped (not finite)");
    else snprintf(loss, sizeof loss, "%.4f", p->loss);
    if (val) snprintf(vl, sizeof vl, "  val_loss %.4f", p->val_loss);
    if (bar->tty) {
        enum { W = 20 };
        char gauge[W + 1];
        int fill = p->total > 0 ? (int)(W * p->step / p->total) : 0;
        for (int i = 0; i < W; i++) gauge[i] = i < fill ? '=' : i == fill ? '>' : ' ';
        gauge[W] = 0;
        fprintf(bar->fp, "\r[%s] %lld/%lld  loss %s  lr %.2e  %.0f tok/s  ETA %s%s\033[K", gauge, (long long)p->step,
                (long long)p->total, loss, p->lr, p->tokens_per_s, eta, vl);
        bar->drawn = true;
        // An evaluation stays on the screen: the next step starts a new line.
        if (val || p->last) hn_progress_end(bar);
    } else {
        fprintf(bar->fp, "step %lld/%lld  loss %s  lr %.2e  %.0f tok/s  ETA %s%s\n", (long long)p->step,
                (long long)p->total, loss, p->lr, p->tokens_per_s, eta, vl);
    }
    fflush(bar->fp);
}

void hn_progress_end(hn_progress_bar *bar) {
    if (bar->tty && bar->drawn) fputc('\n', bar->fp);
    bar->drawn = false;
    fflush(bar->fp);
}
