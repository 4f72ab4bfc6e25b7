/* hub_cluster_users.c - distributed mode: signed-in users are counted in
 * Redis like a channel's members (a user's first and last local
 * connection); their online/offline news comes from Redis on P#ctl, and a
 * watchlist's initial state from a snapshot like a join's (answered from
 * this node's view when it is SNAPSHOT_MS late). P#ctl also brings the
 * fleet's terminate_connections. Does not keep the local registry of users
 * and watchers (hub_users.c). */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster.h"
#include "mem.h"
#include "msg.h"
#include "worker.h"
#include "hub_cluster_int.h"
#include "mn.h"

void
hub_cluster_watch_free(struct cwatch *cw)
{
    for (size_t i = 0; i < cw->n; i++)
        free(cw->ids[i]);
    free(cw->ids);
    free(cw->lens);
    free(cw->user);
    free(cw);
}

void
hub_cluster_user_locked(struct hub *h, size_t app, const char *user, size_t ulen,
                        bool present)
{
    struct cluster_cmd c = {0};

    if (h->redis == NULL || h->cl.leaving)
        return;
    hub_cluster_start(h, &c, "user", false);
    cluster_cmd_user(&c, h->cfg->apps[app].id, user, ulen, present, !h->cl.registered);
    if (hub_cluster_send(h, &c, hub_cluster_on_change, hub_cluster_req(h, "user")) < 0)
        h->cl.resync = true;
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
    hub_cluster_start(h, &c, "watch", false);
    cluster_cmd_watch(&c, h->cfg->apps[app].id, cw->token, ids, lens, n);
    hub_cluster_send(h, &c, hub_cluster_on_change, hub_cluster_req(h, "watch"));
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

void
hub_cluster_watch_snapshot(struct hub *h, uint64_t token, const char *flags, size_t flen)
{
    struct cwatch *cw;
    char key[24];

    snprintf(key, sizeof(key), "%llu", (unsigned long long)token);
    pthread_mutex_lock(&h->lock);
    cw = map_del(&h->cl.watches, key, strlen(key));
    if (cw)
        answer_watch(h, cw, flags, flen);
    pthread_mutex_unlock(&h->lock);
    if (cw)
        hub_cluster_watch_free(cw);
}

void
hub_cluster_ctl(struct hub *h, const char *data, size_t len)
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

void
hub_cluster_watches_expire_locked(struct hub *h, uint64_t now)
{
    size_t bucket = 0;
    struct map_node *it = NULL;

    while (map_next(&h->cl.watches, &bucket, &it)) {
        struct cwatch *cw = it->val;

        if (now - cw->since_ms < SNAPSHOT_MS)
            continue;
        map_del(&h->cl.watches, it->key, it->len);
        answer_watch(h, cw, NULL, 0);
        hub_cluster_watch_free(cw);
        bucket = 0;
        it = NULL;
    }
}
