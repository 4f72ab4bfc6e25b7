/* hub_int.h - the hub's state, for the files that implement the hub
 * (hub.c, backend.c, hub_cache.c, hub_users.c, hub_redis.c, hub_cluster*.c).
 * Everything here is guarded by hub->lock. */
#ifndef MN_HUB_INT_H
#define MN_HUB_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub.h"
#include "chan.h"
#include "map.h"
#include "webhook_msg.h"

struct bus_redis;
struct msg_member;

struct hmember {
    unsigned conns; /* this user's subscribed connections */
    char *info;     /* user_info JSON of the first connection */
    size_t info_len;
};

struct hchan {
    unsigned subs;          /* subscribed connections, all workers */
    unsigned *per_worker;   /* subscribed connections per worker */
    struct map members;     /* presence: user id -> struct hmember */
    uint64_t count_sent_ms; /* last pusher_internal:subscription_count sent */
    bool count_pending;     /* a throttled count waits for hub_tick */
    bool confirming;        /* distributed mode: Redis has not confirmed the SUBSCRIBE */
    unsigned fleet_subs;    /* distributed mode: the fleet's count, as last heard */
    bool count_deferred;    /* distributed mode: a count change waits for the SUBSCRIBE */
    /* Distributed presence (hub_cluster_repair.c): user id -> what the local
     * subscribers were told of that member; told_known once a first answer
     * set it. */
    struct map told;
    bool told_known;
};

/* The last server-triggered event of a cache channel (hub_cache.c). */
struct hcache {
    struct frame *frame; /* the event as subscribers got it, replayed on join */
    char *data;          /* its data, for GET /channels/{ch}?info=cache */
    size_t data_len;
    char *event;
    uint64_t expires_ms;
};

/* A user id that is signed in somewhere or watched by someone (hub_users.c). */
struct huser {
    unsigned conns;       /* connections signed in as this user, all workers */
    unsigned *per_worker; /* the same per worker */
    struct map watchers;  /* watching user id -> struct hwatch */
};

struct hwatch {
    unsigned conns; /* the watcher's connections whose watchlist names the user */
};

/* Distributed mode (hub_cluster_join.c): a presence or cache channel's subscriber
 * that waits for its snapshot from Redis (hub->cl.joins, by token). */
struct cjoin {
    uint64_t token;
    size_t app, w;
    uint64_t since_ms;
    bool sent;  /* its snapshot was asked for (the channel's SUBSCRIBE is live) */
    char *user; /* presence: the joiner's user id */
    size_t ulen;
    char socket_id[CHAN_SOCKET_ID_MAX + 1];
    size_t clen;
    char chan[];
};

/* A channel_vacated or member_removed webhook waiting its 3 s, after which
 * Redis says whether it is still due (cluster.lua's "confirm"). */
struct cdelay {
    struct cdelay *next;
    uint64_t due_ms;
    size_t app;
    char kind; /* 'v' or 'r' */
    char *chan, *user, *token;
    size_t clen, ulen, tlen;
};

/* Distributed mode's bookkeeping of the cluster state (hub_cluster*.c). */
struct hcluster {
    struct map joins;   /* token (decimal) -> struct cjoin */
    struct map watches; /* token (decimal) -> struct cwatch (hub_cluster_int.h) */
    struct map repairs; /* token (decimal) -> repair snapshot (hub_cluster_repair.c) */
    uint64_t repair_due_ms; /* after a silent restore: when to repair (0: none) */
    uint64_t next_token;
    atomic_uint ups_seen;  /* bus_redis_ups() when last synced */
    uint64_t up_since_ms;  /* when the link last came up: reaping waits a little */
    uint64_t next_beat_ms; /* the next heartbeat check */
    uint64_t next_record_ms;
    bool beat_busy, sync_busy, resync, leaving, left;
    bool sync_silent;     /* the sync in flight restores what Redis lost */
    bool registered;      /* Redis confirmed this node once (its state is not news) */
    atomic_bool settling; /* the link came back; the other nodes may not have */
    atomic_uint settle_refused; /* triggers refused meanwhile (logged at the end) */
    bool ready_busy;
    unsigned alive; /* live nodes at the last heartbeat check before an outage */
    struct cdelay *delays, **delays_tail;
};

