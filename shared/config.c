/* config.c - the JSON config file. One table (keys[]) lists every key with its
 * type, default, range, check and help line; loading, defaults, freeing and
 * docs/config.md are all driven by it, so they cannot drift apart.
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
#define SUN_PATH_MAX 107 /* sizeof(sun_path) - 1 on Linux */
#define NO_FIELD SIZE_MAX
#define SHOWN_KEY_MAX 64 /* bytes of an unknown key quoted back in a message */

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

static check_fn check_nonempty, check_word, check_ident, check_secret, check_address,
    check_log_level, check_listen, check_mode, check_prefix, check_url;

#define TOP(f) offsetof(struct mn_config, f)
#define APP(f) offsetof(struct mn_app, f)
#define RED(f) offsetof(struct mn_redis, f)
#define API(f) offsetof(struct mn_api, f)
#define HOOK(f) offsetof(struct mn_webhook, f)
#define MAX_WEBHOOKS 10 /* per application */
#define BIG 10000000u

/* The order here is the order of docs/config.md. */
static const struct cfg_key keys[] = {
    {"host", CFG_STR, 0, "\"localhost\"", 0, 255, check_word, TOP(host),
     "address or host name to listen on; `0.0.0.0` or `::` for all interfaces"},
    {"port", CFG_UINT, 0, "8111", 1, 65535, NULL, TOP(port),
     "TCP port of the gateway: WebSocket (`/app/KEY`) and REST API"},
    {"certificate", CFG_STR, CFG_EMPTY_UNSET, NULL, 0, 4095, NULL, TOP(certificate),
     "PEM certificate (chain) file; TLS is on when this and `private-key` are set"},
    {"private-key", CFG_STR, CFG_EMPTY_UNSET, NULL, 0, 4095, NULL, TOP(private_key),
     "PEM private key file for `certificate`"},
    {"applications", CFG_APPS, CFG_REQUIRED, NULL, 0, 0, NULL, NO_FIELD,
     "the applications served, at least one (keys below)"},
    {"redis", CFG_REDIS, 0, NULL, 0, 0, NULL, NO_FIELD,
     "present: distributed mode over Redis (keys below); absent: standalone"},
    {"local-socket", CFG_STR, CFG_EMPTY_UNSET, NULL, 0, SUN_PATH_MAX, NULL,
     TOP(local_socket),
     "Unix socket of the gateway's local bus, which `micronotifier-api` on the "
     "same host connects to in standalone mode"},
    {"api", CFG_API, 0, NULL, 0, 0, NULL, NO_FIELD,
     "where `micronotifier-api` listens for FastCGI and SCGI (keys below)"},
    {"workers", CFG_UINT, 0, "0", 0, 64, NULL, TOP(workers),
     "worker threads of the gateway, one event loop each; 0: one per CPU core"},
    {"activity-timeout", CFG_UINT, 0, "120", 1, 86400, NULL, TOP(activity_timeout),
     "seconds of silence after which a client pings; told to clients on connect"},
    {"idle-ping", CFG_UINT, 0, "45", 1, 86400, NULL, TOP(idle_ping),
     "seconds of silence from a client before the server sends `pusher:ping`"},
    {"pong-timeout", CFG_UINT, 0, "30", 1, 86400, NULL, TOP(pong_timeout),
     "seconds a client has to answer a ping before it is closed with 4201"},
    {"max-message-size", CFG_UINT, 0, "65536", 1024, 16777216, NULL,
     TOP(max_message_bytes),
     "largest WebSocket message accepted from a client, in bytes"},
    {"max-request-size", CFG_UINT, 0, "262144", 1024, 16777216, NULL,
     TOP(max_request_bytes), "largest REST request body accepted, in bytes"},
    {"send-queue-bytes", CFG_UINT, 0, "1048576", 1024, 1073741824, NULL,
     TOP(sendq_max_bytes),
     "bytes waiting to be sent to one connection before it is closed as too slow"},
    {"send-queue-messages", CFG_UINT, 0, "1000", 1, 1000000, NULL,
     TOP(sendq_max_messages),
     "messages waiting to be sent to one connection before it is closed as too slow"},
    {"max-connections", CFG_UINT, 0, "0", 0, BIG, NULL, TOP(max_node_connections),
     "connections this gateway accepts, all applications together (0: up to the file "
     "descriptor limit); beyond it, new ones are closed with 4100"},
    {"log-level", CFG_STR, 0, "\"info\"", 0, 16, check_log_level, TOP(log_level),
     "`error`, `warn`, `info` or `debug`"},

    {"applications[].name", CFG_STR, CFG_REQUIRED, NULL, 0, 256, check_nonempty,
     APP(name), "name of the application, unique; shown in logs"},
    {"applications[].id", CFG_STR, 0, "(same as name)", 0, 128, check_ident, APP(id),
     "app id of the REST API (`/apps/ID/...`), unique; letters, digits, `-`, `_`"},
    {"applications[].key", CFG_STR, CFG_REQUIRED, NULL, 0, 128, check_ident, APP(key),
     "app key clients connect with (`/app/KEY`), unique; letters, digits, `-`, `_`"},
    {"applications[].secret", CFG_STR, CFG_REQUIRED | CFG_SECRET, NULL, 0, 256,
     check_secret, APP(secret),
     "signs REST requests, channel authorisation and webhooks; no whitespace; never "
     "logged"},
    {"applications[].enabled", CFG_BOOL, 0, "true", 0, 0, NULL, APP(enabled),
     "false: connections are closed with 4003 and REST calls answered 403"},
    {"applications[].client-events", CFG_BOOL, 0, "false", 0, 0, NULL, APP(client_events),
     "members of private and presence channels may send `client-` events"},
    {"applications[].subscription-count", CFG_BOOL, 0, "false", 0, 0, NULL,
     APP(subscription_count),
     "subscribers get `pusher_internal:subscription_count` events"},
    {"applications[].authorized-connections", CFG_BOOL, 0, "false", 0, 0, NULL,
     APP(authorized_connections),
     "connections must sign in (`pusher:signin`) or join a private or presence channel "
     "within `authorization-timeout`, else they are closed with 4009"},
    {"applications[].authorization-timeout", CFG_UINT, 0, "30", 1, 86400, NULL,
     APP(authorization_timeout),
     "seconds a connection has to authorize when `authorized-connections` is on"},
    {"applications[].watchlist-events", CFG_BOOL, 0, "false", 0, 0, NULL,
     APP(watchlist_events),
     "signed-in users get online and offline events for the `watchlist` in their "
     "user_data (first 100 ids)"},
    {"applications[].max-connections", CFG_UINT, 0, "0", 0, BIG, NULL,
     APP(max_connections),
     "connections of this application (0: unlimited); beyond it, new ones are closed "
     "with 4004"},
    {"applications[].max-event-size", CFG_UINT, 0, "10240", 1, 16777216, NULL,
     APP(max_event_bytes), "largest event `data`, in bytes"},
    {"applications[].max-trigger-channels", CFG_UINT, 0, "100", 1, 10000, NULL,
     APP(max_trigger_channels), "channels one REST trigger may name"},
    {"applications[].max-batch-events", CFG_UINT, 0, "10", 1, 10000, NULL,
     APP(max_batch_events), "events in one REST batch trigger"},
    {"applications[].max-presence-members", CFG_UINT, 0, "100", 1, 1000000, NULL,
     APP(max_presence_members), "members of one presence channel"},
    {"applications[].max-user-info-size", CFG_UINT, 0, "1024", 1, 1048576, NULL,
     APP(max_user_info_bytes), "bytes of a presence member's `user_info`"},
    {"applications[].max-user-id-length", CFG_UINT, 0, "128", 1, 4096, NULL,
     APP(max_user_id_len), "bytes of a user id"},
    {"applications[].client-event-rate", CFG_UINT, 0, "10", 1, 100000, NULL,
     APP(client_event_rate), "client events one connection may send per second"},
    {"applications[].cache-ttl", CFG_UINT, 0, "1800", 1, 1800, NULL, APP(cache_ttl),
     "seconds a cache channel keeps its last event (`cache-`, `private-cache-`, "
     "`private-encrypted-cache-`, `presence-cache-`); Pusher's limit is 30 minutes"},
    {"applications[].max-subscriptions", CFG_UINT, 0, "1000", 1, 1000000, NULL,
     APP(max_subscriptions), "channels one connection may be subscribed to at once"},
    {"applications[].webhooks", CFG_HOOKS, 0, NULL, 0, 0, NULL, NO_FIELD,
     "where the application's webhooks are sent: at most 10 receivers (keys below)"},
    {"applications[].webhook-batching", CFG_BOOL, 0, "false", 0, 0, NULL,
     APP(webhook_batching),
     "one webhook request carries every event pending (up to 100, gathered for at "
     "most 50 ms); false: one event per request"},

    {"redis.address", CFG_STR, CFG_REQUIRED, NULL, 0, 4095, check_address, RED(address),
     "`host:port` of Redis; with `sentinel`, of the sentinels, comma-separated "
     "(`h:p,h:p`); `\"\"` means no Redis (standalone), as in the original"},
    {"redis.database", CFG_UINT, 0, "0", 0, 1000, NULL, RED(database),
     "database number (`SELECT`)"},
    {"redis.password", CFG_STR, CFG_EMPTY_UNSET | CFG_SECRET, NULL, 0, 1024, NULL,
     RED(password), "password (`AUTH`); never logged"},
    {"redis.sentinel", CFG_BOOL, 0, "false", 0, 0, NULL, RED(sentinel),
     "find the master through Redis Sentinel, and follow failovers"},
    {"redis.master-name", CFG_STR, 0, "\"mymaster\"", 0, 256, check_word,
     RED(master_name), "name of the master the sentinels monitor"},
    {"redis.node-heartbeat", CFG_UINT, 0, "5", 1, 3600, NULL, RED(node_heartbeat),
     "seconds between a gateway's heartbeats in Redis"},
    {"redis.node-timeout", CFG_UINT, 0, "15", 2, 86400, NULL, RED(node_timeout),
     "seconds without a heartbeat after which the other gateways remove a node's "
     "members and counts; more than `node-heartbeat`"},
    {"redis.secure", CFG_BOOL, CFG_FALSE_ONLY, "false", 0, 0, NULL, NO_FIELD,
     "from the original (TLS to Redis); not supported, since Debian's hiredis 0.14 "
     "has no TLS: must be false"},

    {"api.fastcgi", CFG_STR, CFG_EMPTY_UNSET, NULL, 0, SUN_PATH_MAX, check_listen,
     API(fastcgi),
     "FastCGI listener: `host:port`, or the path of a Unix socket (relative to the "
     "config file's directory)"},
    {"api.scgi", CFG_STR, CFG_EMPTY_UNSET, NULL, 0, SUN_PATH_MAX, check_listen, API(scgi),
     "SCGI listener: `host:port`, or the path of a Unix socket"},
    {"api.socket-mode", CFG_STR, 0, "\"0660\"", 0, 4, check_mode, API(socket_mode),
     "octal permissions of the Unix sockets the daemon creates (give the web server's "
     "group access, nobody else)"},
    {"api.prefix", CFG_STR, CFG_EMPTY_UNSET, NULL, 0, 255, check_prefix, API(prefix),
     "URL prefix the web server mounts the API under (`/pusher`): removed before "
     "`/apps/...`, so that the signatures of the Pusher libraries verify"},
    {"api.threads", CFG_UINT, 0, "4", 1, 64, NULL, API(threads),
     "request threads per listener; each handles one request at a time"},

    {"applications[].webhooks[].url", CFG_STR, CFG_REQUIRED, NULL, 0, 2048, check_url,
     HOOK(url),
     "`http://host[:port][/path]` the webhooks are POSTed to (https is not supported "
     "yet)"},
    {"applications[].webhooks[].events", CFG_EVENTS, 0, "(all)", 0, 0, NULL, HOOK(events),
     "the events this receiver gets, a non-empty array of `channel_occupied`, "
     "`channel_vacated`, `member_added`, `member_removed`, `client_event`, "
     "`cache_miss`, `subscription_count`"},
};

