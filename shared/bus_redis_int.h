/* bus_redis_int.h - the Redis link's state, for the two files that
 * implement it: bus_redis.c (the thread, requests, the subscribed set) and
 * bus_redis_conn.c (the connections to the master and to a sentinel). */
#ifndef MN_BUS_REDIS_INT_H
#define MN_BUS_REDIS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <uv.h>

#include "bus_redis.h"
#include "config.h"
#include "map.h"

#define BACKOFF_MIN_MS 100

struct op;

struct bus_redis {
    const struct mn_redis *cfg;
    bus_redis_msg_fn *on_msg;
    bus_redis_sub_fn *on_sub;
    void *msg_arg;
    pthread_mutex_t lock; /* guards inbox and stopped */
    struct op *inbox, **tail;
    bool stopped, started;
    pthread_t thread;
    atomic_bool up;
    atomic_bool gave_up;
    atomic_uint ups;    /* times the link came up */
    const char *script; /* loaded on every connection (bus_redis_set_script) */
    size_t script_len;
    /* Since the link was last up: PUBLISHes accepted by bus_redis_publish
     * that failed, and those it refused because the link was down. */
    atomic_ulong pub_failed, pub_refused;
    /* Everything below belongs to the link's thread. */
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    bool stopping;
    redisAsyncContext *pub, *sub, *sen;
    bool pub_ok, sub_ok, sen_ok, active;
    struct map names; /* the subscribed set (no values) */
    struct map live;  /* names sent on sub -> enum live_state (bus_redis.c) */
    struct op *flight, *flight_tail; /* PUBLISHes awaiting a reply, oldest first */
    struct map waiting; /* names subscribed, not yet confirmed -> request time (ms) */
    uint64_t connect_ms, next_attempt_ms, backoff_ms, ping_sent_ms, last_ping_ms;
    uint64_t down_since_ms; /* when the link was last up (or started) */
    bool was_up;            /* up at least once: a new up is a recovery */
    size_t sentinel_next;
    uint64_t sentinel_tried_ms; /* the last attempt to listen to a sentinel */
    char host[256];
    int port;
};

/* bus_redis_conn.c. Drops every connection (pending publishes fail) and,
 * unless stopping, schedules the next attempt. */
void bus_redis_conn_drop(struct bus_redis *r, const char *why);
/* From the link's tick: connects when it is time, and while connected
 * checks the connect deadline, the PING deadline and the sentinel. */
void bus_redis_conn_tick(struct bus_redis *r, uint64_t now);

/* bus_redis.c: SUBSCRIBEs every name of the set on a new pub/sub
 * connection. */
void bus_redis_resubscribe(struct bus_redis *r);

#endif