struct happ {
    struct map chans; /* name -> struct hchan */
    unsigned conns;
    struct map cache;         /* cache channel name -> struct hcache */
    struct map users;         /* user id -> struct huser */
    struct map count_pending; /* names of channels with a throttled count (no value) */
};

struct hub {
    pthread_mutex_t lock;
    const struct mn_config *cfg;
    size_t nworkers;
    struct worker **workers;
    struct happ *apps;
    unsigned conns;
    uint64_t seq;            /* numbers every publish (struct delivery's seq) */
    uint64_t next_purge_ms;  /* hub_tick's next sweep of expired cache entries */
    struct webhook *webhook; /* the webhook sender, or NULL (webhook.h) */
    struct bus_redis *redis; /* distributed mode: the Redis link, or NULL */
    char node[17];           /* distributed mode: this start's node id (hex) */
    struct hcluster cl;      /* distributed mode: the cluster state's bookkeeping */
    pthread_cond_t left;     /* hub_redis_stop waits for the "leave" answer */
};

/* Posts a channel transition of chan (user_id for members) to the webhook
 * sender; settled: distributed mode, delays and pairs done in Redis. Not
 * for #server-to-user- channels, which are the gateway's own. Callers hold
 * the lock, so transitions reach the sender in the order they happened. */
void hub_hook(struct hub *h, size_t app, enum webhook_kind kind, const char *chan,
              size_t clen, const char *user_id, size_t ulen, unsigned count,
              bool settled);

/* backend.c: delivers a REST publish's frames (taken, one per event and
 * channel in order) to local subscribers, caches them, and answers. */
/* fleet: NULL, or (distributed mode) the fleet's subscription and user
 * counts of each (event, channel) pair, two per pair, for the info answer. */
void hub_publish_local(struct hub *h, size_t app, const struct rest_query *q,
                       const unsigned *fleet, struct frame **frames, size_t total,
                       rest_answer_fn *done, void *arg);

/* hub_redis.c (distributed mode; each does nothing without h->redis). Lock
 * held: chan got its first local subscriber (subscribe true) or lost its last. */
void hub_redis_chan_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                           bool subscribe);
/* Sends f (a client event) to the other nodes; lost while Redis is down. */
void hub_redis_publish(struct hub *h, size_t app, const char *chan, size_t clen,
                       const struct frame *f, const char *exclude);
/* A REST publish: PUBLISHes every frame (taken), then delivers locally and
 * answers once Redis accepted all (hub_publish_local), or answers 503. */
void hub_redis_rest_publish(struct hub *h, size_t app, const struct rest_query *q,
                            struct frame **frames, size_t total, rest_answer_fn *done,
                            void *arg);

/* hub_cluster*.c (distributed mode; each does nothing without h->redis).
 * Lock held: node's count of chan became count (c: its state, NULL once
 * gone); member: -1 no presence change, 0 user left, 1 user joined (info). */
void hub_cluster_sub_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                            unsigned count, int member, const char *user, size_t ulen,
                            const char *info, size_t ilen);
/* Lock held: a presence or cache channel's subscriber on worker w waits for
 * its snapshot (c->confirming: until hub_cluster_confirmed_locked). */
void hub_cluster_join_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                             size_t w, const char *socket_id, const char *user,
                             size_t ulen, const struct hchan *c);
/* Lock held: the channel's SUBSCRIBE is live: a deferred count change goes
 * to Redis, its joiners ask for snapshots. */
void hub_cluster_confirmed_locked(struct hub *h, size_t app, const char *chan,
                                  size_t clen);
/* A message on the node's own name or the fleet's control name (the link's
 * thread); false when name is neither. */
bool hub_cluster_msg(struct hub *h, const char *name, size_t nlen, const char *data,
                     size_t len);
/* Lock held, from hub_tick: heartbeats, resyncs, reaping, delayed webhooks,
 * snapshots overdue. */
void hub_cluster_tick_locked(struct hub *h, uint64_t now);
/* REST queries answered from Redis; false when q is not one. */
bool hub_cluster_rest(struct hub *h, size_t app, const struct rest_query *q,
                      rest_answer_fn *done, void *arg);