static const char *const level_prefix[] = {"", "applications[].", "redis.", "api.",
                                           "applications[].webhooks[]."};

/* Where an error is reported: the file name and the caller's err. */
struct walk {
    const char *file;
    struct mn_err *err;
};

static enum cfg_level
level_of(const struct cfg_key *k)
{
    enum cfg_level best = LVL_TOP;

    /* The longest prefix wins: "applications[].webhooks[]." over
     * "applications[].". */
    for (size_t i = LVL_APP; i < ARRAY_LEN(level_prefix); i++)
        if (strncmp(k->path, level_prefix[i], strlen(level_prefix[i])) == 0 &&
            strlen(level_prefix[i]) > strlen(level_prefix[best]))
            best = (enum cfg_level)i;
    return best;
}

static const char *
leaf_of(const struct cfg_key *k)
{
    size_t n = strlen(level_prefix[level_of(k)]);

    /* Always true (level_of matched the prefix); it tells gcc's array-bounds
     * check, which cannot see that, that "api" is not read past its end. */
    return strnlen(k->path, n) == n ? k->path + n : k->path;
}

static const struct cfg_key *
key_find(enum cfg_level lvl, const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        if (level_of(&keys[i]) == lvl && strcmp(leaf_of(&keys[i]), name) == 0)
            return &keys[i];
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

/* --- checks of string values ------------------------------------------- */

static bool
has_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return true;
    return false;
}

