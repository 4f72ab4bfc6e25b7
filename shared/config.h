/* config.h - the JSON config file (the original MicroNotifier's fields plus
 * additive extensions): load, validate everything, hand out an immutable
 * struct mn_config. Every key lives in one table in config.c; docs/config.md
 * is generated from it (config_write_docs). */
#ifndef MN_CONFIG_H
#define MN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"

/* "applications[].webhooks[]": one receiver of the app's webhooks. */
struct mn_webhook {
    char *url;         /* "url": http[s]://host[:port][/path] */
    unsigned events;   /* "events": bit 1 << enum webhook_kind per event sent */
    char *ca_file;     /* "ca-file": PEM to trust instead of the system's CAs, or NULL */
    bool tls;          /* parsed from url: https */
    char *host;        /* parsed from url: host (IPv6 without brackets) */
    char *host_header; /* host as the Host header wants it (brackets kept) */
    unsigned port;
    char *path; /* "/" when the URL has none */
};

struct mn_app {
    char *name;                     /* "name" (required) */
    char *id;                       /* "id": REST app id, defaults to name */
    char *key;                      /* "key": [A-Za-z0-9_-]+ */
    char *secret;                   /* "secret": non-empty, no whitespace */
    bool enabled;                   /* "enabled" (true): false closes 4003, REST 403 */
    bool client_events;             /* "client-events" (false) */
    bool subscription_count;        /* "subscription-count" (false), issue 3 */
    bool authorized_connections;    /* "authorized-connections" (false), issue 3 */
    unsigned authorization_timeout; /* "authorization-timeout" s (30) */
    bool watchlist_events;          /* "watchlist-events" (false) */
    unsigned max_connections;       /* "max-connections" (0 = unlimited): 4004 */
    unsigned max_event_bytes;       /* "max-event-size" (10240): data cap */
    unsigned max_trigger_channels;  /* "max-trigger-channels" (100) */
    unsigned max_batch_events;      /* "max-batch-events" (10) */
    unsigned max_presence_members;  /* "max-presence-members" (100) */
    unsigned max_user_info_bytes;   /* "max-user-info-size" (1024) */
    unsigned max_user_id_len;       /* "max-user-id-length" (128) */
    unsigned client_event_rate;     /* "client-event-rate" (10 per second) */
    unsigned max_subscriptions;     /* "max-subscriptions" (1000 per connection) */
    unsigned cache_ttl;             /* "cache-ttl" s a cache entry lives (1800) */
    struct mn_webhook *webhooks;    /* "webhooks" (issue 6), nwebhooks entries */
    size_t nwebhooks;
    bool webhook_batching; /* "webhook-batching" (false) */
};

struct mn_redis {
    char *address; /* "host:port", or sentinels "h:p,h:p" */
    unsigned database;
    char *password; /* NULL when absent */
    bool sentinel;
    char *master_name;       /* "master-name" ("mymaster") */
    unsigned node_heartbeat; /* s (5) */
    unsigned node_timeout;   /* s (15) */
    unsigned give_up;        /* "give-up": s unreachable before exiting 75; 0 never */
};

/* "api": where micronotifier-api listens (issue 4). */
struct mn_api {
    char *fastcgi;     /* "fastcgi": "host:port" or a Unix socket path, or NULL */
    char *scgi;        /* "scgi": the same, or NULL */
    char *socket_mode; /* "socket-mode" ("0660"): octal mode of the Unix sockets */
    char *prefix;      /* "prefix": URL prefix before /apps/..., or NULL */
    unsigned threads;  /* "threads" (4): request threads per listener */
};

struct mn_config {
    char *path;          /* the file it came from, or "(embedded default)" */
    char *host;          /* "host" ("localhost") */
    unsigned port;       /* "port" (8111) */
    char *certificate;   /* "certificate": TLS when both are set */
    char *private_key;   /* "private-key" */
    struct mn_app *apps; /* "applications" */
    size_t napps;
    bool has_redis; /* "redis" present: distributed mode */
    struct mn_redis redis;
    char *local_socket; /* "local-socket": the gateway's bus socket, or NULL */
    bool has_api;       /* "api" present */
    struct mn_api api;
    unsigned workers;          /* "workers" (0 = one per core) */
    unsigned activity_timeout; /* "activity-timeout" s told to clients (120) */
    unsigned idle_ping;        /* "idle-ping" s of silence before the server pings (45) */
    unsigned pong_timeout;     /* "pong-timeout" s to answer before 4201 (30) */
    unsigned max_message_bytes;  /* "max-message-size" WebSocket message cap (65536) */
    unsigned max_request_bytes;  /* "max-request-size" REST body cap (262144) */
    unsigned sendq_max_bytes;    /* "send-queue-bytes" per connection (1048576) */
    unsigned sendq_max_messages; /* "send-queue-messages" per connection (1000) */
    unsigned
        max_node_connections; /* "max-connections" node capacity (0 = fd limit): 4100 */
    char *log_level;          /* "log-level" ("info") */
};

/* Loads and validates path. Returns the config, or NULL with err->msg naming
 * the file, the JSON path and the reason. Free with config_free(). */
struct mn_config *config_load(const char *path, struct mn_err *err);
/* Parses JSON text (name is used in messages). Same contract as config_load. */
struct mn_config *config_parse(const char *text, size_t len, const char *name,
                               struct mn_err *err);
/* The embedded default: standalone, localhost:8111, one demo app
 * (name "demo", key "demo-key", secret "demo-secret", client events on). */
struct mn_config *config_default(void);
void config_free(struct mn_config *cfg);

const struct mn_app *config_app_by_key(const struct mn_config *cfg, const char *key,
                                       size_t len);
const struct mn_app *config_app_by_id(const struct mn_config *cfg, const char *id,
                                      size_t len);

/* True when addr (an api.fastcgi or api.scgi value) is "host:port"; false
 * when it is the path of a Unix socket. */
bool config_is_host_port(const char *addr);

/* Writes docs/config.md's text: every key, type, default and help line. */
void config_write_docs(FILE *out);

#endif
