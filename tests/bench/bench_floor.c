/* bench_floor.c - the floor: the least a server can do per delivery. Takes
 * WebSocket upgrades on GET /floor/CHANNEL (no checks, no Pusher protocol),
 * and for each POST /pub/CHANNEL builds the frame the gateway would send
 * ({"event":"b","channel":...,"data":...}) once and writes it with one plain
 * send() per subscriber. Its CPU time per delivery is the floor the gateway
 * is measured against in the same run. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define FLOOR_CHANS 65536
#define FLOOR_RBUF 4096

struct fconn {
    int fd;
    bool ws;
    unsigned ch;
    size_t rl;
    char rb[FLOOR_RBUF];
};

struct fchan {
    int *fds;
    size_t n, cap;
};

static struct fchan chans[FLOOR_CHANS];

static unsigned
chan_of(const char *p)
{
    return (unsigned)strtoul(p, NULL, 10) % FLOOR_CHANS;
}

static void
join(unsigned ch, int fd)
{
    struct fchan *c = &chans[ch];

    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->fds = realloc(c->fds, c->cap * sizeof(*c->fds));
        if (c->fds == NULL)
            abort();
    }
    c->fds[c->n++] = fd;
}

static void
leave(unsigned ch, int fd)
{
    for (size_t i = 0; i < chans[ch].n; i++)
        if (chans[ch].fds[i] == fd) {
            chans[ch].fds[i] = chans[ch].fds[--chans[ch].n];
            return;
        }
}

static void
fan_out(unsigned ch, const char *data, size_t dlen)
{
    unsigned char frame[BENCH_PAYLOAD_MAX + 128];
    size_t h, len;
    int n = snprintf((char *)frame + 4, sizeof(frame) - 4,
                     "{\"event\":\"b\",\"channel\":\"c%u\",\"data\":\"%.*s\"}", ch,
                     (int)dlen, data);

    if (n < 0 || (size_t)n >= sizeof(frame) - 4)
        return;
    len = (size_t)n;
    if (len < 126) {
        h = 2;
        memmove(frame + 2, frame + 4, len);
        frame[1] = (unsigned char)len;
    } else {
        h = 4;
        frame[1] = 126;
        frame[2] = (unsigned char)(len >> 8);
        frame[3] = (unsigned char)len;
    }
    frame[0] = 0x81;
    for (size_t i = 0; i < chans[ch].n; i++)
        send(chans[ch].fds[i], frame, h + len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Requests complete in c->rb; -1 closes the connection. */
static int
on_requests(struct fconn *c)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    static const char up[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    while (!c->ws) {
        char *eoh = memmem(c->rb, c->rl, "\r\n\r\n", 4), *cl;
        size_t hlen, blen = 0;

        if (eoh == NULL)
            return c->rl == sizeof(c->rb) ? -1 : 0;
        *eoh = '\0';
        hlen = (size_t)(eoh - c->rb) + 4;
        if ((cl = strcasestr(c->rb, "\r\ncontent-length:")) != NULL)
            blen = strtoul(cl + 17, NULL, 10);
        *eoh = '\r';
        if (hlen + blen > sizeof(c->rb))
            return -1;
        if (c->rl < hlen + blen)
            return 0;
        if (strncmp(c->rb, "GET /floor/c", 12) == 0) {
            c->ws = true;
            c->ch = chan_of(c->rb + 12);
            join(c->ch, c->fd);
            send(c->fd, up, sizeof(up) - 1, MSG_NOSIGNAL);
        } else if (strncmp(c->rb, "POST /pub/c", 11) == 0) {
            fan_out(chan_of(c->rb + 11), c->rb + hlen, blen);
            send(c->fd, ok, sizeof(ok) - 1, MSG_NOSIGNAL);
        } else {
            return -1;
        }
        memmove(c->rb, c->rb + hlen + blen, c->rl - hlen - blen);
        c->rl -= hlen + blen;
    }
    c->rl = 0; /* a subscriber's frames (pongs) are read and dropped */
    return 0;
}

static void
on_readable(struct fconn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->rb + c->rl, sizeof(c->rb) - c->rl, 0);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0 || (c->rl += (size_t)n, on_requests(c) < 0)) {
            if (c->ws)
                leave(c->ch, c->fd);
            close(c->fd);
            free(c);
            return;
        }
    }
}

void
floor_run(const char *host, unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, evs[256];
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);

    inet_pton(AF_INET, host, &a.sin_addr);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || ep < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(lfd, 4096) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        perror("mnbench floor: listen");
        _exit(99);
    }
    for (;;) {
        int k = epoll_wait(ep, evs, 256, -1);

        for (int i = 0; i < k; i++) {
            struct fconn *c = evs[i].data.ptr;
            int fd;

            if (c) {
                on_readable(c);
                continue;
            }
            while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                struct epoll_event cev = {.events = EPOLLIN};

                c = calloc(1, sizeof(*c));
                if (c == NULL)
                    abort();
                c->fd = fd;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                cev.data.ptr = c;
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
            }
        }
    }
}