static const char *
check_nonempty(const char *s MN_UNUSED, size_t len)
{
    return len == 0 ? "must not be empty" : NULL;
}

static const char *
check_word(const char *s, size_t len)
{
    if (len == 0)
        return "must not be empty";
    return has_space(s, len) ? "must not contain whitespace or control characters" : NULL;
}

static const char *
check_ident(const char *s, size_t len)
{
    if (len == 0)
        return "must not be empty";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
            !(c >= '0' && c <= '9') && c != '-' && c != '_')
            return "must be letters, digits, '-' or '_'";
    }
    return NULL;
}

static const char *
check_secret(const char *s, size_t len)
{
    return check_word(s, len);
}

static const char *
check_log_level(const char *s, size_t len MN_UNUSED)
{
    enum log_level lvl;

    if (log_level_parse(s, &lvl) < 0)
        return "must be \"error\", \"warn\", \"info\" or \"debug\"";
    return NULL;
}

/* One "host:port": a host (an IPv6 one in brackets) and a port 1-65535. */
static bool
host_port_ok(const char *s, size_t len)
{
    const char *colon = NULL;
    unsigned long port = 0;
    size_t hlen;

    for (size_t i = 0; i < len; i++)
        if (s[i] == ':')
            colon = s + i;
    if (colon == NULL || colon == s || (size_t)(s + len - colon) < 2 ||
        (size_t)(s + len - colon) > 6)
        return false;
    for (const char *p = colon + 1; p < s + len; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    hlen = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hlen < 3 || s[hlen - 1] != ']')
            return false;
    } else if (memchr(s, ':', hlen) != NULL || memchr(s, ']', hlen) != NULL) {
        return false;
    }
    return port >= 1 && port <= 65535 && !has_space(s, hlen);
}

