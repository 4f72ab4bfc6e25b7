/* hub_redis.c - the hub in distributed mode: the Redis pub/sub name of each
 * channel ("mn:{database}:{app id}:{channel}"), subscribing while a channel
 * has local subscribers, publishing REST triggers and client events with
 * their exclusion socket_id and this node's id, and delivering what other
 * nodes publish to the local subscribers. The link runs on its own thread
 * (shared/bus_redis.c); its callbacks take the hub lock, and the hub calls
 * into the link only to queue a request, so the lock order stays hub, then
 * the link's inbox. The cluster state (counts, presence, cache, heartbeats)
 * is hub_cluster*.c's. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "bus_redis.h"
#include "chan.h"
#include "cluster.h"
#include "hub.h"
#include "log.h"
#include "mem.h"
#include "msg.h"
#include "hub_int.h"
#include "mn.h"
#include "worker.h"

#define NODE_LEN 16 /* hex digits of the node id opening every payload */

/* A REST publish waiting for Redis to accept each of its events. */
struct pending {
    struct hub *h;
    size_t app;
    const struct rest_query *q; /* borrowed until done is called */
    struct frame **frames;
    size_t total;
    rest_answer_fn *done;
    void *arg;
    atomic_size_t left;
    atomic_bool failed;
};

static void
name_of(struct buf *b, const struct hub *h, size_t app, const char *chan, size_t clen)
{
    cluster_chan_name(b, h->cfg->redis.database, h->cfg->apps[app].id, chan, clen);
}

/* The app index and channel of pub/sub name; -1 when it is not ours. */
static int
parse_name(const struct hub *h, const char *name, size_t nlen, size_t *app,
           const char **chan, size_t *clen)
{
    const char *id;
    size_t idlen;
    const struct mn_app *a;

    if (cluster_chan_parse(name, nlen, h->cfg->redis.database, &id, &idlen, chan, clen) <
            0 ||
        (a = config_app_by_id(h->cfg, id, idlen)) == NULL)
        return -1;
    *app = (size_t)(a - h->cfg->apps);
    return 0;
}

/* Redis subscribed to name (the link's thread), or the deadline passed: the
 * channel's subscribers that wait for it get subscription_succeeded (in the
 * cluster's presence and cache channels, each from its own snapshot). */
static void
on_sub(void *arg, const char *name, size_t nlen, bool confirmed)
{
    struct hub *h = arg;
    const char *chan;
    struct hchan *c;
    size_t app, clen;

    (void)confirmed; /* logged by the link */
    if (parse_name(h, name, nlen, &app, &chan, &clen) < 0)
        return;
    pthread_mutex_lock(&h->lock);
    c = map_get(&h->apps[app].chans, chan, clen);
    if (c && c->confirming) {
        c->confirming = false;
        if (hub_cluster_on(h, chan, clen))
            hub_cluster_confirmed_locked(h, app, chan, clen); /* counts, snapshots */
        if (hub_cluster_on(h, chan, clen) &&
            (chan_kind_of(chan, clen) == CHAN_PRESENCE || chan_is_cache(chan, clen))) {
            pthread_mutex_unlock(&h->lock);
            return;
        }
        for (size_t w = 0; w < h->nworkers; w++) {
            struct delivery *d;

            if (c->per_worker[w] == 0)
                continue;
            d = delivery_new(app, chan, clen, NULL, NULL);
            d->kind = DELIVERY_READY;
            /* What Redis delivers from here on reaches the waiting
             * subscribers, also what arrives before their worker runs. */
            d->seq = h->seq;
            worker_post(h->workers[w], d);
        }
    }
    pthread_mutex_unlock(&h->lock);
}

/* A message from Redis (the link's thread): delivered to local subscribers
 * unless this node published it (it delivered locally already). A presence
 * channel's member_added / member_removed (the script's, never a client's)
 * also moves what its subscribers were told (hub_cluster_repair.c). */
static void
on_msg(void *arg, const char *name, size_t nlen, const char *data, size_t len)
{
    struct hub *h = arg;
    const char *chan, *node, *text;
    char exclude[CHAN_SOCKET_ID_MAX + 1];
    struct frame *f;
    struct hchan *c;
    size_t app, clen, tlen;
    struct msg_member member = {0};
    bool added = false, is_member = false;

    if (parse_name(h, name, nlen, &app, &chan, &clen) < 0) {
        hub_cluster_msg(h, name, nlen, data, len);
        return;
    }
    if (cluster_envelope_parse(data, len, &node, exclude, sizeof(exclude), &text, &tlen) <
            0 ||
        memcmp(node, h->node, NODE_LEN) == 0)
        return;
    /* Parsed outside the lock; other channels' messages are not looked at. */
    if (chan_kind_of(chan, clen) == CHAN_PRESENCE)
        is_member = msg_member_event_parse(text, tlen, &added, &member) == 1;
    f = frame_new(text, tlen);
    pthread_mutex_lock(&h->lock);
    c = map_get(&h->apps[app].chans, chan, clen);
    if (c)
        hub_publish_locked(h, app, chan, clen, c, f, exclude[0] ? exclude : NULL);
    if (c && is_member)
        hub_cluster_told_event_locked(c, added, &member);
    pthread_mutex_unlock(&h->lock);
    frame_unref(f);
    msg_member_free(&member);
}

