/* send.c - writing to a Pusher connection: the bounded send queue, raw
 * sendmsg() of queued frames on plain TCP (direct when nothing is queued,
 * coalesced when several wait, partial writes finished first), lws_write on
 * TLS, slow consumers closed with 4100, and close frames. The protocol that
 * decides what to send is in ws.c. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "gw.h"
#include "log.h"
#include "mem.h"
#include "msg.h"
#include "mn.h"

#define WRITES_PER_CALLBACK 64
/* One sendmsg() takes at most this many frames / bytes; one WRITEABLE at
 * most RAW_ROUNDS sendmsg()s, then it yields to the other connections. */
#define WRITEV_FRAMES 64
#define WRITEV_BYTES (256 * 1024)
#define RAW_ROUNDS 4
/* lws's private LWS_WRITE_CLOSE (lws-write.h leaves its slot, 4, between
 * LWS_WRITE_HTTP and LWS_WRITE_PING): a close frame written by on_writeable. */
#define WS_WRITE_CLOSE ((enum lws_write_protocol)4)

/* --- sending --- */

void
ws_close(struct conn *c, int code, const char *why)
{
    if (c->close_code)
        return;
    c->close_code = code;
    snprintf(c->close_msg, sizeof(c->close_msg), "%s", why);
    lws_callback_on_writable(c->wsi);
    /* A client that does not read never becomes writable: bound the wait. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 3);
}

/* Drops what c did not read; a frame already partly written stays, so that
 * nothing else (the close frame) lands in the middle of it. */
static void
drop_queue(struct conn *c)
{
    struct frame *head = c->head_off ? frame_ref(sendq_peek(&c->q)) : NULL;

    sendq_clear(&c->q);
    if (head)
        sendq_push_take(&c->q, head, 1, SIZE_MAX);
}

/* Points iov (a header and a payload a frame) at c's queue from its head,
 * past the head_off bytes already sent. Returns the iovec count. */
static int
fill_iov(const struct conn *c, struct iovec *iov, size_t *total)
{
    size_t off = c->head_off, bytes = 0;
    int n = 0;

    for (size_t i = 0; i < c->q.count && i < WRITEV_FRAMES && bytes < WRITEV_BYTES; i++) {
        struct frame *f = sendq_at(&c->q, i);
        unsigned char *part[2] = {f->hdr, frame_payload(f)};
        size_t plen[2] = {f->hlen, f->len};

        for (int k = 0; k < 2; k++) {
            if (off >= plen[k]) {
                off -= plen[k];
                continue;
            }
            iov[n].iov_base = part[k] + off;
            iov[n++].iov_len = plen[k] - off;
            bytes += plen[k] - off;
            off = 0;
        }
    }
    *total = bytes;
    return n;
}

/* Writes c's queue with sendmsg() on its fd (plain TCP, c->direct): 1 when it
 * is all written, 0 when the socket is full or the round limit is reached
 * (the rest waits for WRITEABLE), -1 when the connection failed. */
static int
raw_flush(struct conn *c)
{
    struct iovec iov[2 * WRITEV_FRAMES];
    struct msghdr mh = {0};
    struct frame *f;
    size_t total, sent;
    ssize_t n;

    for (int round = 0; c->q.count; round++) {
        if (round == RAW_ROUNDS)
            return 0;
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)fill_iov(c, iov, &total);
        if (c->fd_plus1 == 0)
            c->fd_plus1 = lws_get_socket_fd(c->wsi) + 1;
        n = sendmsg(c->fd_plus1 - 1, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        sent = (size_t)n + c->head_off;
        while ((f = sendq_peek(&c->q)) != NULL && sent >= f->hlen + f->len) {
            sent -= f->hlen + f->len;
            sendq_pop(&c->q);
        }
        c->head_off = sent;
        if ((size_t)n < total) /* a short write: the socket is full */
            return 0;
    }
    return 1;
}

static void direct_write(struct conn *c);

/* Takes f. A queue past its cap makes c a slow consumer: closed with 4100.
 * With nothing queued on a plain TCP connection, f is written at once;
 * what the socket does not take waits for WRITEABLE. */
void
ws_send_frame(struct conn *c, struct frame *f)
{
    const struct mn_config *cfg = c->w->cfg;
    bool was_empty = c->q.count == 0;

    if (c->close_code || c->peer_close) {
        frame_unref(f);
        return;
    }
    if (sendq_push_take(&c->q, f, cfg->sendq_max_messages, cfg->sendq_max_bytes) < 0) {
        log_warn("gateway: slow client closed app=%s socket=%s queued=%zu",
                 c->app ? c->app->id : "-", c->socket_id, c->q.bytes);
        /* Drop what it did not read: the close frame goes next, if the
         * client reads again before close_conn's timeout kills it. */
        drop_queue(c);
        ws_close(c, 4100, "Over capacity: client too slow");
        return;
    }
    if (!was_empty)
        return; /* a WRITEABLE is already asked for, or c is on w->dirty */
    if (c->direct && c->w->batching) {
        c->in_dirty = true;
        c->dirty_next = c->w->dirty;
        c->w->dirty = c;
        return;
    }
    direct_write(c);
}

/* Writes c's queue now (plain TCP), or asks for WRITEABLE. */
static void
direct_write(struct conn *c)
{
    int r = c->direct ? raw_flush(c) : 0;

    if (r > 0)
        return;
    if (r < 0) {
        c->broken = true;
        sendq_clear(&c->q);
        c->head_off = 0;
        ws_close(c, 1006, "write failed");
        return;
    }
    lws_callback_on_writable(c->wsi);
}

void
ws_batch_begin(struct worker *w)
{
    w->batching = true;
}

void
ws_batch_end(struct worker *w)
{
    struct conn *c;

    w->batching = false;
    while ((c = w->dirty) != NULL) {
        w->dirty = c->dirty_next;
        c->in_dirty = false;
        if (c->q.count && !c->close_code)
            direct_write(c);
    }
}

void
ws_send_buf(struct conn *c, struct buf *b)
{
    ws_send_frame(c, frame_new(buf_data(b), b->len));
    buf_reset(b);
}

void
ws_send_error(struct conn *c, int code, const char *message)
{
    struct buf b = BUF_INIT;

    msg_error(&b, code, message);
    ws_send_buf(c, &b);
    buf_free(&b);
}

void
ws_send_sub_error(struct conn *c, const char *chan, size_t clen, const char *type,
                  const char *error, int status)
{
    struct buf b = BUF_INIT;

    msg_subscription_error(&b, chan, clen, type, error, status);
    ws_send_buf(c, &b);
    buf_free(&b);
}

int
ws_on_writeable(struct conn *c)
{
    struct frame *f;
    int n = 0;

    if (c->broken)
        return -1;
    /* lws calls WRITEABLE only once its own buffered output is written: from
     * here on a plain TCP connection's frames go out raw (send_frame). */
    if (!c->direct && !c->peer_close && !lws_is_ssl(c->wsi))
        c->direct = true;
    if (c->direct) {
        int r = raw_flush(c);

        if (r < 0)
            return -1;
        if (r == 0) {
            lws_callback_on_writable(c->wsi);
            return 0;
        }
    }
    while ((f = sendq_peek(&c->q)) != NULL) {
        if (n++ == WRITES_PER_CALLBACK || lws_send_pipe_choked(c->wsi)) {
            lws_callback_on_writable(c->wsi);
            return 0;
        }
        if (lws_write(c->wsi, frame_payload(f), f->len, LWS_WRITE_TEXT) < (int)f->len)
            return -1;
        sendq_pop(&c->q);
    }
    if (c->close_code) {
        /* lws 4.1 takes -1 from SERVER_WRITEABLE as a failed write and drops
         * the socket without the close frame lws_close_reason would prepare:
         * write the frame ourselves, then return -1. */
        unsigned char frame[LWS_PRE + 2 + sizeof(c->close_msg)];
        size_t mlen = strlen(c->close_msg);

        if (lws_send_pipe_choked(c->wsi)) { /* lws would keep a part of it */
            lws_callback_on_writable(c->wsi);
            return 0;
        }
        frame[LWS_PRE] = (unsigned char)(c->close_code >> 8);
        frame[LWS_PRE + 1] = (unsigned char)(c->close_code & 0xff);
        memcpy(frame + LWS_PRE + 2, c->close_msg, mlen);
        lws_write(c->wsi, frame + LWS_PRE, 2 + mlen, WS_WRITE_CLOSE);
        return -1;
    }
    return 0;
}
