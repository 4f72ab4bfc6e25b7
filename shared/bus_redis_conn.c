/* bus_redis_conn.c - the Redis link's connections to the master, on the
 * link's thread only (bus_redis.c). The master is the configured address,
 * or (sentinel) what the sentinels name, asked in turn and checked with
 * ROLE (when none answers, the last master found, still checked); a third
 * connection, to the sentinel that answered, listens for +switch-master
 * (tried again every second while up). Discovery uses short blocking
 * connections (redis_master.c) on this thread only (nothing else runs
 * here). The link is up once the master answers a PING; a PING every
 * 500 ms with a 1.5 s deadline finds a master that hangs without closing.
 * Any loss drops every connection, fails what is pending and reconnects
 * with back-off (100 ms doubling to 1 s); bus_redis.c then subscribes
 * again. Does not know the requests or the subscribed set (bus_redis.c). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "clock.h"
#include "log.h"
#include "map.h"
#include "redis_master.h"
#include "bus_redis_int.h"
#include "mn.h"

#define PING_EVERY_MS 500
#define PING_DEADLINE_MS 1500
#define CONNECT_DEADLINE_MS 1500
#define BACKOFF_MAX_MS 1000
#define SENTINEL_RETRY_MS 1000 /* listening for +switch-master again, while up */

static void
free_ctx(redisAsyncContext **pac)
{
    redisAsyncContext *ac = *pac;

    *pac = NULL; /* first: the disconnect callback must not find it */
    if (ac)
        redisAsyncFree(ac);
}

void
bus_redis_conn_drop(struct bus_redis *r, const char *why)
{
    if (!r->active)
        return;
    r->active = false;
    if (atomic_load(&r->up)) {
        log_warn("redis: connection lost addr=%s:%d reason=%s", r->host, r->port, why);
        r->down_since_ms = mn_now_ms();
    }
    atomic_store(&r->up, false);
    r->pub_ok = r->sub_ok = r->sen_ok = false;
    free_ctx(&r->pub);
    free_ctx(&r->sub);
    free_ctx(&r->sen);
    map_clear(&r->live);
    r->next_attempt_ms = mn_now_ms() + r->backoff_ms;
    r->backoff_ms =
        r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void
on_ping_reply(redisAsyncContext *ac, void *reply, void *arg)
{
    struct bus_redis *r = arg;

    (void)ac;
    if (reply == NULL)
        return;
    r->ping_sent_ms = 0;
    if (!atomic_load(&r->up)) {
        /* Taken before up is set: a refusal counted after it belongs to the
         * next outage. */
        unsigned long failed = atomic_exchange(&r->pub_failed, 0);
        unsigned long refused = atomic_exchange(&r->pub_refused, 0);

        atomic_store(&r->up, true);
        atomic_fetch_add(&r->ups, 1);
        r->backoff_ms = BACKOFF_MIN_MS;
        log_info("redis: connected addr=%s:%d names=%zu", r->host, r->port,
                 r->names.count);
        if (r->was_up)
            log_warn("redis: link up again after %llu ms; publishes failed in "
                     "flight=%lu refused while down=%lu",
                     (unsigned long long)(mn_now_ms() - r->down_since_ms), failed,
                     refused);
        r->was_up = true;
    }
}

/* The sentinel connection failed or closed (hiredis frees it): the master
 * stays usable; the tick tries the next sentinel. */
static void
sentinel_lost(struct bus_redis *r)
{
    char host[256];
    int port;

    r->sen = NULL;
    if (redis_nth_addr(r->cfg->address, ++r->sentinel_next, host, sizeof(host), &port) <
        0)
        r->sentinel_next = 0;
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
    struct bus_redis *r = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees ac after this call. */
        if (ac == r->sen) {
            sentinel_lost(r);
            return;
        }
        if (ac == r->pub)
            r->pub = NULL;
        if (ac == r->sub)
            r->sub = NULL;
        bus_redis_conn_drop(r, ac->errstr);
        return;
    }
    r->pub_ok |= ac == r->pub;
    r->sub_ok |= ac == r->sub;
    r->sen_ok |= ac == r->sen;
    /* Up once the server answers, not once the kernel accepted: a hung
     * master still completes TCP handshakes. */
    if (r->pub_ok && r->sub_ok && !atomic_load(&r->up)) {
        r->ping_sent_ms = r->last_ping_ms = mn_now_ms();
        redisAsyncCommand(r->pub, on_ping_reply, r, "PING");
    }
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
    struct bus_redis *r = ac->data;

    (void)status;
    if (ac == r->sen) {
        sentinel_lost(r);
        return;
    }
    if (ac == r->pub)
        r->pub = NULL;
    else if (ac == r->sub)
        r->sub = NULL;
    else
        return; /* freed by bus_redis_conn_drop() */
    bus_redis_conn_drop(r, ac->err ? ac->errstr : "closed");
}

