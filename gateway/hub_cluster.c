/* hub_cluster.c - the hub's share of the cluster state in Redis
 * (distributed mode; shared/cluster.lua does the changes, shared/cluster.c
 * the calls). The node tells Redis its absolute subscriber count of a
 * channel whenever it changes, and whether it holds a presence member;
 * Redis answers with the fleet-wide transitions this change made, and this
 * node acts on them: webhooks (channel_vacated and member_removed after a
 * 3 s delay that Redis confirms), subscription counts. Member events are
 * published by the script itself, so every node (this one too) delivers
 * them from Redis, in Redis's order. Also here: what the other
 * hub_cluster_*.c files share (hub_cluster_int.h), the dispatch of messages
 * on the node's own names, and a clean stop, which marks the node as gone
 * so the others reap it at once.
 *
 * Elsewhere: joins and their snapshots (hub_cluster_join.c), signed-in
 * users and watchlists (hub_cluster_users.c), heartbeats, reaping and the
 * settle after an outage (hub_cluster_beat.c), member lists set right
 * after missed events (hub_cluster_repair.c), REST queries and trigger info
 * (hub_cluster_rest.c). Lock order: hub, then the link's inbox. */
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
#include "hub_cluster_int.h"
#include "mn.h"

#define WEBHOOK_DELAY_MS 3000
#define COUNT_EVERY_CHANGE_MAX 100
#define COUNT_THROTTLE_MS 5000

bool
hub_cluster_on(const struct hub *h, const char *chan, size_t clen)
{
    return h->redis != NULL && chan_kind_of(chan, clen) != CHAN_USER;
}

int
hub_cluster_send(struct hub *h, struct cluster_cmd *c, bus_redis_reply_fn *fn,
                 struct creq *req)
{
    int rc = bus_redis_command(h->redis, c->argc, (const char *const *)c->argv, c->lens,
                               fn, req);

    if (rc < 0)
        free(req);
    cluster_cmd_free(c);
    return rc;
}

struct creq *
hub_cluster_req(struct hub *h, const char *op)
{
    struct creq *r = xcalloc(1, sizeof(*r));

    r->h = h;
    r->op = op;
    return r;
}

void
hub_cluster_start(struct hub *h, struct cluster_cmd *c, const char *op, bool full)
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

void
hub_cluster_on_change(void *arg, const struct redisReply *reply)
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
            hub_cluster_join_failed_locked(h, r->token);
    } else if (strcmp(status, "unregistered") == 0) {
        h->cl.resync = true; /* the next beat tells lost from dead */
        h->cl.next_beat_ms = 0;
        /* The script published no snapshot: none will come. */
        if (r->token)
            hub_cluster_join_failed_locked(h, r->token);
    } else {
        if (strcmp(r->op, "sync") == 0)
            h->cl.registered = true;
        cluster_transitions(reply, on_transition, h);
        /* Member events missed meanwhile: after a resync, the others' state
         * in Redis is right now; after a silent restore it is once they
         * restored too (hub_cluster_beat.c). */
        if (strcmp(r->op, "sync") == 0 && h->cl.sync_silent)
            h->cl.repair_due_ms = mn_now_ms() + REPAIR_AFTER_LOST_MS;
        else if (strcmp(r->op, "sync") == 0)
            hub_cluster_repair_locked(h, "after a resync");
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
    hub_cluster_start(h, &c, "sub", false);
    cluster_cmd_sub(&c, h->cfg->apps[app].id, chan, clen, (long)count, member, user, ulen,
                    info, ilen, 0, false, !h->cl.registered,
                    member == 1 ? h->cfg->apps[app].max_presence_members : 0);
    if (hub_cluster_send(h, &c, hub_cluster_on_change, hub_cluster_req(h, "sub")) < 0)
        h->cl.resync = true;
}

/* --- delayed webhooks --- */

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

void
hub_cluster_delays_release_locked(struct hub *h, uint64_t now)
{
    struct cdelay *d;

    while ((d = h->cl.delays) != NULL && d->due_ms <= now) {
        struct cluster_cmd c = {0};
        struct creq *r;

        h->cl.delays = d->next;
        if (h->cl.delays == NULL)
            h->cl.delays_tail = &h->cl.delays;
        hub_cluster_start(h, &c, "confirm", false);
        cluster_cmd_confirm(&c, d->kind, h->cfg->apps[d->app].id, d->chan, d->clen,
                            d->user, d->ulen, d->token, d->tlen);
        r = hub_cluster_req(h, "confirm");
        r->delay = d;
        if (hub_cluster_send(h, &c, on_confirm, r) < 0) {
            log_warn("cluster: Redis down, a delayed %s webhook is dropped",
                     d->kind == 'v' ? "channel_vacated" : "member_removed");
            delay_free(d);
        }
    }
}

/* --- messages on the node's own names --- */

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
        hub_cluster_snapshot(h, data, len);
        return true;
    }
    buf_reset(&own);
    cluster_ctl_name(&own, h->cfg->redis.database);
    mine = own.len == nlen && memcmp(buf_data(&own), name, nlen) == 0;
    buf_free(&own);
    if (mine)
        hub_cluster_ctl(h, data, len);
    return mine;
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
    hub_cluster_start(h, &c, "leave", false);
    if (hub_cluster_send(h, &c, on_left, hub_cluster_req(h, "leave")) == 0) {
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
        hub_cluster_join_free(it->val);
    map_clear(&h->cl.joins);
    bucket = 0;
    it = NULL;
    while (map_next(&h->cl.watches, &bucket, &it))
        hub_cluster_watch_free(it->val);
    map_clear(&h->cl.watches);
    hub_cluster_repairs_free(h);
    for (d = h->cl.delays; d; d = next) {
        next = d->next;
        delay_free(d);
    }
}
