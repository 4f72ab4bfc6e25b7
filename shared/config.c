/* config.c - the JSON config file: loading, defaults, validation and
 * freeing, all driven by the key table in config_keys.c (which also drives
 * docs/config.md through config_docs.c), so they cannot drift apart.
 * Owns struct mn_config's memory. Does not open certificates or sockets: the
 * daemons do that with the (resolved) paths handed out here. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "map.h"
#include "mem.h"
#include "webhook_msg.h"
#include "mn.h"

#define CONFIG_MAX_FILE ((size_t)1 << 20)
#define SHOWN_KEY_MAX 64 /* bytes of an unknown key quoted back in a message */

#include "config_int.h"
/* Where an error is reported: the file name and the caller's err. */
struct walk {
    const char *file;
    struct mn_err *err;
};

static const struct cfg_key *
key_find(enum cfg_level lvl, const char *name)
{
    for (size_t i = 0; i < cfg_nkeys; i++)
        if (cfg_level_of(&cfg_keys[i]) == lvl &&
            strcmp(cfg_leaf_of(&cfg_keys[i]), name) == 0)
            return &cfg_keys[i];
    return NULL;
}

/* Reports "FILE: WHEREKEY: reason" and returns -1. */
static int __attribute__((format(printf, 4, 5)))
fail(const struct walk *w, const char *where, const char *key, const char *fmt, ...)
{
    char why[192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return mn_err_set(w->err, 0, "%s: %s%s: %s", w->file, where, key, why);
}

/* --- reading values ------------------------------------------------------ */

static int parse_apps(const struct walk *w, json_t *arr, struct mn_config *cfg);
static int parse_redis(const struct walk *w, json_t *obj, struct mn_config *cfg);
static int parse_api(const struct walk *w, json_t *obj, struct mn_config *cfg);
static int parse_hooks(const struct walk *w, const char *where, json_t *arr,
                       struct mn_app *a);
static int resolve(const struct walk *w, const char *where, const char *key, char **path,
                   size_t max);
static int parse_events(const struct walk *w, const char *where, json_t *arr,
                        unsigned *mask);

static int
set_string(const struct walk *w, const struct cfg_key *k, const char *where, json_t *v,
           char **field)
{
    const char *s = json_string_value(v), *why;
    size_t len;

    if (s == NULL)
        return fail(w, where, cfg_leaf_of(k), "must be a string");
    len = json_string_length(v);
    if (len > k->max)
        return fail(w, where, cfg_leaf_of(k), "must be at most %u bytes", k->max);
    free(*field);
    *field = NULL;
    if (len == 0 && (k->flags & CFG_EMPTY_UNSET))
        return 0;
    if (k->check != NULL && (why = k->check(s, len)) != NULL)
        return fail(w, where, cfg_leaf_of(k), "%s", why);
    *field = xstrndup(s, len);
    return 0;
}

/* Checks v against k and stores it in the level's struct at base. */
static int
set_value(const struct walk *w, const struct cfg_key *k, const char *where, json_t *v,
          void *base)
{
    json_int_t n;

    switch (k->type) {
    case CFG_BOOL:
        if (!json_is_boolean(v))
            return fail(w, where, cfg_leaf_of(k), "must be true or false");
        if ((k->flags & CFG_FALSE_ONLY) && json_is_true(v))
            return fail(w, where, cfg_leaf_of(k), "only false is supported");
        if (k->off != NO_FIELD)
            *(bool *)((char *)base + k->off) = json_is_true(v);
        return 0;
    case CFG_UINT:
        if (!json_is_integer(v))
            return fail(w, where, cfg_leaf_of(k), "must be an integer");
        n = json_integer_value(v);
        if (n < (json_int_t)k->min || n > (json_int_t)k->max)
            return fail(w, where, cfg_leaf_of(k), "must be between %u and %u", k->min,
                        k->max);
        *(unsigned *)((char *)base + k->off) = (unsigned)n;
        return 0;
    case CFG_STR:
        return set_string(w, k, where, v, (char **)((char *)base + k->off));
    case CFG_APPS:
        return parse_apps(w, v, base);
    case CFG_REDIS:
        return parse_redis(w, v, base);
    case CFG_API:
        return parse_api(w, v, base);
    case CFG_HOOKS:
        return parse_hooks(w, where, v, base);
    case CFG_EVENTS:
        return parse_events(w, where, v, (unsigned *)((char *)base + k->off));
    }
    return 0;
}

/* Stores every default of the level, through the same checks as a file. */
static void
apply_defaults(enum cfg_level lvl, void *base)
{
    static const struct walk internal = {"(key table)", NULL};

    for (size_t i = 0; i < cfg_nkeys; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        json_t *v;
        int rc;

        if (cfg_level_of(k) != lvl || k->def == NULL || k->def[0] == '(' ||
            k->off == NO_FIELD)
            continue;
        v = json_loads(k->def, JSON_DECODE_ANY, NULL);
        rc = v != NULL ? set_value(&internal, k, "", v, base) : -1;
        json_decref(v);
        if (rc < 0) { /* a bad default in keys[] is our bug */
            fprintf(stderr, "fatal: config: bad default for %s\n", k->path);
            abort();
        }
    }
}

/* Edit distance of two short strings, a swap of neighbours counting as one
 * edit ("prot" for "port"), or SIZE_MAX when one is long. */
static size_t
distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), d[SHOWN_KEY_MAX + 1][SHOWN_KEY_MAX + 1];

    if (la > SHOWN_KEY_MAX || lb > SHOWN_KEY_MAX)
        return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* "unknown key", with a hint when it is close to a known one or belongs to
 * another level. The key is quoted back with control characters replaced. */
