/* cluster.h - distributed mode's shared state in Redis, for the gateway
 * (gateway/hub_cluster*.c, asynchronously over shared/bus_redis.c) and
 * micronotifier-api (synchronously): the pub/sub names, the envelope of
 * what is published, the calls into shared/cluster.lua (which documents the
 * keys and does every change atomically) and the parsing of their answers.
 * No I/O and no clock here.
 *
 * Names, with P = "mn:{database}:":
 *   P{app id}:{channel}   a channel's events (channel names never hold ':')
 *   P#node:{node id}      what one node is told alone (join snapshots)
 *   P#ctl                 fleet-wide commands (CLUSTER_CTL_*)
 * Envelope of a channel's message: "{node id}\n{excluded socket_id or
 * nothing}\n{WebSocket frame text}". A node drops what it published itself
 * (it delivered locally already); CLUSTER_ANY_NODE is delivered by all. */
#ifndef MN_CLUSTER_H
#define MN_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "rest.h"

struct redisReply;

#define CLUSTER_NODE_LEN 16
#define CLUSTER_ANY_NODE "0000000000000000"
/* Fleet-wide news on P#ctl: "t\n{app id}\n{user id}": close the
 * connections signed in as the user (terminate_connections); "w\n{app
 * id}\n{1|0}{user id}": the user came online / went offline (cluster.lua). */
#define CLUSTER_CTL_TERMINATE 't'
#define CLUSTER_CTL_WATCH 'w'

/* shared/cluster.lua, generated into cluster_lua.c at build time. */
extern const char cluster_lua[];
extern const size_t cluster_lua_len;

/* --- names and envelopes --- */

void cluster_chan_name(struct buf *b, unsigned db, const char *app_id, const char *chan,
                       size_t clen);
void cluster_node_name(struct buf *b, unsigned db, const char *node);
void cluster_ctl_name(struct buf *b, unsigned db);
/* Appends the envelope of frame (node: CLUSTER_NODE_LEN chars). */
void cluster_envelope(struct buf *b, const char *node, const char *exclude,
                      const char *frame, size_t len);
/* Splits an envelope: node (CLUSTER_NODE_LEN chars), the excluded socket_id
 * copied into exclude (cap bytes with the NUL), the frame. -1 when garbled. */
int cluster_envelope_parse(const char *data, size_t len, const char **node, char *exclude,
                           size_t cap, const char **frame, size_t *flen);
/* The app id and channel of a channel's name (pointing into name); -1 when
 * name is not a channel of database db. */
int cluster_chan_parse(const char *name, size_t nlen, unsigned db, const char **app_id,
                       size_t *alen, const char **chan, size_t *clen);

/* A cache channel's entry in Redis: "{event length}:{event}{data}". */
void cluster_cache_entry(struct buf *b, const char *event, size_t elen, const char *data,
                         size_t dlen);
int cluster_cache_entry_parse(const char *e, size_t len, const char **event, size_t *elen,
                              const char **data, size_t *dlen);

/* --- calls into cluster.lua --- */

/* One Redis command's arguments, each copied. */
struct cluster_cmd {
    size_t argc, cap;
    char **argv;
    size_t *lens;
};

/* Starts the call of operation op for node (NULL: none) in database db:
 * EVALSHA by the script's SHA1, or EVAL with the whole script when full
 * (which also puts the script back into Redis's cache). */
void cluster_cmd_start(struct cluster_cmd *c, const char *op, unsigned db,
                       const char *node, bool full);
/* Turns a call started with full = false into the EVAL of the whole script,
 * the same operation and arguments: the retry after a NOSCRIPT error. */
void cluster_cmd_full(struct cluster_cmd *c);
void cluster_cmd_add(struct cluster_cmd *c, const char *s, size_t len);
void cluster_cmd_addu(struct cluster_cmd *c, uint64_t v);
void cluster_cmd_free(struct cluster_cmd *c);
/* The script's SHA1 (hex, NUL-terminated). */
const char *cluster_sha(void);

/* "sub" (fresh: the node never registered; this registers it; max_members:
 * a presence channel's limit, 0 none; a snapshot with a user names the
 * joiner, and says 'f' when the node does not hold it): node's subscriber count
 * of chan becomes count (-1: unchanged); member (-1: not a presence change, 0: the node
 * no longer holds user, 1: it holds user, with info, a JSON text, "null" when NULL);
 * token non-zero: publish the joiner's snapshot to the node's own name (cache: a cache
 * channel). */
void cluster_cmd_sub(struct cluster_cmd *c, const char *app_id, const char *chan,
                     size_t clen, long count, int member, const char *user, size_t ulen,
                     const char *info, size_t ilen, uint64_t token, bool cache,
                     bool fresh, unsigned max_members);
/* "user": whether the node has user signed in (fresh as for "sub"). */
void cluster_cmd_user(struct cluster_cmd *c, const char *app_id, const char *user,
                      size_t ulen, bool present, bool fresh);
/* "watch": the online state of ids[0..n), published to the node's own name
 * as a snapshot with token (cache 'w', members: one '1' or '0' per id). */
