/* hub_cluster.c - the hub's share of the cluster state in Redis
 * (distributed mode; shared/cluster.lua does the changes, shared/cluster.c
 * the calls). The node tells Redis its absolute subscriber count of a
 * channel whenever it changes, and whether it holds a presence member;
 * Redis answers with the fleet-wide transitions this change made, and this
 * node acts on them: webhooks (channel_vacated and member_removed after a
 * 3 s delay that Redis confirms), subscription counts. Member events are
 * published by the script itself, so every node (this one too) delivers
 * them from Redis, in Redis's order.
 *
 * A presence or cache channel's subscriber gets subscription_succeeded from
 * a snapshot the script publishes to the node's own name after the change:
 * the pub/sub connection sees it in order with the channel's events, so
 * the subscriber gets exactly what happened after it (hub->seq at that
 * point). Without an answer within SNAPSHOT_MS it is answered from local
 * state.
 *
 * Heartbeats: every second a "beat" tells the node's state (lost: Redis
 * lost it, restore silently; dead: declared dead, restore with events) and
 * which nodes are overdue, which are reaped (their members removed, with the
 * events and webhooks they are owed). A clean stop marks the node as gone so
 * the others reap it at once.
 *
 * Signed-in users are counted the same way (a user's first and last local
 * connection); their online/offline news comes from Redis on P#ctl, and a
 * watchlist's initial state from a snapshot like a join's. After the link
 * comes back, triggers answer 503 until every live node is subscribed again
 * (settle_locked), so none misses an accepted event. Lock order: hub, then
 * the link's inbox. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "bus_redis.h"
#include "chan.h"
#include "clock.h"
#include "cluster.h"
#include "hub.h"
#include "log.h"
#include "mem.h"
#include "msg.h"
#include "webhook.h"
#include "worker.h"
#include "hub_int.h"
#include "mn.h"

#define BEAT_EVERY_MS 1000 /* heartbeat checks; recorded every node-heartbeat */
#define SNAPSHOT_MS 3000   /* a joiner's snapshot overdue: answered locally */
#define WEBHOOK_DELAY_MS 3000
#define COUNT_EVERY_CHANGE_MAX 100
#define COUNT_THROTTLE_MS 5000
#define SETTLE_MAX_MS                                                                    \
    2000 /* after the link came back: the longest wait for the others                    \
          */

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

bool
hub_cluster_on(const struct hub *h, const char *chan, size_t clen)
{
    return h->redis != NULL && chan_kind_of(chan, clen) != CHAN_USER;
}

/* Sends c (freed here); fn gets the reply with req (freed by fn). Lock held
 * or not. Returns -1 when the link is down (req freed, fn not called). */
static int
send_cmd(struct hub *h, struct cluster_cmd *c, bus_redis_reply_fn *fn, struct creq *req)
{
    int rc = bus_redis_command(h->redis, c->argc, (const char *const *)c->argv, c->lens,
                               fn, req);

    if (rc < 0)
        free(req);
    cluster_cmd_free(c);
    return rc;
}

static struct creq *
req_new(struct hub *h, const char *op)
{
    struct creq *r = xcalloc(1, sizeof(*r));

    r->h = h;
    r->op = op;
    return r;
}

static void
start(struct hub *h, struct cluster_cmd *c, const char *op, bool full)
{
    cluster_cmd_start(c, op, h->cfg->redis.database, h->node, full);
}

/* --- transitions --- */

static void
delay_add(struct hub *h, size_t app, char kind, const struct cluster_transition *t)
{
    struct cdelay *d;

    if (!webhook_wanted(h->webhook, app,
                        kind == 'v' ? WEBHOOK_CHANNEL_VACATED : WEBHOOK_MEMBER_REMOVED))
        return;
    d = xcalloc(1, sizeof(*d));
    d->due_ms = mn_now_ms() + WEBHOOK_DELAY_MS;
    d->app = app;
    d->kind = kind;
    d->chan = xstrndup(t->chan, t->clen);
    d->clen = t->clen;
    if (kind == 'v') {
        d->token = xstrndup(t->a, t->a_len);
        d->tlen = t->a_len;
    } else {
        d->user = xstrndup(t->a, t->a_len);
        d->ulen = t->a_len;
        d->token = xstrndup(t->b, t->b_len);
        d->tlen = t->b_len;
    }
    if (h->cl.delays_tail == NULL)
        h->cl.delays_tail = &h->cl.delays;
    *h->cl.delays_tail = d;
    h->cl.delays_tail = &d->next;
}

static void
delay_free(struct cdelay *d)
{
    free(d->chan);
    free(d->user);
    free(d->token);
    free(d);
}

static bool
counted_kind(const char *chan, size_t clen)
{
    enum chan_kind kind = chan_kind_of(chan, clen);

    return kind != CHAN_PRESENCE && kind != CHAN_USER && kind != CHAN_INVALID;
}

