/* bus_local.c - the API daemon's end of the local bus: blocking calls, from
 * any number of threads, to the gateway's `local-socket` (gateway/bus_server.c)
 * over a small pool of Unix socket connections. A call takes an idle
 * connection (or connects), sends one query frame, waits for its answer, and
 * puts the connection back. Everything has one deadline (BUS_TIMEOUT_MS).
 *
 * Reconnection is lazy, so the first request after the gateway's return is
 * served: a pooled connection whose peer went away is seen (POLLRDHUP) and
 * dropped before use; a query that could not be sent on a pooled connection
 * is sent once more on a fresh one. Once a query was sent, a lost answer is
 * a 503 (the event may or may not have been published: never a silent 200).
 * Does not own the wire format (bus.c) nor the REST rules (rest.c). */
#include "clock.h"
#include "bus.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "mn.h"

#define POOL_MAX 64 /* idle connections kept; more are closed after use */

struct bus_local {
    struct bus base;
    struct sockaddr_un addr;
    size_t query_cap;
    pthread_mutex_t lock; /* guards what follows */
    int idle[POOL_MAX];
    size_t nidle;
    uint32_t next_id;
    bool down; /* the last attempt failed: log the way back once */
};

/* Why a call failed, for the log and for the 503's text. */
enum fail_kind { F_CONNECT, F_SEND, F_TIMEOUT, F_CLOSED, F_GARBLED };

/* Waits until fd is ready for events or the deadline passes (errno
 * ETIMEDOUT). */
static int
wait_fd(int fd, short events, uint64_t deadline)
{
    struct pollfd p = {fd, events, 0};

    for (;;) {
        uint64_t now = mn_now_ms();
        int rc;

        if (now >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        rc = poll(&p, 1, (int)(deadline - now));
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/* A pooled connection is idle: anything readable (EOF, or bytes nobody asked
 * for) means it is no longer usable. */
static bool
stale(int fd)
{
    struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};

    return poll(&p, 1, 0) != 0;
}

static int
take_idle(struct bus_local *b)
{
    for (;;) {
        int fd;

        pthread_mutex_lock(&b->lock);
        fd = b->nidle ? b->idle[--b->nidle] : -1;
        pthread_mutex_unlock(&b->lock);
        if (fd < 0 || !stale(fd))
            return fd;
        close(fd);
    }
}

static void
put_idle(struct bus_local *b, int fd)
{
    pthread_mutex_lock(&b->lock);
    if (b->nidle < POOL_MAX) {
        b->idle[b->nidle++] = fd;
        fd = -1;
    }
    pthread_mutex_unlock(&b->lock);
    if (fd >= 0)
        close(fd);
}

static int
connect_to(struct bus_local *b, uint64_t deadline)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err = 0;
    socklen_t elen = sizeof(err);

    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&b->addr, sizeof(b->addr)) == 0)
        return fd;
    /* A Unix socket whose backlog is full says EAGAIN: wait for room. */
    if ((errno == EAGAIN || errno == EINPROGRESS) &&
        wait_fd(fd, POLLOUT, deadline) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0)
        return fd;
    if (err != 0)
        errno = err;
    err = errno;
    close(fd);
    errno = err;
    return -1;
}

static int
send_all(int fd, const char *p, size_t len, uint64_t deadline, size_t *sent)
{
    *sent = 0;
    while (*sent < len) {
        ssize_t n = send(fd, p + *sent, len - *sent, MSG_NOSIGNAL);

        if (n > 0) {
            *sent += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline) < 0)
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Reads exactly len bytes; at EOF returns -1 with *eof set. */
static int
recv_all(int fd, void *p, size_t len, uint64_t deadline, bool *eof)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = recv(fd, (char *)p + got, len - got, 0);

        if (n > 0) {
            got += (size_t)n;
        } else if (n == 0) {
            *eof = true;
            return -1;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (wait_fd(fd, POLLIN, deadline) < 0)
                return -1;
        } else {
            *eof = errno == ECONNRESET;
            return -1;
        }
    }
    return 0;
}

/* Sends the query frame on a pooled or new connection. A pooled connection
 * that took none of it is replaced once. Returns the connection or -1. */
static int
send_query(struct bus_local *b, const struct buf *out, uint64_t deadline,
           enum fail_kind *why)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = take_idle(b);
        bool fresh = fd < 0;
        size_t sent;

        if (fresh && (fd = connect_to(b, deadline)) < 0) {
            *why = errno == ETIMEDOUT ? F_TIMEOUT : F_CONNECT;
            return -1;
        }
        if (send_all(fd, buf_data(out), out->len, deadline, &sent) == 0)
            return fd;
        *why = errno == ETIMEDOUT ? F_TIMEOUT : F_SEND;
        close(fd);
        if (fresh || sent > 0)
            return -1;
    }
    return -1;
}

static struct bus_msg *
read_answer(int fd, uint32_t id, uint64_t deadline, enum fail_kind *why,
            struct mn_err *err)
{
    unsigned char hdr[BUS_FRAME_HEADER];
    struct bus_msg *m;
    bool eof = false;
    uint32_t len;
    char *body;

