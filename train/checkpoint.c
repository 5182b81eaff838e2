// train/checkpoint.c — a training checkpoint as one atomically written file (train/trainer.h).
//
// DIR/state.bin, little-endian, no padding:
//   char magic[4] = "HNCK"; u32 version
//   i64 step, bad_evals, n_skipped, tokens; f64 best_val (NaN: none)
//   i64 pos.epoch, pos.index; u64 pos.rng[4]
//   u32 has_rng; u64 rng[4]
//   i64 AdamW's t
//   u32 yaml_len; yaml bytes
//   u32 n_params; per param: u32 name_len; name; i64 n; f32 data[n]; f32 m[n]; f32 v[n]
//   u64 checksum of every byte before it (hash_words below)
#include "train/trainer.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CKPT_MAGIC "HNCK"
#define CKPT_FILE "state.bin"

// ---- checksum: 64-bit words mixed one by one (fast enough for gigabytes; catches any damaged byte in practice)

typedef struct {
    uint64_t h;
    uint8_t tail[8];
    int n_tail;
} hasher;

static inline uint64_t mix(uint64_t h, uint64_t w) {
    h ^= w * 0x9E3779B97F4A7C15ull;
    h = (h << 27) | (h >> 37);
    return h * 0xBF58476D1CE4E5B9ull + 0x94D049BB133111EBull;
}

static void hash_bytes(hasher *s, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n && s->n_tail) {
        s->tail[s->n_tail++] = *p++, n--;
        if (s->n_tail == 8) {
            uint64_t w;
            memcpy(&w, s->tail, 8);
            s->h = mix(s->h, w);
            s->n_tail = 0;
        }
    }
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        s->h = mix(s->h, w);
    }
    while (n--) s->tail[s->n_tail++] = *p++;
}

static uint64_t hash_final(hasher *s, uint64_t total) {
    uint64_t w = 0;
    memcpy(&w, s->tail, (size_t)s->n_tail);
    return mix(mix(s->h, w), total);
}

// ---- writing

typedef struct {
    hn_afile f;
    hasher h;
    uint64_t size;
    hn_status s;
} writer;

static void put(writer *w, const void *data, size_t n) {
    if (w->s) return;
    w->s = hn_afile_write(&w->f, data, n);
    hash_bytes(&w->h, data, n);
    w->size += n;
}
static void put_u32(writer *w, uint32_t v) { put(w, &v, 4); }
static void put_i64(writer *w, int64_t v) { put(w, &v, 8); }
static void put_f64(writer *w, double v) { put(w, &v, 8); }

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = hn_alloc(n, "a path");
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

// A process killed while writing leaves NAME.tmp.<pid> files (hn_afile); the next save removes them.
static void remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strstr(e->d_name, ".tmp.")) continue;
        char *p = join(dir, e->d_name);
        if (p) unlink(p);
        free(p);
    }
    closedir(d);
}

hn_status hn_ckpt_save(const char *dir, const hn_param_list *params, const hn_adamw *opt, const hn_ckpt_state *st) {
    hn_status s = hn_mkdir_p(dir);
    if (s) return s;
    remove_stale_temps(dir);
    char *path = join(dir, "config.yaml");
    if (!path) return HN_ERR_NOMEM;
    hn_afile yf;
    const char *yaml = st->config_yaml ? st->config_yaml : "";
    s = hn_afile_open(&yf, path);
    if (!s) s = hn_afile_write(&yf, yaml, strlen(yaml));
    s = s ? (hn_afile_abort(&yf), s) : hn_afile_commit(&yf);
    free(path);
    if (s) return s;

    path = join(dir, CKPT_FILE);
    if (!path) return HN_ERR_NOMEM;
    writer w = {.h = {.h = 0x243F6A8885A308D3ull}};
    s = hn_afile_open(&w.f, path);
    free(path);
    if (s) return s;
    put(&w, CKPT_MAGIC, 4);
    put_u32(&w, HN_CKPT_VERSION);
    put_i64(&w, st->step);
    put_i64(&w, st->bad_evals);
    put_i64(&w, st->n_skipped);
    put_i64(&w, st->tokens);
    put_f64(&w, st->best_val);
    put_i64(&w, st->pos.epoch);
    put_i64(&w, st->pos.index);
    put(&w, st->pos.rng, sizeof st->pos.rng);
    put_u32(&w, st->has_rng);
    put(&w, st->rng.s, sizeof st->rng.s);
    put_i64(&w, opt->t);
    put_u32(&w, (uint32_t)strlen(yaml));
    put(&w, yaml, strlen(yaml));
    put_u32(&w, (uint32_t)params->n);
    for (int i = 0; i < params->n; i++) {
        const hn_param *p = params->items[i];
        put_u32(&w, (uint32_t)strlen(p->name));
        put(&w, p->name, strlen(p->name));
        put_i64(&w, p->n);
        put(&w, p->data, (size_t)p->n * sizeof(float));
        put(&w, opt->m + opt->off[i], (size_t)p->n * sizeof(float));
        put(&w, opt->v + opt->off[i], (size_t)p->n * sizeof(float));
    }
    uint64_t sum = hash_final(&w.h, w.size);
    if (!w.s) w.s = hn_afile_write(&w.f, &sum, 8);
    if (w.s) {
        hn_afile_abort(&w.f);
        return w.s;
    }
    return hn_afile_commit(&w.f);
}