void
hub_cluster_send_count_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                              unsigned count)
{
    struct buf f = BUF_INIT, name = BUF_INIT, env = BUF_INIT;

    msg_subscription_count(&f, chan, clen, count);
    cluster_chan_name(&name, h->cfg->redis.database, h->cfg->apps[app].id, chan, clen);
    cluster_envelope(&env, CLUSTER_ANY_NODE, NULL, buf_data(&f), f.len);
    bus_redis_publish(h->redis, buf_data(&name), name.len, buf_data(&env), env.len, NULL,
                      NULL);
    buf_free(&f);
    buf_free(&name);
    buf_free(&env);
    hub_hook(h, app, WEBHOOK_SUBSCRIPTION_COUNT, chan, clen, NULL, 0, count, true);
}

/* Lock held: the fleet's count of chan is now count (Pusher's cadence: at
 * once up to 100 subscribers, then at most every 5 s; hub_tick sends a
 * throttled one through the local channel's count_pending). */
static void
count_changed_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                     unsigned count)
{
    struct hchan *c = map_get(&h->apps[app].chans, chan, clen);
    uint64_t now = mn_now_ms();
    bool created;

    if (c)
        c->fleet_subs = count;
    if (!h->cfg->apps[app].subscription_count || count == 0 || !counted_kind(chan, clen))
        return;
    if (c == NULL || count <= COUNT_EVERY_CHANGE_MAX ||
        now - c->count_sent_ms >= COUNT_THROTTLE_MS) {
        hub_cluster_send_count_locked(h, app, chan, clen, count);
        if (c) {
            c->count_sent_ms = now;
            c->count_pending = false;
        }
    } else if (!c->count_pending) {
        c->count_pending = true;
        map_upsert(&h->apps[app].count_pending, chan, clen, &created);
    }
}

static void
on_transition(void *arg, const struct cluster_transition *t)
{
    struct hub *h = arg;
    const struct mn_app *a = config_app_by_id(h->cfg, t->app_id, t->alen);
    size_t app;

    if (a == NULL)
        return;
    app = (size_t)(a - h->cfg->apps);
    switch (t->kind) {
    case 'o':
        hub_hook(h, app, WEBHOOK_CHANNEL_OCCUPIED, t->chan, t->clen, NULL, 0, 0, true);
        break;
    case 'v':
        delay_add(h, app, 'v', t);
        break;
    case 'a':
        hub_hook(h, app, WEBHOOK_MEMBER_ADDED, t->chan, t->clen, t->a, t->a_len, 0, true);
        break;
    case 'r':
        delay_add(h, app, 'r', t);
        break;
    case 'm':
        hub_hook(h, app, WEBHOOK_CACHE_MISS, t->chan, t->clen, NULL, 0, 0, true);
        break;
    case 'c':
        count_changed_locked(h, app, t->chan, t->clen, (unsigned)strtoul(t->a, NULL, 10));
        break;
    default: /* 'O', 'A': back within the delay, nothing to send */
        break;
    }
}

static void answer_join(struct hub *h, struct cjoin *j, const struct buf *presence,
                        const struct cluster_snapshot *s);

static void
join_free(struct cjoin *j)
{
    if (j)
        free(j->user);
    free(j);
}

/* Lock held: a joiner whose snapshot will not come is answered from this
 * node's view at once. */
static void
fail_join_locked(struct hub *h, uint64_t token)
{
    char key[24];
    struct cjoin *j;

    snprintf(key, sizeof(key), "%llu", (unsigned long long)token);
    if ((j = map_del(&h->cl.joins, key, strlen(key))) != NULL) {
        answer_join(h, j, NULL, NULL);
        join_free(j);
    }
}

/* The reply of "sub", "reap" or "sync" (the link's thread). */
static void
on_change(void *arg, const struct redisReply *reply)
{
    struct creq *r = arg;
    struct hub *h = r->h;
    const char *status = cluster_status(reply);

    pthread_mutex_lock(&h->lock);
    if (strcmp(r->op, "sync") == 0)
        h->cl.sync_busy = false;
    if (status == NULL) {
        /* Lost on the way (or an error): the next sync sets it right. */
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_warn("cluster: %s failed: %s", r->op, reply->str);
        h->cl.resync = true;
        if (r->token)
            fail_join_locked(h, r->token);
    } else if (strcmp(status, "unregistered") == 0) {
        h->cl.resync = true; /* the next beat tells lost from dead */
        h->cl.next_beat_ms = 0;
    } else {
        if (strcmp(r->op, "sync") == 0)
            h->cl.registered = true;
        cluster_transitions(reply, on_transition, h);
    }
    pthread_mutex_unlock(&h->lock);
    free(r);
}

/* --- changes --- */

void
hub_cluster_sub_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                       unsigned count, int member, const char *user, size_t ulen,
                       const char *info, size_t ilen)
{
    struct cluster_cmd c = {0};
    struct hchan *ch;

    if (!hub_cluster_on(h, chan, clen) || h->cl.leaving)
        return;
    /* A count change while this node's SUBSCRIBE is not live waits for it
     * (hub_cluster_confirmed_locked): the subscription_count it makes
     * Redis publish must reach this node's subscribers too. */
    ch = map_get(&h->apps[app].chans, chan, clen);
    if (member < 0 && ch && ch->confirming) {
        ch->count_deferred = true;
        return;
    }
    start(h, &c, "sub", false);
    cluster_cmd_sub(&c, h->cfg->apps[app].id, chan, clen, (long)count, member, user, ulen,
                    info, ilen, 0, false, !h->cl.registered,
                    member == 1 ? h->cfg->apps[app].max_presence_members : 0);
    if (send_cmd(h, &c, on_change, req_new(h, "sub")) < 0)
        h->cl.resync = true;
}

