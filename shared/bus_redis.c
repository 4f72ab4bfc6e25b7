/* bus_redis.c - the Redis link of distributed mode: a thread with its own
 * libuv loop and two hiredis async connections to the master, one for
 * commands (PUBLISH, PING) and one in pub/sub mode. The master is the
 * configured address, or (sentinel) what the sentinels name, asked in turn
 * and checked with ROLE (when none answers, the last master found, still
 * checked); a third connection, to the sentinel that answered, listens for
 * +switch-master (tried again every second while up). A PING every 500 ms with a 1.5 s
 * deadline finds a master that hangs without closing, and a PUBLISH unanswered for 800 ms
 * fails on its own (its trigger answers 503). Any loss drops every connection,
 * fails what is pending and reconnects with back-off (100 ms doubling to
 * 1 s), then subscribes again to every name in the set; a newly added name
 * is reported live (on_sub) at Redis's confirmation, or after 1 s without
 * it. Discovery uses short blocking connections on this thread only
 * (nothing else runs here). With
 * redis.give-up, a link down that long sends SIGTERM to the process (main
 * then exits 75). Counts the publishes that failed (sent or queued, then
 * past their deadline or cut off with the connection) and those refused
 * while down, and logs both when the link is up again. Does not know what
 * names or payloads mean (gateway/hub_redis.c). */
#include "bus_redis.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "clock.h"
#include "log.h"
#include "map.h"
#include "mem.h"
#include "redis_master.h"
#include "mn.h"

#define TICK_MS 100
#define PING_EVERY_MS 500
#define PING_DEADLINE_MS 1500
#define PUB_DEADLINE_MS 800 /* + one tick: a trigger's 503 within 1 s */
#define CONNECT_DEADLINE_MS 1500
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
#define SUB_BATCH 256
#define SUB_CONFIRM_MS 1000    /* a new name counts as live after this at the latest */
#define SENTINEL_RETRY_MS 1000 /* listening for +switch-master again, while up */

enum op_kind { OP_PUB, OP_SUB, OP_UNSUB, OP_CMD };

/* A request from another thread; owns its copies. */
struct op {
    struct op *next;
    enum op_kind kind;
    bus_redis_done_fn *done;
    void *arg;
    char *name;
    size_t nlen;
    char *data;
    size_t len;
    /* OP_CMD: the arguments (argv[i] owned) and who gets the reply. */
    size_t argc;
    char **argv;
    size_t *lens;
    bus_redis_reply_fn *reply_fn;
    /* A PUBLISH sent and not answered: in r's in-flight list, oldest
     * first, until answered or past PUB_DEADLINE_MS (then done(false) at
     * once; the op waits for hiredis's callback without a done). */
    struct op *fprev, *fnext;
    bool in_flight;
    bool failed; /* counted in pub_failed already (past its deadline) */
    uint64_t sent_ms;
};

/* What the pub/sub connection has sent for a name (values of r->live). */
enum live_state { LIVE_SUBSCRIBED = 1, LIVE_UNSUBSCRIBING, LIVE_RESUBSCRIBE };

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
    struct map names;                /* the subscribed set (no values) */
    struct map live;                 /* names sent on sub -> enum live_state */
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

static void
op_free(struct op *o)
{
    for (size_t i = 0; i < o->argc; i++)
        free(o->argv[i]);
    free(o->argv);
    free(o->lens);
    free(o->name);
    free(o->data);
    free(o);
}

/* o was accepted: a PUBLISH counts as failed, a command's reply_fn gets NULL. */
static void
op_fail(struct bus_redis *r, struct op *o)
{
    if (o->kind == OP_PUB)
        atomic_fetch_add(&r->pub_failed, 1);
    if (o->kind == OP_PUB && o->done)
        o->done(o->arg, false);
    if (o->kind == OP_CMD && o->reply_fn)
        o->reply_fn(o->arg, NULL);
    op_free(o);
}

static void
free_ctx(redisAsyncContext **pac)
{
    redisAsyncContext *ac = *pac;

    *pac = NULL; /* first: the disconnect callback must not find it */
    if (ac)
        redisAsyncFree(ac);
}

/* Drops every connection (pending publishes fail) and, unless stopping,
 * schedules the next attempt. */
