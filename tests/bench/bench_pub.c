/* bench_pub.c - mnbench's open-loop publisher: one message per intended
 * send time (a timerfd on CLOCK_MONOTONIC), over a small pool of keep-alive
 * HTTP connections. Pusher mode signs POST /apps/ID/events (HMAC-SHA256 and
 * body MD5, PROTOCOL.md section 12), or with --batch N POST batch_events with
 * N messages, sent at the first one's intended time and all stamped with it;
 * nchan and floor modes POST the payload to /pub/CHANNEL. Receiving the
 * messages is bench_sub.c's. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "bench.h"

#define PUB_MAX_CONNS 64
#define PUB_RBUF 16384

struct pconn {
    int fd;
    bool busy;
    unsigned nchans; /* messages in the request in flight */
    unsigned chans[BENCH_BATCH_MAX];
    size_t rl;
    char rb[PUB_RBUF];
};

struct pub {
    const struct bench_opts *o;
    struct pub_result *r;
    int ep, tfd;
    struct pconn c[PUB_MAX_CONNS];
    unsigned nconns, inflight;
};

size_t
bench_payload(char *out, unsigned size, unsigned step, uint64_t seq, uint64_t t_ns)
{
    int n = snprintf(out, size + 1, BENCH_MARK "s=%u q=%llu t=%llu ", step,
                     (unsigned long long)seq, (unsigned long long)t_ns);

    if (n < 0)
        return 0;
    if ((unsigned)n < size)
        memset(out + n, 'x', size - (unsigned)n);
    out[size] = '\0';
    return size;
}