/* Lock held: asks for j's snapshot. */
static void
ask_snapshot(struct hub *h, struct cjoin *j)
{
    struct cluster_cmd c = {0};
    struct creq *r = req_new(h, "snapshot");

    j->sent = true;
    r->token = j->token;
    start(h, &c, "sub", false);
    cluster_cmd_sub(&c, h->cfg->apps[j->app].id, j->chan, j->clen, -1, -1, j->user,
                    j->user ? j->ulen : 0, NULL, 0, j->token,
                    chan_is_cache(j->chan, j->clen), !h->cl.registered, 0);
    if (send_cmd(h, &c, on_change, r) < 0) /* Redis away: this node's view */
        fail_join_locked(h, j->token);
}

void
hub_cluster_join_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                        size_t w, const char *socket_id, const char *user, size_t ulen,
                        const struct hchan *ch)
{
    struct cjoin *j = xcalloc(1, sizeof(*j) + clen + 1);
    char key[24];
    bool created;

    j->token = ++h->cl.next_token;
    j->app = app;
    j->w = w;
    j->since_ms = mn_now_ms();
    snprintf(j->socket_id, sizeof(j->socket_id), "%s", socket_id);
    memcpy(j->chan, chan, clen);
    j->clen = clen;
    if (user) {
        j->user = xstrndup(user, ulen);
        j->ulen = ulen;
    }
    snprintf(key, sizeof(key), "%llu", (unsigned long long)j->token);
    map_upsert(&h->cl.joins, key, strlen(key), &created)->val = j;
    if (!ch->confirming)
        ask_snapshot(h, j);
}

void
hub_cluster_confirmed_locked(struct hub *h, size_t app, const char *chan, size_t clen)
{
    size_t bucket = 0;
    struct map_node *it = NULL;
    struct hchan *ch = map_get(&h->apps[app].chans, chan, clen);

    if (ch && ch->count_deferred) {
        ch->count_deferred = false;
        hub_cluster_sub_locked(h, app, chan, clen, ch->subs, -1, NULL, 0, NULL, 0);
    }

    while (map_next(&h->cl.joins, &bucket, &it)) {
        struct cjoin *j = it->val;

        if (!j->sent && j->app == app && j->clen == clen &&
            memcmp(j->chan, chan, clen) == 0)
            ask_snapshot(h, j);
    }
}

void
hub_cluster_user_locked(struct hub *h, size_t app, const char *user, size_t ulen,
                        bool present)
{
    struct cluster_cmd c = {0};

    if (h->redis == NULL || h->cl.leaving)
        return;
    start(h, &c, "user", false);
    cluster_cmd_user(&c, h->cfg->apps[app].id, user, ulen, present, !h->cl.registered);
    if (send_cmd(h, &c, on_change, req_new(h, "user")) < 0)
        h->cl.resync = true;
}

static void
watch_free(struct cwatch *cw)
{
    for (size_t i = 0; i < cw->n; i++)
        free(cw->ids[i]);
    free(cw->ids);
    free(cw->lens);
    free(cw->user);
    free(cw);
}

void
hub_cluster_watch_locked(struct hub *h, size_t app, size_t w, const char *socket_id,
                         const char *user, size_t ulen, const char *const *ids,
                         const size_t *lens, size_t n)
{
    struct cwatch *cw = xcalloc(1, sizeof(*cw));
    struct cluster_cmd c = {0};
    char key[24];
    bool created;

    cw->token = ++h->cl.next_token;
    cw->app = app;
    cw->w = w;
    cw->since_ms = mn_now_ms();
    snprintf(cw->socket_id, sizeof(cw->socket_id), "%s", socket_id);
    cw->user = xstrndup(user, ulen);
    cw->ulen = ulen;
    cw->n = n;
    cw->ids = xcalloc(n, sizeof(*cw->ids));
    cw->lens = xcalloc(n, sizeof(*cw->lens));
    for (size_t i = 0; i < n; i++) {
        cw->ids[i] = xstrndup(ids[i], lens[i]);
        cw->lens[i] = lens[i];
    }
    snprintf(key, sizeof(key), "%llu", (unsigned long long)cw->token);
    map_upsert(&h->cl.watches, key, strlen(key), &created)->val = cw;
    start(h, &c, "watch", false);
    cluster_cmd_watch(&c, h->cfg->apps[app].id, cw->token, ids, lens, n);
    send_cmd(h, &c, on_change, req_new(h, "watch"));
    /* Down: answered from this node's view once overdue. */
}

