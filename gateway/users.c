/* users.c - user sign-in on one connection (pusher:signin with
 * <socket_id>::user::<user_data> signed), the #server-to-user-{id} channel
 * rule, the signed-in member used by presence subscriptions without
 * channel_data, the watchlist a sign-in starts, and each worker's index of
 * its signed-in connections by user id, which DELIVERY_USER (watchlist
 * events) and DELIVERY_TERMINATE (terminate_connections) walk. The
 * process-wide registry of users is the hub's (hub_users.c). */
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "gw.h"
#include "hub.h"
#include "log.h"
#include "mem.h"
#include "msg.h"
#include "sign.h"
#include "mn.h"

/* Pusher's watchlist limit: the first 100 ids are watched, more is 4302. */
#define WATCHLIST_MAX 100
/* Pusher does not document the code for terminate_connections; soketi and
 * Sockudo close with 4009 (pusher-js then stays disconnected until the app
 * connects again, which fits an app that kicks a user). */
#define TERMINATE_CODE 4009

struct conn_user {
    char *id;
    size_t id_len;
    char *info; /* user_info JSON text ("null" when absent) */
    size_t info_len;
    char **watch; /* the accepted watchlist, distinct ids */
    size_t *watch_lens;
    size_t nwatch;
    size_t idx;     /* position in the worker's struct wuser */
    uint64_t since; /* deliveries with seq <= since predate the sign-in */
};

/* The connections of one worker signed in as one user. */
struct wuser {
    struct conn **v;
    size_t n, cap;
};

/* --- the worker's index --- */

static void
index_add(struct worker *w, struct conn *c)
{
    struct conn_user *u = c->user;
    struct map_node *node;
    struct wuser *wu;
    bool created;

    if (w->users == NULL)
        w->users = xcalloc(w->cfg->napps, sizeof(*w->users));
    node = map_upsert(&w->users[c->app_index], u->id, u->id_len, &created);
    if (created)
        node->val = xcalloc(1, sizeof(struct wuser));
    wu = node->val;
    if (wu->n == wu->cap) {
        wu->cap = wu->cap ? wu->cap * 2 : 2;
        wu->v = xrealloc(wu->v, wu->cap * sizeof(*wu->v));
    }
    u->idx = wu->n;
    wu->v[wu->n++] = c;
}

static void
index_remove(struct worker *w, struct conn *c)
{
    struct conn_user *u = c->user;
    struct map *users = &w->users[c->app_index];
    struct wuser *wu = map_get(users, u->id, u->id_len);

    wu->v[u->idx] = wu->v[--wu->n];
    if (u->idx < wu->n)
        wu->v[u->idx]->user->idx = u->idx;
    if (wu->n == 0) {
        map_del(users, u->id, u->id_len);
        free(wu->v);
        free(wu);
    }
}

void
users_worker_free(struct worker *w)
{
    if (w->users == NULL)
        return;
    for (size_t a = 0; a < w->cfg->napps; a++) {
        size_t bucket = 0;
        struct map_node *it = NULL;

        while (map_next(&w->users[a], &bucket, &it)) {
            struct wuser *wu = it->val;
            free(wu->v);
            free(wu);
        }
        map_clear(&w->users[a]);
    }
    free(w->users);
    w->users = NULL;
}

void
users_deliver(struct worker *w, struct delivery *d)
{
    struct wuser *wu = w->users ? map_get(&w->users[d->app], d->channel, d->clen) : NULL;

    if (wu == NULL)
        return;
    if (d->kind == DELIVERY_TERMINATE)
        log_info("gateway: terminating user connections app=%s user=%s count=%zu",
                 w->cfg->apps[d->app].id, d->channel, wu->n);
    /* Neither call changes wu: a closed connection leaves the index only in
     * LWS_CALLBACK_CLOSED, outside this loop. */
    for (size_t i = 0; i < wu->n; i++) {
        /* exclude names the one connection meant (a watchlist snapshot). */
        if (d->seq <= wu->v[i]->user->since ||
            (d->exclude[0] && strcmp(wu->v[i]->socket_id, d->exclude) != 0))
            continue;
        if (d->kind == DELIVERY_TERMINATE)
            ws_close(wu->v[i], TERMINATE_CODE,
                     "Connection terminated by the application");
        else
            ws_send_frame(wu->v[i], frame_ref(d->frame));
    }
}

/* --- sign-in --- */

static bool
signin_auth_ok(const struct conn *c, const struct msg_in *m)
{
    const char *parts[5] = {c->socket_id, "", "user", "", m->user_data};
    size_t lens[5] = {strlen(c->socket_id), 0, 4, 0, strlen(m->user_data)};

    return sign_check_auth(c->app->key, c->app->secret, m->auth, strlen(m->auth), parts,
                           lens, 5);
}

/* Takes the distinct ids of wl into u (wl keeps the duplicates to free). */
static void
take_watchlist(struct conn_user *u, struct msg_watchlist *wl)
{
    struct map seen = MAP_INIT;

    u->watch = xcalloc(wl->n, sizeof(*u->watch));
    u->watch_lens = xcalloc(wl->n, sizeof(*u->watch_lens));
    for (size_t i = 0; i < wl->n; i++) {
        size_t len = strlen(wl->ids[i]);
        bool created;

        map_upsert(&seen, wl->ids[i], len, &created);
        if (!created)
            continue;
        u->watch[u->nwatch] = wl->ids[i];
        u->watch_lens[u->nwatch++] = len;
        wl->ids[i] = NULL;
    }
    map_clear(&seen);
}