static const char *
check_address(const char *s, size_t len)
{
    const char *end = s + len, *item = s;

    if (len == 0)
        return NULL; /* standalone, as in the original; see validate() */
    while (item <= end) {
        const char *comma = memchr(item, ',', (size_t)(end - item));
        const char *stop = comma ? comma : end;
        if (!host_port_ok(item, (size_t)(stop - item)))
            return "must be \"host:port\", or a comma-separated list of them";
        item = stop + 1;
    }
    return NULL;
}

/* api.fastcgi, api.scgi: "host:port", or a Unix socket path. */
static const char *
check_listen(const char *s, size_t len)
{
    if (len == 0)
        return "must not be empty";
    if (host_port_ok(s, len))
        return NULL;
    if (has_space(s, len))
        return "must be \"host:port\" or a socket path without whitespace or control "
               "characters";
    if (s[len - 1] == '/')
        return "must be \"host:port\" or the path of a socket, not a directory";
    return NULL;
}

/* api.socket-mode: octal permission bits, "0660" or "660". */
static const char *
check_mode(const char *s, size_t len)
{
    if (len < 3)
        return "must be octal permissions such as \"0660\"";
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '7' || (len == 4 && i == 0 && s[i] != '0'))
            return "must be octal permissions such as \"0660\"";
    return NULL;
}

