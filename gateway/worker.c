/* worker.c - one event-loop thread: its libuv loop, its lws context on the
 * shared listening port, the inbox other threads post deliveries to, the
 * 250 ms tick for liveness checks (and, on worker 0, the hub's timers), and
 * an orderly stop. Protocol work is in
 * ws.c and http.c; channel state shared between workers is in hub.c. */
#include "worker.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "gw.h"
#include "hub.h"
#include "log.h"
#include "mem.h"
#include "mn.h"

static void
on_closed_handle(uv_handle_t *handle)
{
    (void)handle;
}

static void on_accept(uv_poll_t *poll, int status, int events);

/* lws's TLS teardown touches OpenSSL globals: one context at a time. */
static pthread_mutex_t destroy_lock = PTHREAD_MUTEX_INITIALIZER;

/* The worker whose loop runs on this thread, NULL on other threads. */
static __thread struct worker *current;

struct delivery *
delivery_new(size_t app, const char *chan, size_t clen, struct frame *f,
             const char *exclude)
{
    struct delivery *d = xmalloc(sizeof(*d) + clen + 1);

    d->next = NULL;
    d->kind = DELIVERY_CHANNEL;
    d->seq = 0;
    d->ptr = NULL;
    d->app = app;
    d->frame = f;
    d->exclude[0] = '\0';
    if (exclude)
        snprintf(d->exclude, sizeof(d->exclude), "%s", exclude);
    d->clen = clen;
    memcpy(d->channel, chan, clen);
    d->channel[clen] = '\0';
    return d;
}

static void
delivery_free(struct delivery *d)
{
    if (d->kind == DELIVERY_READY)
        frame_unref(d->ptr);
    frame_unref(d->frame);
    free(d);
}

void
worker_post(struct worker *w, struct delivery *d)
{
    pthread_mutex_lock(&w->inbox_lock);
    *w->inbox_tail = d;
    w->inbox_tail = &d->next;
    pthread_mutex_unlock(&w->inbox_lock);
    /* On its own thread the worker is running: on_prepare drains the inbox
     * before the loop blocks again, with no eventfd write and wake-up (an
     * eventfd costs a write and an extra loop turn per REST publish). */
    if (w == current)
        w->self_posted = true;
    else
        uv_async_send(&w->wake);
}

static void drain(struct worker *w);

static void
on_wake(uv_async_t *handle)
{
    drain(handle->data);
}

/* Runs before the loop blocks in epoll (after timers, before I/O): what this
 * thread posted to itself, in any callback, goes out before it sleeps. A
 * delivery may post again (membership messages): drained until none is left. */
static void
on_prepare(uv_prepare_t *handle)
{
    struct worker *w = handle->data;

    while (w->self_posted)
        drain(w);
}

static void
drain(struct worker *w)
{
    struct delivery *d, *next;

    w->self_posted = false;
    pthread_mutex_lock(&w->inbox_lock);
    d = w->inbox;
    w->inbox = NULL;
    w->inbox_tail = &w->inbox;
    pthread_mutex_unlock(&w->inbox_lock);
    if (d && d->next)
        ws_batch_begin(w); /* several: one write per connection at the end */
    for (; d; d = next) {
        next = d->next;
        if (d->kind == DELIVERY_HTTP)
            http_answer(w, d->ptr); /* also when stopping: it owns the answer */
        else if (!w->stopping)
            ws_deliver(w, d);
        delivery_free(d);
    }
    ws_batch_end(w);
    if (atomic_load(&w->stop_asked) && !w->stopping) {
        w->stopping = true;
        w->stop_deadline = mn_now_ms() + 1000;
        uv_close((uv_handle_t *)&w->accept_poll, on_closed_handle);
        close(w->listen_fd);
        bus_server_stop(w);
        ws_close_all(w, 4200, "Server shutting down, reconnect");
    }
}