static void
drop(struct bus_redis *r, const char *why)
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
        drop(r, ac->errstr);
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
        return; /* freed by drop() */
    drop(r, ac->err ? ac->errstr : "closed");
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

static void on_message(redisAsyncContext *ac, void *reply, void *arg);

/* name is live (confirmed, or past SUB_CONFIRM_MS): tells on_sub once, if
 * it waited. The waiting map's values are request times + 1 (never NULL). */
static void
sub_live(struct bus_redis *r, const char *name, size_t nlen, bool confirmed)
{
    if (map_del(&r->waiting, name, nlen) != NULL)
        r->on_sub(r->msg_arg, name, nlen, confirmed);
}

/* The names whose confirmation is overdue count as live (logged). */
static void
sub_expire(struct bus_redis *r, uint64_t now)
{
    size_t bucket = 0;
    struct map_node *it = NULL;

    while (map_next(&r->waiting, &bucket, &it)) {
        char *name;
        size_t nlen;

        if (now + 1 - (uint64_t)(uintptr_t)it->val < SUB_CONFIRM_MS)
            continue;
        nlen = it->len;
        name = xstrndup(it->key, nlen);
        log_warn("redis: SUBSCRIBE not confirmed within %d ms, subscription answered "
                 "anyway name=%s",
                 SUB_CONFIRM_MS, name);
        sub_live(r, name, nlen, false);
        free(name);
        bucket = 0; /* the map changed: start over */
        it = NULL;
    }
}

/* Sends SUBSCRIBE for names[0..n) on the pub/sub connection. */
static void
subscribe_batch(struct bus_redis *r, const char **names, const size_t *lens, size_t n)
{
    const char *argv[SUB_BATCH + 1];
    size_t argl[SUB_BATCH + 1];

    argv[0] = "SUBSCRIBE";
    argl[0] = 9;
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = names[i];
        argl[i + 1] = lens[i];
    }
    redisAsyncCommandArgv(r->sub, on_message, r, (int)n + 1, argv, argl);
}

static void
resubscribe(struct bus_redis *r)
{
    const char *names[SUB_BATCH];
    size_t lens[SUB_BATCH], n = 0, bucket = 0;
    struct map_node *it = NULL;
    bool created;

    while (map_next(&r->names, &bucket, &it)) {
        map_upsert(&r->live, it->key, it->len, &created)->val =
            (void *)(uintptr_t)LIVE_SUBSCRIBED;
        names[n] = it->key;
        lens[n++] = it->len;
        if (n == SUB_BATCH) {
            subscribe_batch(r, names, lens, n);
            n = 0;
        }
    }
    if (n)
        subscribe_batch(r, names, lens, n);
}

static void
on_switch(redisAsyncContext *ac, void *reply, void *arg)
{
    const redisReply *rep = reply;

    (void)ac;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 3 &&
        redis_reply_is(rep->element[0], "message"))
        drop(arg, "+switch-master");
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
        drop(r, "the sentinel names another master");
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
    resubscribe(r);
    if (r->cfg->sentinel)
        sentinel_listen(r);
    return 0;
}

/* Every reply on the pub/sub connection: messages, and the confirmations
 * of UNSUBSCRIBE that let a name be subscribed again (hiredis 0.14 forgets
 * a name's callback when an UNSUBSCRIBE reply overtakes a new SUBSCRIBE). */
static void
on_message(redisAsyncContext *ac, void *reply, void *arg)
{
    struct bus_redis *r = arg;
    const redisReply *rep = reply;
    const redisReply *name;
    uintptr_t state;

    (void)ac;
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rep->element[1]->type != REDIS_REPLY_STRING)
        return;
    name = rep->element[1];
    if (redis_reply_is(rep->element[0], "message") &&
        rep->element[2]->type == REDIS_REPLY_STRING) {
        r->on_msg(r->msg_arg, name->str, name->len, rep->element[2]->str,
                  rep->element[2]->len);
        return;
    }
    if (redis_reply_is(rep->element[0], "subscribe")) {
        sub_live(r, name->str, name->len, true);
        return;
    }
    if (!redis_reply_is(rep->element[0], "unsubscribe"))
        return;
    state = (uintptr_t)map_get(&r->live, name->str, name->len);
    if (state == LIVE_RESUBSCRIBE && r->sub) {
        const char *n = name->str;
        size_t len = name->len;

        map_upsert(&r->live, n, len, &(bool){false})->val =
            (void *)(uintptr_t)LIVE_SUBSCRIBED;
        subscribe_batch(r, &n, &len, 1);
    } else if (state == LIVE_UNSUBSCRIBING) {
        map_del(&r->live, name->str, name->len);
    }
}