static int
fail_unknown(const struct walk *w, enum cfg_level lvl, const char *where,
             const char *name)
{
    static const char *const home[] = {"the top level", "each applications[] entry",
                                       "\"redis\"", "\"api\"",
                                       "each applications[].webhooks[] entry"};
    char shown[SHOWN_KEY_MAX + 1];
    size_t n = strnlen(name, SHOWN_KEY_MAX);
    const struct cfg_key *near = NULL;
    size_t best = 3; /* at most two edits, and a third of the key */

    for (size_t i = 0; i < n; i++)
        shown[i] =
            (char)((unsigned char)name[i] < ' ' || name[i] == 0x7f ? '?' : name[i]);
    shown[n] = '\0';
    for (size_t i = 0; i < cfg_nkeys; i++) {
        size_t d = distance(name, cfg_leaf_of(&cfg_keys[i]));
        if (cfg_level_of(&cfg_keys[i]) == lvl && d < best &&
            d * 3 <= strlen(cfg_leaf_of(&cfg_keys[i]))) {
            near = &cfg_keys[i];
            best = d;
        }
    }
    if (near != NULL)
        return fail(w, where, shown, "unknown key (did you mean \"%s\"?)",
                    cfg_leaf_of(near));
    for (size_t i = 0; i < cfg_nkeys; i++)
        if (cfg_level_of(&cfg_keys[i]) != lvl &&
            strcmp(name, cfg_leaf_of(&cfg_keys[i])) == 0)
            return fail(w, where, shown, "unknown key (it belongs in %s)",
                        home[cfg_level_of(&cfg_keys[i])]);
    return fail(w, where, shown, "unknown key");
}

/* Reads every member of obj at level lvl; where is the path prefix of its
 * members in messages ("", "applications[2].", "redis."). */
static int
walk_object(const struct walk *w, json_t *obj, enum cfg_level lvl, const char *where,
            void *base)
{
    const char *name;
    json_t *v;

    json_object_foreach(obj, name, v)
    {
        const struct cfg_key *k = key_find(lvl, name);
        if (k == NULL)
            return fail_unknown(w, lvl, where, name);
        if (set_value(w, k, where, v, base) < 0)
            return -1;
    }
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        if (cfg_level_of(k) == lvl && (k->flags & CFG_REQUIRED) &&
            json_object_get(obj, cfg_leaf_of(k)) == NULL)
            return fail(w, where, cfg_leaf_of(k), "required key is missing");
    }
    return 0;
}

