// base/base.h — errors, logging, files, threads, rng, time: what every other layer stands on.
//
// Errors: every fallible function returns hn_status and, on failure, leaves a one-line message (naming the file,
// the field and what was expected) that hn_errmsg() returns. The library never prints and never exits; the CLI
// turns a status into one line on stderr and an exit code.
//
//   hn_status s = hn_gguf_open(&g, path);
//   if (s) { fprintf(stderr, "hone: %s\n", hn_errmsg()); return 1; }
#ifndef HN_BASE_H
#define HN_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    HN_OK = 0,
    HN_ERR_IO,          // a file could not be opened, read or written
    HN_ERR_FORMAT,      // a file or input is malformed
    HN_ERR_UNSUPPORTED, // well-formed, but hone does not handle it (yet)
    HN_ERR_ARG,         // a caller passed a bad value (bad flag, out-of-range option)
    HN_ERR_NOMEM,       // an allocation failed
    HN_ERR_RANGE,       // a length or index is past a limit (e.g. prompt longer than the context)
    HN_ERR_NOTFOUND,    // a named thing (model, tensor, key) does not exist
    HN_STATUS_COUNT
} hn_status;

// Records the message for this thread and returns s, so that `return hn_fail(HN_ERR_FORMAT, "...")` reads well.
hn_status hn_fail(hn_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *hn_errmsg(void);          // the last message of this thread ("" if none)
const char *hn_status_name(hn_status s);

// Warnings and progress go through one sink that the CLI sets (default: none, the library stays silent).
typedef enum { HN_LOG_DEBUG, HN_LOG_INFO, HN_LOG_WARN } hn_log_level;
typedef void (*hn_log_fn)(hn_log_level level, const char *msg, void *user);
void hn_log_set(hn_log_fn fn, void *user, hn_log_level min_level);
void hn_log(hn_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define hn_warn(...) hn_log(HN_LOG_WARN, __VA_ARGS__)
#define hn_info(...) hn_log(HN_LOG_INFO, __VA_ARGS__)

// Allocation that reports failure through hn_fail (message names `what`). Free with free().
void *hn_alloc(size_t size, const char *what);
void *hn_calloc(size_t n, size_t size, const char *what); // checks n*size for overflow
void *hn_alloc_aligned(size_t size, const char *what);    // 64-byte aligned; free with free()

// Read-only mapping of a whole file (borrowed until hn_map_close).
typedef struct {
    const uint8_t *data;
    size_t size;
} hn_map;
hn_status hn_map_open(hn_map *m, const char *path);
void hn_map_close(hn_map *m);

// Atomic writes: data goes to PATH.tmp.<pid>, which is renamed over PATH on commit and removed on abort, so a
// failed write never leaves a half-written file at PATH.
typedef struct {
    void *fp; // FILE *
    char *path, *tmp;
    bool failed;
} hn_afile;
hn_status hn_afile_open(hn_afile *f, const char *path);
hn_status hn_afile_write(hn_afile *f, const void *data, size_t size);
hn_status hn_afile_commit(hn_afile *f); // flush, fsync, rename; always releases f
void hn_afile_abort(hn_afile *f);       // removes the temporary file; safe after commit
// mkdir -p: DIR and its missing parents (mode 0777 less the umask); an error names the part it could not create.
hn_status hn_mkdir_p(const char *dir);

// Threads: one number for OpenMP and BLAS together, so they never use more than --threads.
void hn_threads_set(int n); // n <= 0: the number of physical cores
int hn_threads_get(void);
int hn_physical_cores(void);

// Deterministic random numbers (xoshiro256**), seeded with splitmix64.
typedef struct {
    uint64_t s[4];
} hn_rng;
void hn_rng_seed(hn_rng *r, uint64_t seed);
uint64_t hn_rng_u64(hn_rng *r);
float hn_rng_f32(hn_rng *r); // uniform in [0, 1)

double hn_now(void); // monotonic seconds

// Text (base/text.c): the offset of the first byte of text[0..n) that is not valid UTF-8 (no overlongs, surrogates
// or code points past U+10FFFF), n when all of it is.
size_t hn_utf8_check(const char *text, size_t n);
// FNV-1a 64 of data, continuing from h (start with HN_FNV1A_INIT).
#define HN_FNV1A_INIT 0xcbf29ce484222325ull
uint64_t hn_fnv1a(uint64_t h, const void *data, size_t n);

// Checked size arithmetic: false on overflow.
static inline bool hn_mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool hn_add_ok(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

#endif