static void
on_tick(uv_timer_t *timer)
{
    struct worker *w = timer->data;
    uint64_t now = mn_now_ms();

    if (!w->stopping) {
        if (w->accept_paused) {
            w->accept_paused = false;
            uv_poll_start(&w->accept_poll, UV_READABLE, on_accept);
        }
        ws_sweep(w, now);
        if (w->index == 0) /* one worker runs the hub's timers */
            hub_tick(w->hub, now);
        return;
    }
    /* Stopping: give the close frames up to a second, then tear down. */
    if (w->nconns > 0 && now < w->stop_deadline)
        return;
    uv_timer_stop(&w->tick);
    /* First stage: closes the connections and lws's handles on our loop;
     * worker_join_free finishes it once the loop has run dry. */
    pthread_mutex_lock(&destroy_lock);
    lws_context_destroy(w->ctx);
    pthread_mutex_unlock(&destroy_lock);
    uv_close((uv_handle_t *)&w->tick, on_closed_handle);
    uv_close((uv_handle_t *)&w->wake, on_closed_handle);
    uv_close((uv_handle_t *)&w->drain, on_closed_handle);
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
         size_t len)
{
    struct session *s = user;

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        /* RFC 6455 is version 13 (lws also speaks the compatible draft 8);
         * lws would accept any number: refuse the others. */
        char v[8];

        if (lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_VERSION) <= 0)
            return 1;
        return strcmp(v, "13") != 0 && strcmp(v, "8") != 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLOSED:
        return ws_callback(wsi, reason, s, in, len);
    case LWS_CALLBACK_HTTP:
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    case LWS_CALLBACK_HTTP_WRITEABLE:
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        return http_callback(wsi, reason, s, in, len);
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    /* rx_buffer_size 1024: lws keeps one per connection, so it sets the idle
     * cost (about 3 KiB a connection instead of 6 with the 16 KiB default);
     * longer messages arrive in pieces that ws.c reassembles up to
     * max-message-size. tx_packet_size 64 KiB: one send() per frame. */
    {"pusher", callback, sizeof(struct session), 1024, 0, NULL, 65536},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* The IPv4 address to listen on: "", "0.0.0.0" or "*" mean every interface. */
static int
resolve(const char *host, struct sockaddr_in *sa)
{
    struct addrinfo hints = {0}, *res = NULL;
    int rc;

    if (host == NULL || host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 ||
        strcmp(host, "*") == 0) {
        sa->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        log_err("gateway: cannot resolve host=%s: %s", host, gai_strerror(rc));
        return -1;
    }
    sa->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

/* One listening socket per worker on the shared port: the kernel spreads
 * new connections across the workers. */
static int
open_listener(const struct mn_config *cfg)
{
    struct sockaddr_in sa = {0};
    int fd, one = 1;

    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)cfg->port);
    if (resolve(cfg->host, &sa) < 0)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0) {
        log_errno("gateway: cannot listen host=%s port=%u", cfg->host, cfg->port);
        close(fd);
        return -1;
    }
    return fd;
}

static void
on_accept(uv_poll_t *poll, int status, int events)
{
    struct worker *w = poll->data;

    (void)events;
    if (status < 0 || w->stopping)
        return;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of descriptors: pause accepting until the next tick. */
                log_warn("gateway: accept paused: out of file descriptors");
                uv_poll_stop(&w->accept_poll);
                w->accept_paused = true;
            }
            return;
        }
        /* Events and answers are small and latency matters: no Nagle delay
         * (headers and body of an answer are separate writes). */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (lws_adopt_socket_vhost(w->vhost, fd) == NULL)
            close(fd); /* lws logged why */
    }
}

