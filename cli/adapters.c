// cli/adapters.c — the --adapter flags of the commands that run a model (see adapters.h).
#include "cli/adapters.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const cli_adapters_usage =
    "      --adapter [NAME=]PATH[:SCALE]  apply an adapter (repeatable; alias --lora): a PEFT directory (LoRA, DoRA,\n"
    "                          IA3, prompt / P- / prefix tuning), a hone adapter directory (bottleneck adapters),\n"
    "                          a LoRA GGUF or a `hone train` run directory; SCALE multiplies a LoRA-family\n"
    "                          adapter's alpha/r (default 1)\n"
    "      --use NAME          apply only the adapter named NAME (default: all given)\n"
    "      --allow-other-base  apply an adapter to a model with other weights than the one it was trained on\n";

static bool exists(const char *path, bool *is_dir) {
    struct stat st;
    if (stat(path, &st)) return false;
    if (is_dir) *is_dir = S_ISDIR(st.st_mode);
    return true;
}

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) memcpy(p, s, n), p[n] = 0;
    return p;
}

hn_status cli_adapter_parse(const char *spec, cli_adapter *out) {
    memset(out, 0, sizeof *out);
    out->scale = 1.0f;
    const char *path = spec, *end = spec + strlen(spec), *name_end = NULL;
    if (!exists(spec, NULL)) {
        const char *eq = strchr(spec, '=');
        if (eq && !memchr(spec, '/', (size_t)(eq - spec))) name_end = eq, path = eq + 1;
        const char *colon = strrchr(path, ':');
        if (colon) {
            char *e;
            errno = 0;
            float x = strtof(colon + 1, &e);
            if (colon[1] && !*e && !errno) {
                if (!isfinite(x))
                    return hn_fail(HN_ERR_ARG, "--adapter '%s': SCALE must be a finite number", spec);
                out->scale = x, end = colon;
            }
        }
    }
    if (name_end == spec) return hn_fail(HN_ERR_ARG, "--adapter '%s': empty NAME before '='", spec);
    if (end == path) return hn_fail(HN_ERR_ARG, "--adapter '%s': no PATH (expected [NAME=]PATH[:SCALE])", spec);
    out->path = dup_n(path, (size_t)(end - path));
    if (name_end) {
        out->name = dup_n(spec, (size_t)(name_end - spec));
    } else {
        // The last component that is not "adapter" (a run directory's adapter/ is named after its run).
        size_t n = (size_t)(end - path);
        while (n > 1 && path[n - 1] == '/') n--;
        size_t b = n;
        while (b > 0 && path[b - 1] != '/') b--;
        if (n - b == 7 && !strncmp(path + b, "adapter", 7) && b > 1) {
            size_t e2 = b - 1;
            while (e2 > 1 && path[e2 - 1] == '/') e2--;
            size_t b2 = e2;
            while (b2 > 0 && path[b2 - 1] != '/') b2--;
            if (e2 > b2) b = b2, n = e2;
        }
        out->name = dup_n(path + b, n - b);
    }
    if (!out->path || !out->name) {
        free(out->path), free(out->name);
        memset(out, 0, sizeof *out);
        return hn_fail(HN_ERR_NOMEM, "out of memory");
    }
    return HN_OK;
}

bool cli_adapters_flag(cli_adapters *ca, int argc, char **argv, int *i, bool *err) {
    const char *spec = NULL;
    if (cli_flag_bool(argv, *i, NULL, "--allow-other-base")) {
        ca->allow_other_base = true;
        return true;
    }
    if (cli_flag_str(argc, argv, i, NULL, "--use", &ca->use, err)) return true;
    if (!cli_flag_str(argc, argv, i, NULL, "--adapter", &spec, err) &&
        !cli_flag_str(argc, argv, i, NULL, "--lora", &spec, err))
        return false;
    if (*err) return true;
    cli_adapter a;
    cli_adapter *items = realloc(ca->items, (size_t)(ca->n + 1) * sizeof *items);
    if (!items) {
        cli_usage_error("out of memory");
        *err = true;
        return true;
    }
    ca->items = items;
    if (cli_adapter_parse(spec, &a)) {
        cli_usage_error("%s", hn_errmsg());
        *err = true;
        return true;
    }
    for (int k = 0; k < ca->n; k++)
        if (!strcmp(ca->items[k].name, a.name)) {
            cli_usage_error("--adapter '%s': the name '%s' is taken; give another with NAME=PATH", spec, a.name);
            free(a.name), free(a.path);
            *err = true;
            return true;
        }
    ca->items[ca->n++] = a;
    return true;
}

static char *join(const char *dir, const char *leaf) {
    size_t n = strlen(dir) + strlen(leaf) + 2;
    char *p = hn_alloc(n, "a path");
    if (p) snprintf(p, n, "%s/%s", dir, leaf);
    return p;
}

