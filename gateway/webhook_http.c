/* webhook_http.c - one HTTP/1.1 POST on a libuv loop: uv_getaddrinfo, TCP
 * connect, for https the TLS handshake, write, read up to the end of the
 * answer's headers, close. Every step is asynchronous and a timer bounds the
 * whole exchange, so a receiver that never answers (or never finishes a
 * handshake) costs a socket and a timer, never a blocked loop. Over TLS the
 * bytes go through webhook_tls.c's session: what the socket reads is fed to
 * it, what it produces is written. Knows nothing of webhooks' meaning
 * (webhook.c) or bytes (webhook_msg.c) beyond the status line. */
#include "webhook_http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "webhook_msg.h"
#include "mn.h"

#define RESP_MAX 4096    /* bytes of status line and headers read at most */
#define CIPHER_MAX 16384 /* bytes read from a TLS connection at once */

struct webhook_http {
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uv_timer_t timer;
    char *req;
    size_t len;
    char in[RESP_MAX]; /* the answer, plaintext */
    size_t in_len;
    struct webhook_tls *tls; /* https only */
    char *cipher;            /* https only: CIPHER_MAX bytes for reads */
    const char *step;        /* what a timeout interrupts */
    int status;              /* from the status line once read, else 0 */
    int early_status;        /* what the timer reports when started at 0 ms */
    bool resolving, tcp_open, finished;
    unsigned pending; /* handles not yet closed + a resolve in flight */
    webhook_http_done_fn *done;
    void *arg;
};

/* One write of TLS output; freed by its callback. */
struct out {
    uv_write_t w;
    struct webhook_http *x;
    char *data;
};

static void
release(struct webhook_http *x)
{
    if (--x->pending > 0)
        return;
    webhook_tls_free(x->tls);
    free(x->cipher);
    free(x->req);
    free(x);
}

static void
on_closed(uv_handle_t *h)
{
    release(h->data);
}

/* Reports status once, then closes everything; x is freed when the last
 * handle has closed and any resolve in flight has come back. Writes still
 * queued are cancelled by the close, their callbacks first. */
static void
finish(struct webhook_http *x, int status, const char *why)
{
    if (x->finished)
        return;
    x->finished = true;
    uv_timer_stop(&x->timer);
    x->done(x->arg, status, why);
    if (x->resolving)
        uv_cancel((uv_req_t *)&x->gai); /* its callback still comes */
    if (x->tcp_open)
        uv_close((uv_handle_t *)&x->tcp, on_closed);
    uv_close((uv_handle_t *)&x->timer, on_closed);
}

/* Fails with "what: libuv's text of err". */
static void
finish_uv(struct webhook_http *x, const char *what, int err)
{
    char why[128];

    snprintf(why, sizeof(why), "%s: %s", what, uv_strerror(err));
    finish(x, WEBHOOK_HTTP_FAILED, why);
}

static void
on_timer(uv_timer_t *t)
{
    struct webhook_http *x = t->data;
    char why[96];

    if (x->early_status) {
        finish(x, x->early_status, "cannot start resolving the host");
        return;
    }
    snprintf(why, sizeof(why), "timed out %s", x->step);
    finish(x, WEBHOOK_HTTP_TIMEOUT, why);
}

static void
on_alloc(uv_handle_t *h, size_t hint MN_UNUSED, uv_buf_t *buf)
{
    struct webhook_http *x = h->data;

    if (x->tls != NULL)
        *buf = uv_buf_init(x->cipher, CIPHER_MAX);
    else
        *buf = uv_buf_init(x->in + x->in_len, (unsigned)(RESP_MAX - x->in_len));
}

/* x->in has grown: finishes once the status line and headers are in. */
static void
got_answer(struct webhook_http *x)
{
    int r, st;

    r = webhook_msg_status(x->in, x->in_len, &st);
    if (r < 0)
        finish(x, WEBHOOK_HTTP_FAILED, "the answer is not HTTP/1.x");
    else if (r == 1)
        finish(x, st, "");
    else if (x->in_len == RESP_MAX) /* headers beyond our cap: keep the status */
        finish(x, st > 0 ? st : WEBHOOK_HTTP_FAILED, st > 0 ? "" : "answer too long");
    else
        x->status = st;
}

/* The connection ended: the status line, if it came, is what counts. */
static void
got_end(struct webhook_http *x, ssize_t n)
{
    if (x->status > 0)
        finish(x, x->status, "");
    else if (n == UV_EOF)
        finish(x, WEBHOOK_HTTP_FAILED, "closed without an answer");
    else
        finish_uv(x, "read", (int)n);
}