static redisAsyncContext *
async_open(struct bus_redis *r, const char *host, int port)
{
    redisAsyncContext *ac = redisAsyncConnect(host, port);

    if (ac == NULL || ac->err) {
        log_debug("redis: cannot connect addr=%s:%d: %s", host, port,
                  ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        return NULL;
    }
    ac->data = r;
    if (redisLibuvAttach(ac, &r->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

static void
on_switch(redisAsyncContext *ac, void *reply, void *arg)
{
    const redisReply *rep = reply;

    (void)ac;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 3 &&
        redis_reply_is(rep->element[0], "message"))
        bus_redis_conn_drop(arg, "+switch-master");
}

/* What the listening sentinel names: another master means a switch
 * happened while no sentinel was listened to. */
static void
on_sentinel_master(redisAsyncContext *ac, void *reply, void *arg)
{
    struct bus_redis *r = arg;
    const redisReply *rep = reply;

    (void)ac;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_STRING &&
        rep->element[1]->type == REDIS_REPLY_STRING &&
        (strcmp(rep->element[0]->str, r->host) != 0 ||
         atoi(rep->element[1]->str) != r->port))
        bus_redis_conn_drop(r, "the sentinel names another master");
}

/* Listens for +switch-master on the sentinel that answered last, after
 * checking that it still names our master. */
static void
sentinel_listen(struct bus_redis *r)
{
    char host[256];
    int port;

    r->sentinel_tried_ms = mn_now_ms();
    r->sen_ok = false;
    if (redis_nth_addr(r->cfg->address, r->sentinel_next, host, sizeof(host), &port) <
            0 ||
        (r->sen = async_open(r, host, port)) == NULL)
        return;
    redisAsyncCommand(r->sen, on_sentinel_master, r,
                      "SENTINEL get-master-addr-by-name %s", r->cfg->master_name);
    redisAsyncCommand(r->sen, on_switch, r, "SUBSCRIBE +switch-master");
}

/* Opens the connections to the master (found first when sentinel; when no
 * sentinel answers, the last master found, if it still says it is one). */
static int
connect_all(struct bus_redis *r)
{
    if (r->cfg->sentinel) {
        if (redis_discover(r->cfg, &r->sentinel_next, r->host, sizeof(r->host),
                           &r->port) < 0) {
            if (r->host[0] == '\0')
                return -1;
            log_warn("redis: trying the last known master addr=%s:%d", r->host, r->port);
        }
        if (!redis_is_master(r->cfg, r->host, r->port))
            return -1;
    } else if (redis_nth_addr(r->cfg->address, 0, r->host, sizeof(r->host), &r->port) <
               0) {
        log_err("redis: bad address %s", r->cfg->address);
        return -1;
    }
    r->pub = async_open(r, r->host, r->port);
    r->sub = r->pub ? async_open(r, r->host, r->port) : NULL;
    if (r->sub == NULL)
        return -1;
    if (r->cfg->password) {
        redisAsyncCommand(r->pub, NULL, NULL, "AUTH %s", r->cfg->password);
        redisAsyncCommand(r->sub, NULL, NULL, "AUTH %s", r->cfg->password);
    }
    /* The cluster state's keys live in the configured database (pub/sub
     * names carry its number: pub/sub ignores databases). */
    if (r->cfg->database)
        redisAsyncCommand(r->pub, NULL, NULL, "SELECT %u", r->cfg->database);
    /* Before any EVALSHA on this connection: a new master (failover) or a
     * restarted Redis does not know the script. */
    if (r->script)
        redisAsyncCommand(r->pub, NULL, NULL, "SCRIPT LOAD %b", r->script, r->script_len);
    bus_redis_resubscribe(r);
    if (r->cfg->sentinel)
        sentinel_listen(r);
    return 0;
}

void
bus_redis_conn_tick(struct bus_redis *r, uint64_t now)
{
    if (!r->active) {
        if (now < r->next_attempt_ms)
            return;
        r->active = true;
        r->connect_ms = now;
        if (connect_all(r) < 0)
            bus_redis_conn_drop(r, "connect failed");
        return;
    }
    if (!atomic_load(&r->up)) {
        if (now - r->connect_ms > CONNECT_DEADLINE_MS)
            bus_redis_conn_drop(r, "connect timed out");
        return;
    }
    if (r->cfg->sentinel && now - r->sentinel_tried_ms >= SENTINEL_RETRY_MS) {
        /* hiredis 0.14's libuv adapter never reports a refused connect. */
        if (r->sen && !r->sen_ok) {
            free_ctx(&r->sen);
            sentinel_lost(r);
        }
        if (r->sen == NULL)
            sentinel_listen(r);
    }
    if (r->ping_sent_ms && now - r->ping_sent_ms > PING_DEADLINE_MS) {
        bus_redis_conn_drop(r, "no answer to PING");
    } else if (!r->ping_sent_ms && now - r->last_ping_ms >= PING_EVERY_MS) {
        r->ping_sent_ms = r->last_ping_ms = now;
        redisAsyncCommand(r->pub, on_ping_reply, r, "PING");
    }
}
