/* webhook.c - the webhook sender thread (docs/architecture.md, "Webhooks").
 * Other threads post events into a mutex-guarded inbox; this thread's libuv
 * loop does the rest: channel_vacated and member_removed wait 3 s and are
 * dropped together with the channel_occupied / member_added that comes back
 * within that time (Pusher suppresses the pair); cache_miss is sent once per
 * channel per 5 s; events go to each receiver of the app that wants them,
 * one per request or batched (webhook-batching); requests that fail or time
 * out are retried with exponential back-off for 5 minutes; every queue is
 * bounded and what is dropped is counted and logged. The HTTP exchange is
 * webhook_http.c (TLS for https:// receivers webhook_tls.c, whose contexts
 * are made here at start), the bytes webhook_msg.c. Does not decide when a
 * transition happened (the hub does, under its lock). */
#include "webhook.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "log.h"
#include "map.h"
#include "mem.h"
#include "sign.h"
#include "webhook_http.h"
#include "webhook_tls.h"
#include "mn.h"

#define INBOX_MAX 100000    /* events posted, not yet taken by the thread */
#define QUEUE_MAX 10000     /* events per receiver not yet delivered */
#define DELAY_MS 3000       /* channel_vacated, member_removed */
#define MISS_WINDOW_MS 5000 /* one cache_miss per channel per window */
#define BATCH_MS 50         /* webhook-batching: longest wait of a pending event */
#define BATCH_MAX 100       /* webhook-batching: events per request */
#define TIMEOUT_MS 5000     /* one request, connect to status line */
#define RETRY_FIRST_MS 1000 /* then doubled per attempt */
#define RETRY_MAX_MS 60000
#define RETRY_FOR_MS (5u * 60 * 1000) /* from the first attempt */
#define INFLIGHT_MAX 4                /* requests at once per receiver */
#define TICK_MS 25
#define DROP_LOG_MS 10000 /* at most one drop line per receiver per 10 s */

/* One posted event. */
struct item {
    struct item *next;
    size_t app;
    enum webhook_kind kind;
    uint64_t due_ms; /* delayed kinds: when it is sent */
    bool cancelled;  /* delayed and cancelled: freed when its turn comes */
    bool settled;    /* webhook_event.settled: no delay, pair or de-duplication */
    char *key;       /* pair key: 'c' channel, or 'm' channel '\0' user id */
    size_t key_len;
    char *json; /* the event object */
    size_t len;
};

/* One request to one receiver, kept whole for its retries. */
struct req {
    struct req *next;
    size_t nevents;
    char *text;
    size_t len;
    uint64_t first_ms, next_ms;
    unsigned attempts;
};

struct target {
    struct webhook *wh;
    size_t app;
    const struct mn_webhook *hook;
    /* https: wh->tls_system, or own_tls (from the receiver's ca-file) */
    struct webhook_tls_ctx *tls, *own_tls;
    struct buf batch; /* event objects joined by ',' */
    size_t batch_n;
    uint64_t batch_ms;
    struct req *ready, **ready_tail; /* to send now, in order */
    struct req *retry;               /* waiting for next_ms */
    size_t queued;                   /* events not yet delivered or dropped */
    unsigned inflight;
    bool failing;
    uint64_t dropped, dropped_logged, drop_log_ms;
};

struct flight {
    struct flight *prev, *next;
    struct target *t;
    struct req *r;
    struct webhook_http *x;
};

struct webhook {
    const struct mn_config *cfg;
    pthread_t thread;
    bool started;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    pthread_mutex_t lock; /* guards inbox..stop */
    struct item *inbox, **inbox_tail;
    size_t inbox_n;
    uint64_t inbox_dropped;
    bool stop;
    /* the thread's own state from here on */
    struct target *targets;
    size_t ntargets;
    /* the system's CA store, for https receivers without a ca-file */
    struct webhook_tls_ctx *tls_system;
    size_t *first;       /* per app: its first target */
    unsigned *wants;     /* per app: union of its receivers' events */
    struct map *delayed; /* per app: pair key -> struct item in the delay queue */
    struct map *missed;  /* per app: channel -> last cache_miss ms (uintptr_t) */
    struct item *delay_head, **delay_tail;
    struct flight *flights;
    uint64_t inbox_dropped_logged, miss_purge_ms;
};

static void
item_free(struct item *it)
{
    free(it->key);
    free(it->json);
    free(it);
}

static void
req_free(struct req *r)
{
    free(r->text);
    free(r);
}

static uint64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- what the other threads call --- */

