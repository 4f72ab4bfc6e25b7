/* bus_cluster.c - micronotifier-api's bus in distributed mode: the REST
 * core's queries run against the cluster state in Redis (shared/cluster.lua)
 * with synchronous hiredis calls, from any number of request threads, over a
 * small pool of connections to the master (plain address, or what the
 * sentinels name, checked with ROLE). Every connect and every reply has a
 * deadline (CONNECT_MS, REPLY_MS), so a call against a Redis that is down
 * or hung answers 503 within a second.
 *
 * A trigger sets the cache channels' entries ("cache"), then PUBLISHes each
 * (event, channel) frame in the envelope of CLUSTER_ANY_NODE, so every
 * gateway holding the channel delivers it; 200 only once Redis accepted
 * every PUBLISH. Channel queries and terminate_connections are the
 * gateway's own (gateway/hub_cluster_rest.c), and both ports turn a query's
 * reply into the answer with cluster_answer_query, so they answer alike.
 *
 * Any I/O error, or an error reply other than NOSCRIPT, drops the
 * connection and every idle one (the master may have moved: with Sentinel
 * the next connection asks again); reconnection is lazy, so the first
 * request after Redis returns is served. Then (also after a stale idle
 * connection or a new master's address) the link is settling, as a
 * gateway's is after an outage: a trigger first asks cluster.lua's "ready"
 * whether every live gateway is subscribed again, and answers 503 until it
 * is or SETTLE_MAX_MS have passed since the link came back, so no gateway
 * still resubscribing misses an accepted event. The floor of live gateways
 * (for a Redis that came back empty) is PUBSUB NUMSUB of #ctl, sampled at
 * most once per LIVE_EVERY_MS in a healthy trigger's own pipeline. Does not
 * own the names, envelope or Lua calls (cluster.c) nor the REST rules
 * (rest.c). */
#include "bus.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "chan.h"
#include "clock.h"
#include "cluster.h"
#include "log.h"
#include "mem.h"
#include "msg.h"
#include "redis_master.h"
#include "mn.h"

#define POOL_MAX 64     /* idle connections kept; more are closed after use */
#define CONNECT_MS 800  /* connecting to the master */
#define REPLY_MS 800    /* each reply (and each write) */
#define RECHECK_MS 1000 /* Sentinel: how long a master's address is trusted */
#define RETRY_MS 100    /* Sentinel, no master found: asked again after */
#define ADDR_MAX 256
/* After the link came back: the longest wait for the gateways (as theirs). */
#define SETTLE_MAX_MS 2000
#define LIVE_EVERY_MS 1000 /* the live gateways' count, sampled by a trigger */

struct bus_cluster {
    struct bus base;
    const struct mn_config *cfg;
    pthread_mutex_t lock; /* guards what follows */
    redisContext *idle[POOL_MAX];
    unsigned idle_gen[POOL_MAX];
    size_t nidle;
    unsigned gen; /* bumped on a failure: older connections are dropped */
    char host[ADDR_MAX];
    int port;
    bool have_addr;
    uint64_t addr_ms; /* when the sentinels last named it */
    uint64_t fail_ms; /* when they last named none (no address known) */
    size_t sentinel_next;
    bool down; /* the last call failed: log the way back once */
    /* The settle after an outage: set by a failure, a stale idle connection
     * or a moved master; cleared by a "ready" of 1 or SETTLE_MAX_MS. */
    bool settling;
    uint64_t back_ms; /* when a connection worked again (0: not yet) */
    unsigned refused; /* triggers answered 503 meanwhile (logged at the end) */
    unsigned live;    /* gateways subscribed to #ctl, last seen while settled */
    uint64_t live_ms; /* when live was last asked */
};

/* One call's connection. */
struct link {
    struct bus_cluster *b;
    redisContext *c;
    unsigned gen;
    const char *why;  /* the failure, for the log (static text or errstr) */
    char errstr[128]; /* hiredis's text, kept past the context's free */
};