static int
parse_app(const struct walk *w, json_t *obj, size_t i, struct mn_app *a)
{
    unsigned max = key_find(LVL_APP, "id")->max;
    const char *why;
    char where[48];

    apply_defaults(LVL_APP, a);
    snprintf(where, sizeof(where), "applications[%zu]", i);
    if (!json_is_object(obj))
        return fail(w, where, "", "must be an object");
    snprintf(where, sizeof(where), "applications[%zu].", i);
    if (walk_object(w, obj, LVL_APP, where, a) < 0)
        return -1;
    if (a->id != NULL)
        return 0;
    a->id = xstrdup(a->name);
    if (strlen(a->id) > max)
        return fail(w, where, "id",
                    "must be at most %u bytes (it defaults to the name: "
                    "set \"id\")",
                    max);
    if ((why = cfg_check_ident(a->id, strlen(a->id))) != NULL)
        return fail(w, where, "id", "%s (it defaults to the name: set \"id\")", why);
    return 0;
}

/* A webhook entry: its keys, then the URL split for the sender. */
static int
parse_hook(const struct walk *w, json_t *obj, const char *where, struct mn_webhook *hk)
{
    struct webhook_url u;

    hk->events = WEBHOOK_ALL;
    if (!json_is_object(obj))
        return fail(w, where, "", "must be an object");
    if (walk_object(w, obj, LVL_HOOK, where, hk) < 0)
        return -1;
    webhook_url_parse(hk->url, strlen(hk->url), &u); /* check_url passed it */
    hk->host_header = xstrndup(u.host, u.host_len);
    if (u.host[0] == '[')
        hk->host = xstrndup(u.host + 1, u.host_len - 2);
    else
        hk->host = xstrndup(u.host, u.host_len);
    hk->port = u.port;
    hk->path = xstrndup(u.path, u.path_len);
    hk->tls = u.tls;
    if (hk->ca_file != NULL && !hk->tls)
        return fail(w, where, "ca-file",
                    "is for https:// receivers only (the url is http)");
    return resolve(w, where, "ca-file", &hk->ca_file, 4095);
}

static int
parse_hooks(const struct walk *w, const char *where, json_t *arr, struct mn_app *a)
{
    char at[64];

    if (!json_is_array(arr))
        return fail(w, where, "webhooks", "must be an array");
    if (json_array_size(arr) > MAX_WEBHOOKS)
        return fail(w, where, "webhooks", "must list at most %d receivers", MAX_WEBHOOKS);
    a->nwebhooks = json_array_size(arr);
    a->webhooks = xcalloc(a->nwebhooks ? a->nwebhooks : 1, sizeof(*a->webhooks));
    for (size_t i = 0; i < a->nwebhooks; i++) {
        snprintf(at, sizeof(at), "%swebhooks[%zu].", where, i);
        if (parse_hook(w, json_array_get(arr, i), at, &a->webhooks[i]) < 0)
            return -1;
    }
    return 0;
}

static int
parse_events(const struct walk *w, const char *where, json_t *arr, unsigned *mask)
{
    size_t i;
    json_t *v;

    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return fail(w, where, "events",
                    "must be a non-empty array of event names (leave it out for all)");
    *mask = 0;
    json_array_foreach(arr, i, v)
    {
        const char *name = json_string_value(v);
        int kind = name ? webhook_kind_parse(name, json_string_length(v)) : -1;

        if (kind < 0)
            return fail(w, where, "events",
                        "entry %zu must be one of \"channel_occupied\", "
                        "\"channel_vacated\", \"member_added\", \"member_removed\", "
                        "\"client_event\", \"cache_miss\", \"subscription_count\"",
                        i);
        *mask |= 1u << kind;
    }
    return 0;
}

static int
parse_apps(const struct walk *w, json_t *arr, struct mn_config *cfg)
{
    if (!json_is_array(arr))
        return fail(w, "", "applications", "must be an array");
    if (json_array_size(arr) == 0)
        return fail(w, "", "applications", "must list at least one application");
    cfg->napps = json_array_size(arr);
    cfg->apps = xcalloc(cfg->napps, sizeof(*cfg->apps));
    for (size_t i = 0; i < cfg->napps; i++)
        if (parse_app(w, json_array_get(arr, i), i, &cfg->apps[i]) < 0)
            return -1;
    return 0;
}

static int
parse_redis(const struct walk *w, json_t *obj, struct mn_config *cfg)
{
    if (!json_is_object(obj))
        return fail(w, "", "redis", "must be an object");
    cfg->has_redis = true;
    return walk_object(w, obj, LVL_REDIS, "redis.", &cfg->redis);
}

