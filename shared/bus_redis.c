/* bus_redis.c - the Redis link of distributed mode: a thread with its own
 * libuv loop and two hiredis async connections to the master, one for
 * commands (PUBLISH, PING) and one in pub/sub mode, which bus_redis_conn.c
 * finds (directly or through Sentinel), opens, watches and drops. This file
 * owns the thread, the inbox other threads post to, the commands and
 * PUBLISHes (a PUBLISH unanswered for 800 ms fails on its own: its trigger
 * answers 503) and the set of subscribed names: after every reconnect it
 * subscribes again to every name in the set; a newly added name is
 * reported live (on_sub) at Redis's confirmation, or after 1 s without it.
 * With redis.give-up, a link down that long sends SIGTERM to the process
 * (main then exits 75). Counts the publishes that failed (sent or queued,
 * then past their deadline or cut off with the connection) and those
 * refused while down, and logs both when the link is up again. Does not
 * know what names or payloads mean (gateway/hub_redis.c). */
#include "bus_redis.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "clock.h"
#include "log.h"
#include "map.h"
#include "mem.h"
#include "redis_master.h"
#include "bus_redis_int.h"
#include "mn.h"

#define TICK_MS 100
#define PUB_DEADLINE_MS 800 /* + one tick: a trigger's 503 within 1 s */
#define SUB_BATCH 256
#define SUB_CONFIRM_MS 1000 /* a new name counts as live after this at the latest */

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

void
bus_redis_resubscribe(struct bus_redis *r)
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
        bus_redis_conn_drop(r, "stopping");
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
    bus_redis_conn_tick(r, now);
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