/* Lock held: sends cw's watchlist_events (flags: one '1'/'0' per id, or
 * NULL: this node's view) to its connection alone. */
static void
answer_watch(struct hub *h, struct cwatch *cw, const char *flags, size_t flen)
{
    struct buf b = BUF_INIT;
    struct delivery *d;

    if (flags == NULL || flen != cw->n) {
        hub_users_watch_state_locked(h, cw->app, (const char *const *)cw->ids, cw->lens,
                                     cw->n, &b);
    } else {
        const char **on = xcalloc(cw->n, sizeof(*on)),
                   **off = xcalloc(cw->n, sizeof(*off));
        size_t *onl = xcalloc(cw->n, sizeof(*onl)), *offl = xcalloc(cw->n, sizeof(*offl));
        size_t non = 0, noff = 0;

        for (size_t i = 0; i < cw->n; i++) {
            if (flags[i] == '1') {
                on[non] = cw->ids[i];
                onl[non++] = cw->lens[i];
            } else {
                off[noff] = cw->ids[i];
                offl[noff++] = cw->lens[i];
            }
        }
        msg_watchlist_events(&b, on, onl, non, off, offl, noff);
        free(on);
        free(off);
        free(onl);
        free(offl);
    }
    d = delivery_new(cw->app, cw->user, cw->ulen, frame_new(buf_data(&b), b.len),
                     cw->socket_id);
    d->kind = DELIVERY_USER;
    d->seq = ++h->seq;
    worker_post(h->workers[cw->w], d);
    buf_free(&b);
}

/* Lock held: answers j (removed from the map by the caller) with
 * subscription_succeeded built from presence (NULL: none) and the cache
 * part of s (NULL: local state), as of now. */
static void
answer_join(struct hub *h, struct cjoin *j, const struct buf *presence,
            const struct cluster_snapshot *s)
{
    struct buf out = BUF_INIT;
    struct delivery *d;
    struct frame *extra = NULL;
    bool is_presence = chan_kind_of(j->chan, j->clen) == CHAN_PRESENCE;
    struct hub_joined local = {0};

    if (s == NULL) /* no snapshot: the node's own view */
        hub_joined_now_locked(h, j->app, j->chan, j->clen, is_presence, &local);
    msg_subscription_succeeded(&out, j->chan, j->clen,
                               is_presence ? buf_data(s ? presence : &local.presence)
                                           : NULL,
                               is_presence ? (s ? presence : &local.presence)->len : 0);
    d = delivery_new(j->app, j->chan, j->clen, frame_new(buf_data(&out), out.len),
                     j->socket_id);
    d->kind = DELIVERY_READY;
    d->seq = h->seq;
    if (s && s->cache == 'c') {
        const char *ev, *data;
        size_t elen, dlen;

        if (cluster_cache_entry_parse(s->entry, s->entry_len, &ev, &elen, &data, &dlen) ==
            0) {
            buf_reset(&out);
            msg_event(&out, ev, elen, j->chan, j->clen, data, dlen, NULL, 0);
            extra = frame_new(buf_data(&out), out.len);
        }
    } else if (s && s->cache == 'x') {
        static const char miss[] = "pusher:cache_miss";

        buf_reset(&out);
        msg_event(&out, miss, sizeof(miss) - 1, j->chan, j->clen, NULL, 0, NULL, 0);
        extra = frame_new(buf_data(&out), out.len);
    } else if (s == NULL && local.cached) {
        extra = local.cached;
        local.cached = NULL;
    } else if (s == NULL && local.cache_miss) {
        static const char miss[] = "pusher:cache_miss";

        buf_reset(&out);
        msg_event(&out, miss, sizeof(miss) - 1, j->chan, j->clen, NULL, 0, NULL, 0);
        extra = frame_new(buf_data(&out), out.len);
    }
    d->ptr = extra;
    worker_post(h->workers[j->w], d);
    buf_free(&out);
    buf_free(&local.presence);
    frame_unref(local.cached);
}

/* A snapshot on the node's name (the link's thread). */
static void
on_snapshot(struct hub *h, const char *data, size_t len)
{
    struct cluster_snapshot s;
    struct buf presence = BUF_INIT;
    struct cjoin *j;
    char key[24];

    if (cluster_snapshot_parse(data, len, &s) < 0) {
        log_warn("cluster: garbled snapshot (%zu bytes)", len);
        return;
    }
    snprintf(key, sizeof(key), "%llu", (unsigned long long)s.token);
    if (s.cache == 'w') {
        struct cwatch *cw;

        pthread_mutex_lock(&h->lock);
        cw = map_del(&h->cl.watches, key, strlen(key));
        if (cw)
            answer_watch(h, cw, s.members, s.members_len);
        pthread_mutex_unlock(&h->lock);
        if (cw)
            watch_free(cw);
        return;
    }
    if (s.cache == 'f') { /* the channel was full when it joined */
        pthread_mutex_lock(&h->lock);
        j = map_del(&h->cl.joins, key, strlen(key));
        if (j) {
            struct delivery *d =
                delivery_new(j->app, j->chan, j->clen, NULL, j->socket_id);

            d->kind = DELIVERY_REFUSE;
            worker_post(h->workers[j->w], d);
        }
        pthread_mutex_unlock(&h->lock);
        join_free(j);
        return;
    }
    if (cluster_snapshot_presence(&s, &presence) < 0) {
        log_warn("cluster: garbled snapshot (%zu bytes)", len);
        buf_free(&presence);
        return;
    }
    pthread_mutex_lock(&h->lock);
    j = map_del(&h->cl.joins, key, strlen(key));
    if (j)
        answer_join(h, j, &presence, &s);
    pthread_mutex_unlock(&h->lock);
    join_free(j);
    buf_free(&presence);
}