/* api.prefix: "/a" or "/a/b": starts with '/', no trailing '/', nothing that
 * a path would escape or end at. */
static const char *
check_prefix(const char *s, size_t len)
{
    if (s[0] != '/' || len < 2 || s[len - 1] == '/')
        return "must start with '/' and not end with '/' (\"/pusher\")";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%')
            return "must be a plain path (no spaces, '?', '#', '%' or non-ASCII)";
    }
    return NULL;
}

/* webhooks[].url: http://host[:port][/path]. */
static const char *
check_url(const char *s, size_t len)
{
    struct webhook_url u;
    const char *why = webhook_url_parse(s, len, &u);

    if (why != NULL)
        return why;
    if (u.tls)
        return "https webhooks are not supported yet: use http://";
    return NULL;
}

bool
config_is_host_port(const char *addr)
{
    return addr != NULL && host_port_ok(addr, strlen(addr));
}

/* --- reading values ------------------------------------------------------ */

static int parse_apps(const struct walk *w, json_t *arr, struct mn_config *cfg);
static int parse_redis(const struct walk *w, json_t *obj, struct mn_config *cfg);
static int parse_api(const struct walk *w, json_t *obj, struct mn_config *cfg);
static int parse_hooks(const struct walk *w, const char *where, json_t *arr,
                       struct mn_app *a);
static int parse_events(const struct walk *w, const char *where, json_t *arr,
                        unsigned *mask);

