/* hub.c - process-wide channel state under one mutex: subscriptions counted
 * per worker, presence members counted per user, connections per app,
 * subscription counts (sent at once up to 100 subscribers, throttled above),
 * and the publish sequence numbers. Owns the order of membership events:
 * member_added/removed are queued while the lock is held, so they interleave
 * with other publishes exactly as the state changed. The REST backend is in
 * backend.c, cache channels in hub_cache.c, signed-in users in hub_users.c.
 * Does not own connections or sockets (worker.c, ws.c). */
#include "hub.h"

#include <stdlib.h>
#include <string.h>

#include "bus_redis.h"
#include "chan.h"
#include "gw.h"
#include "mem.h"
#include "msg.h"
#include "webhook.h"
#include "worker.h"
#include "hub_int.h"
#include "mn.h"

struct hub *
hub_new(const struct mn_config *cfg, size_t nworkers)
{
    struct hub *h = xcalloc(1, sizeof(*h));

    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->left, NULL);
    h->cl.delays_tail = &h->cl.delays;
    h->cfg = cfg;
    h->nworkers = nworkers;
    h->workers = xcalloc(nworkers, sizeof(*h->workers));
    h->apps = xcalloc(cfg->napps, sizeof(*h->apps));
    return h;
}

void
hub_set_worker(struct hub *h, size_t index, struct worker *w)
{
    h->workers[index] = w;
}

void
hub_set_webhook(struct hub *h, struct webhook *wh)
{
    h->webhook = wh;
}

void
hub_webhook(struct hub *h, size_t app, const struct webhook_event *ev)
{
    webhook_post(h->webhook, app, ev);
}

void
hub_hook(struct hub *h, size_t app, enum webhook_kind kind, const char *chan, size_t clen,
         const char *user_id, size_t ulen, unsigned count, bool settled)
{
    struct webhook_event ev = {0};

    if (!webhook_wanted(h->webhook, app, kind) || chan_kind_of(chan, clen) == CHAN_USER)
        return;
    ev.kind = kind;
    ev.channel = chan;
    ev.clen = clen;
    ev.user_id = user_id;
    ev.ulen = ulen;
    ev.count = count;
    ev.settled = settled;
    webhook_post(h->webhook, app, &ev);
}

const struct mn_config *
hub_config(const struct hub *h)
{
    return h->cfg;
}

static void
chan_free(struct hchan *c)
{
    size_t bucket = 0;
    struct map_node *it = NULL;

    while (map_next(&c->members, &bucket, &it)) {
        struct hmember *m = it->val;
        free(m->info);
        free(m);
    }
    map_clear(&c->members);
    hub_cluster_told_clear(c);
    free(c->per_worker);
    free(c);
}

