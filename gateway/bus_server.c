/* bus_server.c - the gateway's end of the local bus: the Unix socket named
 * by `local-socket`, on worker 0's libuv loop, which micronotifier-api
 * (shared/bus_local.c) connects to. Each connection sends query frames
 * (shared/bus.h); each is decoded and checked by bus.c, run with
 * hub_rest_call, and answered with one frame, in order.
 *
 * One query per connection is handled at a time: reading pauses while an
 * answer is being written, so a peer that sends and never reads cannot grow
 * our memory past one frame cap. A frame announcing more than the cap, or a
 * garbled one, is logged and its connection closed (a garbled but complete
 * frame gets an error answer first), and so is one left incomplete for
 * BUS_FRAME_TIMEOUT_MS (a once-a-second sweep); idle connections between
 * frames are kept. Nothing a peer sends stops the gateway.
 * Owns the socket file: a stale one is replaced at start, one another live
 * process listens on is refused, and ours is removed at stop.
 * Does not own the wire format (shared/bus.c) or channel state (hub.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bus.h"
#include "gw.h"
#include "hub.h"
#include "log.h"
#include "mem.h"
#include "mn.h"

#define BUS_MAX_CONNS 256    /* connections at once (the API daemon needs its threads) */
#define BUS_READ_CHUNK 65536 /* bytes asked of the kernel per read */
#define BUS_FRAME_TIMEOUT_MS 5000 /* a frame begun must be complete by then */
#define BUS_SOCKET_MODE 0660      /* the API daemon runs as the gateway's group */

struct bconn;

struct bus_server {
    struct hub *hub;
    const struct mn_config *cfg;
    uv_pipe_t listener;
    uv_timer_t sweep; /* drops connections with a frame stuck half-way */
    size_t cap;       /* largest query frame body */
    struct bconn *conns;
    size_t nconns;
    size_t handles; /* open uv handles (listener, sweep, connections): freed at 0 */
    bool stopping;
    struct stat st; /* the socket file we made: removed at stop if still ours */
};

struct bconn {
    uv_pipe_t pipe; /* first: the handle's address is the connection's */
    struct bus_server *srv;
    struct bconn *prev, *next;
    struct buf in;  /* received bytes not handled yet */
    struct buf out; /* the answer being written */
    uv_write_t wreq;
    uint32_t id;            /* of the query being answered */
    uint64_t partial_since; /* uv_now when the pending frame began; 0: none */
    bool writing, reading, closing, close_after_write;
};

static void serve(struct bconn *c);

static void
srv_release(struct bus_server *s)
{
    if (--s->handles == 0)
        free(s);
}

static void
on_conn_closed(uv_handle_t *h)
{
    struct bconn *c = (struct bconn *)h;
    struct bus_server *s = c->srv;

    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
    srv_release(s);
}

static void
conn_close(struct bconn *c)
{
    struct bus_server *s = c->srv;

    if (c->closing)
        return;
    c->closing = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct bconn *c = (struct bconn *)h;

    (void)suggested;
    buf_reserve(&c->in, BUS_READ_CHUNK);
    out->base = buf_data(&c->in) + c->in.len;
    out->len = c->in.cap - c->in.len - 1; /* the buffer keeps its NUL */
}

static void
on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    struct bconn *c = (struct bconn *)stream;

    (void)b;
    if (nread < 0) {
        if (nread != UV_EOF)
            log_warn("bus: connection error: %s", uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    c->in.len += (size_t)nread;
    buf_data(&c->in)[c->in.len] = '\0';
    serve(c);
}

static void
on_write(uv_write_t *req, int status)
{
    struct bconn *c = req->data;

    c->writing = false;
    buf_reset(&c->out);
    if (c->closing)
        return;
    if (status < 0 || c->close_after_write) {
        conn_close(c);
        return;
    }
    serve(c);
}

static void
send_out(struct bconn *c)
{
    uv_buf_t b = uv_buf_init(buf_data(&c->out), (unsigned)c->out.len);

    c->writing = true;
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &b, 1, on_write) < 0) {
        c->writing = false;
        conn_close(c);
    }
}

