/* hub_users.c - signed-in users across workers: which user ids are signed in
 * on how many connections of which worker, who watches whom (watchlist
 * events), and terminating a user's connections. A user is online while it is
 * signed in on at least one connection. Watchlists are kept per watching user:
 * an online/offline event goes to every connection signed in as a watcher.
 * Every change runs under hub->lock, and the messages it causes are posted
 * while the lock is held, so they follow the state changes in order. Does not
 * check signatures or parse user_data (users.c). */
#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "mem.h"
#include "msg.h"
#include "worker.h"
#include "hub_int.h"
#include "mn.h"

/* Lock held: the entry of id, created when absent. */
static struct huser *
user_get(struct hub *h, size_t app, const char *id, size_t len)
{
    bool created;
    struct map_node *node = map_upsert(&h->apps[app].users, id, len, &created);

    if (created) {
        struct huser *u = node->val = xcalloc(1, sizeof(struct huser));
        u->per_worker = xcalloc(h->nworkers, sizeof(*u->per_worker));
    }
    return node->val;
}

static void
user_free(struct huser *u)
{
    size_t bucket = 0;
    struct map_node *it = NULL;

    while (map_next(&u->watchers, &bucket, &it))
        free(it->val);
    map_clear(&u->watchers);
    free(u->per_worker);
    free(u);
}

/* Lock held: drops id's entry once nobody is signed in as it or watches it. */
static void
user_release(struct hub *h, size_t app, const char *id, size_t len, struct huser *u)
{
    if (u->conns || u->watchers.count)
        return;
    map_del(&h->apps[app].users, id, len);
    user_free(u);
}

/* Lock held: posts kind (with f, or NULL) for user id to every worker
 * holding a connection signed in as it. */
static void
post_user_locked(struct hub *h, size_t app, const char *id, size_t len,
                 const struct huser *u, enum delivery_kind kind, struct frame *f)
{
    uint64_t seq = ++h->seq;

    for (size_t w = 0; w < h->nworkers; w++) {
        struct delivery *d;

        if (u->per_worker[w] == 0)
            continue;
        d = delivery_new(app, id, len, f ? frame_ref(f) : NULL, NULL);
        d->kind = kind;
        d->seq = seq;
        worker_post(h->workers[w], d);
    }
}

/* Lock held: tells every user watching u (user id) that it went online or
 * offline: one frame shared by all their connections. */
static void
tell_watchers_locked(struct hub *h, size_t app, const char *id, size_t len,
                     const struct huser *u, bool online)
{
    const char *ids[1] = {id};
    const size_t lens[1] = {len};
    struct map_node *it = NULL;
    struct buf b = BUF_INIT;
    struct frame *f;
    size_t bucket = 0;

    if (u->watchers.count == 0)
        return;
    if (online)
        msg_watchlist_events(&b, ids, lens, 1, NULL, NULL, 0);
    else
        msg_watchlist_events(&b, NULL, NULL, 0, ids, lens, 1);
    f = frame_new(buf_data(&b), b.len);
    buf_free(&b);
    while (map_next(&u->watchers, &bucket, &it)) {
        const struct huser *watcher = map_get(&h->apps[app].users, it->key, it->len);

        if (watcher)
            post_user_locked(h, app, it->key, it->len, watcher, DELIVERY_USER, f);
    }
    frame_unref(f);
}

void
hub_users_tell_locked(struct hub *h, size_t app, const char *id, size_t len, bool online)
{
    const struct huser *u = map_get(&h->apps[app].users, id, len);

    if (u)
        tell_watchers_locked(h, app, id, len, u, online);
}

