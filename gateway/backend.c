/* backend.c - the gateway's REST backend: runs a rest_query against the hub
 * (publish to local workers and remember cache channels' last event, count
 * subscribers and members, report a channel's cache, terminate a user's
 * connections) and answers at once (in distributed mode a publish answers once
 * Redis took it, hub_redis.c). Frames are encoded before the hub lock is taken; the
 * lock is held once per request, so the events of one trigger reach every worker in
 * order. */
#include "hub.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "gw.h"
#include "mem.h"
#include "msg.h"
#include "hub_int.h"
#include "mn.h"

/* Lock held: fills st for channel name (copied) from c (may be NULL). */
static void
stat_of(struct rest_chan_stat *st, const char *name, size_t len, const struct hchan *c)
{
    memset(st, 0, sizeof(*st));
    st->name = xstrndup(name, len);
    if (c == NULL)
        return;
    st->occupied = c->subs > 0;
    st->subscription_count = c->subs;
    st->user_count = (unsigned)c->members.count;
}

static void
stat_clear(struct rest_chan_stat *st)
{
    free((char *)st->name);
    free((char *)st->cache_data);
    free((char *)st->cache_event);
}

static void
stats_free(struct rest_chan_stat *st, size_t n)
{
    for (size_t i = 0; i < n; i++)
        stat_clear(&st[i]);
    free(st);
}

static void
do_publish(struct hub *h, size_t app, const struct rest_query *q, rest_answer_fn *done,
           void *arg)
{
    size_t total = 0, k = 0;
    struct frame **frames;

    for (size_t e = 0; e < q->nevents; e++)
        total += q->events[e].nchannels;
    frames = xcalloc(total, sizeof(*frames));
    for (size_t e = 0; e < q->nevents; e++) {
        const struct rest_event *ev = &q->events[e];
        for (size_t c = 0; c < ev->nchannels; c++) {
            struct buf b = BUF_INIT;

            msg_event(&b, ev->name, ev->name_len, ev->channels[c],
                      strlen(ev->channels[c]), ev->data, ev->data_len, NULL, 0);
            frames[k++] = frame_new(buf_data(&b), b.len);
            buf_free(&b);
        }
    }
    if (h->redis)
        hub_redis_rest_publish(h, app, q, frames, total, done, arg);
    else
        hub_publish_local(h, app, q, NULL, frames, total, done, arg);
}

void
hub_publish_local(struct hub *h, size_t app, const struct rest_query *q,
                  const unsigned *fleet, struct frame **frames, size_t total,
                  rest_answer_fn *done, void *arg)
{
    size_t k;
    struct rest_chan_stat *st;
    struct rest_answer ans = {0};
    bool info = false;
    uint64_t now = mn_now_ms();

    for (size_t e = 0; e < q->nevents; e++)
        info |= q->events[e].info != 0;
    st = info ? xcalloc(total, sizeof(*st)) : NULL;
    k = 0;
    pthread_mutex_lock(&h->lock);
    for (size_t e = 0; e < q->nevents; e++) {
        const struct rest_event *ev = &q->events[e];
        for (size_t c = 0; c < ev->nchannels; c++, k++) {
            size_t clen = strlen(ev->channels[c]);
            struct hchan *ch = map_get(&h->apps[app].chans, ev->channels[c], clen);

            if (ch)
                hub_publish_locked(h, app, ev->channels[c], clen, ch, frames[k],
                                   ev->socket_id);
            /* Cached whether or not anyone listens: a later subscriber gets it. */
            if (chan_is_cache(ev->channels[c], clen))
                hub_cache_put_locked(h, app, ev->channels[c], clen, frames[k], ev->name,
                                     ev->name_len, ev->data, ev->data_len, now);
            if (st)
                stat_of(&st[k], ev->channels[c], clen, ch);
            if (st && fleet) {
                st[k].subscription_count = fleet[2 * k];
                st[k].user_count = fleet[2 * k + 1];
                st[k].occupied = fleet[2 * k] > 0;
            }
        }
    }
    pthread_mutex_unlock(&h->lock);
    for (k = 0; k < total; k++)
        frame_unref(frames[k]);
    free(frames);
    ans.chans = st;
    ans.nchans = st ? total : 0;
    done(arg, &ans);
    if (st)
        stats_free(st, total);
}