static void
flight_add(struct bus_redis *r, struct op *o)
{
    o->in_flight = true;
    o->sent_ms = mn_now_ms();
    o->fnext = NULL;
    o->fprev = r->flight_tail;
    if (r->flight_tail)
        r->flight_tail->fnext = o;
    else
        r->flight = o;
    r->flight_tail = o;
}

static void
flight_del(struct bus_redis *r, struct op *o)
{
    if (!o->in_flight)
        return;
    o->in_flight = false;
    if (o->fprev)
        o->fprev->fnext = o->fnext;
    else
        r->flight = o->fnext;
    if (o->fnext)
        o->fnext->fprev = o->fprev;
    else
        r->flight_tail = o->fprev;
    o->fprev = o->fnext = NULL;
}

/* Fails the PUBLISHes unanswered past their deadline (their triggers answer
 * 503); the PING deadline decides whether the connection is lost. */
static void
flight_expire(struct bus_redis *r, uint64_t now)
{
    struct op *o;

    while ((o = r->flight) != NULL && now - o->sent_ms >= PUB_DEADLINE_MS) {
        flight_del(r, o);
        log_warn("redis: PUBLISH unanswered after %llu ms addr=%s:%d",
                 (unsigned long long)(now - o->sent_ms), r->host, r->port);
        o->failed = true;
        atomic_fetch_add(&r->pub_failed, 1);
        if (o->done)
            o->done(o->arg, false);
        o->done = NULL;
    }
}

static void
on_pub_reply(redisAsyncContext *ac, void *reply, void *arg)
{
    struct op *o = arg;
    struct bus_redis *r = ac->data;
    const redisReply *rep = reply;
    bool ok = rep != NULL && rep->type == REDIS_REPLY_INTEGER;

    flight_del(r, o);
    if (!ok && !o->failed)
        atomic_fetch_add(&r->pub_failed, 1);
    if (o->done)
        o->done(o->arg, ok);
    op_free(o);
}

/* A command's reply (NULL when the connection went away first). */
static void
on_cmd_reply(redisAsyncContext *ac, void *reply, void *arg)
{
    struct op *o = arg;

    (void)ac;
    if (o->reply_fn)
        o->reply_fn(o->arg, reply);
    op_free(o);
}

static void
run_sub(struct bus_redis *r, struct op *o)
{
    bool created;
    struct map_node *node;
    uintptr_t state;

    if (o->kind == OP_UNSUB) {
        map_del(&r->names, o->name, o->nlen);
        map_del(&r->waiting, o->name, o->nlen);
        state = (uintptr_t)map_get(&r->live, o->name, o->nlen);
        if (state == LIVE_RESUBSCRIBE) {
            map_upsert(&r->live, o->name, o->nlen, &created)->val =
                (void *)(uintptr_t)LIVE_UNSUBSCRIBING;
        } else if (state == LIVE_SUBSCRIBED && r->sub) {
            map_upsert(&r->live, o->name, o->nlen, &created)->val =
                (void *)(uintptr_t)LIVE_UNSUBSCRIBING;
            redisAsyncCommand(r->sub, NULL, NULL, "UNSUBSCRIBE %b", o->name, o->nlen);
        }
        return;
    }
    map_upsert(&r->names, o->name, o->nlen, &created);
    map_upsert(&r->waiting, o->name, o->nlen, &created)->val =
        (void *)(uintptr_t)(mn_now_ms() + 1);
    if (r->sub == NULL)
        return; /* resubscribe() sends it after the connection */
    node = map_upsert(&r->live, o->name, o->nlen, &created);
    if (created) {
        const char *n = node->key;

        node->val = (void *)(uintptr_t)LIVE_SUBSCRIBED;
        subscribe_batch(r, &n, &o->nlen, 1);
    } else if ((uintptr_t)node->val == LIVE_UNSUBSCRIBING) {
        node->val = (void *)(uintptr_t)LIVE_RESUBSCRIBE;
    }
}