void
hub_free(struct hub *h)
{
    if (h == NULL)
        return;
    for (size_t a = 0; a < h->cfg->napps; a++) {
        size_t bucket = 0;
        struct map_node *it = NULL;

        while (map_next(&h->apps[a].chans, &bucket, &it))
            chan_free(it->val);
        map_clear(&h->apps[a].chans);
        map_clear(&h->apps[a].count_pending);
    }
    hub_cache_free(h);
    hub_users_free(h);
    bus_redis_free(h->redis);
    hub_cluster_free(h);
    pthread_cond_destroy(&h->left);
    free(h->apps);
    free(h->workers);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

int
hub_conn_open(struct hub *h, size_t app, int *code)
{
    const struct mn_app *a = &h->cfg->apps[app];
    int rc = 0;

    pthread_mutex_lock(&h->lock);
    if (h->cfg->max_node_connections && h->conns >= h->cfg->max_node_connections) {
        *code = 4100;
        rc = -1;
    } else if (a->max_connections && h->apps[app].conns >= a->max_connections) {
        *code = 4004;
        rc = -1;
    } else {
        h->conns++;
        h->apps[app].conns++;
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

void
hub_conn_close(struct hub *h, size_t app)
{
    pthread_mutex_lock(&h->lock);
    h->conns--;
    h->apps[app].conns--;
    pthread_mutex_unlock(&h->lock);
}

void
hub_publish_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                   const struct hchan *c, struct frame *f, const char *exclude)
{
    uint64_t seq = ++h->seq;

    for (size_t w = 0; w < h->nworkers; w++) {
        struct delivery *d;

        if (c->per_worker[w] == 0)
            continue;
        d = delivery_new(app, chan, clen, frame_ref(f), exclude);
        d->seq = seq;
        worker_post(h->workers[w], d);
    }
}

void
hub_publish(struct hub *h, size_t app, const char *chan, size_t clen, struct frame *f,
            const char *exclude_socket)
{
    struct hchan *c;

    pthread_mutex_lock(&h->lock);
    c = map_get(&h->apps[app].chans, chan, clen);
    if (c)
        hub_publish_locked(h, app, chan, clen, c, f, exclude_socket);
    pthread_mutex_unlock(&h->lock);
    if (h->redis)
        hub_redis_publish(h, app, chan, clen, f, exclude_socket);
}

/* Lock held: the presence object of c, for subscription_succeeded. */
static void
presence_object(const struct hchan *c, struct buf *out)
{
    size_t n = c->members.count, i = 0, bucket = 0;
    const char **ids = xcalloc(n, sizeof(*ids)), **infos = xcalloc(n, sizeof(*infos));
    size_t *id_lens = xcalloc(n, sizeof(*id_lens)),
           *info_lens = xcalloc(n, sizeof(size_t));
    struct map_node *it = NULL;

    while (map_next(&c->members, &bucket, &it)) {
        const struct hmember *m = it->val;
        ids[i] = it->key;
        id_lens[i] = it->len;
        infos[i] = m->info;
        info_lens[i] = m->info_len;
        i++;
    }
    msg_presence_object(out, ids, id_lens, infos, info_lens, n);
    free(ids);
    free(infos);
    free(id_lens);
    free(info_lens);
}

/* Lock held: publishes one membership message built by the caller into b. */
static void
publish_text_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                    const struct hchan *c, const struct buf *b, const char *exclude)
{
    struct frame *f = frame_new(buf_data(b), b->len);

    hub_publish_locked(h, app, chan, clen, c, f, exclude);
    frame_unref(f);
}

/* Subscribers beyond which subscription counts are throttled, and the
 * shortest interval between two counts then (Pusher's figures). */
#define COUNT_EVERY_CHANGE_MAX 100
#define COUNT_THROTTLE_MS 5000

static bool
counted_kind(const char *chan, size_t clen)
{
    enum chan_kind kind = chan_kind_of(chan, clen);

    return kind != CHAN_PRESENCE && kind != CHAN_USER && kind != CHAN_INVALID;
}

/* Lock held: sends c's subscriber count to c. */
static void
send_count_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                  struct hchan *c, uint64_t now)
{
    struct buf b = BUF_INIT;

    if (hub_cluster_on(h, chan, clen)) { /* the fleet's count, through Redis */
        hub_cluster_send_count_locked(h, app, chan, clen, c->fleet_subs);
        c->count_sent_ms = now;
        c->count_pending = false;
        return;
    }
    msg_subscription_count(&b, chan, clen, c->subs);
    publish_text_locked(h, app, chan, clen, c, &b, NULL);
    buf_free(&b);
    hub_hook(h, app, WEBHOOK_SUBSCRIPTION_COUNT, chan, clen, NULL, 0, c->subs, false);
    c->count_sent_ms = now;
    c->count_pending = false;
}

/* Lock held: c's subscriber count changed. Sent at once up to 100
 * subscribers; above, at most every 5 s (hub_tick sends a pending one). */
