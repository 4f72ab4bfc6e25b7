/* hub_cache.c - cache channels: the last server-triggered event of each
 * cache- / private-cache- / private-encrypted-cache- / presence-cache-
 * channel, kept for the app's cache-ttl whether or not anyone is subscribed,
 * replayed to each new subscriber and reported by GET /channels/{ch}?info=cache.
 * Client events never reach it (only backend.c's REST publish calls
 * hub_cache_put_locked). Every function runs under hub->lock. Does not decide
 * what a subscriber is sent (ws.c) nor parse requests (rest.c). */
#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "mem.h"
#include "hub_int.h"
#include "mn.h"

static void
entry_free(struct hcache *e)
{
    frame_unref(e->frame);
    free(e->data);
    free(e->event);
    free(e);
}

void
hub_cache_put_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                     struct frame *f, const char *event, size_t elen, const char *data,
                     size_t dlen, uint64_t now)
{
    bool created;
    struct map_node *node = map_upsert(&h->apps[app].cache, chan, clen, &created);
    struct hcache *e;

    if (!created)
        entry_free(node->val);
    e = node->val = xcalloc(1, sizeof(*e));
    e->frame = frame_ref(f);
    e->data = xstrndup(data, dlen);
    e->data_len = dlen;
    e->event = xstrndup(event, elen);
    e->expires_ms = now + h->cfg->apps[app].cache_ttl * 1000ull;
}

/* The live entry of chan, or NULL (an expired one is dropped here). */
static struct hcache *
live(struct hub *h, size_t app, const char *chan, size_t clen, uint64_t now)
{
    struct hcache *e = map_get(&h->apps[app].cache, chan, clen);

    if (e && now >= e->expires_ms) {
        map_del(&h->apps[app].cache, chan, clen);
        entry_free(e);
        return NULL;
    }
    return e;
}

struct frame *
hub_cache_get_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                     uint64_t now)
{
    struct hcache *e = live(h, app, chan, clen, now);

    return e ? frame_ref(e->frame) : NULL;
}

void
hub_cache_stat_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                      uint64_t now, struct rest_chan_stat *st)
{
    struct hcache *e = live(h, app, chan, clen, now);

    if (e == NULL)
        return;
    st->cache_data = xstrndup(e->data, e->data_len);
    st->cache_len = e->data_len;
    st->cache_event = xstrdup(e->event);
    /* Whole seconds left, rounded up: a live entry never reports 0. */
    st->cache_ttl = (unsigned)((e->expires_ms - now + 999) / 1000);
}

void
hub_cache_purge_locked(struct hub *h, uint64_t now)
{
    for (size_t a = 0; a < h->cfg->napps; a++) {
        struct map *cache = &h->apps[a].cache;
        struct map_node *it = NULL, **gone;
        size_t bucket = 0, n = 0;

        if (cache->count == 0)
            continue;
        gone = xcalloc(cache->count, sizeof(*gone));
        while (map_next(cache, &bucket, &it))
            if (now >= ((struct hcache *)it->val)->expires_ms)
                gone[n++] = it; /* removed below: map_next forbids it here */
        for (size_t i = 0; i < n; i++) {
            struct hcache *e = gone[i]->val;

            map_del(cache, gone[i]->key, gone[i]->len);
            entry_free(e);
        }
        free(gone);
    }
}

void
hub_cache_free(struct hub *h)
{
    for (size_t a = 0; a < h->cfg->napps; a++) {
        struct map_node *it = NULL;
        size_t bucket = 0;

        while (map_next(&h->apps[a].cache, &bucket, &it))
            entry_free(it->val);
        map_clear(&h->apps[a].cache);
    }
}