static void
on_closed(uv_handle_t *h)
{
    (void)h;
}

static void
on_wake(uv_async_t *handle)
{
    struct bus_redis *r = handle->data;
    struct op *o, *next;

    pthread_mutex_lock(&r->lock);
    o = r->inbox;
    r->inbox = NULL;
    r->tail = &r->inbox;
    r->stopping = r->stopped;
    pthread_mutex_unlock(&r->lock);
    for (; o; o = next) {
        next = o->next;
        if (o->kind == OP_CMD) {
            if (r->stopping || !atomic_load(&r->up) || r->pub == NULL ||
                redisAsyncCommandArgv(r->pub, on_cmd_reply, o, (int)o->argc,
                                      (const char **)o->argv, o->lens) != REDIS_OK)
                op_fail(r, o);
        } else if (o->kind != OP_PUB) {
            run_sub(r, o);
            op_free(o);
        } else if (r->stopping || !atomic_load(&r->up) || r->pub == NULL ||
                   redisAsyncCommand(r->pub, on_pub_reply, o, "PUBLISH %b %b", o->name,
                                     o->nlen, o->data, o->len) != REDIS_OK) {
            op_fail(r, o);
        } else {
            flight_add(r, o);
        }
    }
    if (r->stopping) {
        drop(r, "stopping");
        uv_close((uv_handle_t *)&r->wake, on_closed);
        uv_close((uv_handle_t *)&r->tick, on_closed);
    }
}

static void
on_tick(uv_timer_t *t)
{
    struct bus_redis *r = t->data;
    uint64_t now = mn_now_ms();

    flight_expire(r, now);
    sub_expire(r, now);
    if (r->cfg->give_up && !atomic_load(&r->up) && !atomic_load(&r->gave_up) &&
        now - r->down_since_ms >= (uint64_t)r->cfg->give_up * 1000) {
        /* main's sigwait stops the gateway cleanly and exits 75. */
        log_err("redis: unreachable for %u s (give-up), exiting for the supervisor "
                "addr=%s",
                r->cfg->give_up, r->cfg->address);
        atomic_store(&r->gave_up, true);
        kill(getpid(), SIGTERM);
    }
    if (!r->active) {
        if (now < r->next_attempt_ms)
            return;
        r->active = true;
        r->connect_ms = now;
        if (connect_all(r) < 0)
            drop(r, "connect failed");
        return;
    }
    if (!atomic_load(&r->up)) {
        if (now - r->connect_ms > CONNECT_DEADLINE_MS)
            drop(r, "connect timed out");
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
        drop(r, "no answer to PING");
    } else if (!r->ping_sent_ms && now - r->last_ping_ms >= PING_EVERY_MS) {
        r->ping_sent_ms = r->last_ping_ms = now;
        redisAsyncCommand(r->pub, on_ping_reply, r, "PING");
    }
}

static void *
run(void *arg)
{
    struct bus_redis *r = arg;

    on_tick(&r->tick); /* the first attempt at once */
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return NULL;
}

struct bus_redis *
bus_redis_new(const struct mn_redis *cfg, bus_redis_msg_fn *on_msg,
              bus_redis_sub_fn *on_sub, void *arg)
{
    struct bus_redis *r = xcalloc(1, sizeof(*r));

    r->cfg = cfg;
    r->on_msg = on_msg;
    r->on_sub = on_sub;
    r->msg_arg = arg;
    pthread_mutex_init(&r->lock, NULL);
    r->tail = &r->inbox;
    r->backoff_ms = BACKOFF_MIN_MS;
    uv_loop_init(&r->loop);
    uv_async_init(&r->loop, &r->wake, on_wake);
    r->wake.data = r;
    uv_timer_init(&r->loop, &r->tick);
    r->tick.data = r;
    return r;
}

int
bus_redis_start(struct bus_redis *r)
{
    r->down_since_ms = mn_now_ms();
    uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
    if (pthread_create(&r->thread, NULL, run, r) != 0)
        return -1;
    r->started = true;
    return 0;
}

