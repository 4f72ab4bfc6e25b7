/* config_int.h - the config key table, shared by the files that implement
 * the config: config_keys.c (the table and the value checks), config.c
 * (loading and validation) and config_docs.c (docs/config.md). */
#ifndef MN_CONFIG_INT_H
#define MN_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define NO_FIELD SIZE_MAX
#define SUN_PATH_MAX 107 /* sizeof(sun_path) - 1 on Linux */

enum cfg_level { LVL_TOP, LVL_APP, LVL_REDIS, LVL_API, LVL_HOOK };
enum cfg_type {
    CFG_STR,
    CFG_BOOL,
    CFG_UINT,
    CFG_APPS,
    CFG_REDIS,
    CFG_API,
    CFG_HOOKS,  /* applications[].webhooks */
    CFG_EVENTS, /* webhooks[].events: names, stored as a bit mask */
};

enum {
    CFG_REQUIRED = 1,    /* must be present */
    CFG_SECRET = 2,      /* never echoed; wiped before it is freed */
    CFG_EMPTY_UNSET = 4, /* "" means unset (NULL), as in the original */
    CFG_FALSE_ONLY = 8,  /* accepted for compatibility; only false works */
};

/* Returns why s is refused, or NULL when it is fine. s is NUL-terminated
 * (jansson refuses \u0000 unless asked), len is its length. */
typedef const char *check_fn(const char *s, size_t len);

struct cfg_key {
    const char *path; /* "port", "applications[].key", "redis.sentinel" */
    enum cfg_type type;
    unsigned flags;
    const char *def;   /* the default as JSON text, or NULL; "(...)" is a docs note */
    unsigned min, max; /* CFG_UINT: range; CFG_STR: max bytes */
    check_fn *check;   /* CFG_STR: extra rule, or NULL */
    size_t off;        /* field in the struct of the path's level, or NO_FIELD */
    const char *help;
};

#define TOP(f) offsetof(struct mn_config, f)
#define APP(f) offsetof(struct mn_app, f)
#define RED(f) offsetof(struct mn_redis, f)
#define API(f) offsetof(struct mn_api, f)
#define HOOK(f) offsetof(struct mn_webhook, f)
#define MAX_WEBHOOKS 10 /* per application */
#define BIG 10000000u

/* Why an id or key is refused ([A-Za-z0-9_-]+), or NULL. */
const char *cfg_check_ident(const char *s, size_t len);

extern const struct cfg_key cfg_keys[];
extern const size_t cfg_nkeys;
/* "", "applications[].", "redis.", "api.", "applications[].webhooks[]." */
extern const char *const cfg_level_prefix[];
/* The level a key belongs to (the longest matching prefix of its path). */
enum cfg_level cfg_level_of(const struct cfg_key *k);
/* The key's name within its level ("port", "key", "sentinel"). */
const char *cfg_leaf_of(const struct cfg_key *k);

#endif
