/* webhook_http.c - one HTTP/1.1 POST on a libuv loop: uv_getaddrinfo, TCP
 * connect, write, read up to the end of the answer's headers, close. Every
 * step is asynchronous and a timer bounds the whole exchange, so a receiver
 * that never answers costs a socket and a timer, never a blocked loop.
 * Knows nothing of webhooks' meaning (webhook.c) or bytes (webhook_msg.c)
 * beyond the status line. */
#include "webhook_http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "webhook_msg.h"
#include "mn.h"

#define RESP_MAX 4096 /* bytes of status line and headers read at most */

struct webhook_http {
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uv_timer_t timer;
    char *req;
    size_t len;
    char in[RESP_MAX];
    size_t in_len;
    int status;       /* from the status line once read, else 0 */
    int early_status; /* what the timer reports when started at 0 ms */
    bool resolving, tcp_open, finished;
    unsigned pending; /* handles not yet closed + a resolve in flight */
    webhook_http_done_fn *done;
    void *arg;
};

static void
release(struct webhook_http *x)
{
    if (--x->pending > 0)
        return;
    free(x->req);
    free(x);
}

static void
on_closed(uv_handle_t *h)
{
    release(h->data);
}

/* Reports status once, then closes everything; x is freed when the last
 * handle has closed and any resolve in flight has come back. */
static void
finish(struct webhook_http *x, int status)
{
    if (x->finished)
        return;
    x->finished = true;
    uv_timer_stop(&x->timer);
    x->done(x->arg, status);
    if (x->resolving)
        uv_cancel((uv_req_t *)&x->gai); /* its callback still comes */
    if (x->tcp_open)
        uv_close((uv_handle_t *)&x->tcp, on_closed);
    uv_close((uv_handle_t *)&x->timer, on_closed);
}

static void
on_timer(uv_timer_t *t)
{
    struct webhook_http *x = t->data;

    finish(x, x->early_status ? x->early_status : WEBHOOK_HTTP_TIMEOUT);
}

static void
on_alloc(uv_handle_t *h, size_t hint MN_UNUSED, uv_buf_t *buf)
{
    struct webhook_http *x = h->data;

    *buf = uv_buf_init(x->in + x->in_len, (unsigned)(RESP_MAX - x->in_len));
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf MN_UNUSED)
{
    struct webhook_http *x = s->data;
    int r, st;

    if (x->finished || n == 0)
        return;
    if (n < 0) { /* EOF or an error: the status line is what counts */
        finish(x, x->status > 0 ? x->status : WEBHOOK_HTTP_FAILED);
        return;
    }
    x->in_len += (size_t)n;
    r = webhook_msg_status(x->in, x->in_len, &st);
    if (r < 0)
        finish(x, WEBHOOK_HTTP_FAILED);
    else if (r == 1)
        finish(x, st);
    else if (x->in_len == RESP_MAX) /* headers beyond our cap: keep the status */
        finish(x, st > 0 ? st : WEBHOOK_HTTP_FAILED);
    else
        x->status = st;
}

static void
on_write(uv_write_t *w, int status)
{
    struct webhook_http *x = w->data;

    if (status < 0 && !x->finished)
        finish(x, WEBHOOK_HTTP_FAILED);
}

static void
on_connect(uv_connect_t *c, int status)
{
    struct webhook_http *x = c->data;
    uv_buf_t b = uv_buf_init(x->req, (unsigned)x->len);

    if (x->finished)
        return;
    if (status < 0 || uv_write(&x->write, (uv_stream_t *)&x->tcp, &b, 1, on_write) < 0 ||
        uv_read_start((uv_stream_t *)&x->tcp, on_alloc, on_read) < 0)
        finish(x, WEBHOOK_HTTP_FAILED);
}

static void
on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct webhook_http *x = g->data;

    x->resolving = false;
    if (!x->finished) {
        if (status < 0 || res == NULL) {
            finish(x, WEBHOOK_HTTP_FAILED);
        } else {
            uv_tcp_init(g->loop, &x->tcp);
            x->tcp.data = x;
            x->tcp_open = true;
            x->pending++;
            uv_tcp_nodelay(&x->tcp, 1);
            if (uv_tcp_connect(&x->connect, &x->tcp, res->ai_addr, on_connect) < 0)
                finish(x, WEBHOOK_HTTP_FAILED);
        }
    }
    uv_freeaddrinfo(res);
    release(x);
}

struct webhook_http *
webhook_http_post(uv_loop_t *loop, const char *host, unsigned port, const char *req,
                  size_t len, unsigned timeout_ms, webhook_http_done_fn *done, void *arg)
{
    struct webhook_http *x = xcalloc(1, sizeof(*x));
    struct addrinfo hints = {0};
    char service[8];

    x->req = xmalloc(len);
    memcpy(x->req, req, len);
    x->len = len;
    x->done = done;
    x->arg = arg;
    x->gai.data = x->connect.data = x->write.data = x->timer.data = x;
    uv_timer_init(loop, &x->timer);
    x->pending = 1;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof(service), "%u", port);
    if (uv_getaddrinfo(loop, &x->gai, on_resolved, host, service, &hints) < 0) {
        /* done must not run inside this call: the timer reports it */
        x->early_status = WEBHOOK_HTTP_FAILED;
        timeout_ms = 0;
    } else {
        x->resolving = true;
        x->pending++;
    }
    uv_timer_start(&x->timer, on_timer, timeout_ms, 0);
    return x;
}

void
webhook_http_cancel(struct webhook_http *x)
{
    finish(x, WEBHOOK_HTTP_CANCELLED);
}
