/* bench_sub.c - one mnbench subscriber process: thousands of non-blocking
 * WebSocket client connections on one epoll, each bound to one of several
 * 127.0.0.x source addresses. Speaks enough of Pusher protocol 7 (handshake,
 * connection_established, subscribe, ping/pong) or nchan's WebSocket
 * subscriber; stamps each received benchmark message into the shared stats.
 * Publishing and reporting live in bench_pub.c and mnbench.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

/* Handshakes in flight per process: more overflows the server's accept
 * backlog, and a dropped SYN costs a 1 s retransmit. */
#define MAX_PENDING 256
#define RBUF (256 * 1024)

enum cstate {
    C_IDLE,
    C_CONNECTING,
    C_UPGRADE,
    C_ESTABLISH,
    C_SUBSCRIBE,
    C_READY,
    C_DEAD
};

struct sconn {
    int fd;
    enum cstate st;
    unsigned chan;
    unsigned src;
    unsigned port;
    int last_step;
    uint64_t last_seq;
    unsigned char *pend; /* bytes of an incomplete frame, malloc'd */
    size_t plen;
};

struct sub {
    const struct bench_opts *o;
    struct bench_shm *shm;
    struct child_slot *slot;
    unsigned proc;
    int ep;
    struct sconn *c;
    unsigned n, next, pending;
    FILE *trace; /* MNBENCH_TRACE: one line per measured message */
    unsigned char rbuf[RBUF];
};

static void
conn_dead(struct sub *s, struct sconn *c)
{
    if (c->st == C_DEAD)
        return;
    if (c->st == C_READY) {
        atomic_fetch_sub(&s->slot->ready, 1);
        atomic_fetch_sub(&s->shm->chan_subs[s->proc * s->o->channels + c->chan], 1);
    } else {
        atomic_fetch_add(&s->slot->settled, 1);
        s->pending--;
    }
    atomic_fetch_add(&s->slot->failed, 1);
    close(c->fd);
    c->fd = -1;
    c->st = C_DEAD;
    free(c->pend);
    c->pend = NULL;
    c->plen = 0;
}

static void
conn_ready(struct sub *s, struct sconn *c)
{
    c->st = C_READY;
    s->pending--;
    atomic_fetch_add(&s->slot->settled, 1);
    atomic_fetch_add(&s->slot->ready, 1);
    atomic_fetch_add(&s->shm->chan_subs[s->proc * s->o->channels + c->chan], 1);
}

/* Writes a small masked client frame; -1 when it does not fit at once (a
 * benchmark client never has more than a few hundred bytes outstanding). */
static int
send_frame(struct sconn *c, int opcode, const char *p, size_t len)
{
    unsigned char f[256];
    size_t h = 6;

    if (len > sizeof(f) - 8)
        return -1;
    f[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        f[1] = (unsigned char)(0x80 | len);
    } else {
        f[1] = 0x80 | 126;
        f[2] = (unsigned char)(len >> 8);
        f[3] = (unsigned char)len;
        h = 8;
    }
    /* A zero masking key: valid, and the payload goes out as is. */
    memset(f + h - 4, 0, 4);
    memcpy(f + h, p, len);
    return send(c->fd, f, h + len, MSG_NOSIGNAL) == (ssize_t)(h + len) ? 0 : -1;
}

