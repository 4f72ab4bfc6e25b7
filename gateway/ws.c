/* ws.c - Pusher protocol 7 on one WebSocket connection: the handshake checks
 * (path, key, protocol version), socket ids, ping/pong and liveness,
 * subscribe/unsubscribe with signature checks, presence members, cache
 * replay, client events and the authorized-connections timeout. Channel
 * state shared across workers is the hub's; this file keeps the worker-local
 * subscriber vectors. Sign-in is in users.c; writing is in send.c. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "chan.h"
#include "gw.h"
#include "hub.h"
#include "log.h"
#include "mem.h"
#include "msg.h"
#include "sign.h"
#include "mn.h"

/* wchan.since of a subscriber waiting for Redis's SUBSCRIBE (joined_ready) */
#define SINCE_WAITING UINT64_MAX

static atomic_uint socket_seq;
static unsigned socket_base;

/* --- worker-local subscriber vectors --- */

static struct wchan *
wchan_add(struct worker *w, size_t app, const char *chan, size_t clen, struct conn *c,
          uint64_t since, size_t *idx)
{
    bool created;
    struct map_node *node = map_upsert(&w->chans[app], chan, clen, &created);
    struct wchan *wc;

    if (created)
        node->val = xcalloc(1, sizeof(struct wchan));
    wc = node->val;
    if (wc->n == wc->cap) {
        wc->cap = wc->cap ? wc->cap * 2 : 4;
        wc->v = xrealloc(wc->v, wc->cap * sizeof(*wc->v));
        wc->since = xrealloc(wc->since, wc->cap * sizeof(*wc->since));
    }
    *idx = wc->n;
    wc->since[wc->n] = since;
    wc->v[wc->n++] = c;
    return wc;
}

static void
wchan_remove(struct worker *w, size_t app, const char *chan, size_t clen, struct sub *sub)
{
    struct wchan *wc = sub->wc;
    struct conn *moved;

    wc->v[sub->idx] = wc->v[--wc->n];
    wc->since[sub->idx] = wc->since[wc->n];
    if (sub->idx < wc->n) {
        moved = wc->v[sub->idx];
        ((struct sub *)map_get(&moved->subs, chan, clen))->idx = sub->idx;
    }
    if (wc->n == 0) {
        map_del(&w->chans[app], chan, clen);
        free(wc->v);
        free(wc->since);
        free(wc);
    }
}

static void joined_ready(struct worker *w, struct delivery *d);
static void join_refused(struct worker *w, struct delivery *d);

void
ws_deliver(struct worker *w, struct delivery *d)
{
    struct wchan *wc;

    if (d->kind == DELIVERY_READY) {
        joined_ready(w, d);
        return;
    }
    if (d->kind == DELIVERY_REFUSE) {
        join_refused(w, d);
        return;
    }
    if (d->kind != DELIVERY_CHANNEL) {
        users_deliver(w, d);
        return;
    }
    wc = map_get(&w->chans[d->app], d->channel, d->clen);
    if (wc == NULL)
        return;
    /* send_frame may close a slow consumer, which never changes wc here:
     * removal happens in LWS_CALLBACK_CLOSED, outside this loop. */
    for (size_t i = 0; i < wc->n; i++) {
        struct conn *c = wc->v[i];
        if (d->seq <= wc->since[i] ||
            (d->exclude[0] && strcmp(c->socket_id, d->exclude) == 0))
            continue;
        ws_send_frame(c, frame_ref(d->frame));
    }
}

/* --- subscriptions --- */

static void
unsubscribe(struct conn *c, const char *chan, size_t clen)
{
    struct sub *sub = map_get(&c->subs, chan, clen);

    if (sub == NULL)
        return;
    /* chan may be the key of the node map_del frees: use it before that. */
    wchan_remove(c->w, c->app_index, chan, clen, sub);
    hub_unsubscribe(c->w->hub, c->app_index, chan, clen, c->w->index, sub->user_id,
                    sub->id_len);
    map_del(&c->subs, chan, clen);
    free(sub->user_id);
    free(sub);
}

/* A presence subscription of a signed-in connection may omit channel_data:
 * it is then signed as socket_id:channel and the member is the signed-in
 * user (PROTOCOL.md section 6). */
