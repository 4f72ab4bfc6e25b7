/* config_keys.c - every config key: name, type, default, range, check and
 * help line (the table loading, defaults, freeing and docs/config.md are
 * driven by), and the checks of string values. */
#include "config_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "webhook_msg.h"
#include "mn.h"

static check_fn check_nonempty, check_word, check_secret, check_address, check_log_level,
    check_listen, check_mode, check_prefix, check_url;

/* The order here is the order of docs/config.md. */
const struct cfg_key cfg_keys[] = {
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
     "same host connects to in standalone mode (with `redis` it talks to Redis "
     "itself and needs none)"},
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
    {"applications[].id", CFG_STR, 0, "(same as name)", 0, 128, cfg_check_ident, APP(id),
     "app id of the REST API (`/apps/ID/...`), unique; letters, digits, `-`, `_`"},
    {"applications[].key", CFG_STR, CFG_REQUIRED, NULL, 0, 128, cfg_check_ident, APP(key),
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
    {"redis.give-up", CFG_UINT, 0, "0", 0, 86400, NULL, RED(give_up),
     "seconds Redis may stay unreachable (down, hung, or no master) before the "
     "gateway closes its connections and exits with status 75 (EX_TEMPFAIL) for its "
     "supervisor to restart it; 0: never give up"},
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
     "`http://host[:port][/path]` or `https://...` the webhooks are POSTed to; an "
     "https receiver's certificate must verify (chain, and the URL's host name or IP "
     "address) against the system's CA store or `ca-file`"},
    {"applications[].webhooks[].ca-file", CFG_STR, CFG_EMPTY_UNSET, NULL, 0, 4095, NULL,
     HOOK(ca_file),
     "https receivers only: PEM file of the certificates to trust instead of the "
     "system's CA store (e.g. a self-signed receiver's own certificate); relative to "
     "the config file's directory; read when the gateway starts"},
    {"applications[].webhooks[].events", CFG_EVENTS, 0, "(all)", 0, 0, NULL, HOOK(events),
     "the events this receiver gets, a non-empty array of `channel_occupied`, "
     "`channel_vacated`, `member_added`, `member_removed`, `client_event`, "
     "`cache_miss`, `subscription_count`"},
};

const size_t cfg_nkeys = ARRAY_LEN(cfg_keys);

const char *const cfg_level_prefix[] = {"", "applications[].", "redis.", "api.",
                                        "applications[].webhooks[]."};

enum cfg_level
cfg_level_of(const struct cfg_key *k)
{
    enum cfg_level best = LVL_TOP;

    /* The longest prefix wins: "applications[].webhooks[]." over
     * "applications[].". */
    for (size_t i = LVL_APP; i < ARRAY_LEN(cfg_level_prefix); i++)
        if (strncmp(k->path, cfg_level_prefix[i], strlen(cfg_level_prefix[i])) == 0 &&
            strlen(cfg_level_prefix[i]) > strlen(cfg_level_prefix[best]))
            best = (enum cfg_level)i;
    return best;
}

const char *
cfg_leaf_of(const struct cfg_key *k)
{
    size_t n = strlen(cfg_level_prefix[cfg_level_of(k)]);

    /* Always true (level_of matched the prefix); it tells gcc's array-bounds
     * check, which cannot see that, that "api" is not read past its end. */
    return strnlen(k->path, n) == n ? k->path + n : k->path;
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

const char *
cfg_check_ident(const char *s, size_t len)
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

/* webhooks[].url: http[s]://host[:port][/path]. */
static const char *
check_url(const char *s, size_t len)
{
    struct webhook_url u;

    return webhook_url_parse(s, len, &u);
}

bool
config_is_host_port(const char *addr)
{
    return addr != NULL && host_port_ok(addr, strlen(addr));
}