static bool
has_prefix(const char *s, size_t len, const char *p, size_t plen)
{
    return len >= plen && strncmp(s, p, plen) == 0;
}

static void
do_channels(struct hub *h, size_t app, const struct rest_query *q, rest_answer_fn *done,
            void *arg)
{
    struct rest_answer ans = {0};
    struct rest_chan_stat *st;
    struct map_node *it = NULL;
    size_t bucket = 0, n = 0;

    pthread_mutex_lock(&h->lock);
    st = xcalloc(h->apps[app].chans.count, sizeof(*st));
    while (map_next(&h->apps[app].chans, &bucket, &it)) {
        const struct hchan *c = it->val;
        if (c->subs == 0 ||
            (q->prefix && !has_prefix(it->key, it->len, q->prefix, q->prefix_len)))
            continue;
        stat_of(&st[n++], it->key, it->len, c);
    }
    pthread_mutex_unlock(&h->lock);
    ans.chans = st;
    ans.nchans = n;
    done(arg, &ans);
    stats_free(st, n);
}

static void
do_channel(struct hub *h, size_t app, const struct rest_query *q, rest_answer_fn *done,
           void *arg)
{
    struct rest_answer ans = {0};
    struct rest_chan_stat st;

    pthread_mutex_lock(&h->lock);
    stat_of(&st, q->channel, q->channel_len,
            map_get(&h->apps[app].chans, q->channel, q->channel_len));
    if (q->info & REST_INFO_CACHE)
        hub_cache_stat_locked(h, app, q->channel, q->channel_len, mn_now_ms(), &st);
    pthread_mutex_unlock(&h->lock);
    ans.chans = &st;
    ans.nchans = 1;
    done(arg, &ans);
    stat_clear(&st);
}

static void
do_users(struct hub *h, size_t app, const struct rest_query *q, rest_answer_fn *done,
         void *arg)
{
    struct rest_answer ans = {0};
    const struct hchan *c;
    char **users = NULL;
    size_t n = 0;

    pthread_mutex_lock(&h->lock);
    c = map_get(&h->apps[app].chans, q->channel, q->channel_len);
    if (c) {
        struct map_node *it = NULL;
        size_t bucket = 0;

        users = xcalloc(c->members.count, sizeof(*users));
        while (map_next(&c->members, &bucket, &it))
            users[n++] = xstrndup(it->key, it->len);
    }
    pthread_mutex_unlock(&h->lock);
    ans.users = (const char *const *)users;
    ans.nusers = n;
    done(arg, &ans);
    for (size_t i = 0; i < n; i++)
        free(users[i]);
    free(users);
}

void
hub_rest_call(void *be, const struct rest_query *q, rest_answer_fn *done, void *arg)
{
    struct hub *h = be;
    size_t app = (size_t)(q->app - h->cfg->apps);
    struct rest_answer ans = {0};

    if (hub_cluster_rest(h, app, q, done, arg))
        return;
    switch (q->op) {
    case REST_PUBLISH:
        do_publish(h, app, q, done, arg);
        return;
    case REST_CHANNELS:
        do_channels(h, app, q, done, arg);
        return;
    case REST_CHANNEL:
        do_channel(h, app, q, done, arg);
        return;
    case REST_USERS:
        do_users(h, app, q, done, arg);
        return;
    case REST_TERMINATE:
        /* Answered once every worker has been asked; the closes follow on
         * their loops (a user not signed in anywhere is not an error). */
        hub_users_terminate(h, app, q->user_id, q->user_id_len);
        hub_cluster_terminate(h, app, q->user_id, q->user_id_len);
        done(arg, &ans);
        return;
    }
    ans.status = 500;
    ans.message = "Unknown operation";
    done(arg, &ans);
}