static bool
auth_ok(struct conn *c, const struct msg_in *m, enum chan_kind kind)
{
    const char *parts[3] = {c->socket_id, m->channel, m->channel_data};
    size_t lens[3] = {strlen(c->socket_id), strlen(m->channel),
                      m->channel_data ? strlen(m->channel_data) : 0};
    size_t n = kind == CHAN_PRESENCE && m->channel_data ? 3 : 2;

    if (m->auth == NULL ||
        (kind == CHAN_PRESENCE && m->channel_data == NULL && c->user == NULL))
        return false;
    return sign_check_auth(c->app->key, c->app->secret, m->auth, strlen(m->auth), parts,
                           lens, n);
}

/* Sends subscription_succeeded and, on cache channels, the cached event or
 * pusher:cache_miss right after it, before anything published later. Frees
 * what j holds. */
static void
send_joined(struct conn *c, const char *chan, size_t clen, bool presence,
            struct hub_joined *j)
{
    struct buf out = BUF_INIT;

    msg_subscription_succeeded(&out, chan, clen, presence ? buf_data(&j->presence) : NULL,
                               presence ? j->presence.len : 0);
    ws_send_buf(c, &out);
    if (j->cached) {
        ws_send_frame(c, j->cached);
        j->cached = NULL;
    } else if (j->cache_miss) {
        static const char miss[] = "pusher:cache_miss";

        msg_event(&out, miss, sizeof(miss) - 1, chan, clen, NULL, 0, NULL, 0);
        ws_send_buf(c, &out);
    }
    buf_free(&out);
    buf_free(&j->presence);
}

/* A DELIVERY_READY: Redis subscribed to the channel (or the deadline
 * passed), so its subscribers that wait get subscription_succeeded and
 * what was published after the hub posted d. With an exclude it is one
 * subscriber's snapshot (the cluster's presence and cache channels); the
 * others are channels without a snapshot to take. */
static void
joined_ready(struct worker *w, struct delivery *d)
{
    struct wchan *wc = map_get(&w->chans[d->app], d->channel, d->clen);
    bool presence = chan_kind_of(d->channel, d->clen) == CHAN_PRESENCE;

    if (wc == NULL)
        return;
    if (d->exclude[0]) { /* one subscriber's snapshot (distributed mode) */
        for (size_t i = 0; i < wc->n; i++) {
            if (wc->since[i] != SINCE_WAITING || strcmp(wc->v[i]->socket_id, d->exclude))
                continue;
            wc->since[i] = d->seq;
            ws_send_frame(wc->v[i], frame_ref(d->frame));
            if (d->ptr)
                ws_send_frame(wc->v[i], frame_ref(d->ptr));
            return;
        }
        return;
    }
    for (size_t i = 0; i < wc->n; i++) {
        struct hub_joined j = {0};

        if (wc->since[i] != SINCE_WAITING)
            continue;
        hub_joined_now(w->hub, d->app, d->channel, d->clen, presence, &j);
        /* The hub's seq when it posted d, not now: a publish that reached
         * this worker's inbox behind d (on Redis's pub/sub link) is newer
         * than the confirmation and must not be skipped. */
        wc->since[i] = d->seq;
        send_joined(wc->v[i], d->channel, d->clen, presence, &j);
    }
}

/* A DELIVERY_REFUSE: the presence channel was full fleet-wide when the
 * waiting subscriber joined (Redis said so): refused as the local check
 * would have, and unsubscribed. */
static void
join_refused(struct worker *w, struct delivery *d)
{
    struct wchan *wc = map_get(&w->chans[d->app], d->channel, d->clen);

    for (size_t i = 0; wc && i < wc->n; i++) {
        struct conn *c = wc->v[i];
        char msg[64];

        if (wc->since[i] != SINCE_WAITING || strcmp(c->socket_id, d->exclude) != 0)
            continue;
        snprintf(msg, sizeof(msg), "Presence channel is full (%u members)",
                 c->app->max_presence_members);
        ws_send_sub_error(c, d->channel, d->clen, "LimitReached", msg, 403);
        unsubscribe(c, d->channel, d->clen); /* changes wc: stop here */
        return;
    }
}

