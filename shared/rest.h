/* rest.h - Pusher's HTTP API, transport-free: a request in, a response out.
 * Owns routing, the signature check, body and query validation and the JSON
 * of every answer. Does not own channel state: it asks a backend (the
 * gateway's hub, or the bus to it) through struct rest_backend, so the
 * gateway's own port and micronotifier-api answer byte for byte alike. */
#ifndef MN_REST_H
#define MN_REST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"

struct rest_req {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* as received, no query, not decoded; prefix stripped */
    size_t path_len;
    const char *query; /* raw query string without '?', or NULL */
    size_t query_len;
    const char *body; /* raw body or NULL */
    size_t body_len;
    int64_t now;        /* Unix seconds, for the auth_timestamp window */
    bool query_decoded; /* the transport already percent-decoded each key and
                         * value (lws does): split on '&' and '=' only */
};

/* Allocated by rest.c; whoever receives it frees it with rest_res_free. */
struct rest_res {
    int status;               /* 200, 400, 401, 403, 404, 405, 413, 500, 503 */
    const char *content_type; /* "application/json" or "text/plain" */
    struct buf body;          /* owned; rest_res_free releases it */
};

enum rest_op {
    REST_PUBLISH,   /* events / batch_events */
    REST_CHANNELS,  /* GET /channels */
    REST_CHANNEL,   /* GET /channels/{channel} */
    REST_USERS,     /* GET /channels/{channel}/users */
    REST_TERMINATE, /* POST /users/{user_id}/terminate_connections */
};

enum {
    REST_INFO_USER_COUNT = 1u << 0,
    REST_INFO_SUBSCRIPTION_COUNT = 1u << 1,
    REST_INFO_CACHE = 1u << 2,
};

/* One event to publish on one or more channels. Strings are NUL-terminated and
 * borrowed for the duration of the backend call. */
struct rest_event {
    const char *name;
    size_t name_len;
    const char *data;
    size_t data_len;
    const char *const *channels;
    size_t nchannels;
    const char *socket_id; /* exclude this connection, or NULL */
    unsigned info;         /* REST_INFO_* wanted for each channel */
};

/* What the backend is asked. Everything is borrowed, and stays valid until
 * the backend calls done (so an asynchronous backend need not copy). */
struct rest_query {
    enum rest_op op;
    const struct mn_app *app;
    const struct rest_event *events; /* REST_PUBLISH */
    size_t nevents;
    const char *channel; /* REST_CHANNEL, REST_USERS */
    size_t channel_len;
    const char *prefix; /* REST_CHANNELS filter_by_prefix, or NULL */
    size_t prefix_len;
    const char *user_id; /* REST_TERMINATE */
    size_t user_id_len;
    unsigned info; /* REST_CHANNEL(S): REST_INFO_* */
};

struct rest_chan_stat {
    const char *name;
    bool occupied;
    unsigned user_count;         /* presence */
    unsigned subscription_count; /* connections subscribed */
    const char *cache_data;      /* cache channels, NULL when empty */
    size_t cache_len;
    const char *cache_event;
    unsigned cache_ttl;
};

/* The backend's answer; borrowed by the done callback only. */
struct rest_answer {
    int status;          /* 0 on success, else an HTTP status (503: bus down) */
    const char *message; /* with a non-zero status */
    /* REST_CHANNELS: occupied channels; REST_CHANNEL: exactly one;
     * REST_PUBLISH when any event asks info: one per (event, channel) pair
     * of every event, in order (also for the events that ask none). */
    const struct rest_chan_stat *chans;
    size_t nchans;
    const char *const *users; /* REST_USERS: distinct user ids */
    size_t nusers;
};

typedef void rest_answer_fn(void *arg, const struct rest_answer *ans);

/* The seam to channel state. call() runs q and calls done exactly once,
 * possibly before it returns (standalone gateway) or later (bus, Redis). */
struct rest_backend {
    void (*call)(void *be, const struct rest_query *q, rest_answer_fn *done, void *arg);
    void *be;
};

typedef void rest_done_fn(void *arg, struct rest_res *res);

/* Handles one request for the apps in cfg. Calls done exactly once with the
 * response (the callee of done owns res and frees it with rest_res_free),
 * possibly before rest_handle returns. req's memory may be released as soon
 * as rest_handle returns: what the backend needs is copied. */
void rest_handle(const struct mn_config *cfg, const struct rest_backend *backend,
                 const struct rest_req *req, rest_done_fn *done, void *arg);
/* Frees res->body and res itself; rest_res_free(NULL) does nothing. */
void rest_res_free(struct rest_res *res);

#endif