static struct lws_context *
create_context(struct worker *w)
{
    const struct mn_config *cfg = w->cfg;
    struct lws_context_creation_info info;
    void *loops[1] = {&w->loop};

    memset(&info, 0, sizeof(info));
    /* We accept ourselves (SO_REUSEPORT per worker, see open_listener) and
     * hand sockets to lws: Debian's lws 4.1 does not share a listen port. */
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = protocols;
    info.vhost_name = "default";
    info.user = w;
    info.foreign_loops = loops;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
                   LWS_SERVER_OPTION_DISABLE_IPV6;
    info.timeout_secs = 10;
    info.max_http_header_pool = 1024;
    info.pt_serv_buf_size = 16384;
    if (cfg->certificate && cfg->private_key) {
        /* OpenSSL's global init once per process; the server needs no CA store. */
        info.options |=
            LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->certificate;
        info.ssl_private_key_filepath = cfg->private_key;
        info.ssl_cipher_list =
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
        info.ssl_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
    }
    return lws_create_context(&info);
}

struct worker *
worker_new(struct hub *hub, size_t index)
{
    struct worker *w = xcalloc(1, sizeof(*w));
    const struct mn_config *cfg = hub_config(hub);

    w->index = index;
    w->hub = hub;
    w->cfg = cfg;
    pthread_mutex_init(&w->inbox_lock, NULL);
    w->inbox_tail = &w->inbox;
    w->chans = xcalloc(cfg->napps, sizeof(*w->chans));
    uv_loop_init(&w->loop);
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    uv_prepare_init(&w->loop, &w->drain);
    w->drain.data = w;
    w->listen_fd = open_listener(cfg);
    w->ctx = w->listen_fd < 0 ? NULL : create_context(w);
    w->vhost = w->ctx ? lws_get_vhost_by_name(w->ctx, "default") : NULL;
    if (w->vhost == NULL) {
        if (w->ctx)
            lws_context_destroy(w->ctx);
        if (w->listen_fd >= 0)
            close(w->listen_fd);
        uv_close((uv_handle_t *)&w->tick, on_closed_handle);
        uv_close((uv_handle_t *)&w->wake, on_closed_handle);
        uv_close((uv_handle_t *)&w->drain, on_closed_handle);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
        pthread_mutex_destroy(&w->inbox_lock);
        free(w->chans);
        free(w);
        return NULL;
    }
    uv_poll_init(&w->loop, &w->accept_poll, w->listen_fd);
    w->accept_poll.data = w;
    uv_poll_start(&w->accept_poll, UV_READABLE, on_accept);
    uv_timer_start(&w->tick, on_tick, SWEEP_TICK_MS, SWEEP_TICK_MS);
    uv_prepare_start(&w->drain, on_prepare);
    return w;
}

static void *
run(void *arg)
{
    struct worker *w = arg;

    current = w;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

int
worker_start(struct worker *w)
{
    return pthread_create(&w->thread, NULL, run, w) == 0 ? 0 : -1;
}

void
worker_stop(struct worker *w)
{
    atomic_store(&w->stop_asked, true);
    uv_async_send(&w->wake);
}

void
worker_join_free(struct worker *w)
{
    struct delivery *d, *next;

    if (w == NULL)
        return;
    pthread_join(w->thread, NULL);
    /* lws may leave handles to close after its context is gone. */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (w->ctx)
        lws_context_destroy(w->ctx); /* with a foreign loop: the final stage */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    for (d = w->inbox; d; d = next) {
        next = d->next;
        if (d->kind == DELIVERY_HTTP)
            http_answer(w, d->ptr); /* its connection is closed: frees it */
        delivery_free(d);
    }
    for (size_t a = 0; a < w->cfg->napps; a++) {
        size_t bucket = 0;
        struct map_node *it = NULL;

        while (map_next(&w->chans[a], &bucket, &it)) {
            struct wchan *wc = it->val;
            free(wc->v);
            free(wc->since);
            free(wc);
        }
        map_clear(&w->chans[a]);
    }
    free(w->chans);
    users_worker_free(w);
    pthread_mutex_destroy(&w->inbox_lock);
    free(w);
}