/* A fleet-wide command (the link's thread). */
static void
on_ctl(struct hub *h, const char *data, size_t len)
{
    const char *app_id, *user, *nl;
    const struct mn_app *a;
    size_t app;

    if (len < 3 || data[1] != '\n')
        return;
    app_id = data + 2;
    nl = memchr(app_id, '\n', len - 2);
    if (nl == NULL ||
        (a = config_app_by_id(h->cfg, app_id, (size_t)(nl - app_id))) == NULL)
        return;
    app = (size_t)(a - h->cfg->apps);
    user = nl + 1;
    if (data[0] == CLUSTER_CTL_TERMINATE) {
        hub_users_terminate(h, app, user, (size_t)(data + len - user));
    } else if (data[0] == CLUSTER_CTL_WATCH && user < data + len &&
               (*user == '1' || *user == '0')) {
        pthread_mutex_lock(&h->lock);
        hub_users_tell_locked(h, app, user + 1, (size_t)(data + len - user - 1),
                              *user == '1');
        pthread_mutex_unlock(&h->lock);
    }
}

bool
hub_cluster_msg(struct hub *h, const char *name, size_t nlen, const char *data,
                size_t len)
{
    struct buf own = BUF_INIT;
    bool mine;

    cluster_node_name(&own, h->cfg->redis.database, h->node);
    mine = own.len == nlen && memcmp(buf_data(&own), name, nlen) == 0;
    if (mine) {
        buf_free(&own);
        on_snapshot(h, data, len);
        return true;
    }
    buf_reset(&own);
    cluster_ctl_name(&own, h->cfg->redis.database);
    mine = own.len == nlen && memcmp(buf_data(&own), name, nlen) == 0;
    buf_free(&own);
    if (mine)
        on_ctl(h, data, len);
    return mine;
}

/* --- heartbeats, resyncs, reaping --- */

/* Lock held: tells Redis everything this node holds (silent: Redis lost it,
 * restore without events). */
static void
sync_locked(struct hub *h, bool silent)
{
    struct cluster_cmd c = {0};

    start(h, &c, "sync", false);
    cluster_cmd_sync_mode(&c, silent);
    for (size_t a = 0; a < h->cfg->napps; a++) {
        const char *id = h->cfg->apps[a].id;
        size_t bucket = 0;
        struct map_node *it = NULL;

        while (map_next(&h->apps[a].chans, &bucket, &it)) {
            const struct hchan *ch = it->val;
            size_t mb = 0;
            struct map_node *m = NULL;

            if (ch->subs == 0 || !hub_cluster_on(h, it->key, it->len))
                continue;
            cluster_cmd_sync_count(&c, id, it->key, it->len, ch->subs);
            while (map_next(&ch->members, &mb, &m)) {
                const struct hmember *mem = m->val;

                cluster_cmd_sync_member(&c, id, it->key, it->len, m->key, m->len,
                                        mem->info, mem->info_len);
            }
        }
        bucket = 0;
        it = NULL;
        while (map_next(&h->apps[a].users, &bucket, &it))
            if (((const struct huser *)it->val)->conns)
                cluster_cmd_sync_user(&c, id, it->key, it->len);
    }
    h->cl.sync_busy = true;
    h->cl.resync = false;
    if (send_cmd(h, &c, on_change, req_new(h, "sync")) < 0) {
        h->cl.sync_busy = false;
        h->cl.resync = true;
    } else {
        log_info("cluster: state sent to Redis (%s) node=%s",
                 silent ? "Redis had lost it" : "checked", h->node);
    }
}

static void
reap_locked(struct hub *h, const char *dead, size_t len)
{
    struct cluster_cmd c = {0};
    char id[CLUSTER_NODE_LEN + 1];

    if (len != CLUSTER_NODE_LEN)
        return;
    memcpy(id, dead, len);
    id[len] = '\0';
    log_info("cluster: node %s missed its heartbeats, removing its connections", id);
    start(h, &c, "reap", false);
    cluster_cmd_reap(&c, id, (uint64_t)h->cfg->redis.node_timeout * 1000);
    send_cmd(h, &c, on_change, req_new(h, "reap"));
}