    if (recv_all(fd, hdr, sizeof(hdr), deadline, &eof) < 0) {
        *why = eof ? F_CLOSED : errno == ETIMEDOUT ? F_TIMEOUT : F_SEND;
        return NULL;
    }
    len = bus_frame_len(hdr);
    if (len > BUS_ANSWER_CAP) {
        *why = F_GARBLED;
        mn_err_set(err, 0, "answer of %u bytes (cap %zu)", len, BUS_ANSWER_CAP);
        return NULL;
    }
    body = xmalloc(len ? len : 1);
    if (recv_all(fd, body, len, deadline, &eof) < 0) {
        *why = eof ? F_CLOSED : errno == ETIMEDOUT ? F_TIMEOUT : F_SEND;
        free(body);
        return NULL;
    }
    m = bus_msg_decode(body, len, NULL, err);
    free(body);
    if (m != NULL && (m->kind != BUS_ANSWER || m->id != id)) {
        mn_err_set(err, 0, "answer kind %d id %u to query id %u", (int)m->kind, m->id,
                   id);
        bus_msg_free(m);
        m = NULL;
    }
    if (m == NULL)
        *why = F_GARBLED;
    return m;
}

/* Logs the way down once and the way back once, not every request. */
static void
note_state(struct bus_local *b, bool up, enum fail_kind why, int saved_errno)
{
    bool changed;

    pthread_mutex_lock(&b->lock);
    changed = b->down == up;
    b->down = !up;
    pthread_mutex_unlock(&b->lock);
    if (!changed)
        return;
    if (up)
        log_info("bus: gateway reachable again socket=%s", b->addr.sun_path);
    else if (why == F_CONNECT)
        log_warn("bus: gateway unreachable socket=%s: %s", b->addr.sun_path,
                 strerror(saved_errno));
    else
        log_warn("bus: gateway lost socket=%s: %s", b->addr.sun_path,
                 why == F_TIMEOUT ? "no answer in time" : "connection closed");
}

static void
fail(rest_answer_fn *done, void *arg, const struct rest_query *q, enum fail_kind why)
{
    static const char *const msgs[2][4] = {
        {"Service unavailable: the gateway is not reachable over the local bus",
         "Service unavailable: the gateway's local bus connection broke",
         "Service unavailable: the gateway did not answer over the local bus in time",
         "Service unavailable: the gateway closed the local bus before answering"},
        {"Service unavailable: the gateway is not reachable over the local bus; the "
         "event was not published",
         "Service unavailable: the gateway's local bus connection broke; the event may "
         "not have been published",
         "Service unavailable: the gateway did not answer over the local bus in time; "
         "the event may not have been published",
         "Service unavailable: the gateway closed the local bus before answering; the "
         "event may not have been published"},
    };
    struct rest_answer ans = {0};

    ans.status = why == F_GARBLED ? 500 : 503;
    ans.message = why == F_GARBLED ? "Invalid answer from the gateway over the local bus"
                                   : msgs[q->op == REST_PUBLISH][why];
    done(arg, &ans);
}

static void
local_call(struct bus *base, const struct rest_query *q, rest_answer_fn *done, void *arg)
{
    struct bus_local *b = (struct bus_local *)base;
    uint64_t deadline = mn_now_ms() + BUS_TIMEOUT_MS;
    struct mn_err err = {0, ""};
    enum fail_kind why = F_CONNECT;
    struct buf out = BUF_INIT;
    struct bus_msg *m = NULL;
    uint32_t id;
    int fd;

    pthread_mutex_lock(&b->lock);
    id = ++b->next_id;
    pthread_mutex_unlock(&b->lock);
    bus_put_query(&out, id, q);
    if (out.len - BUS_FRAME_HEADER > b->query_cap) {
        struct rest_answer ans = {0};

        buf_free(&out);
        ans.status = 413;
        ans.message = "Request too large for the local bus";
        done(arg, &ans);
        return;
    }
    fd = send_query(b, &out, deadline, &why);
    buf_free(&out);
    if (fd >= 0 && (m = read_answer(fd, id, deadline, &why, &err)) == NULL)
        close(fd);
    if (m == NULL) {
        int saved = errno;

        if (why == F_GARBLED)
            log_err("bus: refused the gateway's answer socket=%s: %s", b->addr.sun_path,
                    err.msg);
        else
            note_state(b, false, why, saved);
        fail(done, arg, q, why);
        return;
    }
    put_idle(b, fd);
    note_state(b, true, why, 0);
    done(arg, &m->a);
    bus_msg_free(m);
}

static void
local_close(struct bus *base)
{
    struct bus_local *b = (struct bus_local *)base;

    for (size_t i = 0; i < b->nidle; i++)
        close(b->idle[i]);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static const struct bus_ops local_ops = {local_call, local_close};

struct bus *
bus_local_open(const struct mn_config *cfg, struct mn_err *err)
{
    struct bus_local *b;

    if (cfg->local_socket == NULL) {
        mn_err_set(err, 0,
                   "%s: standalone mode needs \"local-socket\", the gateway's bus socket",
                   cfg->path);
        return NULL;
    }
    if (strlen(cfg->local_socket) >= sizeof(b->addr.sun_path)) {
        mn_err_set(err, 0, "%s: local-socket: path too long", cfg->path);
        return NULL;
    }
    b = xcalloc(1, sizeof(*b));
    b->base.ops = &local_ops;
    b->addr.sun_family = AF_UNIX;
    memcpy(b->addr.sun_path, cfg->local_socket, strlen(cfg->local_socket) + 1);
    b->query_cap = bus_query_cap(cfg);
    pthread_mutex_init(&b->lock, NULL);
    return &b->base;
}