// ---- reading: every length checked against what is left

typedef struct {
    const uint8_t *p, *end;
    const char *path;
    hn_status s;
} reader;

static bool take(reader *r, void *out, size_t n, const char *what) {
    if (r->s) return false;
    if ((size_t)(r->end - r->p) < n) {
        r->s = hn_fail(HN_ERR_FORMAT, "%s: truncated in %s (the file ends early)", r->path, what);
        return false;
    }
    if (out) memcpy(out, r->p, n);
    r->p += n;
    return true;
}

static uint32_t get_u32(reader *r, const char *what) {
    uint32_t v = 0;
    take(r, &v, 4, what);
    return v;
}
static int64_t get_i64(reader *r, const char *what) {
    int64_t v = 0;
    take(r, &v, 8, what);
    return v;
}

typedef struct {
    const char *name;
    uint32_t name_len;
    int64_t n;
    const uint8_t *data; // data, m, v: 3 n floats
} saved_param;

hn_status hn_ckpt_load(const char *dir, const hn_param_list *params, hn_adamw *opt, hn_ckpt_state *st) {
    memset(st, 0, sizeof *st);
    char *path = join(dir, CKPT_FILE);
    if (!path) return HN_ERR_NOMEM;
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) {
        hn_status s = hn_fail(HN_ERR_NOTFOUND, "%s: no checkpoint to resume from", path);
        free(path);
        return s;
    }
    hn_map map;
    hn_status s = hn_map_open(&map, path);
    if (s) {
        free(path);
        return s;
    }
    reader r = {.p = map.data, .end = map.data + map.size, .path = path};
    saved_param *sp = NULL;
    char magic[4] = {0};
    if (map.size < 8 || (memcpy(magic, map.data, 4), memcmp(magic, CKPT_MAGIC, 4))) {
        s = hn_fail(HN_ERR_FORMAT, "%s: not a hone checkpoint (expected the magic \"HNCK\")", path);
        goto done;
    }
    r.p += 4;
    uint32_t version = get_u32(&r, "the header");
    if (version != HN_CKPT_VERSION) {
        s = hn_fail(version > HN_CKPT_VERSION ? HN_ERR_UNSUPPORTED : HN_ERR_FORMAT,
                    "%s: checkpoint format version %u %s (this hone reads version %d)", path, version,
                    version > HN_CKPT_VERSION ? "is newer than this hone understands" : "is unknown",
                    HN_CKPT_VERSION);
        goto done;
    }
    uint64_t stored;
    hasher h = {.h = 0x243F6A8885A308D3ull};
    if (map.size < 16) {
        s = hn_fail(HN_ERR_FORMAT, "%s: truncated (%zu bytes)", path, map.size);
        goto done;
    }
    hash_bytes(&h, map.data, map.size - 8);
    memcpy(&stored, map.data + map.size - 8, 8);
    if (hash_final(&h, map.size - 8) != stored) {
        s = hn_fail(HN_ERR_FORMAT, "%s: checksum mismatch: the checkpoint is damaged or truncated", path);
        goto done;
    }
    r.end -= 8;
    hn_ckpt_state t = {0};
    t.step = get_i64(&r, "the header");
    t.bad_evals = get_i64(&r, "the header");
    t.n_skipped = get_i64(&r, "the header");
    t.tokens = get_i64(&r, "the header");
    take(&r, &t.best_val, 8, "the header");
    t.pos.epoch = get_i64(&r, "the loader position");
    t.pos.index = get_i64(&r, "the loader position");
    take(&r, t.pos.rng, sizeof t.pos.rng, "the loader position");
    t.has_rng = get_u32(&r, "the rng state") != 0;
    take(&r, t.rng.s, sizeof t.rng.s, "the rng state");
    int64_t adam_t = get_i64(&r, "the optimizer step");
    uint32_t ylen = get_u32(&r, "the configuration");
    const uint8_t *yaml = r.p;
    take(&r, NULL, ylen, "the configuration");
    uint32_t np = get_u32(&r, "the parameter count");
    if (r.s) {
        s = r.s;
        goto done;
    }
    if (t.step < 0 || adam_t < 0 || adam_t > t.step || t.pos.epoch < 0 || t.pos.index < 0) {
        s = hn_fail(HN_ERR_FORMAT, "%s: impossible counters (step %lld, optimizer step %lld)", path,
                    (long long)t.step, (long long)adam_t);
        goto done;
    }
    if (np != (uint32_t)params->n) {
        s = hn_fail(HN_ERR_FORMAT, "%s: holds %u trainable tensors, the model being trained has %d", path, np,
                    params->n);
        goto done;
    }
    sp = hn_calloc(np ? np : 1, sizeof *sp, "the checkpoint's tensor list");
    if (!sp) {
        s = HN_ERR_NOMEM;
        goto done;
    }
    for (uint32_t i = 0; i < np; i++) {
        sp[i].name_len = get_u32(&r, "a tensor name");
        sp[i].name = (const char *)r.p;
        if (sp[i].name_len >= sizeof params->items[0]->name) {
            s = hn_fail(HN_ERR_FORMAT, "%s: tensor %u: name length %u is too long", path, i, sp[i].name_len);
            goto done;
        }
        take(&r, NULL, sp[i].name_len, "a tensor name");
        sp[i].n = get_i64(&r, "a tensor size");
        if (r.s) break;
        size_t bytes;
        if (sp[i].n < 0 || !hn_mul_ok((size_t)sp[i].n, 12, &bytes) || bytes > (size_t)(r.end - r.p)) {
            s = hn_fail(HN_ERR_FORMAT, "%s: tensor '%.*s': %lld values do not fit in the file", path,
                        (int)sp[i].name_len, sp[i].name, (long long)sp[i].n);
            goto done;
        }
        sp[i].data = r.p;
        r.p += bytes;
    }
    if (!r.s && r.p != r.end) r.s = hn_fail(HN_ERR_FORMAT, "%s: %zu unexpected bytes after the last tensor", path,
                                            (size_t)(r.end - r.p));
    if (r.s) {
        s = r.s;
        goto done;
    }
    // Every trainable tensor by name, with its size; nothing touched until all match.
    int *which = hn_calloc((size_t)params->n + 1, sizeof *which, "the checkpoint's tensor map");
    if (!which) {
        s = HN_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < params->n && !s; i++) {
        const hn_param *p = params->items[i];
        int k = -1;
        for (uint32_t j = 0; j < np && k < 0; j++)
            if (sp[j].name_len == strlen(p->name) && !memcmp(sp[j].name, p->name, sp[j].name_len)) k = (int)j;
        if (k < 0) s = hn_fail(HN_ERR_FORMAT, "%s: no tensor '%s' (the checkpoint is of another model or method)",
                               path, p->name);
        else if (sp[k].n != p->n)
            s = hn_fail(HN_ERR_FORMAT, "%s: tensor '%s' has %lld values, expected %lld", path, p->name,
                        (long long)sp[k].n, (long long)p->n);
        else which[i] = k;
    }
    if (!s) {
        t.config_yaml = hn_alloc(ylen + 1, "the checkpoint's configuration");
        if (!t.config_yaml) s = HN_ERR_NOMEM;
    }
    if (!s) {
        memcpy(t.config_yaml, yaml, ylen);
        t.config_yaml[ylen] = 0;
        for (int i = 0; i < params->n; i++) {
            const hn_param *p = params->items[i];
            const uint8_t *d = sp[which[i]].data;
            size_t b = (size_t)p->n * sizeof(float);
            memcpy(p->data, d, b);
            memcpy(opt->m + opt->off[i], d + b, b);
            memcpy(opt->v + opt->off[i], d + 2 * b, b);
        }
        opt->t = adam_t;
        *st = t;
    }
    free(which);
done:
    free(sp);
    hn_map_close(&map);
    free(path);
    return s;
}