static void
on_beat(void *arg, const struct redisReply *reply)
{
    struct creq *r = arg;
    struct hub *h = r->h;
    const char *status = cluster_status(reply);
    uint64_t now = mn_now_ms();

    pthread_mutex_lock(&h->lock);
    h->cl.beat_busy = false;
    if (status == NULL) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_warn("cluster: heartbeat failed: %s", reply->str);
    } else if (!h->cl.leaving) {
        bool lost = strcmp(status, "lost") == 0, dead = strcmp(status, "dead") == 0;

        if (dead)
            log_warn("cluster: this node was declared dead; registering again node=%s",
                     h->node);
        /* Lost: Redis forgot us (FLUSHALL, a restart without persistence):
         * restore silently, unless we never registered (all is news). */
        if ((lost || dead || h->cl.resync) && !h->cl.sync_busy)
            sync_locked(h, lost && h->cl.registered);
        else if (!lost && !dead)
            h->cl.registered = true;
        /* Right after our own link came back, the others may not have had
         * the time to beat: wait one heartbeat before declaring anyone dead. */
        if (reply->elements >= 2 && reply->element[1]->type == REDIS_REPLY_STRING &&
            !atomic_load(&h->cl.settling))
            h->cl.alive = (unsigned)strtoul(reply->element[1]->str, NULL, 10);
        if (now - h->cl.up_since_ms >=
            (uint64_t)h->cfg->redis.node_heartbeat * 1000 + BEAT_EVERY_MS)
            for (size_t i = 2; i < reply->elements; i++)
                if (reply->element[i]->type == REDIS_REPLY_STRING)
                    reap_locked(h, reply->element[i]->str, reply->element[i]->len);
    }
    pthread_mutex_unlock(&h->lock);
    free(r);
}

static void
on_confirm(void *arg, const struct redisReply *reply)
{
    struct creq *r = arg;
    struct hub *h = r->h;
    struct cdelay *d = r->delay;

    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        pthread_mutex_lock(&h->lock);
        hub_hook(h, d->app,
                 d->kind == 'v' ? WEBHOOK_CHANNEL_VACATED : WEBHOOK_MEMBER_REMOVED,
                 d->chan, d->clen, d->user, d->ulen, 0, true);
        pthread_mutex_unlock(&h->lock);
    }
    delay_free(d);
    free(r);
}

/* Lock held: the delayed webhooks that are due ask Redis whether they still
 * are. */
static void
release_delays_locked(struct hub *h, uint64_t now)
{
    struct cdelay *d;

    while ((d = h->cl.delays) != NULL && d->due_ms <= now) {
        struct cluster_cmd c = {0};
        struct creq *r;

        h->cl.delays = d->next;
        if (h->cl.delays == NULL)
            h->cl.delays_tail = &h->cl.delays;
        start(h, &c, "confirm", false);
        cluster_cmd_confirm(&c, d->kind, h->cfg->apps[d->app].id, d->chan, d->clen,
                            d->user, d->ulen, d->token, d->tlen);
        r = req_new(h, "confirm");
        r->delay = d;
        if (send_cmd(h, &c, on_confirm, r) < 0) {
            log_warn("cluster: Redis down, a delayed %s webhook is dropped",
                     d->kind == 'v' ? "channel_vacated" : "member_removed");
            delay_free(d);
        }
    }
}

/* Lock held: watchlists whose snapshot did not come are answered locally. */
static void
expire_watches_locked(struct hub *h, uint64_t now)
{
    size_t bucket = 0;
    struct map_node *it = NULL;

    while (map_next(&h->cl.watches, &bucket, &it)) {
        struct cwatch *cw = it->val;

        if (now - cw->since_ms < SNAPSHOT_MS)
            continue;
        map_del(&h->cl.watches, it->key, it->len);
        answer_watch(h, cw, NULL, 0);
        watch_free(cw);
        bucket = 0;
        it = NULL;
    }
}

/* Lock held: joiners whose snapshot did not come are answered locally. */
static void
expire_joins_locked(struct hub *h, uint64_t now)
{
    size_t bucket = 0;
    struct map_node *it = NULL;

    while (map_next(&h->cl.joins, &bucket, &it)) {
        struct cjoin *j = it->val;

        if (now - j->since_ms < SNAPSHOT_MS)
            continue;
        log_warn("cluster: no snapshot from Redis within %d ms, answered from this "
                 "node's view channel=%.*s",
                 SNAPSHOT_MS, (int)j->clen, j->chan);
        map_del(&h->cl.joins, it->key, it->len);
        answer_join(h, j, NULL, NULL);
        join_free(j);
        bucket = 0; /* the map changed: start over */
        it = NULL;
    }
}

static void
on_ready(void *arg, const struct redisReply *reply)
{
    struct creq *r = arg;
    struct hub *h = r->h;

    pthread_mutex_lock(&h->lock);
    h->cl.ready_busy = false;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1 &&
        atomic_exchange(&h->cl.settling, false))
        log_warn("cluster: every live node is subscribed again after %llu ms; triggers "
                 "accepted; refused while the others resubscribed=%u",
                 (unsigned long long)(mn_now_ms() - h->cl.up_since_ms),
                 atomic_exchange(&h->cl.settle_refused, 0));
    pthread_mutex_unlock(&h->lock);
    free(r);
}