void cluster_cmd_watch(struct cluster_cmd *c, const char *app_id, uint64_t token,
                       const char *const *ids, const size_t *lens, size_t n);
/* "beat" (timeout ms; record: write the heartbeat). */
void cluster_cmd_beat(struct cluster_cmd *c, uint64_t timeout_ms, bool record);
/* "reap" a node overdue by timeout_ms. */
void cluster_cmd_reap(struct cluster_cmd *c, const char *dead, uint64_t timeout_ms);
/* "sync": start with cluster_cmd_start(.., "sync", ..), then this once
 * (silent: restore without events), then one add per channel and member. */
void cluster_cmd_sync_mode(struct cluster_cmd *c, bool silent);
void cluster_cmd_sync_count(struct cluster_cmd *c, const char *app_id, const char *chan,
                            size_t clen, unsigned count);
void cluster_cmd_sync_user(struct cluster_cmd *c, const char *app_id, const char *user,
                           size_t ulen);
void cluster_cmd_sync_member(struct cluster_cmd *c, const char *app_id, const char *chan,
                             size_t clen, const char *user, size_t ulen, const char *info,
                             size_t ilen);
/* "confirm" a delayed webhook: kind 'v' (user NULL) or 'r'. */
void cluster_cmd_confirm(struct cluster_cmd *c, char kind, const char *app_id,
                         const char *chan, size_t clen, const char *user, size_t ulen,
                         const char *token, size_t tlen);
/* "cache": chan's last event for ttl_ms. */
void cluster_cmd_cache(struct cluster_cmd *c, const char *app_id, const char *chan,
                       size_t clen, const char *event, size_t elen, const char *data,
                       size_t dlen, uint64_t ttl_ms);
/* Queries: "channels" (occupied channels whose name starts with prefix),
 * "channel", "users". */
void cluster_cmd_channels(struct cluster_cmd *c, const char *app_id, const char *prefix);
void cluster_cmd_channel(struct cluster_cmd *c, const char *app_id, const char *chan);
void cluster_cmd_users(struct cluster_cmd *c, const char *app_id, const char *chan);

/* --- answers --- */

/* The status string opening an answer ("ok", "unregistered", "lost",
 * "dead"), or NULL when the reply is an error or not an array. */
const char *cluster_status(const struct redisReply *r);

/* One transition of an answer (cluster.lua's header lists the kinds). */
struct cluster_transition {
    char kind;
    const char *app_id, *chan, *a, *b;
    size_t alen, clen, a_len, b_len;
};
typedef void cluster_transition_fn(void *arg, const struct cluster_transition *t);
/* Calls fn for each transition of an answer of "sub", "reap" or "sync". */
void cluster_transitions(const struct redisReply *r, cluster_transition_fn *fn,
                         void *arg);

/* A join snapshot published to the node's name (cluster_cmd_sub's token). */
struct cluster_snapshot {
    uint64_t token;
    char cache;        /* '-' not a cache channel, 'x' miss, 'c' entry; 'w' watchlist;
                        * 'f' the joiner was refused (presence channel full) */
    const char *entry; /* 'c': the cache entry (cluster_cache_entry_parse) */
    size_t entry_len;
    const char *members; /* "{length}:{id}{length}:{info}"... */
    size_t members_len;
};
int cluster_snapshot_parse(const char *data, size_t len, struct cluster_snapshot *s);
/* Appends the presence object for subscription_succeeded; -1 when garbled. */
int cluster_snapshot_presence(const struct cluster_snapshot *s, struct buf *out);
/* The next member of a snapshot's presence part, from *p (start: s->members)
 * to end (s->members + s->members_len): 1 with *id and *info (pointers into
 * it) and *p moved past it, 0 at the end, -1 when garbled. */
int cluster_snapshot_member(const char **p, const char *end, const char **id,
                            size_t *ilen, const char **info, size_t *info_len);

/* Query answers into REST's shapes, every string copied: free with
 * cluster_stats_free / cluster_users_free. -1 when garbled. */
int cluster_parse_channels(const struct redisReply *r, struct rest_chan_stat **out,
                           size_t *n);
/* One channel's answer (cache_ttl in whole seconds, rounded up). */
int cluster_parse_channel(const struct redisReply *r, const char *chan,
                          struct rest_chan_stat *st);
int cluster_parse_users(const struct redisReply *r, char ***ids, size_t *n);
/* Answers q (REST_CHANNELS, REST_CHANNEL or REST_USERS) from reply, the
 * script's answer to its query: calls done exactly once, with the channels
 * or users (cache fields only when q asks info=cache), or with 503 when
 * reply is NULL, an error or garbled. What done gets dies when it returns.
 * The gateway (gateway/hub_cluster_rest.c) and micronotifier-api
 * (shared/bus_cluster.c) both answer through it, so both ports answer alike. */
void cluster_answer_query(const struct rest_query *q, const struct redisReply *reply,
                          rest_answer_fn *done, void *arg);
void cluster_stat_clear(struct rest_chan_stat *st);
void cluster_stats_free(struct rest_chan_stat *st, size_t n);
void cluster_users_free(char **ids, size_t n);

#endif