static void
note_state(struct bus_cluster *b, bool up, const char *why)
{
    bool changed;

    pthread_mutex_lock(&b->lock);
    changed = b->down == up;
    b->down = !up;
    pthread_mutex_unlock(&b->lock);
    if (!changed)
        return;
    if (up)
        log_info("bus: Redis reachable again addr=%s", b->cfg->redis.address);
    else
        log_warn("bus: Redis unreachable addr=%s: %s", b->cfg->redis.address, why);
}

/* Lock held: the link was lost (or may have been: a stale connection, a
 * new master), so once it works again the gateways may still be
 * resubscribing; the window of SETTLE_MAX_MS starts when it does. */
static void
settle_start_locked(struct bus_cluster *b)
{
    b->settling = true;
    b->back_ms = 0;
}

static void
settle_start(struct bus_cluster *b)
{
    pthread_mutex_lock(&b->lock);
    settle_start_locked(b);
    pthread_mutex_unlock(&b->lock);
}

/* An idle connection must have nothing to read: EOF or stray bytes mean it
 * is no longer usable (Redis restarted, or closed it). */
static bool
stale(const redisContext *c)
{
    struct pollfd p = {c->fd, POLLIN | POLLRDHUP, 0};

    return c->err != 0 || poll(&p, 1, 0) != 0;
}

static redisContext *
take_idle(struct bus_cluster *b, unsigned *gen)
{
    for (;;) {
        redisContext *c = NULL;
        bool old = false;

        pthread_mutex_lock(&b->lock);
        if (b->nidle) {
            b->nidle--;
            c = b->idle[b->nidle];
            old = b->idle_gen[b->nidle] != b->gen;
            *gen = b->gen;
        }
        pthread_mutex_unlock(&b->lock);
        if (c == NULL || (!old && !stale(c)))
            return c;
        /* Closed under us (a Redis restarted between two calls): the
         * gateways are reconnecting too. */
        if (!old)
            settle_start(b);
        redisFree(c);
    }
}

/* The master's address: the configured one, or (Sentinel) the one the
 * sentinels name, checked with ROLE and trusted for RECHECK_MS (a failover
 * moves it: the connections to the former master are dropped then). When
 * the sentinels cannot be asked, a known address is kept until it fails. */
static int
master_addr(struct bus_cluster *b, char *host, int *port, unsigned *gen)
{
    const struct mn_redis *cfg = &b->cfg->redis;
    uint64_t now = mn_now_ms();
    size_t next;
    bool moved, found;

    pthread_mutex_lock(&b->lock);
    *gen = b->gen;
    if (!cfg->sentinel) {
        pthread_mutex_unlock(&b->lock);
        return redis_nth_addr(cfg->address, 0, host, ADDR_MAX, port);
    }
    if (b->have_addr && now - b->addr_ms < RECHECK_MS) {
        memcpy(host, b->host, ADDR_MAX);
        *port = b->port;
        pthread_mutex_unlock(&b->lock);
        return 0;
    }
    /* During a failover every request would ask (and log): once per RETRY_MS. */
    if (!b->have_addr && b->fail_ms && now - b->fail_ms < RETRY_MS) {
        pthread_mutex_unlock(&b->lock);
        return -1;
    }
    next = b->sentinel_next;
    pthread_mutex_unlock(&b->lock);
    /* Blocking, outside the lock: other threads keep their connections. */
    found = redis_discover(cfg, &next, host, ADDR_MAX, port) == 0 &&
            redis_is_master(cfg, host, *port);
    pthread_mutex_lock(&b->lock);
    if (!found && b->have_addr) {
        memcpy(host, b->host, ADDR_MAX);
        *port = b->port;
        b->addr_ms = now;
    } else if (found) {
        moved = b->have_addr && (strcmp(b->host, host) != 0 || b->port != *port);
        if (moved) {
            b->gen++; /* the connections to the former master are dropped */
            settle_start_locked(b);
            log_info("bus: Redis master moved addr=%s:%d", host, *port);
        }
        memcpy(b->host, host, ADDR_MAX);
        b->port = *port;
        b->have_addr = true;
        b->addr_ms = now;
        b->sentinel_next = next;
    }
    *gen = b->gen;
    found = found || b->have_addr;
    b->fail_ms = found ? 0 : now;
    pthread_mutex_unlock(&b->lock);
    return found ? 0 : -1;
}