static void
subscribe(struct conn *c, const struct msg_in *m)
{
    const struct mn_app *app = c->app;
    struct msg_member member = {0};
    struct hub_member hm, *hmp = NULL;
    struct hub_joined joined = {0};
    struct mn_err err = {0};
    enum chan_kind kind;
    struct sub *sub;
    size_t clen;
    bool created;

    if (m->channel == NULL) {
        ws_send_error(c, -1, "pusher:subscribe needs a channel");
        return;
    }
    clen = strlen(m->channel);
    kind = chan_kind_of(m->channel, clen);
    if (kind == CHAN_INVALID) {
        ws_send_error(
            c, -1, "Invalid channel name: use at most 164 of A-Z a-z 0-9 _ - = @ , . ;");
        return;
    }
    if (map_get(&c->subs, m->channel, clen)) {
        ws_send_error(c, -1, "Already subscribed to this channel");
        return;
    }
    if (c->subs.count >= app->max_subscriptions) {
        ws_send_sub_error(c, m->channel, clen, "LimitReached",
                          "Too many subscriptions on this connection", 403);
        return;
    }
    if (kind == CHAN_USER && !users_may_subscribe(c, m->channel, clen)) {
        ws_send_sub_error(c, m->channel, clen, "AuthError",
                          "Only a connection signed in as this user may subscribe", 403);
        return;
    }
    if (chan_kind_needs_auth(kind) && !auth_ok(c, m, kind)) {
        ws_send_sub_error(c, m->channel, clen, "AuthError",
                          m->auth
                              ? "Invalid signature: expected HMAC SHA256 hex digest of "
                                "socket_id:channel[:channel_data]"
                              : "Missing auth for a private or presence channel",
                          401);
        return;
    }
    if (kind == CHAN_PRESENCE) {
        if (m->channel_data == NULL) {
            users_member(c, &member); /* auth_ok made sure c is signed in */
        } else if (msg_parse_member(m->channel_data, strlen(m->channel_data), "user_id",
                                    app->max_user_id_len, app->max_user_info_bytes,
                                    &member, &err) < 0) {
            ws_send_sub_error(c, m->channel, clen, "InvalidChannelData", err.msg, 400);
            return;
        }
        hm.user_id = member.user_id;
        hm.id_len = strlen(member.user_id);
        hm.info = member.user_info;
        hm.info_len = member.info_len;
        hmp = &hm;
    }
    if (hub_subscribe(c->w->hub, c->app_index, m->channel, clen, c->w->index, hmp,
                      c->socket_id, &joined, &err) < 0) {
        ws_send_sub_error(c, m->channel, clen, "LimitReached", err.msg, 403);
        msg_member_free(&member);
        buf_free(&joined.presence);
        return;
    }
    if (chan_kind_needs_auth(kind))
        c->authorized = true;
    sub = xcalloc(1, sizeof(*sub));
    /* Waiting for Redis: nothing reaches it before its subscription_succeeded
     * (joined_ready). */
    sub->wc = wchan_add(c->w, c->app_index, m->channel, clen, c,
                        joined.pending ? SINCE_WAITING : joined.seq, &sub->idx);
    if (hmp) {
        sub->user_id = member.user_id;
        sub->id_len = hm.id_len;
        member.user_id = NULL;
    }
    map_upsert(&c->subs, m->channel, clen, &created)->val = sub;
    if (joined.pending) {
        buf_free(&joined.presence);
        frame_unref(joined.cached);
    } else {
        send_joined(c, m->channel, clen, hmp != NULL, &joined);
    }
    msg_member_free(&member);
}

/* --- client events --- */

static bool
rate_ok(struct conn *c)
{
    uint64_t now = mn_now_ms();

    if (now - c->rate_window_ms >= 1000) {
        c->rate_window_ms = now;
        c->rate_count = 0;
    }
    return ++c->rate_count <= c->app->client_event_rate;
}

/* The client_event webhook: socket_id of the sender, user_id on presence. */
static void
client_event_hook(struct conn *c, const struct msg_in *m, size_t clen,
                  const struct sub *sub)
{
    struct webhook_event ev = {0};

    ev.kind = WEBHOOK_CLIENT_EVENT;
    ev.channel = m->channel;
    ev.clen = clen;
    ev.event = m->event;
    ev.elen = strlen(m->event);
    ev.data = m->data;
    ev.dlen = m->data_len;
    ev.socket_id = c->socket_id;
    ev.user_id = sub->user_id;
    ev.ulen = sub->id_len;
    hub_webhook(c->w->hub, c->app_index, &ev);
}

