/* webhook_msg.h - Pusher webhooks as bytes: the event names, one event object,
 * the {"time_ms":..,"events":[..]} body, webhook URLs, the HTTP/1.1 request
 * that carries a body and the status line of the answer. Pure: no I/O, no
 * clocks, no signing (the caller passes the signature from sign.c). */
#ifndef MN_WEBHOOK_MSG_H
#define MN_WEBHOOK_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum webhook_kind {
    WEBHOOK_CHANNEL_OCCUPIED,
    WEBHOOK_CHANNEL_VACATED,
    WEBHOOK_MEMBER_ADDED,
    WEBHOOK_MEMBER_REMOVED,
    WEBHOOK_CLIENT_EVENT,
    WEBHOOK_CACHE_MISS,
    WEBHOOK_SUBSCRIPTION_COUNT,
    WEBHOOK_KIND_COUNT
};

#define WEBHOOK_ALL ((1u << WEBHOOK_KIND_COUNT) - 1)

/* One event, fields borrowed. Which fields a kind uses: channel always;
 * user_id for member_* (and client_event on presence channels, else NULL);
 * event, data and socket_id for client_event; count for subscription_count. */
struct webhook_event {
    enum webhook_kind kind;
    const char *channel;
    size_t clen;
    const char *user_id;
    size_t ulen;
    const char *event;
    size_t elen;
    const char *data;
    size_t dlen;
    const char *socket_id;
    unsigned count;
    bool settled; /* distributed mode: the 3 s delay, the pairs and cache_miss's
                   * de-duplication were done fleet-wide (cluster.lua): send as is */
};

/* "channel_occupied", ...; NULL for an invalid kind. */
const char *webhook_kind_name(enum webhook_kind kind);
/* The kind named name[0..len), or -1. */
int webhook_kind_parse(const char *name, size_t len);

/* Appends the event object, e.g. {"name":"member_added","channel":"presence-c",
 * "user_id":"u"}. */
void webhook_msg_event(struct buf *out, const struct webhook_event *ev);
/* Appends {"time_ms":T,"events":[E,E..]}: events[0..len) is event objects
 * from webhook_msg_event joined by ','. */
void webhook_msg_body(struct buf *out, uint64_t time_ms, const char *events, size_t len);

/* A webhook URL: http://host[:port][/path] or https://... Host and path point
 * into the parsed text; path is "/" when the URL has none; an IPv6 host keeps
 * its brackets (as the Host header wants) and host_len counts them. */
struct webhook_url {
    bool tls;
    const char *host;
    size_t host_len;
    unsigned port;
    const char *path;
    size_t path_len;
};
/* Returns NULL and fills out, or why s[0..len) is refused (no userinfo, no
 * fragment, no whitespace or control characters, port 1-65535). */
const char *webhook_url_parse(const char *s, size_t len, struct webhook_url *out);

/* Appends the whole POST request: headers (Host, Content-Type exactly
 * application/json, X-Pusher-Key, X-Pusher-Signature, Content-Length,
 * Connection: close) and body. */
void webhook_msg_request(struct buf *out, const struct webhook_url *u, const char *key,
                         const char *signature, const char *body, size_t len);

/* Reads the answer received so far, in[0..len). Returns 1 once the status line
 * and the end of the headers have arrived (*status set), 0 when more is
 * needed (*status set as soon as the status line is complete, else 0), -1
 * when it is not HTTP/1.x. */
int webhook_msg_status(const char *in, size_t len, int *status);

#endif
