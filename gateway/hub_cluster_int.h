/* hub_cluster_int.h - what the files of the hub's cluster state share
 * (distributed mode): hub_cluster.c (the calls into cluster.lua, transitions,
 * webhook delays, leaving), hub_cluster_join.c (joins and their snapshots),
 * hub_cluster_users.c (signed-in users and watchlists), hub_cluster_beat.c
 * (heartbeats, resyncs, reaping, the settle after an outage),
 * hub_cluster_repair.c (member lists set right after missed events) and
 * hub_cluster_rest.c (REST queries, trigger info, cache entries,
 * terminate_connections). The hub's own view of them is in hub_int.h.
 * Functions named _locked run under hub->lock. */
#ifndef MN_HUB_CLUSTER_INT_H
#define MN_HUB_CLUSTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus_redis.h"
#include "chan.h"
#include "cluster.h"
#include "rest.h"
#include "hub_int.h"

#define SNAPSHOT_MS 3000   /* a joiner's snapshot overdue: answered locally */
#define BEAT_EVERY_MS 1000 /* heartbeat checks; recorded every node-heartbeat */
/* After a silent restore: every other live node's beat (one each
 * BEAT_EVERY_MS) has seen the loss within one period, and its restore is
 * sent at once; the second covers a beat and a sync in flight. */
#define REPAIR_AFTER_LOST_MS (2 * BEAT_EVERY_MS)

/* A signed-in connection waiting for its watchlist's fleet-wide state. */
struct cwatch {
    uint64_t token;
    size_t app, w;
    uint64_t since_ms;
    char socket_id[CHAN_SOCKET_ID_MAX + 1];
    char *user;
    size_t ulen, n;
    char **ids;
    size_t *lens;
};

/* What a reply callback needs. */
struct creq {
    struct hub *h;
    const char *op;
    size_t app;
    const struct rest_query *q; /* queries: borrowed until done */
    rest_answer_fn *done;
    void *arg;
    struct cdelay *delay; /* "confirm" */
    uint64_t token;       /* a snapshot's */
};

/* hub_cluster.c. Sends c (freed here); fn gets the reply with req (freed by
 * fn). Lock held or not. Returns -1 when the link is down (req freed, fn not
 * called). */
int hub_cluster_send(struct hub *h, struct cluster_cmd *c, bus_redis_reply_fn *fn,
                     struct creq *req);
/* A request for operation op (a static string); freed by its reply callback. */
struct creq *hub_cluster_req(struct hub *h, const char *op);
/* Starts the call of op into cluster.lua for this node (full: EVAL). */
void hub_cluster_start(struct hub *h, struct cluster_cmd *c, const char *op, bool full);
/* The reply of "sub", "reap", "sync", "user", "watch" or a snapshot's "sub"
 * (the link's thread): acts on its transitions, or marks a resync. */
void hub_cluster_on_change(void *arg, const struct redisReply *reply);
/* Lock held: the delayed webhooks that are due ask Redis whether they still
 * are. */
void hub_cluster_delays_release_locked(struct hub *h, uint64_t now);

/* hub_cluster_join.c. Lock held: a joiner whose snapshot will not come is
 * answered from this node's view at once. */
void hub_cluster_join_failed_locked(struct hub *h, uint64_t token);
/* A snapshot on the node's own name (the link's thread; takes the lock). */
void hub_cluster_snapshot(struct hub *h, const char *data, size_t len);
/* Lock held: joiners whose snapshot did not come are answered locally. */
void hub_cluster_joins_expire_locked(struct hub *h, uint64_t now);
/* Frees j (hub_cluster_join_free(NULL) does nothing). */
void hub_cluster_join_free(struct cjoin *j);

/* hub_cluster_repair.c. Lock held: s, a snapshot of presence channel c, is
 * what its subscribers will know: those not waiting first get how it differs
 * from c->told (member_removed, member_added), then c->told becomes s. */
void hub_cluster_told_snapshot_locked(struct hub *h, size_t app, const char *chan,
                                      size_t clen, struct hchan *c,
                                      const struct cluster_snapshot *s);
/* Lock held: c's first subscribers were answered from this node's members:
 * c->told becomes them, unless it was set already. */
void hub_cluster_told_local_locked(struct hchan *c);
/* Lock held: asks for a repair snapshot of each presence channel with local
 * subscribers (one per channel at a time); why is logged. */
void hub_cluster_repair_locked(struct hub *h, const char *why);
/* A snapshot (the link's thread; takes the lock): false when s answers no
 * repair; else applied (hub_cluster_told_snapshot_locked). */
bool hub_cluster_repair_snapshot(struct hub *h, const struct cluster_snapshot *s);
/* Lock held: repair snapshots that did not come are forgotten. */
void hub_cluster_repairs_expire_locked(struct hub *h, uint64_t now);
/* Frees the repairs asked for (hub_cluster_free). */
void hub_cluster_repairs_free(struct hub *h);

/* hub_cluster_users.c. A watchlist snapshot for token (flags: one '1'/'0'
 * per id) from the link's thread; takes the lock. */
void hub_cluster_watch_snapshot(struct hub *h, uint64_t token, const char *flags,
                                size_t flen);
/* A fleet-wide command on P#ctl (the link's thread). */
void hub_cluster_ctl(struct hub *h, const char *data, size_t len);
/* Lock held: watchlists whose snapshot did not come are answered locally. */
void hub_cluster_watches_expire_locked(struct hub *h, uint64_t now);
/* Frees cw. */
void hub_cluster_watch_free(struct cwatch *cw);

#endif