hn_status cli_adapter_read(const char *path, int n_head, int n_head_kv, hn_adapter **out) {
    *out = NULL;
    bool dir;
    errno = 0;
    if (!exists(path, &dir)) return hn_fail(HN_ERR_IO, "%s: %s", path, strerror(errno ? errno : ENOENT));
    if (!dir) {
        // A file of a PEFT directory stands for its directory.
        const char *slash = strrchr(path, '/'), *leaf = slash ? slash + 1 : path;
        if (!strcmp(leaf, "adapter_config.json") || !strcmp(leaf, "adapter_model.safetensors")) {
            char *d = slash ? dup_n(path, (size_t)(slash - path)) : dup_n(".", 1);
            if (!d) return hn_fail(HN_ERR_NOMEM, "out of memory");
            hn_status s = hn_peft_read(out, d, n_head, n_head_kv);
            free(d);
            return s;
        }
        return hn_lora_gguf_read(out, path);
    }
    static const char *const leaves[] = {"adapter_config.json", "adapter/adapter_config.json", "adapter.gguf"};
    for (int k = 0; k < 3; k++) {
        char *p = join(path, leaves[k]);
        if (!p) return HN_ERR_NOMEM;
        bool found = exists(p, NULL);
        hn_status s = HN_OK;
        if (found && k == 0) s = hn_peft_read(out, path, n_head, n_head_kv);
        else if (found && k == 1) {
            p[strlen(p) - strlen("/adapter_config.json")] = 0;
            s = hn_peft_read(out, p, n_head, n_head_kv);
        } else if (found)
            s = hn_lora_gguf_read(out, p);
        free(p);
        if (found) return s;
    }
    return hn_fail(HN_ERR_ARG, "%s: a directory with neither adapter_config.json (PEFT), adapter/ nor "
                   "adapter.gguf (a hone train run)", path);
}

// Where PATH's adapter directory is, when it is one that hn_method_load reads (any method's PEFT directory but
// LoRA's, or hone's own format): PATH itself or a run's PATH/adapter. NULL for LoRA (read by cli_adapter_read, which
// also takes GGUF files and checks the base strictly) and for what is not an adapter directory.
static char *method_dir(const char *path) {
    bool dir;
    if (!exists(path, &dir) || !dir) return NULL;
    for (int k = 0; k < 2; k++) {
        char *d = k ? join(path, "adapter") : dup_n(path, strlen(path));
        char *own = d ? join(d, "hone_adapter.json") : NULL, *peft = d ? join(d, "adapter_config.json") : NULL;
        bool lora = false, found = own && exists(own, NULL);
        if (!found && peft && exists(peft, NULL)) {
            json_t *c = json_load_file(peft, 0, NULL);
            json_t *pt = json_object_get(c, "peft_type");
            lora = json_is_string(pt) && !strcmp(json_string_value(pt), "LORA") &&
                   !json_is_true(json_object_get(c, "use_dora"));
            found = true; // an unreadable config: hn_method_load says what is wrong with it
            json_decref(c);
        }
        free(own), free(peft);
        if (found && !lora) return d;
        free(d);
        if (found) return NULL;
    }
    return NULL;
}

hn_status cli_adapters_attach(cli_adapters *ca, hn_model *m) {
    bool used = !ca->use;
    for (int k = 0; k < ca->n; k++) used |= ca->use && !strcmp(ca->items[k].name, ca->use);
    if (!used) {
        char names[512] = "";
        size_t o = 0;
        for (int k = 0; k < ca->n && o < sizeof names; k++)
            o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", k ? ", " : "", ca->items[k].name);
        return hn_fail(HN_ERR_ARG, "--use %s: no adapter of that name (given: %s)", ca->use,
                       ca->n ? names : "none");
    }
    for (int k = 0; k < ca->n; k++) {
        cli_adapter *a = &ca->items[k];
        a->on = !ca->use || !strcmp(ca->use, a->name);
        char *dir = method_dir(a->path);
        hn_status s = HN_OK;
        if (dir) {
            s = hn_method_load(&a->me, m, dir);
            free(dir);
        } else {
            s = cli_adapter_read(a->path, m->hp.n_head, m->hp.n_head_kv, &a->ad);
            if (!s) s = hn_adapter_check_base(a->ad, &m->gguf, ca->allow_other_base);
            if (!s) s = hn_method_lora_from(&a->me, m, a->ad);
        }
        if (!s) s = hn_method_set_scale(a->me, a->scale);
        if (s) {
            char msg[1024]; // hn_fail writes the message buffer hn_errmsg() points into
            snprintf(msg, sizeof msg, "%s", hn_errmsg());
            bool weights = s == HN_ERR_ARG && !ca->allow_other_base && strstr(msg, "other weights");
            return hn_fail(s, "adapter %s: %s%s", a->name, msg, weights ? " (--allow-other-base applies it anyway)" : "");
        }
        hn_method_set_enabled(a->me, a->on);
        int64_t n = hn_param_count(hn_method_params(a->me));
        if (a->ad)
            fprintf(stderr, "adapter %s: %s (lora, r %d, alpha %g, %d modules, scale %g x %g)%s\n", a->name, a->path,
                    a->ad->r, (double)a->ad->alpha, a->ad->n_modules, (double)hn_adapter_scale(a->ad),
                    (double)a->scale, a->on ? "" : ", not applied (--use)");
        else
            fprintf(stderr, "adapter %s: %s (%s, %lld values)%s\n", a->name, a->path, a->me->ops->name, (long long)n,
                    a->on ? "" : ", not applied (--use)");
    }
    return HN_OK;
}

void cli_adapters_deinit(cli_adapters *ca) {
    for (int k = 0; k < ca->n; k++) {
        hn_method_destroy(ca->items[k].me);
        hn_adapter_destroy(ca->items[k].ad);
        free(ca->items[k].name);
        free(ca->items[k].path);
    }
    free(ca->items);
    memset(ca, 0, sizeof *ca);
}