/* hub_rest_call's done: the answer as one frame. */
static void
on_answer(void *arg, const struct rest_answer *ans)
{
    struct bconn *c = arg;

    bus_put_answer(&c->out, c->id, ans);
    if (c->out.len - BUS_FRAME_HEADER > BUS_ANSWER_CAP) {
        struct rest_answer big = {0};

        log_warn("bus: answer too large for the bus bytes=%zu channels=%zu users=%zu",
                 c->out.len, ans->nchans, ans->nusers);
        buf_reset(&c->out);
        big.status = 500;
        big.message = "Answer too large for the local bus";
        bus_put_answer(&c->out, c->id, &big);
    }
}

/* Answers an error without a backend call; garbled frames close afterwards. */
static void
answer_error(struct bconn *c, int status, const char *msg, bool close_after)
{
    struct rest_answer ans = {0};

    ans.status = status;
    ans.message = msg;
    bus_put_answer(&c->out, c->id, &ans);
    c->close_after_write = close_after;
}

static void
handle_frame(struct bconn *c, const char *body, size_t len)
{
    struct bus_server *s = c->srv;
    struct mn_err err = {0, ""};
    struct bus_msg *m;

    /* The id is known even when the rest is garbled, so the error answer
     * reaches the call that sent it. */
    c->id = len >= 7 ? bus_frame_len(body + 3) : 0;
    m = bus_msg_decode(body, len, s->cfg, &err);
    if (m == NULL && err.status == 404) {
        answer_error(c, 404, "Unknown app", false);
    } else if (m == NULL || m->kind != BUS_QUERY) {
        log_warn("bus: refused a message bytes=%zu: %s", len,
                 m ? "an answer where a query belongs" : err.msg);
        answer_error(c, 400, "Invalid local bus message", true);
    } else {
        /* The gateway's backend answers before it returns (hub.h). */
        hub_rest_call(s->hub, &m->q, on_answer, c);
    }
    bus_msg_free(m);
    if (c->out.len == 0) {
        log_err("bus: no answer to query id=%u", c->id);
        answer_error(c, 500, "No answer", true);
    }
    send_out(c);
}

/* Handles every complete frame in c->in, one answer at a time. */
static void
serve(struct bconn *c)
{
    struct bus_server *s = c->srv;

    while (!c->writing && !c->closing && c->in.len >= BUS_FRAME_HEADER) {
        char *p = buf_data(&c->in);
        uint32_t len = bus_frame_len(p);
        size_t whole = BUS_FRAME_HEADER + (size_t)len;

        if (len > s->cap) {
            log_warn("bus: refused an oversized message bytes=%u cap=%zu", len, s->cap);
            conn_close(c);
            return;
        }
        if (c->in.len < whole)
            break;
        handle_frame(c, p + BUS_FRAME_HEADER, len);
        memmove(p, p + whole, c->in.len - whole + 1);
        c->in.len -= whole;
        c->partial_since = 0; /* a frame completed: the clock restarts */
    }
    if (c->closing)
        return;
    if (c->in.len == 0)
        c->partial_since = 0;
    else if (c->partial_since == 0)
        c->partial_since = uv_now(c->pipe.loop);
    /* Pause while an answer is out; the frame cap bounds what is buffered. */
    if (c->writing && c->reading) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        c->reading = false;
    } else if (!c->writing && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0) {
            conn_close(c);
            return;
        }
        c->reading = true;
    }
}

static void
on_connection(uv_stream_t *listener, int status)
{
    struct bus_server *s = listener->data;
    struct bconn *c;

    if (status < 0) {
        log_warn("bus: accept failed: %s", uv_strerror(status));
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->srv = s;
    uv_pipe_init(listener->loop, &c->pipe, 0);
    s->handles++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0) {
        conn_close(c);
        return;
    }
    if (s->nconns > BUS_MAX_CONNS) {
        log_warn("bus: connection refused: %d already open", BUS_MAX_CONNS);
        conn_close(c);
        return;
    }
    log_debug("bus: connection opened conns=%zu", s->nconns);
    serve(c);
}