bool
webhook_wanted(const struct webhook *wh, size_t app, enum webhook_kind kind)
{
    unsigned bits = 1u << kind;

    if (wh == NULL)
        return false;
    /* The opening half of a pair is needed to cancel a delayed closing half,
     * even for receivers that only want the closing half. */
    if (kind == WEBHOOK_CHANNEL_OCCUPIED)
        bits |= 1u << WEBHOOK_CHANNEL_VACATED;
    else if (kind == WEBHOOK_MEMBER_ADDED)
        bits |= 1u << WEBHOOK_MEMBER_REMOVED;
    return (wh->wants[app] & bits) != 0;
}

static void
set_key(struct item *it, const struct webhook_event *ev)
{
    bool member = ev->kind == WEBHOOK_MEMBER_ADDED || ev->kind == WEBHOOK_MEMBER_REMOVED;
    size_t n = 1 + ev->clen + (member ? 1 + ev->ulen : 0);

    it->key = xmalloc(n + 1);
    it->key[0] = member ? 'm' : 'c';
    memcpy(it->key + 1, ev->channel, ev->clen);
    if (member) {
        it->key[1 + ev->clen] = '\0';
        memcpy(it->key + 2 + ev->clen, ev->user_id, ev->ulen);
    }
    it->key[n] = '\0';
    it->key_len = n;
}

void
webhook_post(struct webhook *wh, size_t app, const struct webhook_event *ev)
{
    struct item *it;
    struct buf b = BUF_INIT;

    if (!webhook_wanted(wh, app, ev->kind))
        return;
    it = xcalloc(1, sizeof(*it));
    it->app = app;
    it->kind = ev->kind;
    it->settled = ev->settled;
    set_key(it, ev);
    webhook_msg_event(&b, ev);
    it->len = b.len;
    it->json = buf_steal(&b);
    pthread_mutex_lock(&wh->lock);
    if (wh->stop || wh->inbox_n >= INBOX_MAX) {
        wh->inbox_dropped++;
        pthread_mutex_unlock(&wh->lock);
        item_free(it);
        return;
    }
    *wh->inbox_tail = it;
    wh->inbox_tail = &it->next;
    wh->inbox_n++;
    pthread_mutex_unlock(&wh->lock);
    uv_async_send(&wh->wake);
}

/* --- sending, on the thread --- */

static void note_drop(struct target *t, size_t n, const char *why);
static void kick(struct target *t);

static void
on_sent(void *arg, int status, const char *why)
{
    struct flight *f = arg;
    struct target *t = f->t;
    struct webhook *wh = t->wh;
    struct req *r = f->r;
    uint64_t now = uv_now(&wh->loop), wait;

    if (f->prev)
        f->prev->next = f->next;
    else
        wh->flights = f->next;
    if (f->next)
        f->next->prev = f->prev;
    free(f);
    t->inflight--;
    if (status >= 200 && status < 300) {
        if (t->failing)
            log_info("webhook: receiver answers again app=%s host=%s port=%u",
                     wh->cfg->apps[t->app].id, t->hook->host, t->hook->port);
        t->failing = false;
        t->queued -= r->nevents;
        req_free(r);
    } else if (status == WEBHOOK_HTTP_CANCELLED) {
        t->queued -= r->nevents;
        req_free(r); /* counted by the caller (stopping) */
        return;
    } else {
        if (!t->failing)
            log_warn("webhook: receiver failing app=%s host=%s port=%u status=%d "
                     "error=%s (retrying with back-off)",
                     wh->cfg->apps[t->app].id, t->hook->host, t->hook->port, status,
                     why[0] ? why : "HTTP status");
        t->failing = true;
        wait = r->attempts < 7 ? (uint64_t)RETRY_FIRST_MS << r->attempts : RETRY_MAX_MS;
        if (wait > RETRY_MAX_MS)
            wait = RETRY_MAX_MS;
        r->attempts++;
        if (now + wait - r->first_ms > RETRY_FOR_MS) {
            t->queued -= r->nevents;
            note_drop(t, r->nevents, "retried for 5 minutes");
            req_free(r);
        } else {
            r->next_ms = now + wait;
            r->next = t->retry;
            t->retry = r;
        }
    }
    kick(t);
}

/* Starts requests from t's ready queue while fewer than INFLIGHT_MAX run. */
static void
kick(struct target *t)
{
    struct webhook *wh = t->wh;

    while (t->inflight < INFLIGHT_MAX && t->ready != NULL) {
        struct flight *f = xcalloc(1, sizeof(*f));
        struct req *r = t->ready;

        t->ready = r->next;
        if (t->ready == NULL)
            t->ready_tail = &t->ready;
        r->next = NULL;
        f->t = t;
        f->r = r;
        f->next = wh->flights;
        if (wh->flights)
            wh->flights->prev = f;
        wh->flights = f;
        t->inflight++;
        f->x = webhook_http_post(&wh->loop, t->hook->host, t->hook->port, t->tls, r->text,
                                 r->len, TIMEOUT_MS, on_sent, f);
    }
}