/* Lock held: after the link came back, triggers wait (503) until every live
 * node is subscribed again, so that none misses an accepted event, or until
 * SETTLE_MAX_MS (a node that died meanwhile is still counted as live). */
static void
settle_locked(struct hub *h, uint64_t now)
{
    struct cluster_cmd c = {0};

    if (now - h->cl.up_since_ms >= SETTLE_MAX_MS) {
        atomic_store(&h->cl.settling, false);
        log_warn("cluster: not every live node subscribed again within %d ms; triggers "
                 "accepted; refused while the others resubscribed=%u",
                 SETTLE_MAX_MS, atomic_exchange(&h->cl.settle_refused, 0));
        return;
    }
    if (h->cl.ready_busy)
        return;
    start(h, &c, "ready", false);
    cluster_cmd_addu(&c, (uint64_t)h->cfg->redis.node_timeout * 1000);
    cluster_cmd_addu(&c, h->cl.alive);
    h->cl.ready_busy = send_cmd(h, &c, on_ready, req_new(h, "ready")) == 0;
}

bool
hub_cluster_settling(struct hub *h)
{
    unsigned seen;

    /* The link came back since the tick last looked: settling already. */
    if (h->redis == NULL ||
        (!atomic_load(&h->cl.settling) &&
         ((seen = atomic_load(&h->cl.ups_seen)) == 0 || bus_redis_ups(h->redis) == seen)))
        return false;
    atomic_fetch_add(&h->cl.settle_refused, 1);
    return true;
}

void
hub_cluster_tick_locked(struct hub *h, uint64_t now)
{
    unsigned ups;

    if (h->redis == NULL || h->cl.leaving)
        return;
    if (h->cl.joins.count)
        expire_joins_locked(h, now);
    if (h->cl.watches.count)
        expire_watches_locked(h, now);
    release_delays_locked(h, now);
    if (!bus_redis_up(h->redis))
        return;
    ups = bus_redis_ups(h->redis);
    if (ups != atomic_load(&h->cl.ups_seen)) {
        /* Back (or first up): the next beat says what Redis still knows.
         * Back, not first: the others may still be reconnecting. */
        if (atomic_load(&h->cl.ups_seen) > 0)
            atomic_store(&h->cl.settling, true);
        atomic_store(&h->cl.ups_seen, ups);
        h->cl.up_since_ms = now;
        h->cl.resync = true;
        h->cl.next_beat_ms = 0;
    }
    if (atomic_load(&h->cl.settling))
        settle_locked(h, now);
    if (h->cl.beat_busy || now < h->cl.next_beat_ms)
        return;
    {
        struct cluster_cmd c = {0};
        bool record = now >= h->cl.next_record_ms;

        /* EVAL with the whole script: it also puts the script back into a
         * Redis that lost it (SCRIPT FLUSH, a new master). */
        start(h, &c, "beat", true);
        cluster_cmd_beat(&c, (uint64_t)h->cfg->redis.node_timeout * 1000, record);
        h->cl.beat_busy = true;
        h->cl.next_beat_ms = now + BEAT_EVERY_MS;
        if (record)
            h->cl.next_record_ms = now + (uint64_t)h->cfg->redis.node_heartbeat * 1000;
        if (send_cmd(h, &c, on_beat, req_new(h, "beat")) < 0)
            h->cl.beat_busy = false;
    }
}

/* --- REST queries --- */

static void
on_query(void *arg, const struct redisReply *reply)
{
    struct creq *r = arg;

    if (reply && reply->type == REDIS_REPLY_ERROR)
        log_warn("cluster: query failed: %s", reply->str);
    cluster_answer_query(r->q, reply, r->done, r->arg);
    free(r);
}

bool
hub_cluster_rest(struct hub *h, size_t app, const struct rest_query *q,
                 rest_answer_fn *done, void *arg)
{
    struct cluster_cmd c = {0};
    struct creq *r;
    const char *id = h->cfg->apps[app].id;

    if (h->redis == NULL ||
        (q->op != REST_CHANNELS && q->op != REST_CHANNEL && q->op != REST_USERS))
        return false;
    if (q->op == REST_CHANNELS) {
        char *pre = q->prefix ? xstrndup(q->prefix, q->prefix_len) : NULL;

        start(h, &c, "channels", false);
        cluster_cmd_channels(&c, id, pre);
        free(pre);
    } else {
        char *chan = xstrndup(q->channel, q->channel_len);

        start(h, &c, q->op == REST_CHANNEL ? "channel" : "users", false);
        if (q->op == REST_CHANNEL)
            cluster_cmd_channel(&c, id, chan);
        else
            cluster_cmd_users(&c, id, chan);
        free(chan);
    }
    r = req_new(h, "query");
    r->q = q;
    r->done = done;
    r->arg = arg;
    if (send_cmd(h, &c, on_query, r) < 0) {
        struct rest_answer ans = {0};

        ans.status = 503;
        ans.message = "Redis is unreachable: the channel state is unknown";
        done(arg, &ans);
    }
    return true;
}