/* AUTH or SELECT: only the connection's failure is expected. */
static bool
setup_cmd(redisContext *c, const char *cmd, const char *arg)
{
    const char *argv[2] = {cmd, arg};
    size_t lens[2] = {strlen(cmd), strlen(arg)};
    redisReply *r = redisCommandArgv(c, 2, argv, lens);
    bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;

    freeReplyObject(r);
    return ok;
}

static redisContext *
connect_master(const struct mn_redis *cfg, const char *host, int port, const char **why)
{
    struct timeval connect_tv = {0, CONNECT_MS * 1000}, reply_tv = {0, REPLY_MS * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, connect_tv);
    char db[16];

    if (c == NULL || c->err) {
        *why = c ? "cannot connect" : "out of memory";
        redisFree(c);
        return NULL;
    }
    snprintf(db, sizeof(db), "%u", cfg->database);
    /* The cluster state's keys live in the configured database. */
    if (redisSetTimeout(c, reply_tv) != REDIS_OK ||
        (cfg->password && !setup_cmd(c, "AUTH", cfg->password)) ||
        (cfg->database && !setup_cmd(c, "SELECT", db))) {
        *why = "AUTH or SELECT failed";
        redisFree(c);
        return NULL;
    }
    return c;
}

static int
link_open(struct bus_cluster *b, struct link *l)
{
    char host[ADDR_MAX];
    int port;

    l->b = b;
    l->c = NULL;
    l->why = NULL;
    if (master_addr(b, host, &port, &l->gen) < 0) {
        l->why = b->cfg->redis.sentinel
                     ? "no sentinel named a master that answers ROLE as one"
                     : "bad address";
        return -1;
    }
    l->c = take_idle(b, &l->gen);
    if (l->c == NULL)
        l->c = connect_master(&b->cfg->redis, host, port, &l->why);
    return l->c ? 0 : -1;
}

/* Puts the connection back, or (failed) drops it and every idle one, and
 * makes the next call find the master again. */
static void
link_close(struct link *l, bool ok)
{
    struct bus_cluster *b = l->b;
    redisContext *drop[POOL_MAX];
    size_t n = 0;

    pthread_mutex_lock(&b->lock);
    if (ok && l->c && l->c->err == 0 && l->gen == b->gen && b->nidle < POOL_MAX) {
        b->idle_gen[b->nidle] = l->gen;
        b->idle[b->nidle++] = l->c;
        l->c = NULL;
    } else if (!ok) {
        /* Any failure: the link is not back yet (again). */
        settle_start_locked(b);
        if (l->gen == b->gen) {
            b->gen++;
            b->have_addr = false;
            while (b->nidle)
                drop[n++] = b->idle[--b->nidle];
        }
    }
    pthread_mutex_unlock(&b->lock);
    redisFree(l->c);
    l->c = NULL;
    for (size_t i = 0; i < n; i++)
        redisFree(drop[i]);
}

static bool
is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* The replies of cmds[0..n), sent in one pipeline; a scripted one that
 * Redis did not know (NOSCRIPT) is sent again as the whole script. Returns
 * 0 with every reply (each an integer, string, nil or array: error replies
 * fail the call), or -1 with l->why set; replies owned by the caller. */
static int
pipeline(struct link *l, struct cluster_cmd *cmds, size_t n, redisReply **out)
{
    size_t i;

    memset(out, 0, n * sizeof(*out));
    for (i = 0; i < n; i++)
        if (redisAppendCommandArgv(l->c, (int)cmds[i].argc, (const char **)cmds[i].argv,
                                   cmds[i].lens) != REDIS_OK)
            goto io;
    for (i = 0; i < n; i++)
        if (redisGetReply(l->c, (void **)&out[i]) != REDIS_OK)
            goto io;
    for (i = 0; i < n; i++) {
        if (!is_noscript(out[i]))
            continue;
        freeReplyObject(out[i]);
        cluster_cmd_full(&cmds[i]);
        out[i] = redisCommandArgv(l->c, (int)cmds[i].argc, (const char **)cmds[i].argv,
                                  cmds[i].lens);
        if (out[i] == NULL)
            goto io;
    }
    for (i = 0; i < n; i++) {
        if (out[i]->type == REDIS_REPLY_ERROR) {
            log_warn("bus: Redis refused a command: %s", out[i]->str);
            l->why = "Redis refused a command";
            goto fail;
        }
    }
    return 0;
io:
    if (l->c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        l->why = "no answer in time"; /* the socket's deadline (REPLY_MS) */
    } else if (l->c->err == REDIS_ERR_EOF || l->c->errstr[0] == '\0') {
        l->why = "connection closed";
    } else {
        snprintf(l->errstr, sizeof(l->errstr), "%s", l->c->errstr);
        l->why = l->errstr;
    }
fail:
    for (i = 0; i < n; i++) {
        freeReplyObject(out[i]);
        out[i] = NULL;
    }
    return -1;
}