/* Makes the request carrying events[0..len) (n event objects) for t. */
static void
make_req(struct target *t, const char *events, size_t len, size_t n)
{
    const struct mn_app *a = &t->wh->cfg->apps[t->app];
    struct webhook_url u = {
        t->hook->tls,  t->hook->host_header, strlen(t->hook->host_header),
        t->hook->port, t->hook->path,        strlen(t->hook->path)};
    struct buf body = BUF_INIT, text = BUF_INIT;
    char sig[SIGN_HEX_LEN + 1];
    struct req *r = xcalloc(1, sizeof(*r));

    webhook_msg_body(&body, wall_ms(), events, len);
    sign_hmac_hex(a->secret, strlen(a->secret), buf_data(&body), body.len, sig);
    webhook_msg_request(&text, &u, a->key, sig, buf_data(&body), body.len);
    buf_free(&body);
    r->nevents = n;
    r->len = text.len;
    r->text = buf_steal(&text);
    r->first_ms = r->next_ms = uv_now(&t->wh->loop);
    *t->ready_tail = r;
    t->ready_tail = &r->next;
}

static void
flush_batch(struct target *t)
{
    if (t->batch_n == 0)
        return;
    make_req(t, buf_data(&t->batch), t->batch.len, t->batch_n);
    buf_reset(&t->batch);
    t->batch_n = 0;
}

/* Hands one event to every receiver of its app that wants it. */
static void
dispatch(struct webhook *wh, const struct item *it)
{
    const struct mn_app *a = &wh->cfg->apps[it->app];

    for (size_t i = 0; i < a->nwebhooks; i++) {
        struct target *t = &wh->targets[wh->first[it->app] + i];

        if (!(t->hook->events & (1u << it->kind)))
            continue;
        if (t->queued >= QUEUE_MAX) {
            note_drop(t, 1, "queue full");
            continue;
        }
        t->queued++;
        if (!a->webhook_batching) {
            make_req(t, it->json, it->len, 1);
        } else {
            if (t->batch_n++ > 0)
                buf_putc(&t->batch, ',');
            else
                t->batch_ms = uv_now(&wh->loop);
            buf_append(&t->batch, it->json, it->len);
            if (t->batch_n == BATCH_MAX)
                flush_batch(t);
        }
        kick(t);
    }
}

static void
note_drop(struct target *t, size_t n, const char *why)
{
    uint64_t now = uv_now(&t->wh->loop);

    t->dropped += n;
    if (now - t->drop_log_ms < DROP_LOG_MS && t->drop_log_ms != 0)
        return;
    log_warn("webhook: events dropped app=%s host=%s port=%u reason=%s dropped=%llu "
             "total=%llu",
             t->wh->cfg->apps[t->app].id, t->hook->host, t->hook->port, why,
             (unsigned long long)(t->dropped - t->dropped_logged),
             (unsigned long long)t->dropped);
    t->dropped_logged = t->dropped;
    t->drop_log_ms = now;
}

/* --- pairs, delays and de-duplication --- */

/* An event taken from the inbox. Takes it. */
static void
accept_item(struct webhook *wh, struct item *it)
{
    struct map *delayed = &wh->delayed[it->app];
    uint64_t now = uv_now(&wh->loop);
    struct item *pending;
    struct map_node *node;
    bool created;

    switch (it->settled ? WEBHOOK_KIND_COUNT : it->kind) {
    case WEBHOOK_CHANNEL_VACATED:
    case WEBHOOK_MEMBER_REMOVED:
        it->due_ms = now + DELAY_MS;
        node = map_upsert(delayed, it->key, it->key_len, &created);
        if (!created) /* cannot happen in order; keep the newest */
            ((struct item *)node->val)->cancelled = true;
        node->val = it;
        *wh->delay_tail = it;
        wh->delay_tail = &it->next;
        return;
    case WEBHOOK_CHANNEL_OCCUPIED:
    case WEBHOOK_MEMBER_ADDED:
        /* Back within the delay: neither half of the pair is sent. */
        if ((pending = map_del(delayed, it->key, it->key_len)) != NULL) {
            pending->cancelled = true;
            item_free(it);
            return;
        }
        break;
    case WEBHOOK_CACHE_MISS:
        node = map_upsert(&wh->missed[it->app], it->key, it->key_len, &created);
        if (!created && now - (uint64_t)(uintptr_t)node->val < MISS_WINDOW_MS) {
            item_free(it);
            return;
        }
        node->val = (void *)(uintptr_t)now;
        break;
    default:
        break;
    }
    dispatch(wh, it);
    item_free(it);
}

