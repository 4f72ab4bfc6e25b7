/* hub_cluster_join.c - distributed mode: a presence or cache channel's
 * subscriber gets subscription_succeeded from a snapshot the script
 * publishes to the node's own name after the change: the pub/sub connection
 * sees it in order with the channel's events, so the subscriber gets
 * exactly what happened after it (hub->seq at that point). The snapshot is
 * asked for once the channel's SUBSCRIBE is live; without an answer within
 * SNAPSHOT_MS (at once when none can come: Redis away, or not knowing the
 * node) the joiner is answered from local state, and a snapshot saying the
 * presence channel is full refuses it. A presence snapshot also sets what
 * the channel's other subscribers were told (hub_cluster_repair.c), and
 * repair snapshots (no joiner) arrive here too. Counts and members go to Redis from
 * hub_cluster.c; a snapshot request only says again that the node holds
 * its joiner. */
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "clock.h"
#include "cluster.h"
#include "log.h"
#include "mem.h"
#include "msg.h"
#include "worker.h"
#include "hub_cluster_int.h"
#include "mn.h"

void
hub_cluster_join_free(struct cjoin *j)
{
    if (j)
        free(j->user);
    free(j);
}

/* Lock held: answers j (removed from the map by the caller) with
 * subscription_succeeded built from presence (NULL: none) and the cache
 * part of s (NULL: local state), as of now. On a presence channel the
 * subscribers already there first get how s differs from what they were
 * told (hub_cluster_repair.c): j, still waiting, skips that. */
static void
answer_join(struct hub *h, struct cjoin *j, const struct buf *presence,
            const struct cluster_snapshot *s)
{
    struct buf out = BUF_INIT;
    struct delivery *d;
    struct frame *extra = NULL;
    bool is_presence = chan_kind_of(j->chan, j->clen) == CHAN_PRESENCE;
    struct hub_joined local = {0};
    struct hchan *ch = map_get(&h->apps[j->app].chans, j->chan, j->clen);

    if (is_presence && ch && s)
        hub_cluster_told_snapshot_locked(h, j->app, j->chan, j->clen, ch, s);
    else if (is_presence && ch)
        hub_cluster_told_local_locked(ch);
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

void
hub_cluster_join_failed_locked(struct hub *h, uint64_t token)
{
    char key[24];
    struct cjoin *j;

    snprintf(key, sizeof(key), "%llu", (unsigned long long)token);
    if ((j = map_del(&h->cl.joins, key, strlen(key))) != NULL) {
        answer_join(h, j, NULL, NULL);
        hub_cluster_join_free(j);
    }
}

/* Lock held: asks for j's snapshot. May answer j at once (Redis away),
 * which frees it and removes it from h->cl.joins. */
static void
ask_snapshot(struct hub *h, struct cjoin *j)
{
    struct cluster_cmd c = {0};
    struct creq *r = hub_cluster_req(h, "snapshot");
    const struct hchan *ch = map_get(&h->apps[j->app].chans, j->chan, j->clen);
    const struct hmember *m =
        ch && j->user ? map_get(&ch->members, j->user, j->ulen) : NULL;

    j->sent = true;
    r->token = j->token;
    hub_cluster_start(h, &c, "sub", false);
    /* The request says again that this node holds the joiner (a repeat
     * changes nothing): the member's own "sub" may never have reached
     * Redis (sent before the link was up), and the snapshot must not
     * refuse a joiner Redis was never told about. */
    cluster_cmd_sub(&c, h->cfg->apps[j->app].id, j->chan, j->clen, -1, m ? 1 : -1,
                    j->user, j->user ? j->ulen : 0, m ? m->info : NULL,
                    m ? m->info_len : 0, j->token, chan_is_cache(j->chan, j->clen),
                    !h->cl.registered, m ? h->cfg->apps[j->app].max_presence_members : 0);
    if (hub_cluster_send(h, &c, hub_cluster_on_change, r) <
        0) /* Redis away: this node's view */
        hub_cluster_join_failed_locked(h, j->token);
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
    size_t bucket = 0, n = 0;
    struct map_node *it = NULL;
    struct hchan *ch = map_get(&h->apps[app].chans, chan, clen);
    struct cjoin **due;

    if (ch && ch->count_deferred) {
        ch->count_deferred = false;
        hub_cluster_sub_locked(h, app, chan, clen, ch->subs, -1, NULL, 0, NULL, 0);
    }
    if (h->cl.joins.count == 0)
        return;
    /* Gathered first: ask_snapshot may answer a join at once (the link is
     * not up yet: SUBSCRIBE confirmations can come before the PING that
     * makes it up) and remove it from the map, which map_next forbids. */
    due = xcalloc(h->cl.joins.count, sizeof(*due));
    while (map_next(&h->cl.joins, &bucket, &it)) {
        struct cjoin *j = it->val;

        if (!j->sent && j->app == app && j->clen == clen &&
            memcmp(j->chan, chan, clen) == 0)
            due[n++] = j;
    }
    for (size_t i = 0; i < n; i++)
        ask_snapshot(h, due[i]); /* frees only due[i], if anything */
    free(due);
}

void
hub_cluster_snapshot(struct hub *h, const char *data, size_t len)
{
    struct cluster_snapshot s;
    struct buf presence = BUF_INIT;
    struct cjoin *j;
    char key[24];

    if (cluster_snapshot_parse(data, len, &s) < 0) {
        log_warn("cluster: garbled snapshot (%zu bytes)", len);
        return;
    }
    if (s.cache == 'w') {
        hub_cluster_watch_snapshot(h, s.token, s.members, s.members_len);
        return;
    }
    snprintf(key, sizeof(key), "%llu", (unsigned long long)s.token);
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
        hub_cluster_join_free(j);
        return;
    }
    if (cluster_snapshot_presence(&s, &presence) < 0) {
        log_warn("cluster: garbled snapshot (%zu bytes)", len);
        buf_free(&presence);
        return;
    }
    if (hub_cluster_repair_snapshot(h, &s)) {
        buf_free(&presence);
        return;
    }
    pthread_mutex_lock(&h->lock);
    j = map_del(&h->cl.joins, key, strlen(key));
    if (j)
        answer_join(h, j, &presence, &s);
    pthread_mutex_unlock(&h->lock);
    hub_cluster_join_free(j);
    buf_free(&presence);
}

void
hub_cluster_joins_expire_locked(struct hub *h, uint64_t now)
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
        hub_cluster_join_free(j);
        bucket = 0; /* the map changed: start over */
        it = NULL;
    }
}