static void
cmds_free(struct cluster_cmd *cmds, redisReply **replies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cluster_cmd_free(&cmds[i]);
        if (replies)
            freeReplyObject(replies[i]);
    }
    free(cmds);
    free(replies);
}

static void
answer_error(rest_answer_fn *done, void *arg, int status, const char *message)
{
    struct rest_answer ans = {0};

    ans.status = status;
    ans.message = message;
    done(arg, &ans);
}

/* --- triggers --- */

static void
publish_cmd(struct cluster_cmd *c, const struct mn_config *cfg, const struct mn_app *app,
            const struct rest_event *ev, const char *chan)
{
    struct buf name = BUF_INIT, frame = BUF_INIT, env = BUF_INIT;
    size_t clen = strlen(chan);

    /* The frame exactly as the gateway's own trigger builds it. */
    msg_event(&frame, ev->name, ev->name_len, chan, clen, ev->data, ev->data_len, NULL,
              0);
    cluster_chan_name(&name, cfg->redis.database, app->id, chan, clen);
    cluster_envelope(&env, CLUSTER_ANY_NODE, ev->socket_id, buf_data(&frame), frame.len);
    cluster_cmd_add(c, "PUBLISH", 7);
    cluster_cmd_add(c, buf_data(&name), name.len);
    cluster_cmd_add(c, buf_data(&env), env.len);
    buf_free(&name);
    buf_free(&frame);
    buf_free(&env);
}

/* The cache channels' entries, before their events: a subscriber whose
 * snapshot follows an event finds it cached. */
static int
put_caches(struct link *l, const struct rest_query *q)
{
    const struct mn_config *cfg = l->b->cfg;
    struct cluster_cmd *cmds;
    redisReply **replies;
    size_t n = 0, cap = 0;
    int rc;

    for (size_t e = 0; e < q->nevents; e++)
        for (size_t c = 0; c < q->events[e].nchannels; c++)
            cap +=
                chan_is_cache(q->events[e].channels[c], strlen(q->events[e].channels[c]));
    if (cap == 0)
        return 0;
    cmds = xcalloc(cap, sizeof(*cmds));
    replies = xcalloc(cap, sizeof(*replies));
    for (size_t e = 0; e < q->nevents; e++) {
        const struct rest_event *ev = &q->events[e];

        for (size_t c = 0; c < ev->nchannels; c++) {
            const char *ch = ev->channels[c];

            if (!chan_is_cache(ch, strlen(ch)))
                continue;
            cluster_cmd_start(&cmds[n], "cache", cfg->redis.database, NULL, false);
            cluster_cmd_cache(&cmds[n++], q->app->id, ch, strlen(ch), ev->name,
                              ev->name_len, ev->data, ev->data_len,
                              (uint64_t)q->app->cache_ttl * 1000);
        }
    }
    rc = pipeline(l, cmds, n, replies);
    cmds_free(cmds, replies, n);
    return rc;
}

/* One stat per (event, channel) pair from a "counts" answer (subscription
 * and user count of each pair), as the gateway's trigger fills them; an
 * answer of another shape leaves the counts at zero (logged). */