/* A publish waiting for the fleet's counts of its channels. */
struct cinfo {
    struct hub *h;
    size_t app;
    const struct rest_query *q;
    struct frame **frames;
    size_t total;
    rest_answer_fn *done;
    void *arg;
};

static void
on_counts(void *arg, const struct redisReply *reply)
{
    struct cinfo *ci = arg;
    unsigned *fleet = NULL;

    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 * ci->total) {
        fleet = xcalloc(2 * ci->total, sizeof(*fleet));
        for (size_t i = 0; i < reply->elements; i++)
            if (reply->element[i]->type == REDIS_REPLY_INTEGER &&
                reply->element[i]->integer > 0)
                fleet[i] = (unsigned)reply->element[i]->integer;
    }
    /* Without an answer: this node's counts, as in standalone mode. */
    hub_publish_local(ci->h, ci->app, ci->q, fleet, ci->frames, ci->total, ci->done,
                      ci->arg);
    free(fleet);
    free(ci);
}

void
hub_cluster_publish_info(struct hub *h, size_t app, const struct rest_query *q,
                         struct frame **frames, size_t total, rest_answer_fn *done,
                         void *arg)
{
    struct cluster_cmd c = {0};
    struct cinfo *ci;
    bool info = false;

    for (size_t e = 0; e < q->nevents; e++)
        info |= q->events[e].info != 0;
    if (!info) {
        hub_publish_local(h, app, q, NULL, frames, total, done, arg);
        return;
    }
    ci = xcalloc(1, sizeof(*ci));
    ci->h = h;
    ci->app = app;
    ci->q = q;
    ci->frames = frames;
    ci->total = total;
    ci->done = done;
    ci->arg = arg;
    start(h, &c, "counts", false);
    cluster_cmd_add(&c, h->cfg->apps[app].id, strlen(h->cfg->apps[app].id));
    for (size_t e = 0; e < q->nevents; e++)
        for (size_t k = 0; k < q->events[e].nchannels; k++)
            cluster_cmd_add(&c, q->events[e].channels[k],
                            strlen(q->events[e].channels[k]));
    if (bus_redis_command(h->redis, c.argc, (const char *const *)c.argv, c.lens,
                          on_counts, ci) < 0)
        on_counts(ci, NULL);
    cluster_cmd_free(&c);
}

void
hub_cluster_cache_put(struct hub *h, size_t app, const char *chan, size_t clen,
                      const char *event, size_t elen, const char *data, size_t dlen)
{
    struct cluster_cmd c = {0};

    if (h->redis == NULL)
        return;
    start(h, &c, "cache", false);
    cluster_cmd_cache(&c, h->cfg->apps[app].id, chan, clen, event, elen, data, dlen,
                      (uint64_t)h->cfg->apps[app].cache_ttl * 1000);
    send_cmd(h, &c, NULL, NULL);
}

void
hub_cluster_terminate(struct hub *h, size_t app, const char *user, size_t ulen)
{
    struct buf name = BUF_INIT, msg = BUF_INIT;

    if (h->redis == NULL)
        return;
    cluster_ctl_name(&name, h->cfg->redis.database);
    buf_putc(&msg, CLUSTER_CTL_TERMINATE);
    buf_putc(&msg, '\n');
    buf_puts(&msg, h->cfg->apps[app].id);
    buf_putc(&msg, '\n');
    buf_append(&msg, user, ulen);
    if (bus_redis_publish(h->redis, buf_data(&name), name.len, buf_data(&msg), msg.len,
                          NULL, NULL) < 0)
        log_warn("cluster: Redis down, terminate_connections reached this node only");
    buf_free(&name);
    buf_free(&msg);
}

/* --- leaving --- */

static void
on_left(void *arg, const struct redisReply *reply)
{
    struct creq *r = arg;
    struct hub *h = r->h;

    (void)reply;
    pthread_mutex_lock(&h->lock);
    h->cl.left = true;
    pthread_cond_signal(&h->left);
    pthread_mutex_unlock(&h->lock);
    free(r);
}

void
hub_cluster_leave(struct hub *h)
{
    struct cluster_cmd c = {0};
    struct timespec until;

    if (h->redis == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    h->cl.leaving = true;
    start(h, &c, "leave", false);
    if (send_cmd(h, &c, on_left, req_new(h, "leave")) == 0) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        while (!h->cl.left && pthread_cond_timedwait(&h->left, &h->lock, &until) == 0)
            ;
        if (h->cl.left)
            log_info("cluster: told the fleet this node leaves node=%s", h->node);
    }
    pthread_mutex_unlock(&h->lock);
}

void
hub_cluster_free(struct hub *h)
{
    size_t bucket = 0;
    struct map_node *it = NULL;
    struct cdelay *d, *next;

    while (map_next(&h->cl.joins, &bucket, &it))
        join_free(it->val);
    map_clear(&h->cl.joins);
    bucket = 0;
    it = NULL;
    while (map_next(&h->cl.watches, &bucket, &it))
        watch_free(it->val);
    map_clear(&h->cl.watches);
    for (d = h->cl.delays; d; d = next) {
        next = d->next;
        delay_free(d);
    }
}