/* Sends the delayed events that are due; frees the cancelled ones. */
static void
release_delayed(struct webhook *wh, uint64_t now)
{
    struct item *it;

    while ((it = wh->delay_head) != NULL && (it->cancelled || it->due_ms <= now)) {
        wh->delay_head = it->next;
        if (wh->delay_head == NULL)
            wh->delay_tail = &wh->delay_head;
        if (!it->cancelled) {
            if (map_get(&wh->delayed[it->app], it->key, it->key_len) == it)
                map_del(&wh->delayed[it->app], it->key, it->key_len);
            dispatch(wh, it);
        }
        item_free(it);
    }
}

static void
purge_missed(struct webhook *wh, uint64_t now)
{
    for (size_t a = 0; a < wh->cfg->napps; a++) {
        struct map *m = &wh->missed[a];
        struct map_node *it = NULL, **old;
        size_t bucket = 0, n = 0;

        if (m->count == 0)
            continue;
        old = xcalloc(m->count, sizeof(*old));
        while (map_next(m, &bucket, &it))
            if (now - (uint64_t)(uintptr_t)it->val >= MISS_WINDOW_MS)
                old[n++] = it; /* removed below: map_next forbids it here */
        for (size_t i = 0; i < n; i++)
            map_del(m, old[i]->key, old[i]->len);
        free(old);
    }
}

/* --- the loop --- */

static void
on_tick(uv_timer_t *timer)
{
    struct webhook *wh = timer->data;
    uint64_t now = uv_now(&wh->loop);

    release_delayed(wh, now);
    for (size_t i = 0; i < wh->ntargets; i++) {
        struct target *t = &wh->targets[i];
        struct req **p = &t->retry;

        if (t->batch_n && now - t->batch_ms >= BATCH_MS)
            flush_batch(t);
        while (*p != NULL) {
            struct req *r = *p;
            if (r->next_ms > now) {
                p = &r->next;
                continue;
            }
            *p = r->next;
            r->next = NULL;
            *t->ready_tail = r;
            t->ready_tail = &r->next;
        }
        kick(t);
    }
    if (now >= wh->miss_purge_ms) {
        purge_missed(wh, now);
        wh->miss_purge_ms = now + 1000;
    }
}

static void
on_closed(uv_handle_t *h MN_UNUSED)
{
}

/* Stopping: everything still queued is dropped; the count is logged once. */
static void
shut_down(struct webhook *wh)
{
    size_t left = 0;

    for (struct item *it = wh->delay_head; it; it = it->next)
        left += !it->cancelled;
    for (size_t i = 0; i < wh->ntargets; i++)
        left += wh->targets[i].queued;
    while (wh->flights) /* on_sent unlinks each */
        webhook_http_cancel(wh->flights->x);
    if (left)
        log_info("webhook: stopping with events unsent dropped=%zu", left);
    uv_timer_stop(&wh->tick);
    uv_close((uv_handle_t *)&wh->tick, on_closed);
    uv_close((uv_handle_t *)&wh->wake, on_closed);
}

static void
on_wake(uv_async_t *a)
{
    struct webhook *wh = a->data;
    struct item *list, *next;
    uint64_t dropped;
    bool stop;

    pthread_mutex_lock(&wh->lock);
    list = wh->inbox;
    wh->inbox = NULL;
    wh->inbox_tail = &wh->inbox;
    wh->inbox_n = 0;
    dropped = wh->inbox_dropped;
    stop = wh->stop;
    pthread_mutex_unlock(&wh->lock);
    if (dropped != wh->inbox_dropped_logged) {
        log_warn("webhook: events dropped reason=inbox full dropped=%llu total=%llu",
                 (unsigned long long)(dropped - wh->inbox_dropped_logged),
                 (unsigned long long)dropped);
        wh->inbox_dropped_logged = dropped;
    }
    for (; list; list = next) {
        next = list->next;
        list->next = NULL;
        if (stop)
            item_free(list);
        else
            accept_item(wh, list);
    }
    if (stop)
        shut_down(wh);
}

static void *
run(void *arg)
{
    struct webhook *wh = arg;

    uv_run(&wh->loop, UV_RUN_DEFAULT);
    return NULL;
}