static int
parse_api(const struct walk *w, json_t *obj, struct mn_config *cfg)
{
    if (!json_is_object(obj))
        return fail(w, "", "api", "must be an object");
    cfg->has_api = true;
    return walk_object(w, obj, LVL_API, "api.", &cfg->api);
}

/* --- rules across keys --------------------------------------------------- */

/* Names, ids and keys must each be unique across applications. */
static int
check_unique(const struct walk *w, const struct mn_config *cfg)
{
    static const char *const what[] = {"name", "id", "key"};
    const size_t off[] = {APP(name), APP(id), APP(key)};
    int rc = 0;

    for (size_t f = 0; f < ARRAY_LEN(what) && rc == 0; f++) {
        struct map seen = MAP_INIT;
        for (size_t i = 0; i < cfg->napps && rc == 0; i++) {
            const char *s = *(char *const *)((const char *)&cfg->apps[i] + off[f]);
            bool created;
            struct map_node *node = map_upsert(&seen, s, strlen(s), &created);
            if (created) {
                node->val = (void *)(uintptr_t)(i + 1);
                continue;
            }
            char where[48];
            snprintf(where, sizeof(where), "applications[%zu].", i);
            rc = fail(w, where, what[f], "duplicate of applications[%zu].%s",
                      (size_t)(uintptr_t)node->val - 1, what[f]);
        }
        map_clear(&seen);
    }
    return rc;
}

static int
validate(const struct walk *w, struct mn_config *cfg)
{
    struct mn_redis *r = &cfg->redis;

    if (cfg->certificate != NULL && cfg->private_key == NULL)
        return fail(w, "", "certificate", "needs \"private-key\" too (TLS needs both)");
    if (cfg->private_key != NULL && cfg->certificate == NULL)
        return fail(w, "", "private-key", "needs \"certificate\" too (TLS needs both)");
    if (check_unique(w, cfg) < 0)
        return -1;
    if (r->node_timeout <= r->node_heartbeat)
        return fail(w, "redis.", "node-timeout",
                    "must be greater than redis.node-heartbeat (%u)", r->node_heartbeat);
    if (!cfg->has_redis)
        return 0;
    if (r->address[0] == '\0') {
        if (r->sentinel)
            return fail(w, "redis.", "address", "must not be empty with \"sentinel\"");
        cfg->has_redis = false; /* the original's way to say "no Redis" */
    } else if (strchr(r->address, ',') != NULL && !r->sentinel) {
        return fail(w, "redis.", "address",
                    "a list of addresses needs \"sentinel\": true");
    }
    return 0;
}

/* A relative path in the file is relative to the file's directory, so that
 * every daemon reading it finds the same files whatever its working directory. */
static int
resolve(const struct walk *w, const char *where, const char *key, char **path, size_t max)
{
    const char *slash = strrchr(w->file, '/');
    size_t dlen, plen;
    char *full;

    if (*path == NULL || (*path)[0] == '/' || slash == NULL)
        return 0;
    dlen = (size_t)(slash - w->file) + 1;
    plen = strlen(*path);
    if (dlen + plen > max)
        return fail(w, where, key, "must be at most %zu bytes once resolved against %.*s",
                    max, (int)dlen, w->file);
    full = xmalloc(dlen + plen + 1);
    memcpy(full, w->file, dlen);
    memcpy(full + dlen, *path, plen + 1);
    free(*path);
    *path = full;
    return 0;
}

/* --- the API ------------------------------------------------------------- */