static int
send_upgrade(struct sub *s, struct sconn *c)
{
    const struct bench_opts *o = s->o;
    char req[512], path[256];
    int n;

    if (o->mode == MODE_PUSHER)
        snprintf(path, sizeof(path), "/app/%s?protocol=7&client=mnbench&version=1",
                 o->key);
    else
        snprintf(path, sizeof(path), "/%s/c%u", o->mode == MODE_NCHAN ? "sub" : "floor",
                 c->chan);
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 path, o->host, c->port);
    if (n < 0 || (size_t)n >= sizeof(req))
        return -1;
    return send(c->fd, req, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static int
start_conn(struct sub *s, struct sconn *c, unsigned global)
{
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    int one = 1;

    c->chan = global % s->o->channels;
    c->src = global % s->o->nsrc;
    c->port = s->o->ports[global % s->o->nports];
    c->last_step = -1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    src.sin_addr.s_addr = htonl(0x7f000002u + c->src); /* 127.0.0.2 and up */
    dst.sin_port = htons((uint16_t)c->port);
    inet_pton(AF_INET, s->o->host, &dst.sin_addr);
    if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
        (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 &&
         errno != EINPROGRESS) ||
        epoll_ctl(s->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->st = C_CONNECTING;
    s->pending++;
    return 0;
}

static uint64_t
parse_num(const unsigned char *p, const unsigned char *end, const char *key, bool *ok)
{
    size_t kl = strlen(key);
    const unsigned char *q = memmem(p, (size_t)(end - p), key, kl);
    uint64_t v = 0;

    if (q == NULL) {
        *ok = false;
        return 0;
    }
    for (q += kl; q < end && *q >= '0' && *q <= '9'; q++)
        v = v * 10 + (uint64_t)(*q - '0');
    return v;
}

static void
on_bench_message(struct sub *s, struct sconn *c, const unsigned char *mark,
                 const unsigned char *end, uint64_t now)
{
    bool ok = true;
    uint64_t step = parse_num(mark, end, " s=", &ok);
    uint64_t seq = parse_num(mark, end, " q=", &ok);
    uint64_t t = parse_num(mark, end, " t=", &ok);
    struct step_stats *st;

    if (!ok || step >= BENCH_MAX_STEPS) {
        atomic_fetch_add(&s->slot->errors, 1);
        return;
    }
    st = &s->slot->steps[step];
    if (c->last_step == (int)step && seq < c->last_seq)
        st->reordered++;
    c->last_step = (int)step;
    c->last_seq = seq;
    hist_add(st, now > t ? (now - t) / 1000 : 0);
    if (s->trace)
        fprintf(s->trace, "%llu %llu %llu %llu\n", (unsigned long long)step,
                (unsigned long long)seq, (unsigned long long)t, (unsigned long long)now);
    st->received++;
    atomic_fetch_add_explicit(&s->slot->received, 1, memory_order_relaxed);
}

/* One text frame from the server. */
static void
on_text(struct sub *s, struct sconn *c, const unsigned char *p, size_t len, uint64_t now)
{
    static const char sub_fmt[] =
        "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"c%u\"}}";
    static const char pong[] = "{\"event\":\"pusher:pong\",\"data\":{}}";
    const unsigned char *end = p + len;
    const unsigned char *mark = memmem(p, len, BENCH_MARK, sizeof(BENCH_MARK) - 1);
    char msg[128];
    int n;

    if (mark) {
        on_bench_message(s, c, mark, end, now);
    } else if (memmem(p, len, "pusher:ping", 11)) {
        if (send_frame(c, 1, pong, sizeof(pong) - 1) < 0)
            conn_dead(s, c);
    } else if (c->st == C_ESTABLISH && memmem(p, len, "connection_established", 22)) {
        n = snprintf(msg, sizeof(msg), sub_fmt, c->chan);
        if (send_frame(c, 1, msg, (size_t)n) < 0)
            conn_dead(s, c);
        else
            c->st = C_SUBSCRIBE;
    } else if (c->st == C_SUBSCRIBE && memmem(p, len, "subscription_succeeded", 22)) {
        conn_ready(s, c);
    } else if (memmem(p, len, "pusher:error", 12) ||
               memmem(p, len, "subscription_error", 18)) {
        atomic_fetch_add(&s->slot->errors, 1);
        if (c->st != C_READY)
            conn_dead(s, c);
    }
}

/* Parses the frames in p; returns the bytes consumed (a partial frame stays). */
static size_t
on_frames(struct sub *s, struct sconn *c, const unsigned char *p, size_t len)
{
    uint64_t now = bench_now_ns();
    size_t off = 0;

    while (len - off >= 2 && c->st != C_DEAD) {
        const unsigned char *f = p + off;
        size_t h = 2, plen = f[1] & 0x7f;
        int op = f[0] & 0x0f;

        if (plen == 126) {
            if (len - off < 4)
                break;
            plen = (size_t)f[2] << 8 | f[3];
            h = 4;
        } else if (plen == 127) {
            if (len - off < 10)
                break;
            plen = 0;
            for (int i = 2; i < 10; i++)
                plen = plen << 8 | f[i];
            h = 10;
        }
        if (f[1] & 0x80 || plen > RBUF / 2) { /* servers never mask */
            conn_dead(s, c);
            break;
        }
        if (len - off < h + plen)
            break;
        if (op == 1 || op == 0)
            on_text(s, c, f + h, plen, now);
        else if (op == 9 && send_frame(c, 10, (const char *)f + h, plen) < 0)
            conn_dead(s, c);
        else if (op == 8)
            conn_dead(s, c);
        off += h + plen;
    }
    return off;
}

/* The 101 answer; what follows it in the same read is frames. */
static size_t
on_upgrade(struct sub *s, struct sconn *c, const unsigned char *p, size_t len)
{
    const unsigned char *eoh = memmem(p, len, "\r\n\r\n", 4);

    if (eoh == NULL)
        return 0;
    if (len < 12 || memcmp(p + 9, "101", 3) != 0) {
        conn_dead(s, c);
        return len;
    }
    if (s->o->mode == MODE_PUSHER)
        c->st = C_ESTABLISH;
    else
        conn_ready(s, c);
    return (size_t)(eoh + 4 - p);
}

static void
on_readable(struct sub *s, struct sconn *c)
{
    for (;;) {
        size_t have = c->plen, used = 0, room = RBUF - c->plen;
        ssize_t n;

        if (have)
            memcpy(s->rbuf, c->pend, have);
        n = recv(c->fd, s->rbuf + have, room, 0);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            conn_dead(s, c);
            return;
        }
        have += (size_t)n;
        if (c->st == C_UPGRADE)
            used = on_upgrade(s, c, s->rbuf, have);
        if (c->st != C_UPGRADE && c->st != C_DEAD)
            used += on_frames(s, c, s->rbuf + used, have - used);
        if (c->st == C_DEAD)
            return;
        c->plen = have - used;
        if (c->plen) {
            c->pend = realloc(c->pend, c->plen);
            if (c->pend == NULL)
                abort();
            memcpy(c->pend, s->rbuf + used, c->plen);
        } else {
            free(c->pend);
            c->pend = NULL;
        }
        if ((size_t)n < room)
            return; /* short read: the socket is drained */
    }
}

static void
on_event(struct sub *s, struct sconn *c, uint32_t ev)
{
    struct epoll_event mod = {.events = EPOLLIN, .data.ptr = c};
    int err = 0;
    socklen_t el = sizeof(err);

    if (c->st == C_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err ||
            send_upgrade(s, c) < 0 || epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &mod) < 0) {
            conn_dead(s, c);
            return;
        }
        c->st = C_UPGRADE;
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
        on_readable(s, c);
}