static void
hex(char *out, const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The request for messages seq .. seq + n - 1 (n > 1: batch_events) into
 * req, all stamped with t; their channels into chans. Its length, or 0. */
static size_t
build_request(const struct bench_opts *o, char *req, size_t cap, unsigned step,
              uint64_t seq, unsigned n, uint64_t t, unsigned *chans)
{
    char body[BENCH_BATCH_MAX * (BENCH_PAYLOAD_MAX + 64) + 16], query[256], tosign[512];
    char payload[BENCH_PAYLOAD_MAX + 1], md5[33], sig[65];
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    size_t bl = 0;
    int ql, sl, k;

    for (unsigned i = 0; i < n; i++)
        chans[i] = (unsigned)((seq + i) % o->channels);
    if (o->mode != MODE_PUSHER) {
        bench_payload(payload, o->payload, step, seq, t);
        k = snprintf(req, cap,
                     "POST /pub/c%u HTTP/1.1\r\nHost: %s:%u\r\n"
                     "Content-Type: text/plain\r\nContent-Length: %u\r\n\r\n%s",
                     chans[0], o->host, o->pub_port, o->payload, payload);
        return k > 0 && (size_t)k < cap ? (size_t)k : 0;
    }
    if (n > 1)
        bl = (size_t)snprintf(body, sizeof(body), "{\"batch\":[");
    for (unsigned i = 0; i < n; i++) {
        bench_payload(payload, o->payload, step, seq + i, t);
        k = snprintf(body + bl, sizeof(body) - bl,
                     "%s{\"name\":\"b\",\"channel\":\"c%u\",\"data\":\"%s\"}",
                     i ? "," : "", chans[i], payload);
        if (k < 0 || (size_t)k >= sizeof(body) - bl)
            return 0;
        bl += (size_t)k;
    }
    if (n > 1) {
        k = snprintf(body + bl, sizeof(body) - bl, "]}");
        if (k < 0 || (size_t)k >= sizeof(body) - bl)
            return 0;
        bl += (size_t)k;
    }
    EVP_Digest(body, bl, dig, &dlen, EVP_md5(), NULL);
    hex(md5, dig, dlen);
    ql = snprintf(query, sizeof(query),
                  "auth_key=%s&auth_timestamp=%lld&auth_version=1.0&body_md5=%s", o->key,
                  (long long)time(NULL), md5);
    sl = snprintf(tosign, sizeof(tosign), "POST\n/apps/%s/%s\n%s", o->app_id,
                  n > 1 ? "batch_events" : "events", query);
    if (ql < 0 || (size_t)ql >= sizeof(query) || sl < 0 || (size_t)sl >= sizeof(tosign))
        return 0;
    HMAC(EVP_sha256(), o->secret, (int)strlen(o->secret), (unsigned char *)tosign,
         (size_t)sl, dig, &dlen);
    hex(sig, dig, dlen);
    k = snprintf(req, cap,
                 "POST /apps/%s/%s?%s&auth_signature=%s HTTP/1.1\r\nHost: %s:%u\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%.*s",
                 o->app_id, n > 1 ? "batch_events" : "events", query, sig, o->host,
                 o->pub_port, bl, (int)bl, body);
    return k > 0 && (size_t)k < cap ? (size_t)k : 0;
}

/* The request of c failed or was refused: its messages were not accepted. */
static void
refuse(struct pub *p, struct pconn *c)
{
    for (unsigned i = 0; i < c->nchans; i++)
        p->r->pub_ok[c->chans[i]]--;
    p->r->errors += c->nchans;
}

static int
pconn_open(struct pub *p, struct pconn *c)
{
    struct sockaddr_in dst = {.sin_family = AF_INET};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    dst.sin_port = htons((uint16_t)p->o->pub_port);
    inet_pton(AF_INET, p->o->host, &dst.sin_addr);
    if (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 ||
        fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0 ||
        epoll_ctl(p->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->busy = false;
    c->rl = 0;
    return 0;
}

static void
pconn_reset(struct pub *p, struct pconn *c)
{
    if (c->busy) {
        p->inflight--;
        refuse(p, c);
    }
    close(c->fd);
    if (pconn_open(p, c) < 0)
        c->fd = -1;
}

static struct pconn *
idle_conn(struct pub *p)
{
    for (unsigned i = 0; i < p->nconns; i++)
        if (p->c[i].fd >= 0 && !p->c[i].busy)
            return &p->c[i];
    if (p->nconns < p->o->pub_conns && p->nconns < PUB_MAX_CONNS &&
        pconn_open(p, &p->c[p->nconns]) == 0)
        return &p->c[p->nconns++];
    return NULL;
}

/* Complete responses in c->rb; -1 when the connection must be reopened. */
static int
on_response(struct pub *p, struct pconn *c)
{
    for (;;) {
        char *eoh = memmem(c->rb, c->rl, "\r\n\r\n", 4), *cl;
        size_t hlen, blen = 0, total;
        int status;
        bool close_after;

        if (eoh == NULL)
            return c->rl == sizeof(c->rb) ? -1 : 0;
        *eoh = '\0';
        hlen = (size_t)(eoh - c->rb) + 4;
        cl = strcasestr(c->rb, "\r\ncontent-length:");
        if (cl)
            blen = strtoul(cl + 17, NULL, 10);
        else if (strcasestr(c->rb, "\r\ntransfer-encoding: chunked"))
            return -1; /* neither server chunks these answers */
        close_after = strcasestr(c->rb, "\r\nconnection: close") != NULL;
        *eoh = '\r';
        total = hlen + blen;
        if (total > sizeof(c->rb))
            return -1;
        if (c->rl < total)
            return 0;
        status = c->rl > 12 ? atoi(c->rb + 9) : 0;
        if (c->busy) {
            c->busy = false;
            p->inflight--;
            if (status >= 200 && status < 300) {
                p->r->ok += c->nchans;
            } else {
                refuse(p, c);
                if (p->r->errors <= 3 * c->nchans)
                    fprintf(stderr, "mnbench: publish answered %d: %.*s\n", status,
                            (int)blen, c->rb + hlen);
            }
        }
        memmove(c->rb, c->rb + total, c->rl - total);
        c->rl -= total;
        if (close_after)
            return -1;
    }
}

static void
on_readable(struct pub *p, struct pconn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->rb + c->rl, sizeof(c->rb) - c->rl, 0);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            pconn_reset(p, c);
            return;
        }
        c->rl += (size_t)n;
        if (on_response(p, c) < 0) {
            pconn_reset(p, c);
            return;
        }
    }
}