static void
on_out_written(uv_write_t *w, int status)
{
    struct out *o = w->data;

    if (status < 0 && !o->x->finished)
        finish_uv(o->x, "write", status);
    free(o->data);
    free(o);
}

/* Writes the TLS session's output (takes out's bytes). */
static void
send_out(struct webhook_http *x, struct buf *out)
{
    struct out *o;
    uv_buf_t b;
    int r;

    if (out->len == 0)
        return;
    o = xcalloc(1, sizeof(*o));
    o->x = x;
    o->w.data = o;
    b = uv_buf_init(buf_data(out), (unsigned)out->len);
    o->data = buf_steal(out);
    if ((r = uv_write(&o->w, (uv_stream_t *)&x->tcp, &b, 1, on_out_written)) < 0) {
        free(o->data);
        free(o);
        finish_uv(x, "write", r);
    }
}

/* Runs the TLS session on cipher[0..n) (n 0 to start it). */
static void
tls_step(struct webhook_http *x, const char *cipher, size_t n)
{
    struct buf out = BUF_INIT;
    size_t before = x->in_len;
    int r = webhook_tls_step(x->tls, cipher, n, &out, x->in, RESP_MAX, &x->in_len);

    if (r < 0) {
        /* the alert, best effort: the connection is closed right after */
        uv_buf_t b = uv_buf_init(buf_data(&out), (unsigned)out.len);
        if (out.len > 0)
            uv_try_write((uv_stream_t *)&x->tcp, &b, 1);
        buf_free(&out);
        finish(x, WEBHOOK_HTTP_FAILED, webhook_tls_error(x->tls));
        return;
    }
    send_out(x, &out);
    buf_free(&out);
    if (!x->finished && webhook_tls_ready(x->tls))
        x->step = "waiting for the answer";
    if (!x->finished && x->in_len > before)
        got_answer(x);
    if (!x->finished && r == 1)
        got_end(x, UV_EOF);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct webhook_http *x = s->data;

    if (x->finished || n == 0)
        return;
    if (n < 0) {
        got_end(x, n);
    } else if (x->tls != NULL) {
        tls_step(x, buf->base, (size_t)n);
    } else {
        x->in_len += (size_t)n;
        got_answer(x);
    }
}

static void
on_write(uv_write_t *w, int status)
{
    struct webhook_http *x = w->data;

    if (status < 0 && !x->finished)
        finish_uv(x, "write", status);
}

static void
on_connect(uv_connect_t *c, int status)
{
    struct webhook_http *x = c->data;
    uv_buf_t b = uv_buf_init(x->req, (unsigned)x->len);
    int r;

    if (x->finished)
        return;
    if (status < 0) {
        finish_uv(x, "connect", status);
        return;
    }
    if ((r = uv_read_start((uv_stream_t *)&x->tcp, on_alloc, on_read)) < 0) {
        finish_uv(x, "read", r);
    } else if (x->tls != NULL) {
        x->step = "during the tls handshake";
        tls_step(x, NULL, 0); /* the ClientHello */
    } else {
        x->step = "waiting for the answer";
        if ((r = uv_write(&x->write, (uv_stream_t *)&x->tcp, &b, 1, on_write)) < 0)
            finish_uv(x, "write", r);
    }
}

static void
on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct webhook_http *x = g->data;
    int r;

    x->resolving = false;
    if (!x->finished) {
        if (status < 0 || res == NULL) {
            finish_uv(x, "resolve", status < 0 ? status : UV_EAI_NONAME);
        } else {
            uv_tcp_init(g->loop, &x->tcp);
            x->tcp.data = x;
            x->tcp_open = true;
            x->pending++;
            uv_tcp_nodelay(&x->tcp, 1);
            x->step = "connecting";
            if ((r = uv_tcp_connect(&x->connect, &x->tcp, res->ai_addr, on_connect)) < 0)
                finish_uv(x, "connect", r);
        }
    }
    uv_freeaddrinfo(res);
    release(x);
}

struct webhook_http *
webhook_http_post(uv_loop_t *loop, const char *host, unsigned port,
                  struct webhook_tls_ctx *tls, const char *req, size_t len,
                  unsigned timeout_ms, webhook_http_done_fn *done, void *arg)
{
    struct webhook_http *x = xcalloc(1, sizeof(*x));
    struct addrinfo hints = {0};
    char service[8];

    x->req = xmalloc(len);
    memcpy(x->req, req, len);
    x->len = len;
    x->done = done;
    x->arg = arg;
    x->step = "resolving the host";
    if (tls != NULL) {
        x->tls = webhook_tls_new(tls, host, x->req, x->len);
        x->cipher = xmalloc(CIPHER_MAX);
    }
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
    finish(x, WEBHOOK_HTTP_CANCELLED, "cancelled");
}