/* A REST publish to a cache channel: its last event goes to Redis too. */
void hub_cluster_cache_put(struct hub *h, size_t app, const char *chan, size_t clen,
                           const char *event, size_t elen, const char *data, size_t dlen);
/* Before the link stops: tells the fleet this node leaves (waits up to 1 s). */
void hub_cluster_leave(struct hub *h);
/* Lock held: publishes chan's fleet count to every node, and its webhook. */
void hub_cluster_send_count_locked(struct hub *h, size_t app, const char *chan,
                                   size_t clen, unsigned count);
/* hub_joined_now with the lock held. */
void hub_joined_now_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                           bool presence, struct hub_joined *out);
/* Lock held: whether this node has user signed in changed (its first
 * connection came, its last went). */
void hub_cluster_user_locked(struct hub *h, size_t app, const char *user, size_t ulen,
                             bool present);
/* Lock held: the connection socket_id of user (worker w) watches ids[0..n):
 * it gets their fleet-wide state from a snapshot, in order with the news. */
void hub_cluster_watch_locked(struct hub *h, size_t app, size_t w, const char *socket_id,
                              const char *user, size_t ulen, const char *const *ids,
                              const size_t *lens, size_t n);
/* hub_users.c, lock held: tells the local watchers of user id that it came
 * online or went offline; and the watchlist_events state of ids from this
 * node's view. */
void hub_users_tell_locked(struct hub *h, size_t app, const char *id, size_t len,
                           bool online);
void hub_users_watch_state_locked(struct hub *h, size_t app, const char *const *ids,
                                  const size_t *lens, size_t n, struct buf *out);
/* A REST publish Redis accepted: delivered locally and answered by
 * hub_publish_local, with the fleet's counts when an event asks info. */
void hub_cluster_publish_info(struct hub *h, size_t app, const struct rest_query *q,
                              struct frame **frames, size_t total, rest_answer_fn *done,
                              void *arg);
/* Whether a trigger waits (503, counted) for the other nodes to be
 * subscribed again after this node's link came back. Thread safe. */
bool hub_cluster_settling(struct hub *h);
/* terminate_connections for the other nodes (through P#ctl). */
void hub_cluster_terminate(struct hub *h, size_t app, const char *user, size_t ulen);
/* Frees the bookkeeping (hub_free). */
void hub_cluster_free(struct hub *h);
/* hub_cluster_repair.c. Lock held: a member_added (added) or member_removed
 * of m that Redis delivered to c's subscribers moves c->told. */
void hub_cluster_told_event_locked(struct hchan *c, bool added,
                                   const struct msg_member *m);
/* Frees c->told (chan_free; leaves it unknown). */
void hub_cluster_told_clear(struct hchan *c);
/* Whether chan's state is the fleet's (distributed mode, not a user channel). */
bool hub_cluster_on(const struct hub *h, const char *chan, size_t clen);

/* Lock held: queues f to every worker holding subscribers of c. */
void hub_publish_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                        const struct hchan *c, struct frame *f, const char *exclude);

/* Lock held, hub_cache.c: remembers f (a new reference) with its event name and
 * data as the cache of chan, for the app's cache-ttl. */
void hub_cache_put_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                          struct frame *f, const char *event, size_t elen,
                          const char *data, size_t dlen, uint64_t now);
/* Lock held: a new reference to the cached event of chan, NULL when none or
 * expired. */
struct frame *hub_cache_get_locked(struct hub *h, size_t app, const char *chan,
                                   size_t clen, uint64_t now);
/* Lock held: fills st's cache_* fields (copies the caller frees) when chan has
 * a live cache entry. */
void hub_cache_stat_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                           uint64_t now, struct rest_chan_stat *st);
/* Lock held: drops the entries expired at now. */
void hub_cache_purge_locked(struct hub *h, uint64_t now);
/* Frees every app's cache (hub_free). */
void hub_cache_free(struct hub *h);
/* Frees every app's user registry (hub_free). */
void hub_users_free(struct hub *h);

#endif
