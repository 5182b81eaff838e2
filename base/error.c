// base/error.c — thread-local error messages and the log sink.
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char g_msg[1024];

// Callers may pass hn_errmsg() itself as an argument (to prefix a lower layer's message): the text is formatted
// aside first, as vsnprintf into the buffer it reads from would garble it.
hn_status hn_fail(hn_status s, const char *fmt, ...) {
    char buf[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(g_msg, buf, sizeof g_msg);
    return s;
}

const char *hn_errmsg(void) { return g_msg; }

const char *hn_status_name(hn_status s) {
    static const char *names[] = {"ok", "i/o error", "format error", "unsupported", "bad argument",
                                  "out of memory", "out of range", "not found"};
    _Static_assert(sizeof names / sizeof names[0] == HN_STATUS_COUNT, "status names out of step with hn_status");
    return (unsigned)s < HN_STATUS_COUNT ? names[s] : "unknown status";
}

static hn_log_fn g_log_fn;
static void *g_log_user;
static hn_log_level g_log_min = HN_LOG_INFO;

void hn_log_set(hn_log_fn fn, void *user, hn_log_level min_level) {
    g_log_fn = fn;
    g_log_user = user;
    g_log_min = min_level;
}

void hn_log(hn_log_level level, const char *fmt, ...) {
    if (!g_log_fn || level < g_log_min) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log_fn(level, buf, g_log_user);
}

void *hn_alloc(size_t size, const char *what) {
    void *p = malloc(size ? size : 1);
    if (!p) hn_fail(HN_ERR_NOMEM, "out of memory allocating %zu bytes for %s", size, what);
    return p;
}

void *hn_calloc(size_t n, size_t size, const char *what) {
    size_t total;
    if (!hn_mul_ok(n, size, &total)) {
        hn_fail(HN_ERR_NOMEM, "size overflow allocating %zu x %zu bytes for %s", n, size, what);
        return NULL;
    }
    void *p = calloc(total ? n : 1, total ? size : 1);
    if (!p) hn_fail(HN_ERR_NOMEM, "out of memory allocating %zu bytes for %s", total, what);
    return p;
}

void *hn_alloc_aligned(size_t size, const char *what) {
    void *p = NULL;
    size_t rounded = (size + 63) & ~(size_t)63;
    if (rounded < size || posix_memalign(&p, 64, rounded ? rounded : 64) != 0) {
        hn_fail(HN_ERR_NOMEM, "out of memory allocating %zu bytes for %s", size, what);
        return NULL;
    }
    return p;
}