static void
client_event(struct conn *c, const struct msg_in *m)
{
    size_t elen = strlen(m->event), clen;
    struct sub *sub;
    enum chan_kind kind;
    struct buf b = BUF_INIT;
    struct frame *f;

    if (!c->app->client_events) {
        ws_send_error(c, -1, "Client events are not enabled for this app");
        return;
    }
    if (m->channel == NULL ||
        (sub = map_get(&c->subs, m->channel, clen = strlen(m->channel))) == NULL) {
        ws_send_error(c, -1, "Client event rejected: not subscribed to the channel");
        return;
    }
    kind = chan_kind_of(m->channel, clen);
    if (kind != CHAN_PRIVATE && kind != CHAN_PRESENCE) {
        ws_send_error(c, -1,
                      "Client events are only allowed on private and presence channels");
        return;
    }
    if (!chan_event_name_ok(m->event, elen)) {
        ws_send_error(c, -1, "Invalid event name");
        return;
    }
    if (m->data_len > c->app->max_event_bytes) {
        ws_send_error(c, -1, "Client event data too large");
        return;
    }
    if (!rate_ok(c)) {
        ws_send_error(c, 4301, "Client event rate limit exceeded: at most 10 per second");
        return;
    }
    msg_event(&b, m->event, elen, m->channel, clen, m->data ? m->data : "",
              m->data ? m->data_len : 0, sub->user_id, sub->id_len);
    f = frame_new(buf_data(&b), b.len);
    buf_free(&b);
    hub_publish(c->w->hub, c->app_index, m->channel, clen, f, c->socket_id);
    frame_unref(f);
    client_event_hook(c, m, clen, sub);
}

static void
on_message(struct conn *c, const char *text, size_t len)
{
    struct msg_in m = {0};
    struct mn_err err = {0};
    struct buf b = BUF_INIT;

    if (msg_parse(text, len, &m, &err) < 0) {
        ws_send_error(c, -1, err.msg);
        return;
    }
    if (strcmp(m.event, "pusher:ping") == 0) {
        msg_pong(&b);
        ws_send_buf(c, &b);
    } else if (strcmp(m.event, "pusher:pong") == 0) {
        /* liveness already recorded */
    } else if (strcmp(m.event, "pusher:subscribe") == 0) {
        subscribe(c, &m);
    } else if (strcmp(m.event, "pusher:signin") == 0) {
        users_signin(c, &m);
    } else if (strcmp(m.event, "pusher:unsubscribe") == 0) {
        if (m.channel)
            unsubscribe(c, m.channel, strlen(m.channel));
    } else if (chan_is_client_event(m.event, strlen(m.event))) {
        client_event(c, &m);
    } else {
        ws_send_error(c, -1, "Unsupported event");
    }
    buf_free(&b);
    msg_in_free(&m);
}

/* --- connection lifecycle --- */

/* The value of query parameter name, copied into out; false when absent. */
static bool
query_param(struct lws *wsi, const char *name, char *out, int outlen)
{
    size_t nlen = strlen(name);
    char frag[128];

    out[0] = '\0';
    for (int i = 0;
         lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) > 0;
         i++) {
        if (strncmp(frag, name, nlen) == 0 && frag[nlen] == '=') {
            size_t n = strlen(frag + nlen + 1);
            if (n >= (size_t)outlen)
                return true; /* too long to be valid: an empty value fails the check */
            memcpy(out, frag + nlen + 1, n + 1);
            return true;
        }
    }
    return false;
}

/* Checks the path and protocol; 0, or a Pusher close code with *why. */
static int
check_handshake(struct conn *c, const char **why)
{
    char path[256], proto[32];
    const char *key;
    long version;
    char *end;
    int n = lws_hdr_copy(c->wsi, path, sizeof(path), WSI_TOKEN_GET_URI);

    if (n <= 5 || strncmp(path, "/app/", 5) != 0 || strchr(path + 5, '/')) {
        *why = "Path not found: connect to /app/APP_KEY";
        return 4005;
    }
    key = path + 5;
    c->app = config_app_by_key(c->w->cfg, key, strlen(key));
    if (c->app == NULL) {
        *why = "Application does not exist";
        return 4001;
    }
    c->app_index = (size_t)(c->app - c->w->cfg->apps);
    if (!c->app->enabled) {
        *why = "Application disabled";
        return 4003;
    }
    if (!query_param(c->wsi, "protocol", proto, sizeof(proto))) {
        *why = "No protocol version supplied";
        return 4008;
    }
    version = strtol(proto, &end, 10);
    if (end == proto || *end != '\0') {
        *why = "Invalid version string format";
        return 4006;
    }
    if (version < 4 || version > 7) {
        *why = "Unsupported protocol version";
        return 4007;
    }
    return 0;
}