struct mn_config *
config_parse(const char *text, size_t len, const char *name, struct mn_err *err)
{
    struct walk w = {name != NULL ? name : "(config)", err};
    json_error_t jerr;
    struct mn_config *cfg;
    json_t *root;
    char *near;

    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        /* jansson quotes the token it stopped at, which may be a secret */
        if ((near = strstr(jerr.text, " near '")) != NULL)
            *near = '\0';
        mn_err_set(err, 0, "%s:%d:%d: invalid JSON: %s", w.file, jerr.line, jerr.column,
                   jerr.text);
        return NULL;
    }
    cfg = xcalloc(1, sizeof(*cfg));
    cfg->path = xstrdup(w.file);
    apply_defaults(LVL_TOP, cfg);
    apply_defaults(LVL_REDIS, &cfg->redis);
    apply_defaults(LVL_API, &cfg->api);
    if (!json_is_object(root)) {
        mn_err_set(err, 0, "%s: the top level must be an object", w.file);
        goto fail;
    }
    if (walk_object(&w, root, LVL_TOP, "", cfg) < 0 || validate(&w, cfg) < 0 ||
        resolve(&w, "", "certificate", &cfg->certificate, 4095) < 0 ||
        resolve(&w, "", "private-key", &cfg->private_key, 4095) < 0 ||
        resolve(&w, "", "local-socket", &cfg->local_socket, SUN_PATH_MAX) < 0 ||
        (!config_is_host_port(cfg->api.fastcgi) &&
         resolve(&w, "", "api.fastcgi", &cfg->api.fastcgi, SUN_PATH_MAX) < 0) ||
        (!config_is_host_port(cfg->api.scgi) &&
         resolve(&w, "", "api.scgi", &cfg->api.scgi, SUN_PATH_MAX) < 0))
        goto fail;
    json_decref(root);
    return cfg;
fail:
    json_decref(root);
    config_free(cfg);
    return NULL;
}

struct mn_config *
config_load(const char *path, struct mn_err *err)
{
    struct mn_config *cfg = NULL;
    size_t len;
    char *text;
    FILE *f;

    f = fopen(path, "rb");
    if (f == NULL) {
        mn_err_set(err, 0, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    /* One buffer of the cap, read once: no realloc leaves copies of secrets. */
    text = xmalloc(CONFIG_MAX_FILE + 1);
    len = fread(text, 1, CONFIG_MAX_FILE + 1, f);
    if (ferror(f))
        mn_err_set(err, 0, "%s: cannot read: %s", path, strerror(errno));
    else if (len > CONFIG_MAX_FILE)
        mn_err_set(err, 0, "%s: larger than 1 MiB", path);
    else
        cfg = config_parse(text, len, path, err);
    explicit_bzero(text, len);
    free(text);
    fclose(f);
    return cfg;
}

struct mn_config *
config_default(void)
{
    static const char text[] = "{\"applications\": [{\"name\": \"demo\", \"key\": "
                               "\"demo-key\", \"secret\": \"demo-secret\", "
                               "\"client-events\": true}]}";
    struct mn_err err = {0, ""};
    struct mn_config *cfg;

    cfg = config_parse(text, sizeof(text) - 1, "(embedded default)", &err);
    if (cfg == NULL) { /* our bug: the key table refuses its own default */
        fprintf(stderr, "fatal: %s\n", err.msg);
        abort();
    }
    return cfg;
}

/* Frees the level's strings in the struct at base, wiping secrets first. */
static void
free_level(enum cfg_level lvl, void *base)
{
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        char **field;

        if (cfg_level_of(k) != lvl || k->type != CFG_STR)
            continue;
        field = (char **)((char *)base + k->off);
        if (*field != NULL && (k->flags & CFG_SECRET))
            explicit_bzero(*field, strlen(*field));
        free(*field);
        *field = NULL;
    }
}

void
config_free(struct mn_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->napps; i++) {
        struct mn_app *a = &cfg->apps[i];

        for (size_t j = 0; j < a->nwebhooks; j++) {
            free_level(LVL_HOOK, &a->webhooks[j]);
            free(a->webhooks[j].host);
            free(a->webhooks[j].host_header);
            free(a->webhooks[j].path);
        }
        free(a->webhooks);
        free_level(LVL_APP, a);
    }
    free(cfg->apps);
    free_level(LVL_REDIS, &cfg->redis);
    free_level(LVL_API, &cfg->api);
    free_level(LVL_TOP, cfg);
    free(cfg->path);
    free(cfg);
}

const struct mn_app *
config_app_by_key(const struct mn_config *cfg, const char *key, size_t len)
{
    for (size_t i = 0; i < cfg->napps; i++) {
        const struct mn_app *a = &cfg->apps[i];
        if (strlen(a->key) == len && memcmp(a->key, key, len) == 0)
            return a;
    }
    return NULL;
}

const struct mn_app *
config_app_by_id(const struct mn_config *cfg, const char *id, size_t len)
{
    for (size_t i = 0; i < cfg->napps; i++) {
        const struct mn_app *a = &cfg->apps[i];
        if (strlen(a->id) == len && memcmp(a->id, id, len) == 0)
            return a;
    }
    return NULL;
}
