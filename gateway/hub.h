/* hub.h - the process-wide view of channels, shared by every worker thread
 * under one mutex: who is subscribed where (counted per worker, so an event
 * goes only to workers with subscribers), presence members counted per user,
 * connection counts per app. Workers keep their own connection lists; the
 * hub never touches a connection. */
#ifndef MN_HUB_H
#define MN_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "err.h"
#include "frame.h"
#include "rest.h"
#include "webhook_msg.h"

struct hub;
struct worker;

/* A presence member as parsed from channel_data (borrowed). */
struct hub_member {
    const char *user_id;
    size_t id_len;
    const char *info; /* JSON text */
    size_t info_len;
};

struct hub *hub_new(const struct mn_config *cfg, size_t nworkers);
void hub_set_worker(struct hub *h, size_t index, struct worker *w);
void hub_free(struct hub *h);
/* Sends the transitions the hub sees (channel occupied/vacated, member
 * added/removed, cache_miss, subscription_count) to wh, posted under the
 * hub's lock so that they reach it in the order they happened. Set before the
 * workers start; wh may be NULL. */
struct webhook;
void hub_set_webhook(struct hub *h, struct webhook *wh);
/* Posts ev for app to the webhook sender (client events; thread safe). */
void hub_webhook(struct hub *h, size_t app, const struct webhook_event *ev);
const struct mn_config *hub_config(const struct hub *h);
/* Distributed mode (hub_redis.c): start connects the hub to cfg->redis on its
 * own thread (before the workers start; -1 logged); stop fails what is pending
 * and turns the link off (before the workers stop). hub_free frees it. */
int hub_redis_start(struct hub *h);
void hub_redis_stop(struct hub *h);
/* Whether the link gave up on Redis (redis.give-up): exit 75 (EX_TEMPFAIL). */
bool hub_redis_gave_up(const struct hub *h);

/* Counts a new connection of app; -1 with *code 4004 (app quota) or 4100
 * (node capacity) when refused. */
int hub_conn_open(struct hub *h, size_t app, int *code);
void hub_conn_close(struct hub *h, size_t app);

/* What a new subscriber is told besides subscription_succeeded. The caller
 * zero-initialises it, and afterwards frees presence and unrefs cached. */
struct hub_joined {
    struct buf presence;  /* presence: the object for subscription_succeeded */
    struct frame *cached; /* cache channels: the cached event to replay, or NULL */
    bool cache_miss;      /* cache channel without a live cached event */
    uint64_t seq;         /* deliveries with seq <= this were published before */
    bool pending;         /* distributed mode: Redis has not confirmed the channel's
                           * SUBSCRIBE; answer at DELIVERY_READY (hub_joined_now) */
};

/* Registers a subscription held by worker w. For presence, member is the
 * subscriber's member and out->presence receives the presence object to send
 * in subscription_succeeded; the user's first connection publishes
 * member_added to the others (exclude_socket is the joiner). Cache channels
 * fill out->cached or out->cache_miss; an app with subscription-count sends
 * the new count to the channel. Returns -1 with err (status 4100-ish Pusher
 * code or HTTP-like 403) when the channel is full. */
int hub_subscribe(struct hub *h, size_t app, const char *chan, size_t clen, size_t w,
                  const struct hub_member *member, const char *exclude_socket,
                  struct hub_joined *out, struct mn_err *err);
/* What a subscriber that waited for DELIVERY_READY is told: out as from
 * hub_subscribe (presence: the presence object), taken now. */
void hub_joined_now(struct hub *h, size_t app, const char *chan, size_t clen,
                    bool presence, struct hub_joined *out);
/* Removes a subscription of worker w; user_id is the presence member or NULL.
 * The user's last connection publishes member_removed. */
void hub_unsubscribe(struct hub *h, size_t app, const char *chan, size_t clen, size_t w,
                     const char *user_id, size_t id_len);

/* Queues f to every worker with subscribers of chan; each worker gets its own
 * reference. The caller keeps its reference. exclude_socket may be NULL. */
void hub_publish(struct hub *h, size_t app, const char *chan, size_t clen,
                 struct frame *f, const char *exclude_socket);

/* Called about every 250 ms by worker 0: sends the throttled subscription
 * counts that are due, drops expired cache entries. */
void hub_tick(struct hub *h, uint64_t now);

/* --- signed-in users (hub_users.c) --- */

/* Records a connection of worker w signed in as user_id, watching ids[0..n)
 * (distinct; n = 0 without watchlist-events). The user's first connection
 * tells the users watching it that it is online. When n > 0, watch_state
 * receives the pusher_internal:watchlist_events message with the current
 * state of ids, for this connection alone (distributed mode: it comes later,
 * to the connection socket_id, from Redis). Returns the publish number before
 * the sign-in: user deliveries with seq <= it are not for this connection. */
uint64_t hub_users_signin(struct hub *h, size_t app, const char *user_id, size_t ulen,
                          size_t w, const char *socket_id, const char *const *ids,
                          const size_t *lens, size_t n, struct buf *watch_state);
/* Undoes hub_users_signin (same arguments) when the connection closes; the
 * user's last connection tells its watchers that it is offline. */
void hub_users_signout(struct hub *h, size_t app, const char *user_id, size_t ulen,
                       size_t w, const char *const *ids, const size_t *lens, size_t n);
/* Asks every worker holding a connection signed in as user_id to close it. */
void hub_users_terminate(struct hub *h, size_t app, const char *user_id, size_t ulen);

/* The REST backend over this hub (struct rest_backend's call). */
void hub_rest_call(void *hub, const struct rest_query *q, rest_answer_fn *done,
                   void *arg);

#endif