/* Sends messages seq .. seq + n - 1 on c; every one counted as expected
 * until the server refuses the request. */
static int
send_one(struct pub *p, struct pconn *c, unsigned step, uint64_t seq, unsigned n,
         uint64_t t)
{
    const struct bench_opts *o = p->o;
    size_t cap = BENCH_BATCH_MAX * (BENCH_PAYLOAD_MAX + 64) + 2048, len;
    char *req = malloc(cap);

    if (req == NULL)
        abort();
    len = build_request(o, req, cap, step, seq, n, t, c->chans);
    c->nchans = n;
    if (len == 0 || send(c->fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        free(req);
        p->r->errors += n;
        c->busy = false;
        pconn_reset(p, c);
        return -1;
    }
    free(req);
    c->busy = true;
    for (unsigned i = 0; i < n; i++)
        p->r->pub_ok[c->chans[i]]++; /* taken back if the server refuses it */
    p->inflight++;
    p->r->sent += n;
    return 0;
}

static void
arm(struct pub *p, uint64_t at_ns)
{
    struct itimerspec its = {0};

    its.it_value.tv_sec = (time_t)(at_ns / 1000000000u);
    its.it_value.tv_nsec = (long)(at_ns % 1000000000u);
    timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

int
pub_step(const struct bench_opts *o, unsigned step, unsigned rate, struct pub_result *r)
{
    struct pub *p = calloc(1, sizeof(*p));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, evs[64];
    uint64_t total = (uint64_t)(rate * o->duration + 0.5), next = 0, t0, end_by;
    double interval = 1e9 / rate;
    int rc = -1;

    if (p == NULL)
        return -1;
    if (total == 0)
        total = 1;
    p->o = o;
    p->r = r;
    p->ep = epoll_create1(EPOLL_CLOEXEC);
    p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (p->ep < 0 || p->tfd < 0 || epoll_ctl(p->ep, EPOLL_CTL_ADD, p->tfd, &ev) < 0 ||
        idle_conn(p) == NULL)
        goto out;
    t0 = bench_now_ns() + 20000000u;
    end_by = t0 + (uint64_t)((o->duration + 10) * 1e9);
    while ((next < total || p->inflight) && bench_now_ns() < end_by) {
        uint64_t now = bench_now_ns();
        int k;

        while (next < total) {
            uint64_t due = t0 + (uint64_t)(interval * (double)next);
            struct pconn *c;

            if (due > now) {
                arm(p, due);
                break;
            }
            if ((c = idle_conn(p)) == NULL)
                break; /* sent as soon as an answer frees a connection */
            unsigned n = total - next < o->batch ? (unsigned)(total - next) : o->batch;

            if (now - due > 1000000u)
                r->late += n;
            send_one(p, c, step, next, n, due);
            next += n;
        }
        k = epoll_wait(p->ep, evs, 64, 100);
        for (int i = 0; i < k; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t ticks;
                if (read(p->tfd, &ticks, sizeof(ticks)) < 0)
                    continue;
            } else {
                on_readable(p, evs[i].data.ptr);
            }
        }
    }
    r->seconds = (double)(bench_now_ns() - t0) / 1e9;
    r->unanswered = p->inflight; /* may still be delivered: counted as expected */
    r->errors += total - next;   /* never sent within the deadline */
    rc = 0;
out:
    for (unsigned i = 0; i < p->nconns; i++)
        if (p->c[i].fd >= 0)
            close(p->c[i].fd);
    if (p->ep >= 0)
        close(p->ep);
    if (p->tfd >= 0)
        close(p->tfd);
    free(p);
    return rc;
}