void
sub_run(const struct bench_opts *o, struct bench_shm *shm, unsigned proc, unsigned first,
        unsigned n)
{
    struct sub *s = calloc(1, sizeof(*s));
    struct epoll_event evs[512];

    if (s == NULL)
        _exit(99);
    s->o = o;
    s->shm = shm;
    s->proc = proc;
    s->slot = &shm->slots[proc];
    s->n = n;
    s->c = calloc(n ? n : 1, sizeof(*s->c));
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    if (s->c == NULL || s->ep < 0)
        _exit(99);
    atomic_store(&s->slot->pid, getpid());
    if (getenv("MNBENCH_TRACE")) {
        char path[512];

        snprintf(path, sizeof(path), "%s.%u", getenv("MNBENCH_TRACE"), proc);
        s->trace = fopen(path, "w");
    }
    while (!atomic_load(&shm->stop)) {
        int k;

        while (s->next < s->n && s->pending < MAX_PENDING) {
            struct sconn *c = &s->c[s->next];
            if (start_conn(s, c, first + s->next) < 0) {
                c->st = C_DEAD;
                atomic_fetch_add(&s->slot->failed, 1);
                atomic_fetch_add(&s->slot->settled, 1);
            }
            s->next++;
        }
        k = epoll_wait(s->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 50);
        for (int i = 0; i < k; i++)
            on_event(s, evs[i].data.ptr, evs[i].events);
    }
    if (s->trace)
        fclose(s->trace);
    _exit(0);
}