struct webhook *
webhook_new(const struct mn_config *cfg)
{
    struct webhook *wh;
    size_t n = 0;

    for (size_t a = 0; a < cfg->napps; a++)
        n += cfg->apps[a].nwebhooks;
    if (n == 0)
        return NULL;
    wh = xcalloc(1, sizeof(*wh));
    wh->cfg = cfg;
    pthread_mutex_init(&wh->lock, NULL);
    wh->inbox_tail = &wh->inbox;
    wh->delay_tail = &wh->delay_head;
    wh->ntargets = n;
    wh->targets = xcalloc(n, sizeof(*wh->targets));
    wh->first = xcalloc(cfg->napps, sizeof(*wh->first));
    wh->wants = xcalloc(cfg->napps, sizeof(*wh->wants));
    wh->delayed = xcalloc(cfg->napps, sizeof(*wh->delayed));
    wh->missed = xcalloc(cfg->napps, sizeof(*wh->missed));
    n = 0;
    for (size_t a = 0; a < cfg->napps; a++) {
        wh->first[a] = n;
        for (size_t i = 0; i < cfg->apps[a].nwebhooks; i++, n++) {
            struct target *t = &wh->targets[n];

            t->wh = wh;
            t->app = a;
            t->hook = &cfg->apps[a].webhooks[i];
            t->ready_tail = &t->ready;
            wh->wants[a] |= t->hook->events;
        }
    }
    uv_loop_init(&wh->loop);
    uv_async_init(&wh->loop, &wh->wake, on_wake);
    wh->wake.data = wh;
    uv_timer_init(&wh->loop, &wh->tick);
    wh->tick.data = wh;
    uv_timer_start(&wh->tick, on_tick, TICK_MS, TICK_MS);
    return wh;
}

/* The TLS contexts of the https receivers: the system's CA store, loaded
 * once for those without a ca-file, and one per ca-file. -1 (logged). */
static int
load_tls(struct webhook *wh)
{
    struct mn_err err = {0};

    for (size_t i = 0; i < wh->ntargets; i++) {
        struct target *t = &wh->targets[i];

        if (!t->hook->tls)
            continue;
        if (t->hook->ca_file != NULL) {
            t->tls = t->own_tls = webhook_tls_ctx_new(t->hook->ca_file, &err);
        } else {
            if (wh->tls_system == NULL)
                wh->tls_system = webhook_tls_ctx_new(NULL, &err);
            t->tls = wh->tls_system;
        }
        if (t->tls == NULL) {
            /* host and port, never the URL: its query may carry a token */
            log_err("webhook: cannot load the certificates to trust app=%s host=%s "
                    "port=%u: %s",
                    wh->cfg->apps[t->app].id, t->hook->host, t->hook->port, err.msg);
            return -1;
        }
    }
    return 0;
}

int
webhook_start(struct webhook *wh)
{
    if (wh == NULL)
        return 0;
    if (load_tls(wh) < 0)
        return -1;
    if (pthread_create(&wh->thread, NULL, run, wh) != 0) {
        log_err("webhook: cannot start the sender thread");
        return -1;
    }
    wh->started = true;
    log_info("webhook: sender started receivers=%zu", wh->ntargets);
    return 0;
}

static void
free_reqs(struct req *r)
{
    for (struct req *next; r; r = next) {
        next = r->next;
        req_free(r);
    }
}

void
webhook_stop_free(struct webhook *wh)
{
    if (wh == NULL)
        return;
    pthread_mutex_lock(&wh->lock);
    wh->stop = true;
    pthread_mutex_unlock(&wh->lock);
    if (wh->started) {
        uv_async_send(&wh->wake);
        pthread_join(wh->thread, NULL);
    } else {
        on_wake(&wh->wake); /* never ran: shut down here, then close */
        uv_run(&wh->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&wh->loop);
    for (struct item *it = wh->delay_head, *next; it; it = next) {
        next = it->next;
        item_free(it);
    }
    for (size_t i = 0; i < wh->ntargets; i++) {
        free_reqs(wh->targets[i].ready);
        free_reqs(wh->targets[i].retry);
        buf_free(&wh->targets[i].batch);
        webhook_tls_ctx_free(wh->targets[i].own_tls);
    }
    webhook_tls_ctx_free(wh->tls_system);
    for (size_t a = 0; a < wh->cfg->napps; a++) {
        map_clear(&wh->delayed[a]);
        map_clear(&wh->missed[a]);
    }
    free(wh->delayed);
    free(wh->missed);
    free(wh->first);
    free(wh->wants);
    free(wh->targets);
    pthread_mutex_destroy(&wh->lock);
    free(wh);
}