static struct rest_chan_stat *
stats_of(const struct rest_query *q, const redisReply *r, size_t pairs)
{
    struct rest_chan_stat *st = xcalloc(pairs, sizeof(*st));
    bool shaped = r->type == REDIS_REPLY_ARRAY && r->elements == 2 * pairs;
    size_t k = 0;

    if (!shaped)
        log_warn("bus: Redis answered counts of another shape elements=%zu pairs=%zu",
                 r->type == REDIS_REPLY_ARRAY ? r->elements : 0, pairs);
    for (size_t e = 0; e < q->nevents; e++) {
        for (size_t c = 0; c < q->events[e].nchannels; c++, k++) {
            st[k].name = xstrdup(q->events[e].channels[c]);
            if (!shaped)
                continue;
            for (size_t i = 0; i < 2; i++) {
                const redisReply *v = r->element[2 * k + i];
                unsigned n = v->type == REDIS_REPLY_INTEGER && v->integer > 0
                                 ? (unsigned)v->integer
                                 : 0;

                if (i == 0)
                    st[k].subscription_count = n;
                else
                    st[k].user_count = n;
            }
            st[k].occupied = st[k].subscription_count > 0;
        }
    }
    return st;
}

/* --- the settle after an outage --- */

/* Ends the settle (once, whichever thread gets here first) and logs it as a
 * gateway does: ready, or SETTLE_MAX_MS passed without it. */
static void
settle_end(struct bus_cluster *b, bool ready, uint64_t now)
{
    uint64_t ms;
    unsigned refused, live;

    pthread_mutex_lock(&b->lock);
    if (!b->settling || b->back_ms == 0) {
        pthread_mutex_unlock(&b->lock);
        return;
    }
    b->settling = false;
    ms = now - b->back_ms;
    refused = b->refused;
    b->refused = 0;
    live = b->live;
    b->live_ms = 0; /* ask again at the next trigger */
    pthread_mutex_unlock(&b->lock);
    if (ready)
        log_warn("bus: every live gateway is subscribed again after %llu ms; triggers "
                 "accepted; refused while the gateways resubscribed=%u live_before=%u",
                 (unsigned long long)ms, refused, live);
    else
        log_warn("bus: not every live gateway subscribed again within %d ms; triggers "
                 "accepted; refused while the gateways resubscribed=%u live_before=%u",
                 SETTLE_MAX_MS, refused, live);
}

/* Whether a trigger may publish on l (open): 1 when the link is settled, or
 * settles now (cluster.lua's "ready" says every live gateway, at least as
 * many as were subscribed before the outage, is subscribed to #ctl again;
 * or SETTLE_MAX_MS passed since the link came back); 0 when the gateways
 * may still be resubscribing (refused, counted); -1 when "ready" failed
 * (l->why set). Settled, it costs no round trip. */
static int
settle_check(struct bus_cluster *b, struct link *l)
{
    struct cluster_cmd c = {0};
    redisReply *r = NULL;
    uint64_t now = mn_now_ms(), back;
    unsigned live;
    bool ready;

    pthread_mutex_lock(&b->lock);
    if (!b->settling) {
        pthread_mutex_unlock(&b->lock);
        return 1;
    }
    if (b->back_ms == 0)
        b->back_ms = now; /* the first call with a working connection */
    back = b->back_ms;
    live = b->live;
    pthread_mutex_unlock(&b->lock);
    if (now - back >= SETTLE_MAX_MS) {
        settle_end(b, false, now);
        return 1;
    }
    cluster_cmd_start(&c, "ready", b->cfg->redis.database, NULL, false);
    cluster_cmd_addu(&c, (uint64_t)b->cfg->redis.node_timeout * 1000);
    cluster_cmd_addu(&c, live);
    if (pipeline(l, &c, 1, &r) < 0) {
        cluster_cmd_free(&c);
        return -1;
    }
    cluster_cmd_free(&c);
    ready = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (ready) {
        settle_end(b, true, mn_now_ms());
        return 1;
    }
    pthread_mutex_lock(&b->lock);
    b->refused++;
    pthread_mutex_unlock(&b->lock);
    return 0;
}

/* When due (settled, at most once per LIVE_EVERY_MS), makes c ask how many
 * gateways are subscribed to #ctl, in the trigger's own pipeline (no round
 * trip of its own); returns whether it did. */
