/* bus_redis.h - the link to Redis used by distributed mode: one thread with
 * its own libuv loop holding two hiredis connections to the master (commands,
 * and pub/sub), found directly or through Sentinel. Knows nothing of
 * channels or the hub: it publishes opaque payloads, keeps a set of
 * subscribed names (resubscribed after every reconnect) and hands messages to
 * a callback. Every function is thread safe. */
#ifndef MN_BUS_REDIS_H
#define MN_BUS_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct bus_redis;

/* A message on a subscribed name; runs on the link's thread, both strings
 * borrowed for the call. */
typedef void bus_redis_msg_fn(void *arg, const char *name, size_t nlen, const char *data,
                              size_t len);
/* A name added by bus_redis_subscribe is live: Redis confirmed the
 * SUBSCRIBE (confirmed), or SUB_CONFIRM_MS passed without it (not confirmed,
 * logged; e.g. Redis down). Once per bus_redis_subscribe call that was not
 * undone first; runs on the link's thread, name borrowed. */
typedef void bus_redis_sub_fn(void *arg, const char *name, size_t nlen, bool confirmed);
/* The reply to one command (bus_redis_command), borrowed for the call; NULL
 * when the command failed (connection lost, link stopped). */
struct redisReply;
typedef void bus_redis_reply_fn(void *arg, const struct redisReply *reply);
/* The outcome of one publish: ok when Redis accepted it. */
typedef void bus_redis_done_fn(void *arg, bool ok);

/* A link for cfg (kept, not copied) that is not connected yet. on_msg and
 * on_sub are called on the link's thread. Free with bus_redis_free(). */
struct bus_redis *bus_redis_new(const struct mn_redis *cfg, bus_redis_msg_fn *on_msg,
                                bus_redis_sub_fn *on_sub, void *arg);
/* Starts the thread, which connects and reconnects with back-off. */
int bus_redis_start(struct bus_redis *r);
/* Whether both connections are up (a hint: a publish may still fail). */
bool bus_redis_up(const struct bus_redis *r);
/* PUBLISH name data (both copied). Returns -1 without calling done when the
 * link is down or stopped; otherwise 0, and done (may be NULL) is called once
 * on the link's thread (or in bus_redis_stop's caller). */
int bus_redis_publish(struct bus_redis *r, const char *name, size_t nlen,
                      const void *data, size_t len, bus_redis_done_fn *done, void *arg);
/* Sends one command (arguments copied) on the command connection, in order
 * with the PUBLISHes. Returns -1 without calling fn when the link is down or
 * stopped; otherwise 0, and fn (may be NULL) is called once on the link's
 * thread (or in bus_redis_stop's caller). */
int bus_redis_command(struct bus_redis *r, size_t argc, const char *const *argv,
                      const size_t *lens, bus_redis_reply_fn *fn, void *arg);
/* A Lua script (kept, not copied) loaded with SCRIPT LOAD on every new
 * connection before anything else, so EVALSHA finds it. Before
 * bus_redis_start. */
void bus_redis_set_script(struct bus_redis *r, const char *text, size_t len);
/* How many times the link came up: a change means Redis may have lost what
 * it held (a restart, a failover). */
unsigned bus_redis_ups(const struct bus_redis *r);
/* Adds name to (removes it from) the set of subscribed names. Calls for one
 * name must alternate; ignored once stopped. */
void bus_redis_subscribe(struct bus_redis *r, const char *name, size_t nlen);
void bus_redis_unsubscribe(struct bus_redis *r, const char *name, size_t nlen);
/* Whether the link gave up: Redis stayed unreachable for cfg->give_up
 * seconds, so the link sent SIGTERM to the process (once) for a clean stop
 * whose exit status says so. */
bool bus_redis_gave_up(const struct bus_redis *r);
/* Stops the thread and fails what is pending (done called with false); the
 * functions above stay callable and do nothing. bus_redis_free(NULL) does
 * nothing. */
void bus_redis_stop(struct bus_redis *r);
void bus_redis_free(struct bus_redis *r);

#endif