static void
count_changed_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                     struct hchan *c)
{
    uint64_t now;
    bool created;

    if (!h->cfg->apps[app].subscription_count || c->subs == 0 ||
        !counted_kind(chan, clen))
        return;
    now = mn_now_ms();
    if (c->subs <= COUNT_EVERY_CHANGE_MAX ||
        now - c->count_sent_ms >= COUNT_THROTTLE_MS) {
        send_count_locked(h, app, chan, clen, c, now);
    } else if (!c->count_pending) {
        c->count_pending = true;
        map_upsert(&h->apps[app].count_pending, chan, clen, &created);
    }
}

/* Lock held: sends the pending counts of app that are due, and forgets the
 * names whose channel is gone or no longer pending. */
static void
flush_counts_locked(struct hub *h, size_t app, uint64_t now)
{
    struct map *pending = &h->apps[app].count_pending;
    struct map_node *it = NULL;
    size_t bucket = 0, n = 0;
    struct map_node **done = xcalloc(pending->count, sizeof(*done));

    while (map_next(pending, &bucket, &it)) {
        struct hchan *c = map_get(&h->apps[app].chans, it->key, it->len);

        if (c && c->count_pending && now - c->count_sent_ms < COUNT_THROTTLE_MS)
            continue;
        if (c && c->count_pending)
            send_count_locked(h, app, it->key, it->len, c, now);
        done[n++] = it; /* removed below: map_next forbids it here */
    }
    for (size_t i = 0; i < n; i++)
        map_del(pending, done[i]->key, done[i]->len);
    free(done);
}

void
hub_tick(struct hub *h, uint64_t now)
{
    pthread_mutex_lock(&h->lock);
    for (size_t a = 0; a < h->cfg->napps; a++)
        if (h->apps[a].count_pending.count)
            flush_counts_locked(h, a, now);
    if (now >= h->next_purge_ms) {
        hub_cache_purge_locked(h, now);
        h->next_purge_ms = now + 1000;
    }
    hub_cluster_tick_locked(h, now);
    pthread_mutex_unlock(&h->lock);
}

int
hub_subscribe(struct hub *h, size_t app, const char *chan, size_t clen, size_t w,
              const struct hub_member *member, const char *exclude_socket,
              struct hub_joined *out, struct mn_err *err)
{
    const struct mn_app *a = &h->cfg->apps[app];
    struct map_node *node, *mnode = NULL;
    struct hchan *c;
    bool created = false, occupied, cl = hub_cluster_on(h, chan, clen);
    int rc = 0;