bool
bus_redis_up(const struct bus_redis *r)
{
    return atomic_load(&((struct bus_redis *)r)->up);
}

/* Takes o: queues it for the link's thread, or fails it once stopped. */
static int
post(struct bus_redis *r, struct op *o)
{
    pthread_mutex_lock(&r->lock);
    if (r->stopped) {
        pthread_mutex_unlock(&r->lock);
        op_free(o);
        return -1;
    }
    *r->tail = o;
    r->tail = &o->next;
    pthread_mutex_unlock(&r->lock);
    uv_async_send(&r->wake);
    return 0;
}

static struct op *
op_new(enum op_kind kind, const char *name, size_t nlen)
{
    struct op *o = xcalloc(1, sizeof(*o));

    o->kind = kind;
    o->name = xmalloc(nlen + 1);
    memcpy(o->name, name, nlen);
    o->name[nlen] = '\0';
    o->nlen = nlen;
    return o;
}

int
bus_redis_publish(struct bus_redis *r, const char *name, size_t nlen, const void *data,
                  size_t len, bus_redis_done_fn *done, void *arg)
{
    struct op *o;

    if (!atomic_load(&r->up)) {
        atomic_fetch_add(&r->pub_refused, 1);
        return -1;
    }
    o = op_new(OP_PUB, name, nlen);
    o->data = xmalloc(len + 1);
    memcpy(o->data, data, len);
    o->len = len;
    o->done = done;
    o->arg = arg;
    return post(r, o);
}

int
bus_redis_command(struct bus_redis *r, size_t argc, const char *const *argv,
                  const size_t *lens, bus_redis_reply_fn *fn, void *arg)
{
    struct op *o;

    if (!atomic_load(&r->up) || argc == 0)
        return -1;
    o = op_new(OP_CMD, "", 0);
    o->argc = argc;
    o->argv = xcalloc(argc, sizeof(*o->argv));
    o->lens = xcalloc(argc, sizeof(*o->lens));
    for (size_t i = 0; i < argc; i++) {
        o->argv[i] = xmalloc(lens[i] + 1);
        memcpy(o->argv[i], argv[i], lens[i]);
        o->argv[i][lens[i]] = '\0';
        o->lens[i] = lens[i];
    }
    o->reply_fn = fn;
    o->arg = arg;
    return post(r, o);
}

void
bus_redis_set_script(struct bus_redis *r, const char *text, size_t len)
{
    r->script = text;
    r->script_len = len;
}

unsigned
bus_redis_ups(const struct bus_redis *r)
{
    return atomic_load(&((struct bus_redis *)r)->ups);
}

bool
bus_redis_gave_up(const struct bus_redis *r)
{
    return atomic_load(&((struct bus_redis *)r)->gave_up);
}

void
bus_redis_subscribe(struct bus_redis *r, const char *name, size_t nlen)
{
    post(r, op_new(OP_SUB, name, nlen));
}

void
bus_redis_unsubscribe(struct bus_redis *r, const char *name, size_t nlen)
{
    post(r, op_new(OP_UNSUB, name, nlen));
}

void
bus_redis_stop(struct bus_redis *r)
{
    struct op *o, *next;

    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    if (r->stopped) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    r->stopped = true;
    pthread_mutex_unlock(&r->lock);
    if (r->started) {
        uv_async_send(&r->wake);
        pthread_join(r->thread, NULL);
    } else {
        uv_close((uv_handle_t *)&r->wake, on_closed);
        uv_close((uv_handle_t *)&r->tick, on_closed);
        uv_run(&r->loop, UV_RUN_DEFAULT);
    }
    /* Queued before the stop and not yet taken by the thread. */
    pthread_mutex_lock(&r->lock);
    o = r->inbox;
    r->inbox = NULL;
    r->tail = &r->inbox;
    pthread_mutex_unlock(&r->lock);
    for (; o; o = next) {
        next = o->next;
        op_fail(r, o);
    }
}

void
bus_redis_free(struct bus_redis *r)
{
    if (r == NULL)
        return;
    bus_redis_stop(r);
    uv_loop_close(&r->loop);
    map_clear(&r->names);
    map_clear(&r->live);
    map_clear(&r->waiting);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