/* A socket file already at path: a stale one (nobody listening) is removed;
 * a live one, or anything that is not a socket, is left alone and refused. */
static int
clear_stale(const char *path)
{
    struct sockaddr_un sa = {0};
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        log_err("bus: local-socket %s exists and is not a socket", path);
        return -1;
    }
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    if (rc == 0) {
        log_err("bus: local-socket %s is in use by another process (a running "
                "gateway?)",
                path);
        return -1;
    }
    if (errno != ECONNREFUSED) {
        log_errno("bus: cannot check local-socket %s", path);
        return -1;
    }
    log_info("bus: removing stale local-socket %s", path);
    return unlink(path);
}

static void
on_listener_closed(uv_handle_t *h)
{
    srv_release(h->data);
}

static void
on_sweep(uv_timer_t *t)
{
    struct bus_server *s = t->data;
    uint64_t now = uv_now(t->loop);
    struct bconn *c, *next;

    for (c = s->conns; c; c = next) {
        next = c->next;
        /* A frame being answered is complete; only a stuck one counts. */
        if (!c->writing && c->partial_since != 0 &&
            now - c->partial_since > BUS_FRAME_TIMEOUT_MS) {
            log_warn("bus: dropped a connection: a frame incomplete for %d ms bytes=%zu",
                     BUS_FRAME_TIMEOUT_MS, c->in.len);
            conn_close(c);
        }
    }
}

/* Binds, sets the mode and listens; -1 with a libuv error in *rc. The mode
 * is set before listen(): nobody can connect before it is right. */
static int
bind_listen(struct bus_server *s, const char *path, int *rc)
{
    if ((*rc = uv_pipe_bind(&s->listener, path)) < 0)
        return -1;
    if (chmod(path, BUS_SOCKET_MODE) < 0 || lstat(path, &s->st) < 0) {
        *rc = uv_translate_sys_error(errno);
        unlink(path);
        return -1;
    }
    if ((*rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection)) < 0) {
        unlink(path);
        return -1;
    }
    return 0;
}

int
bus_server_start(struct worker *w)
{
    const char *path = w->cfg->local_socket;
    struct bus_server *s;
    int rc = 0;

    if (path == NULL || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return -1;
    if (clear_stale(path) < 0)
        return -1;
    s = xcalloc(1, sizeof(*s));
    s->hub = w->hub;
    s->cfg = w->cfg;
    s->cap = bus_query_cap(w->cfg);
    s->handles = 1;
    uv_pipe_init(&w->loop, &s->listener, 0);
    s->listener.data = s;
    if (bind_listen(s, path, &rc) < 0) {
        log_err("bus: cannot listen on local-socket %s: %s", path, uv_strerror(rc));
        s->stopping = true;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return -1;
    }
    uv_timer_init(&w->loop, &s->sweep);
    s->sweep.data = s;
    s->handles++;
    uv_timer_start(&s->sweep, on_sweep, 1000, 1000);
    w->bus = s;
    log_info("bus: listening local-socket=%s", path);
    return 0;
}

void
bus_server_stop(struct worker *w)
{
    struct bus_server *s = w->bus;
    struct stat st;

    if (s == NULL)
        return;
    w->bus = NULL;
    s->stopping = true;
    /* Only our own file: a successor may already have replaced it. */
    if (lstat(w->cfg->local_socket, &st) == 0 && st.st_ino == s->st.st_ino &&
        st.st_dev == s->st.st_dev)
        unlink(w->cfg->local_socket);
    while (s->conns)
        conn_close(s->conns);
    uv_close((uv_handle_t *)&s->sweep, on_listener_closed);
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