/* Lock held: builds the current online/offline state of ids into out. */
void
hub_users_watch_state_locked(struct hub *h, size_t app, const char *const *ids,
                             const size_t *lens, size_t n, struct buf *out)
{
    const char **on = xcalloc(n, sizeof(*on)), **off = xcalloc(n, sizeof(*off));
    size_t *on_lens = xcalloc(n, sizeof(*on_lens)),
           *off_lens = xcalloc(n, sizeof(size_t));
    size_t non = 0, noff = 0;

    for (size_t i = 0; i < n; i++) {
        const struct huser *u = map_get(&h->apps[app].users, ids[i], lens[i]);

        if (u && u->conns) {
            on[non] = ids[i];
            on_lens[non++] = lens[i];
        } else {
            off[noff] = ids[i];
            off_lens[noff++] = lens[i];
        }
    }
    msg_watchlist_events(out, on, on_lens, non, off, off_lens, noff);
    free(on);
    free(off);
    free(on_lens);
    free(off_lens);
}

uint64_t
hub_users_signin(struct hub *h, size_t app, const char *user_id, size_t ulen, size_t w,
                 const char *socket_id, const char *const *ids, const size_t *lens,
                 size_t n, struct buf *watch_state)
{
    struct huser *u;
    uint64_t seq;

    pthread_mutex_lock(&h->lock);
    u = user_get(h, app, user_id, ulen);
    u->per_worker[w]++;
    /* Messages for this user posted before now are not for this connection. */
    seq = h->seq;
    if (u->conns++ == 0) {
        if (h->redis) /* the fleet's news, through Redis */
            hub_cluster_user_locked(h, app, user_id, ulen, true);
        else
            tell_watchers_locked(h, app, user_id, ulen, u, true);
    }
    for (size_t i = 0; i < n; i++) {
        struct huser *watched = user_get(h, app, ids[i], lens[i]);
        bool created;
        struct map_node *node = map_upsert(&watched->watchers, user_id, ulen, &created);

        if (created)
            node->val = xcalloc(1, sizeof(struct hwatch));
        ((struct hwatch *)node->val)->conns++;
    }
    if (n && h->redis)
        hub_cluster_watch_locked(h, app, w, socket_id, user_id, ulen, ids, lens, n);
    else if (n)
        hub_users_watch_state_locked(h, app, ids, lens, n, watch_state);
    pthread_mutex_unlock(&h->lock);
    return seq;
}

void
hub_users_signout(struct hub *h, size_t app, const char *user_id, size_t ulen, size_t w,
                  const char *const *ids, const size_t *lens, size_t n)
{
    struct huser *u;

    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < n; i++) {
        struct huser *watched = map_get(&h->apps[app].users, ids[i], lens[i]);
        struct hwatch *hw = watched ? map_get(&watched->watchers, user_id, ulen) : NULL;

        if (hw == NULL)
            continue;
        if (--hw->conns == 0) {
            map_del(&watched->watchers, user_id, ulen);
            free(hw);
        }
        /* The user itself may be on its own watchlist: keep its entry now. */
        if (lens[i] != ulen || memcmp(ids[i], user_id, ulen) != 0)
            user_release(h, app, ids[i], lens[i], watched);
    }
    u = map_get(&h->apps[app].users, user_id, ulen);
    if (u && u->per_worker[w]) {
        u->per_worker[w]--;
        if (--u->conns == 0 && h->redis)
            hub_cluster_user_locked(h, app, user_id, ulen, false);
        else if (u->conns == 0)
            tell_watchers_locked(h, app, user_id, ulen, u, false);
        user_release(h, app, user_id, ulen, u);
    }
    pthread_mutex_unlock(&h->lock);
}

void
hub_users_terminate(struct hub *h, size_t app, const char *user_id, size_t ulen)
{
    const struct huser *u;

    pthread_mutex_lock(&h->lock);
    u = map_get(&h->apps[app].users, user_id, ulen);
    if (u && u->conns)
        post_user_locked(h, app, user_id, ulen, u, DELIVERY_TERMINATE, NULL);
    pthread_mutex_unlock(&h->lock);
}

void
hub_users_free(struct hub *h)
{
    for (size_t a = 0; a < h->cfg->napps; a++) {
        size_t bucket = 0;
        struct map_node *it = NULL;

        while (map_next(&h->apps[a].users, &bucket, &it))
            user_free(it->val);
        map_clear(&h->apps[a].users);
    }
}