int
hub_redis_start(struct hub *h)
{
    unsigned char rnd[NODE_LEN / 2];
    static const char hex[] = "0123456789abcdef";

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        log_errno("gateway: cannot draw a node id");
        return -1;
    }
    for (size_t i = 0; i < sizeof(rnd); i++) {
        h->node[2 * i] = hex[rnd[i] >> 4];
        h->node[2 * i + 1] = hex[rnd[i] & 15];
    }
    h->node[NODE_LEN] = '\0';
    h->redis = bus_redis_new(&h->cfg->redis, on_msg, on_sub, h);
    bus_redis_set_script(h->redis, cluster_lua, cluster_lua_len);
    {
        struct buf b = BUF_INIT;

        /* Our snapshots, and the fleet's commands. */
        cluster_node_name(&b, h->cfg->redis.database, h->node);
        bus_redis_subscribe(h->redis, buf_data(&b), b.len);
        buf_reset(&b);
        cluster_ctl_name(&b, h->cfg->redis.database);
        bus_redis_subscribe(h->redis, buf_data(&b), b.len);
        buf_free(&b);
    }
    if (bus_redis_start(h->redis) < 0) {
        log_err("gateway: cannot start the Redis thread");
        return -1;
    }
    log_info("gateway: distributed mode node=%s redis=%s sentinel=%s", h->node,
             h->cfg->redis.address, h->cfg->redis.sentinel ? "yes" : "no");
    return 0;
}

void
hub_redis_stop(struct hub *h)
{
    hub_cluster_leave(h);
    bus_redis_stop(h->redis);
}

bool
hub_redis_gave_up(const struct hub *h)
{
    return h->redis != NULL && bus_redis_gave_up(h->redis);
}

void
hub_redis_chan_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                      bool subscribe)
{
    struct buf b = BUF_INIT;

    if (h->redis == NULL)
        return;
    name_of(&b, h, app, chan, clen);
    if (subscribe)
        bus_redis_subscribe(h->redis, buf_data(&b), b.len);
    else
        bus_redis_unsubscribe(h->redis, buf_data(&b), b.len);
    buf_free(&b);
}

/* Publishes f for chan; done (may be NULL) as bus_redis_publish. */
static int
publish(struct hub *h, size_t app, const char *chan, size_t clen, const struct frame *f,
        const char *exclude, bus_redis_done_fn *done, void *arg)
{
    struct buf name = BUF_INIT, data = BUF_INIT;
    int rc;

    name_of(&name, h, app, chan, clen);
    cluster_envelope(&data, h->node, exclude, (const char *)f->data + LWS_PRE, f->len);
    rc = bus_redis_publish(h->redis, buf_data(&name), name.len, buf_data(&data), data.len,
                           done, arg);
    buf_free(&name);
    buf_free(&data);
    return rc;
}

void
hub_redis_publish(struct hub *h, size_t app, const char *chan, size_t clen,
                  const struct frame *f, const char *exclude)
{
    if (publish(h, app, chan, clen, f, exclude, NULL, NULL) < 0)
        log_debug("gateway: client event not sent to Redis (down) app=%s",
                  h->cfg->apps[app].id);
}

/* One event of p is settled; the last answers. */
static void
settle(struct pending *p)
{
    struct rest_answer ans = {0};

    if (atomic_fetch_sub(&p->left, 1) != 1)
        return;
    if (atomic_load(&p->failed)) {
        for (size_t k = 0; k < p->total; k++)
            frame_unref(p->frames[k]);
        free(p->frames);
        ans.status = 503;
        ans.message = "Redis is unreachable: the event was not published";
        p->done(p->arg, &ans);
    } else {
        hub_cluster_publish_info(p->h, p->app, p->q, p->frames, p->total, p->done,
                                 p->arg);
    }
    free(p);
}

static void
on_published(void *arg, bool ok)
{
    struct pending *p = arg;

    if (!ok)
        atomic_store(&p->failed, true);
    settle(p);
}

void
hub_redis_rest_publish(struct hub *h, size_t app, const struct rest_query *q,
                       struct frame **frames, size_t total, rest_answer_fn *done,
                       void *arg)
{
    struct pending *p = xcalloc(1, sizeof(*p));
    size_t k = 0;

    p->h = h;
    p->app = app;
    p->q = q;
    p->frames = frames;
    p->total = total;
    p->done = done;
    p->arg = arg;
    atomic_init(&p->left, total + 1); /* + 1: ours, so no answer before the loop ends */
    if (hub_cluster_settling(h)) {    /* the others may still be resubscribing */
        struct rest_answer ans = {0};

        for (size_t i = 0; i < total; i++)
            frame_unref(frames[i]);
        free(frames);
        free(p);
        ans.status = 503;
        ans.message = "Redis is back; waiting for the other gateways to resubscribe";
        done(arg, &ans);
        return;
    }
    /* Not failed while down: the link refuses (and counts) the first publish. */
    atomic_init(&p->failed, false);
    for (size_t e = 0; e < q->nevents && !atomic_load(&p->failed); e++) {
        const struct rest_event *ev = &q->events[e];

        for (size_t c = 0; c < ev->nchannels; c++, k++) {
            size_t clen = strlen(ev->channels[c]);

            /* Before the event: a joiner's snapshot after it finds it. */
            if (chan_is_cache(ev->channels[c], clen))
                hub_cluster_cache_put(h, app, ev->channels[c], clen, ev->name,
                                      ev->name_len, ev->data, ev->data_len);
            if (publish(h, app, ev->channels[c], strlen(ev->channels[c]), frames[k],
                        ev->socket_id, on_published, p) < 0) {
                atomic_store(&p->failed, true);
                break;
            }
        }
    }
    /* The events never handed to the link are settled here. */
    atomic_fetch_sub(&p->left, total - k);
    settle(p);
}