static void
user_free(struct conn_user *u)
{
    for (size_t i = 0; i < u->nwatch; i++)
        free(u->watch[i]);
    free(u->watch);
    free(u->watch_lens);
    free(u->id);
    free(u->info);
    free(u);
}

/* A second pusher:signin on a signed-in connection: the same user may sign
 * in again (new user_info for later presence subscriptions; the watchlist
 * stays), another user is refused. */
static void
signin_again(struct conn *c, const struct msg_in *m, struct msg_member *member)
{
    struct conn_user *u = c->user;
    struct buf b = BUF_INIT;

    if (strlen(member->user_id) != u->id_len ||
        memcmp(member->user_id, u->id, u->id_len) != 0) {
        ws_send_error(c, 4009, "This connection is already signed in as another user");
        return;
    }
    free(u->info);
    u->info = member->user_info;
    u->info_len = member->info_len;
    member->user_info = NULL;
    msg_signin_success(&b, m->user_data, strlen(m->user_data));
    ws_send_buf(c, &b);
    buf_free(&b);
}

void
users_signin(struct conn *c, const struct msg_in *m)
{
    const struct mn_app *app = c->app;
    struct msg_member member = {0};
    struct msg_watchlist wl = {0};
    struct mn_err err = {0};
    struct buf b = BUF_INIT, wb = BUF_INIT;
    struct conn_user *u;

    if (m->auth == NULL || m->user_data == NULL) {
        ws_send_error(c, 4009, "pusher:signin needs auth and user_data");
        return;
    }
    if (!signin_auth_ok(c, m)) {
        ws_send_error(c, 4009,
                      "Invalid signature: expected HMAC SHA256 hex digest of "
                      "socket_id::user::user_data");
        return;
    }
    if (msg_parse_member(m->user_data, strlen(m->user_data), "id", app->max_user_id_len,
                         app->max_user_info_bytes, &member, &err) < 0) {
        ws_send_error(c, -1, err.msg);
        return;
    }
    if (c->user) {
        signin_again(c, m, &member);
        goto done;
    }
    if (app->watchlist_events &&
        msg_parse_watchlist(m->user_data, strlen(m->user_data), WATCHLIST_MAX,
                            app->max_user_id_len, &wl, &err) < 0) {
        ws_send_error(c, -1, err.msg);
        goto done;
    }
    u = xcalloc(1, sizeof(*u));
    u->id = member.user_id;
    u->id_len = strlen(member.user_id);
    u->info = member.user_info;
    u->info_len = member.info_len;
    member = (struct msg_member){0};
    take_watchlist(u, &wl);
    c->user = u;
    c->authorized = true;
    index_add(c->w, c);

    /* The hub knows the user before the client hears signin_success, so a
     * REST call the client makes on hearing it (terminate_connections,
     * sendToUser) finds it. The watchlist's state is built under the hub
     * lock with the sign-in and queued right after signin_success, before
     * any later change can reach this connection (those come through this
     * worker's inbox, drained after this callback). */
    u->since = hub_users_signin(c->w->hub, c->app_index, u->id, u->id_len, c->w->index,
                                c->socket_id, (const char *const *)u->watch,
                                u->watch_lens, u->nwatch, &wb);
    msg_signin_success(&b, m->user_data, strlen(m->user_data));
    ws_send_buf(c, &b);
    if (wb.len)
        ws_send_buf(c, &wb);
    if (wl.total > WATCHLIST_MAX)
        ws_send_error(c, 4302,
                      "Watchlist over 100 user ids: only the first 100 are watched");
    log_debug("gateway: signed in app=%s socket=%s user=%s watchlist=%zu", app->id,
              c->socket_id, u->id, u->nwatch);
done:
    buf_free(&b);
    buf_free(&wb);
    msg_member_free(&member);
    msg_watchlist_free(&wl);
}

void
users_conn_closed(struct conn *c)
{
    struct conn_user *u = c->user;

    if (u == NULL)
        return;
    index_remove(c->w, c);
    hub_users_signout(c->w->hub, c->app_index, u->id, u->id_len, c->w->index,
                      (const char *const *)u->watch, u->watch_lens, u->nwatch);
    user_free(u);
    c->user = NULL;
}

/* --- what sign-in allows --- */

bool
users_may_subscribe(const struct conn *c, const char *chan, size_t clen)
{
    static const size_t plen = sizeof(CHAN_USER_PREFIX) - 1;
    const struct conn_user *u = c->user;

    return u && clen == plen + u->id_len && memcmp(chan, CHAN_USER_PREFIX, plen) == 0 &&
           memcmp(chan + plen, u->id, u->id_len) == 0;
}

bool
users_member(const struct conn *c, struct msg_member *out)
{
    const struct conn_user *u = c->user;

    if (u == NULL)
        return false;
    out->user_id = xstrndup(u->id, u->id_len);
    out->user_info = xstrndup(u->info, u->info_len);
    out->info_len = u->info_len;
    return true;
}