static int
set_string(const struct walk *w, const struct cfg_key *k, const char *where, json_t *v,
           char **field)
{
    const char *s = json_string_value(v), *why;
    size_t len;

    if (s == NULL)
        return fail(w, where, leaf_of(k), "must be a string");
    len = json_string_length(v);
    if (len > k->max)
        return fail(w, where, leaf_of(k), "must be at most %u bytes", k->max);
    free(*field);
    *field = NULL;
    if (len == 0 && (k->flags & CFG_EMPTY_UNSET))
        return 0;
    if (k->check != NULL && (why = k->check(s, len)) != NULL)
        return fail(w, where, leaf_of(k), "%s", why);
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
            return fail(w, where, leaf_of(k), "must be true or false");
        if ((k->flags & CFG_FALSE_ONLY) && json_is_true(v))
            return fail(w, where, leaf_of(k), "only false is supported");
        if (k->off != NO_FIELD)
            *(bool *)((char *)base + k->off) = json_is_true(v);
        return 0;
    case CFG_UINT:
        if (!json_is_integer(v))
            return fail(w, where, leaf_of(k), "must be an integer");
        n = json_integer_value(v);
        if (n < (json_int_t)k->min || n > (json_int_t)k->max)
            return fail(w, where, leaf_of(k), "must be between %u and %u", k->min,
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

    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        const struct cfg_key *k = &keys[i];
        json_t *v;
        int rc;

        if (level_of(k) != lvl || k->def == NULL || k->def[0] == '(' ||
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
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        size_t d = distance(name, leaf_of(&keys[i]));
        if (level_of(&keys[i]) == lvl && d < best && d * 3 <= strlen(leaf_of(&keys[i]))) {
            near = &keys[i];
            best = d;
        }
    }
    if (near != NULL)
        return fail(w, where, shown, "unknown key (did you mean \"%s\"?)", leaf_of(near));
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        if (level_of(&keys[i]) != lvl && strcmp(name, leaf_of(&keys[i])) == 0)
            return fail(w, where, shown, "unknown key (it belongs in %s)",
                        home[level_of(&keys[i])]);
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
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        const struct cfg_key *k = &keys[i];
        if (level_of(k) == lvl && (k->flags & CFG_REQUIRED) &&
            json_object_get(obj, leaf_of(k)) == NULL)
            return fail(w, where, leaf_of(k), "required key is missing");
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
    if ((why = check_ident(a->id, strlen(a->id))) != NULL)
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
    return 0;
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
resolve(const struct walk *w, const char *key, char **path, size_t max)
{
    const char *slash = strrchr(w->file, '/');
    size_t dlen, plen;
    char *full;

    if (*path == NULL || (*path)[0] == '/' || slash == NULL)
        return 0;
    dlen = (size_t)(slash - w->file) + 1;
    plen = strlen(*path);
    if (dlen + plen > max)
        return fail(w, "", key, "must be at most %zu bytes once resolved against %.*s",
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
        resolve(&w, "certificate", &cfg->certificate, 4095) < 0 ||
        resolve(&w, "private-key", &cfg->private_key, 4095) < 0 ||
        resolve(&w, "local-socket", &cfg->local_socket, SUN_PATH_MAX) < 0 ||
        (!config_is_host_port(cfg->api.fastcgi) &&
         resolve(&w, "api.fastcgi", &cfg->api.fastcgi, SUN_PATH_MAX) < 0) ||
        (!config_is_host_port(cfg->api.scgi) &&
         resolve(&w, "api.scgi", &cfg->api.scgi, SUN_PATH_MAX) < 0))
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
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        const struct cfg_key *k = &keys[i];
        char **field;

        if (level_of(k) != lvl || k->type != CFG_STR)
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

/* --- docs/config.md ------------------------------------------------------ */

static const char docs_intro[] =
    "# Configuration file\n"
    "\n"
    "<!-- Generated from the key table in shared/config.c by\n"
    "     `micronotifier-gateway --config-docs`: edit the table, not this page. -->\n"
    "\n"
    "MicroNotifier reads one JSON file, given with `-c FILE`. Without one, the\n"
    "gateway runs on an embedded default: standalone, `localhost:8111`, one\n"
    "application `demo` (key `demo-key`, secret `demo-secret`, client events on).\n"
    "\n"
    "The original MicroNotifier's format stays valid: `host`, `port`,\n"
    "`certificate`, `private-key`, `applications` (`name`, `key`, `secret`) and\n"
    "`redis` (`address`, `database`, `password`, `sentinel`, `secure`) mean what\n"
    "they meant there. Every other key is an addition with a default.\n"
    "\n"
    "- Everything is checked before the daemon starts. An unknown key, a value of\n"
    "  the wrong type or out of range, or the same key twice in one object refuses\n"
    "  the whole file with the file, the JSON path and the reason, for example\n"
    "  `config.json: applications[1].key: must be letters, digits, '-' or '_'`.\n"
    "  A misspelt key is never silently ignored. `--check-config` checks a file\n"
    "  and exits 0 when it is valid, 1 when not.\n"
    "- An empty string in `certificate`, `private-key`, `local-socket` or\n"
    "  `redis.password` means unset, as in the original.\n"
    "- TLS is on when both `certificate` and `private-key` are set; one without\n"
    "  the other is an error.\n"
    "- A relative path in `certificate`, `private-key` or `local-socket` is\n"
    "  relative to the directory of the config file, not to the working\n"
    "  directory (the original used the working directory).\n"
    "- Sizes are in bytes, times in seconds. The file may be at most 1 MiB.\n"
    "\n";

static const char docs_example[] = "{\n"
                                   "    \"host\": \"localhost\",\n"
                                   "    \"port\": 8111,\n"
                                   "    \"certificate\": \"\",\n"
                                   "    \"private-key\": \"\",\n"
                                   "    \"applications\": [\n"
                                   "        {\n"
                                   "            \"name\": \"app1\",\n"
                                   "            \"key\": \"app1-key\",\n"
                                   "            \"secret\": \"app1-secret\",\n"
                                   "            \"client-events\": true\n"
                                   "        }\n"
                                   "    ],\n"
                                   "    \"redis\": {\n"
                                   "        \"address\": \"localhost:6379\",\n"
                                   "        \"database\": 0,\n"
                                   "        \"password\": \"\",\n"
                                   "        \"sentinel\": false\n"
                                   "    }\n"
                                   "}\n";

struct docs_section {
    enum cfg_level lvl;
    const char *title;
    const char *text;
};

static const struct docs_section sections[] = {
    {LVL_TOP, "## Top-level keys\n", ""},
    {LVL_APP, "## Keys of each `applications[]` entry\n",
     "`name`, `key` and `secret` are required. Each application is separate:\n"
     "its clients, channels and events never meet another application's.\n"},
    {LVL_REDIS, "## Keys of `redis`\n",
     "With `redis`, every gateway and API daemon of the fleet shares events and\n"
     "channel state through it. For Sentinel, list the sentinels:\n"
     "`\"redis\": {\"address\": \"10.0.0.1:26379,10.0.0.2:26379\", \"sentinel\": true,\n"
     "\"master-name\": \"mymaster\"}`.\n"},
    {LVL_API, "## Keys of `api`\n",
     "Read by `micronotifier-api` only (see docs/api-daemon.md). Give `fastcgi`,\n"
     "`scgi` or both. A Unix socket is created with `socket-mode`; a stale one is\n"
     "replaced, one another process listens on is refused.\n"},
    {LVL_HOOK, "## Keys of each `applications[].webhooks[]` entry\n",
     "Webhooks are signed like Pusher's (`X-Pusher-Key`, `X-Pusher-Signature`:\n"
     "HMAC-SHA256 of the body with the app secret; `Content-Type:\n"
     "application/json`), retried with back-off for 5 minutes when the receiver\n"
     "does not answer 2xx within 5 s, and sent from a thread of their own, so a\n"
     "slow receiver never delays WebSocket delivery (docs/architecture.md).\n"
     "Example: `\"webhooks\": [{\"url\": \"http://127.0.0.1:3000/pusher/webhooks\",\n"
     "\"events\": [\"channel_occupied\", \"channel_vacated\"]}]`.\n"},
};

/* A table cell: '|' would end the cell, so it is escaped. */
static void
docs_cell(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

static void
docs_row(FILE *out, const struct cfg_key *k)
{
    static const char *const types[] = {"string",           "boolean",         "integer",
                                        "array of objects", "object",          "object",
                                        "array of objects", "array of strings"};

    fprintf(out, "| `%s` | %s", leaf_of(k), types[k->type]);
    if (k->type == CFG_UINT)
        fprintf(out, " %u..%u", k->min, k->max);
    if (k->flags & CFG_REQUIRED)
        fputs(" | required | ", out);
    else if (k->def == NULL)
        fputs(" | unset | ", out);
    else if (k->def[0] == '(')
        fprintf(out, " | *%.*s* | ", (int)strlen(k->def) - 2, k->def + 1);
    else
        fprintf(out, " | `%s` | ", k->def);
    docs_cell(out, k->help);
    fputs(" |\n", out);
}

void
config_write_docs(FILE *out)
{
    fputs(docs_intro, out);
    for (size_t s = 0; s < ARRAY_LEN(sections); s++) {
        fprintf(out, "%s\n%s%s", sections[s].title, sections[s].text,
                sections[s].text[0] != '\0' ? "\n" : "");
        fputs("| Key | Type | Default | Meaning |\n|---|---|---|---|\n", out);
        for (size_t i = 0; i < ARRAY_LEN(keys); i++)
            if (level_of(&keys[i]) == sections[s].lvl)
                docs_row(out, &keys[i]);
        fputs("\n", out);
    }
    fprintf(out,
            "## Example\n\nThe original format, with one extension "
            "(`client-events`):\n\n```json\n%s```\n",
            docs_example);
}