static bool
live_cmd(struct bus_cluster *b, struct cluster_cmd *c)
{
    struct buf name = BUF_INIT;
    uint64_t now = mn_now_ms();
    bool due;

    pthread_mutex_lock(&b->lock);
    due = !b->settling && now - b->live_ms >= LIVE_EVERY_MS;
    if (due)
        b->live_ms = now;
    pthread_mutex_unlock(&b->lock);
    if (!due)
        return false;
    cluster_ctl_name(&name, b->cfg->redis.database);
    cluster_cmd_add(c, "PUBSUB", 6);
    cluster_cmd_add(c, "NUMSUB", 6);
    cluster_cmd_add(c, buf_data(&name), name.len);
    buf_free(&name);
    return true;
}

/* PUBSUB NUMSUB #ctl's answer r: the live gateways, kept as the floor of
 * the next settle unless the link was lost meanwhile. */
static void
live_note(struct bus_cluster *b, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_INTEGER || r->element[1]->integer < 0)
        return;
    pthread_mutex_lock(&b->lock);
    if (!b->settling)
        b->live = (unsigned)r->element[1]->integer;
    pthread_mutex_unlock(&b->lock);
}

static void
do_publish(struct bus_cluster *b, const struct rest_query *q, rest_answer_fn *done,
           void *arg)
{
    struct rest_answer ans = {0};
    struct rest_chan_stat *st = NULL;
    struct cluster_cmd *cmds;
    redisReply **replies;
    struct link l;
    size_t pairs = 0, n = 0;
    bool info = false, live, ok;
    int go = 0;

    for (size_t e = 0; e < q->nevents; e++) {
        pairs += q->events[e].nchannels;
        info |= q->events[e].info != 0;
    }
    cmds = xcalloc(pairs + 2, sizeof(*cmds));
    replies = xcalloc(pairs + 2, sizeof(*replies));
    for (size_t e = 0; e < q->nevents; e++)
        for (size_t c = 0; c < q->events[e].nchannels; c++)
            publish_cmd(&cmds[n++], b->cfg, q->app, &q->events[e],
                        q->events[e].channels[c]);
    /* The fleet's counts after the events, in the same pipeline, as the
     * gateway's trigger asks them ("counts": every pair, in order). */
    if (info) {
        cluster_cmd_start(&cmds[n], "counts", b->cfg->redis.database, NULL, false);
        cluster_cmd_add(&cmds[n], q->app->id, strlen(q->app->id));
        for (size_t e = 0; e < q->nevents; e++)
            for (size_t c = 0; c < q->events[e].nchannels; c++)
                cluster_cmd_add(&cmds[n], q->events[e].channels[c],
                                strlen(q->events[e].channels[c]));
        n++;
    }
    /* Settling: "ready" first, on the same connection; refused, nothing is
     * sent (the link works: ok for the pool and the log). */
    ok = link_open(b, &l) == 0 && (go = settle_check(b, &l)) >= 0;
    live = ok && go && live_cmd(b, &cmds[n]);
    n += live; /* its answer is the last */
    ok = ok && (!go || (put_caches(&l, q) == 0 && pipeline(&l, cmds, n, replies) == 0));
    for (size_t i = 0; ok && go && i < pairs; i++)
        ok = replies[i]->type == REDIS_REPLY_INTEGER;
    link_close(&l, ok);
    note_state(b, ok, l.why ? l.why : "unexpected reply");
    if (ok && go && live)
        live_note(b, replies[n - 1]);
    if (ok && go && info) {
        st = stats_of(q, replies[pairs], pairs);
        ans.chans = st;
        ans.nchans = pairs;
    }
    if (ok && go)
        done(arg, &ans);
    else if (ok)
        answer_error(done, arg, 503,
                     "Redis is back; waiting for the gateways to resubscribe");
    else
        answer_error(done, arg, 503, "Redis is unreachable: the event was not published");
    if (st)
        cluster_stats_free(st, pairs);
    cmds_free(cmds, replies, n);
}

/* --- queries and terminate_connections --- */