static void
established(struct lws *wsi, struct session *s)
{
    struct worker *w = lws_context_user(lws_get_context(wsi));
    struct conn *c = xcalloc(1, sizeof(*c));
    struct buf b = BUF_INIT;
    const char *why = NULL;
    int code;

    c->wsi = wsi;
    c->w = w;
    c->last_rx_ms = c->opened_ms = mn_now_ms();
    snprintf(c->socket_id, sizeof(c->socket_id), "%u.%u", socket_base,
             atomic_fetch_add(&socket_seq, 1) + 1);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    s->conn = c;

    code = check_handshake(c, &why);
    sweep_add(w, c); /* after the handshake named the app and its timeouts */
    if (code == 0 && hub_conn_open(w->hub, c->app_index, &code) == 0)
        c->counted = true;
    else if (code == 4004)
        why = "Application is over its connection quota";
    else if (code == 4100)
        why = "Over capacity";
    if (code) {
        ws_send_error(c, code, why);
        ws_close(c, code, why);
        return;
    }
    msg_connection_established(&b, c->socket_id, w->cfg->activity_timeout);
    ws_send_buf(c, &b);
    buf_free(&b);
}

static void
closed(struct conn *c)
{
    struct worker *w = c->w;
    struct map_node *it = NULL;
    size_t bucket = 0;

    /* Unsubscribe everything: collect the names first, the map changes. */
    while (c->subs.count) {
        bucket = 0;
        it = NULL;
        it = map_next(&c->subs, &bucket, &it);
        unsubscribe(c, it->key, it->len);
    }
    map_clear(&c->subs);
    users_conn_closed(c);
    if (c->counted)
        hub_conn_close(w->hub, c->app_index);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    sweep_remove(c);
    for (struct conn **pp = &w->dirty; c->in_dirty && *pp; pp = &(*pp)->dirty_next) {
        if (*pp == c) {
            *pp = c->dirty_next;
            break;
        }
    }
    sendq_clear(&c->q);
    buf_free(&c->rx);
    free(c);
}

static int
receive(struct conn *c, const char *in, size_t len)
{
    const struct mn_config *cfg = c->w->cfg;
    struct lws *wsi = c->wsi;

    c->last_rx_ms = mn_now_ms();
    c->ping_sent_ms = 0;
    if (c->close_code)
        return 0;
    if (lws_frame_is_binary(wsi)) {
        static const char msg[] = "Binary frames are not supported";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, (unsigned char *)msg,
                         sizeof(msg) - 1);
        return -1;
    }
    if (len > cfg->max_message_bytes - c->rx.len) {
        static const char msg[] = "Message too large";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)msg,
                         sizeof(msg) - 1);
        return -1;
    }
    if (c->rx.len == 0 && lws_is_final_fragment(wsi) && lws_is_first_fragment(wsi)) {
        on_message(c, in, len);
        return 0;
    }
    buf_append(&c->rx, in, len);
    if (lws_is_final_fragment(wsi)) {
        on_message(c, buf_data(&c->rx), c->rx.len);
        buf_free(&c->rx);
    }
    return 0;
}

int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, struct session *s,
            void *in, size_t len)
{
    if (s == NULL)
        return reason == LWS_CALLBACK_CLOSED ? 0 : -1;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        if (socket_base == 0)
            socket_base = (unsigned)(mn_now_ms() % 1000000000u) + 1;
        established(wsi, s);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return s->conn ? receive(s->conn, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return s->conn ? ws_on_writeable(s->conn) : -1;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* lws writes the close reply itself: no more frames after it. */
        if (s->conn)
            s->conn->peer_close = true;
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (s->conn)
            closed(s->conn);
        s->conn = NULL;
        return 0;
    default:
        return 0;
    }
}

void
ws_close_all(struct worker *w, int code, const char *why)
{
    for (struct conn *c = w->conns; c; c = c->next)
        ws_close(c, code, why);
}
