// base/file.c — read-only file mapping and atomic (temp + rename) writes.
#define _GNU_SOURCE
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

hn_status hn_map_open(hn_map *m, const char *path) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return hn_fail(HN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return hn_fail(HN_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) { // mmap refuses empty files; an empty map is still a valid (if useless) file
        close(fd);
        return HN_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return hn_fail(HN_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    m->data = p;
    m->size = (size_t)st.st_size;
    return HN_OK;
}

void hn_map_close(hn_map *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

hn_status hn_afile_open(hn_afile *f, const char *path) {
    memset(f, 0, sizeof *f);
    size_t n = strlen(path) + 32;
    f->path = strdup(path);
    f->tmp = malloc(n);
    if (!f->path || !f->tmp) {
        free(f->path);
        free(f->tmp);
        return hn_fail(HN_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(f->tmp, n, "%s.tmp.%d", path, (int)getpid());
    f->fp = fopen(f->tmp, "wb");
    if (!f->fp) {
        hn_status s = hn_fail(HN_ERR_IO, "%s: cannot create: %s", f->tmp, strerror(errno));
        free(f->path);
        free(f->tmp);
        f->path = f->tmp = NULL;
        return s;
    }
    return HN_OK;
}

hn_status hn_afile_write(hn_afile *f, const void *data, size_t size) {
    if (f->failed) return HN_ERR_IO;
    if (size && fwrite(data, 1, size, f->fp) != size) {
        f->failed = true;
        return hn_fail(HN_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
    }
    return HN_OK;
}

hn_status hn_afile_commit(hn_afile *f) {
    if (!f->fp) return hn_fail(HN_ERR_IO, "atomic file already closed");
    hn_status s = HN_OK;
    if (f->failed) s = HN_ERR_IO;
    else if (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0)
        s = hn_fail(HN_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
    if (fclose(f->fp) != 0 && s == HN_OK) s = hn_fail(HN_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
    f->fp = NULL;
    if (s == HN_OK && rename(f->tmp, f->path) != 0)
        s = hn_fail(HN_ERR_IO, "%s: cannot rename into place: %s", f->path, strerror(errno));
    if (s != HN_OK) unlink(f->tmp);
    free(f->path);
    free(f->tmp);
    f->path = f->tmp = NULL;
    return s;
}

void hn_afile_abort(hn_afile *f) {
    if (f->fp) {
        fclose(f->fp);
        f->fp = NULL;
    }
    if (f->tmp) unlink(f->tmp);
    free(f->path);
    free(f->tmp);
    f->path = f->tmp = NULL;
}

hn_status hn_mkdir_p(const char *dir) {
    size_t n = strlen(dir);
    char *p = hn_alloc(n + 1, "path");
    if (!p) return HN_ERR_NOMEM;
    memcpy(p, dir, n + 1);
    hn_status s = HN_OK;
    for (char *q = p + 1;; q++) {
        if (*q && *q != '/') continue;
        char c = *q;
        *q = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) s = hn_fail(HN_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
        *q = c;
        if (!c || s) break;
    }
    free(p);
    return s;
}
