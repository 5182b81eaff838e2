// cli/args.c — flag parsing shared by every command.
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_fail(void) {
    fprintf(stderr, "hone: %s\n", hn_errmsg());
    return 1;
}

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("hone: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

// Matches argv[*i] against -s / --long / --long=VALUE; on a match stores the value and advances *i.
static bool match(int argc, char **argv, int *i, const char *shrt, const char *lng, const char **val, bool *err) {
    const char *a = argv[*i];
    size_t n = lng ? strlen(lng) : 0;
    if (lng && !strncmp(a, lng, n) && a[n] == '=') {
        *val = a + n + 1;
        return true;
    }
    if ((shrt && !strcmp(a, shrt)) || (lng && !strcmp(a, lng))) {
        if (*i + 1 >= argc) {
            cli_usage_error("%s needs a value", a);
            *err = true;
            return true;
        }
        *val = argv[++*i];
        return true;
    }
    return false;
}

bool cli_flag_str(int argc, char **argv, int *i, const char *shrt, const char *lng, const char **out, bool *err) {
    const char *v = NULL;
    if (!match(argc, argv, i, shrt, lng, &v, err)) return false;
    if (v) *out = v;
    return true;
}

bool cli_flag_int(int argc, char **argv, int *i, const char *shrt, const char *lng, int *out, bool *err) {
    const char *v = NULL;
    if (!match(argc, argv, i, shrt, lng, &v, err)) return false;
    if (!v) return true;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < -2147483647L || x > 2147483647L) {
        cli_usage_error("%s expects an integer, got '%s'", lng ? lng : shrt, v);
        *err = true;
    } else
        *out = (int)x;
    return true;
}

bool cli_flag_u64(int argc, char **argv, int *i, const char *shrt, const char *lng, uint64_t *out, bool *err) {
    const char *v = NULL;
    if (!match(argc, argv, i, shrt, lng, &v, err)) return false;
    if (!v) return true;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || end == v || v[0] == '-') {
        cli_usage_error("%s expects a non-negative integer, got '%s'", lng ? lng : shrt, v);
        *err = true;
    } else
        *out = (uint64_t)x;
    return true;
}

bool cli_flag_float(int argc, char **argv, int *i, const char *shrt, const char *lng, float *out, bool *err) {
    const char *v = NULL;
    if (!match(argc, argv, i, shrt, lng, &v, err)) return false;
    if (!v) return true;
    char *end;
    errno = 0;
    float x = strtof(v, &end);
    if (errno || *end || end == v || x != x) {
        cli_usage_error("%s expects a number, got '%s'", lng ? lng : shrt, v);
        *err = true;
    } else
        *out = x;
    return true;
}

bool cli_flag_bool(char **argv, int i, const char *shrt, const char *lng) {
    return (shrt && !strcmp(argv[i], shrt)) || (lng && !strcmp(argv[i], lng));
}

bool cli_flag_quantize(int argc, char **argv, int *i, hn_dtype *out, bool *err) {
    const char *v = NULL;
    if (!cli_flag_str(argc, argv, i, NULL, "--quantize", &v, err)) return false;
    if (*err) return true;
    if (!strcmp(v, "nf4")) *out = HN_NF4;
    else if (!strcmp(v, "none")) *out = 0;
    else *err = cli_usage_error("--quantize expects nf4 or none, got '%s'", v) != 0;
    return true;
}

bool cli_flag_threads(int argc, char **argv, int *i, bool *err) {
    int n = 0;
    if (!cli_flag_int(argc, argv, i, NULL, "--threads", &n, err)) return false;
    if (*err) return true;
    if (n < 1 || n > 1024) {
        cli_usage_error("--threads expects a count between 1 and 1024, got %d", n);
        *err = true;
    } else
        hn_threads_set(n);
    return true;
}

bool cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return true;
    return false;
}