    pthread_mutex_lock(&h->lock);
    node = map_upsert(&h->apps[app].chans, chan, clen, &created);
    occupied = created;
    if (created) {
        c = node->val = xcalloc(1, sizeof(struct hchan));
        c->per_worker = xcalloc(h->nworkers, sizeof(*c->per_worker));
    }
    c = node->val;
    if (member) {
        struct hmember *m = map_get(&c->members, member->user_id, member->id_len);

        if (m == NULL && c->members.count >= a->max_presence_members) {
            rc = mn_err_set(err, 4100, "Presence channel is full (%u members)",
                            a->max_presence_members);
            goto out;
        }
        mnode = map_upsert(&c->members, member->user_id, member->id_len, &created);
        if (created) {
            m = mnode->val = xcalloc(1, sizeof(struct hmember));
            m->info = xstrndup(member->info, member->info_len);
            m->info_len = member->info_len;
        }
        ((struct hmember *)mnode->val)->conns++;
    }
    c->subs++;
    c->per_worker[w]++;
    if (occupied) {
        if (!cl)
            hub_hook(h, app, WEBHOOK_CHANNEL_OCCUPIED, chan, clen, NULL, 0, 0, false);
        hub_redis_chan_locked(h, app, chan, clen, true);
        c->confirming = h->redis != NULL;
    }
    out->pending = c->confirming;
    /* Everything published from here on reaches the new subscriber. */
    out->seq = h->seq;
    if (cl) {
        /* Distributed: Redis counts, publishes member_added and answers
         * presence and cache joins with a snapshot (hub_cluster_join.c). */
        hub_cluster_sub_locked(h, app, chan, clen, c->subs, member && created ? 1 : -1,
                               member ? member->user_id : NULL,
                               member ? member->id_len : 0, member ? member->info : NULL,
                               member ? member->info_len : 0);
        if (member || chan_is_cache(chan, clen)) {
            hub_cluster_join_locked(h, app, chan, clen, w, exclude_socket,
                                    member ? member->user_id : NULL,
                                    member ? member->id_len : 0, c);
            out->pending = true;
        }
        goto out;
    }
    if (chan_is_cache(chan, clen)) {
        out->cached = hub_cache_get_locked(h, app, chan, clen, mn_now_ms());
        out->cache_miss = out->cached == NULL;
        if (out->cache_miss)
            hub_hook(h, app, WEBHOOK_CACHE_MISS, chan, clen, NULL, 0, 0, false);
    }
    if (member) {
        presence_object(c, &out->presence);
        if (created) {
            struct buf b = BUF_INIT;

            msg_member_added(&b, chan, clen, member->user_id, member->id_len,
                             member->info, member->info_len);
            publish_text_locked(h, app, chan, clen, c, &b, exclude_socket);
            buf_free(&b);
            hub_hook(h, app, WEBHOOK_MEMBER_ADDED, chan, clen, member->user_id,
                     member->id_len, 0, false);
        }
    }
    count_changed_locked(h, app, chan, clen, c);
out:
    if (c->subs == 0) {
        map_del(&h->apps[app].chans, chan, clen);
        chan_free(c);
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

void
hub_joined_now(struct hub *h, size_t app, const char *chan, size_t clen, bool presence,
               struct hub_joined *out)
{
    pthread_mutex_lock(&h->lock);
    hub_joined_now_locked(h, app, chan, clen, presence, out);
    pthread_mutex_unlock(&h->lock);
}

void
hub_joined_now_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                      bool presence, struct hub_joined *out)
{
    struct hchan *c;

    out->seq = h->seq;
    c = map_get(&h->apps[app].chans, chan, clen);
    if (chan_is_cache(chan, clen)) {
        out->cached = hub_cache_get_locked(h, app, chan, clen, mn_now_ms());
        out->cache_miss = out->cached == NULL;
    }
    if (presence && c)
        presence_object(c, &out->presence);
}

void
hub_unsubscribe(struct hub *h, size_t app, const char *chan, size_t clen, size_t w,
                const char *user_id, size_t id_len)
{
    struct hchan *c;
    bool cl = hub_cluster_on(h, chan, clen), left = false;

    pthread_mutex_lock(&h->lock);
    c = map_get(&h->apps[app].chans, chan, clen);
    if (c == NULL || c->per_worker[w] == 0) {
        pthread_mutex_unlock(&h->lock);
        return;
    }
    c->subs--;
    c->per_worker[w]--;
    if (user_id) {
        struct hmember *m = map_get(&c->members, user_id, id_len);

        if (m && --m->conns == 0) {
            struct buf b = BUF_INIT;

            map_del(&c->members, user_id, id_len);
            free(m->info);
            free(m);
            left = true;
            if (cl)
                goto counted; /* Redis publishes member_removed */
            msg_member_removed(&b, chan, clen, user_id, id_len);
            publish_text_locked(h, app, chan, clen, c, &b, NULL);
            buf_free(&b);
            hub_hook(h, app, WEBHOOK_MEMBER_REMOVED, chan, clen, user_id, id_len, 0,
                     false);
        }
    }
counted:
    if (cl)
        hub_cluster_sub_locked(h, app, chan, clen, c->subs, left ? 0 : -1, user_id,
                               id_len, NULL, 0);
    else
        count_changed_locked(h, app, chan, clen, c);
    if (c->subs == 0) {
        if (!cl)
            hub_hook(h, app, WEBHOOK_CHANNEL_VACATED, chan, clen, NULL, 0, 0, false);
        hub_redis_chan_locked(h, app, chan, clen, false);
        map_del(&h->apps[app].chans, chan, clen);
        chan_free(c);
    }
    pthread_mutex_unlock(&h->lock);
}