static void
do_query(struct bus_cluster *b, const struct rest_query *q, rest_answer_fn *done,
         void *arg)
{
    struct cluster_cmd c = {0};
    redisReply *reply = NULL;
    unsigned db = b->cfg->redis.database;
    struct link l;
    bool ok;

    if (q->op == REST_CHANNELS) {
        char *pre = q->prefix ? xstrndup(q->prefix, q->prefix_len) : NULL;

        cluster_cmd_start(&c, "channels", db, NULL, false);
        cluster_cmd_channels(&c, q->app->id, pre);
        free(pre);
    } else {
        char *chan = xstrndup(q->channel, q->channel_len);

        cluster_cmd_start(&c, q->op == REST_CHANNEL ? "channel" : "users", db, NULL,
                          false);
        if (q->op == REST_CHANNEL)
            cluster_cmd_channel(&c, q->app->id, chan);
        else
            cluster_cmd_users(&c, q->app->id, chan);
        free(chan);
    }
    ok = link_open(b, &l) == 0 && pipeline(&l, &c, 1, &reply) == 0;
    link_close(&l, ok);
    note_state(b, ok, l.why ? l.why : "unexpected reply");
    cluster_cmd_free(&c);
    if (ok)
        cluster_answer_query(q, reply, done, arg);
    else
        answer_error(done, arg, 503,
                     "Redis is unreachable: the channel state is unknown");
    freeReplyObject(reply);
}

/* Every gateway closes the user's connections (CLUSTER_CTL_TERMINATE). */
static void
do_terminate(struct bus_cluster *b, const struct rest_query *q, rest_answer_fn *done,
             void *arg)
{
    struct cluster_cmd c = {0};
    struct buf name = BUF_INIT, msg = BUF_INIT;
    redisReply *reply = NULL;
    struct rest_answer ans = {0};
    struct link l;
    bool ok;

    cluster_ctl_name(&name, b->cfg->redis.database);
    buf_putc(&msg, CLUSTER_CTL_TERMINATE);
    buf_putc(&msg, '\n');
    buf_puts(&msg, q->app->id);
    buf_putc(&msg, '\n');
    buf_append(&msg, q->user_id, q->user_id_len);
    cluster_cmd_add(&c, "PUBLISH", 7);
    cluster_cmd_add(&c, buf_data(&name), name.len);
    cluster_cmd_add(&c, buf_data(&msg), msg.len);
    buf_free(&name);
    buf_free(&msg);
    ok = link_open(b, &l) == 0 && pipeline(&l, &c, 1, &reply) == 0 &&
         reply->type == REDIS_REPLY_INTEGER;
    link_close(&l, ok);
    note_state(b, ok, l.why ? l.why : "unexpected reply");
    cluster_cmd_free(&c);
    freeReplyObject(reply);
    if (ok)
        done(arg, &ans);
    else
        answer_error(done, arg, 503,
                     "Redis is unreachable: terminate_connections was not sent");
}

static void
cluster_call(struct bus *base, const struct rest_query *q, rest_answer_fn *done,
             void *arg)
{
    struct bus_cluster *b = (struct bus_cluster *)base;

    switch (q->op) {
    case REST_PUBLISH:
        do_publish(b, q, done, arg);
        return;
    case REST_CHANNELS:
    case REST_CHANNEL:
    case REST_USERS:
        do_query(b, q, done, arg);
        return;
    case REST_TERMINATE:
        do_terminate(b, q, done, arg);
        return;
    }
    answer_error(done, arg, 500, "Unknown operation");
}

static void
cluster_close(struct bus *base)
{
    struct bus_cluster *b = (struct bus_cluster *)base;

    for (size_t i = 0; i < b->nidle; i++)
        redisFree(b->idle[i]);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static const struct bus_ops cluster_ops = {cluster_call, cluster_close};

struct bus *
bus_cluster_open(const struct mn_config *cfg, struct mn_err *err)
{
    struct bus_cluster *b;
    char host[ADDR_MAX];
    int port;

    if (!cfg->has_redis ||
        redis_nth_addr(cfg->redis.address, 0, host, sizeof(host), &port) < 0) {
        mn_err_set(err, 0, "%s: redis.address: no usable host:port", cfg->path);
        return NULL;
    }
    b = xcalloc(1, sizeof(*b));
    b->base.ops = &cluster_ops;
    b->cfg = cfg;
    pthread_mutex_init(&b->lock, NULL);
    return &b->base;
}
