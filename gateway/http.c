/* http.c - Pusher's REST API on the gateway's own port: collects one HTTP
 * request (method, path, query, body up to max-request-size), hands it to the
 * shared REST core with the hub as backend, and writes the answer with
 * keep-alive. On plain TCP an answer the core gives at once is written, headers
 * and body in one write, from the callback that completed the request; on TLS
 * (where lws may speak HTTP/2) headers and body are two writes, the body from
 * HTTP_WRITEABLE. An answer may come later from another thread (distributed
 * mode: once Redis took the event); it is posted back to the worker, and
 * dropped if the connection closed meanwhile. Owns nothing of the API's rules;
 * those are in shared/rest.c. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "hub.h"
#include "log.h"
#include "mem.h"
#include "rest.h"
#include "mn.h"

struct http_txn {
    char method[8];
    char *path;
    struct buf query;
    struct buf body;
    struct rest_res *res;
    bool close_after;       /* the body was left unread: the connection ends */
    bool headers_sent;      /* split answer (TLS): the headers are written */
    struct http_wait *wait; /* an answer is on its way from another thread */
};

/* One REST call in flight. Owned by the call until its answer is handled on
 * the worker's thread; s is cleared when the connection closes first. */
struct http_wait {
    struct worker *w;
    struct session *s;
    struct lws *wsi;
    struct rest_res *res; /* set by on_done */
    atomic_int state;     /* WAIT_CALLING, then _ANSWERED or _RETURNED */
};

/* Whoever moves state away from WAIT_CALLING first decides: on_done before
 * rest_handle returned (answered in the call), or respond after (on_done
 * then posts the answer to the worker). */
enum { WAIT_CALLING, WAIT_ANSWERED, WAIT_RETURNED };

static void
txn_free(struct session *s)
{
    struct http_txn *t = s->txn;

    if (t == NULL)
        return;
    if (t->wait)
        t->wait->s = NULL; /* the answer, when it comes, is dropped */
    free(t->path);
    buf_free(&t->query);
    buf_free(&t->body);
    if (t->res)
        rest_res_free(t->res);
    free(t);
    s->txn = NULL;
}

/* The status line and headers at *p (up to end), not finalized; with close,
 * Connection: close. */
static int
add_headers(struct lws *wsi, int status, const char *type, size_t len, bool close,
            unsigned char **p, unsigned char *end)
{
    static const char conn_close[] = "close";

    if (lws_add_http_common_headers(wsi, (unsigned)status, type, (lws_filepos_t)len, p,
                                    end) ||
        (close && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                               (const unsigned char *)conn_close,
                                               sizeof(conn_close) - 1, p, end)))
        return -1;
    return 0;
}

/* Answers of at most this many bytes are built on the stack. */
#define ANSWER_STACK 2048
#define HEADERS_MAX 512

/* Writes t->res whole, headers and body in one lws_write (lws keeps what the
 * socket does not take and finishes it before the transaction completes),
 * then ends the transaction. Plain TCP only: over TLS lws may speak HTTP/2,
 * where headers and body are different frames. Returns -1 when the
 * connection must close. */
static int
write_answer(struct lws *wsi, struct session *s)
{
    struct http_txn *t = s->txn;
    const struct rest_res *res = t->res;
    size_t n = res->body.len;
    unsigned char stack[LWS_PRE + HEADERS_MAX + ANSWER_STACK], *buf = stack;
    unsigned char *start, *p;
    bool close_after = t->close_after;
    int rc = -1;

    if (n > ANSWER_STACK)
        buf = xmalloc(LWS_PRE + HEADERS_MAX + n);
    start = p = buf + LWS_PRE;
    if (add_headers(wsi, res->status, res->content_type, n, close_after, &p,
                    start + HEADERS_MAX - 1) == 0 &&
        lws_finalize_http_header(wsi, &p, start + HEADERS_MAX - 1) == 0) {
        memcpy(p, buf_data(&res->body), n);
        p += n;
        if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) ==
            (int)(p - start))
            rc = 0;
    }
    if (buf != stack)
        free(buf);
    txn_free(s);
    if (rc < 0 || close_after || lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

/* The split answer (TLS): headers now, the body from HTTP_WRITEABLE. */
static int
start_split(struct lws *wsi, struct http_txn *t)
{
    unsigned char headers[LWS_PRE + HEADERS_MAX], *start = headers + LWS_PRE, *p = start;

    if (add_headers(wsi, t->res->status, t->res->content_type, t->res->body.len,
                    t->close_after, &p, headers + sizeof(headers) - 1) < 0 ||
        lws_finalize_write_http_header(wsi, start, &p, headers + sizeof(headers) - 1))
        return -1;
    t->headers_sent = true;
    lws_callback_on_writable(wsi);
    return 0;
}

/* The rest of a split answer, from HTTP_WRITEABLE. */
static int
write_body(struct lws *wsi, struct session *s)
{
    struct http_txn *t = s->txn;
    size_t n = t->res->body.len;
    unsigned char *p = xmalloc(LWS_PRE + n + 1);
    bool close_after = t->close_after;
    int wrote;

    memcpy(p + LWS_PRE, buf_data(&t->res->body), n);
    wrote = lws_write(wsi, p + LWS_PRE, n, LWS_WRITE_HTTP_FINAL);
    free(p);
    txn_free(s);
    if (wrote < (int)n || close_after || lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

/* Where an answer is started from: another thread's answer posted to the
 * worker (no lws callback of this connection), LWS_CALLBACK_HTTP (lws is
 * still in the request's headers: the transaction cannot complete there),
 * or once the request's body is read. */
enum when { LATER, IN_HEADERS, COMPLETE };

/* t->res is ready: written whole at once on plain TCP once the request is
 * read; TLS writes its headers from a callback of this connection and the
 * body from HTTP_WRITEABLE; anything else waits for HTTP_WRITEABLE. */
static int
answer(struct lws *wsi, struct session *s, enum when when)
{
    if (when == COMPLETE && !lws_is_ssl(wsi))
        return write_answer(wsi, s);
    if (when != LATER && lws_is_ssl(wsi))
        return start_split(wsi, s->txn);
    lws_callback_on_writable(wsi);
    return 0;
}

static void
on_done(void *arg, struct rest_res *res)
{
    struct http_wait *wt = arg;
    struct delivery *d;
    int calling = WAIT_CALLING;

    wt->res = res;
    if (atomic_compare_exchange_strong(&wt->state, &calling, WAIT_ANSWERED))
        return; /* respond() takes it when rest_handle returns */
    d = delivery_new(0, "", 0, NULL, NULL);
    d->kind = DELIVERY_HTTP;
    d->ptr = wt;
    worker_post(wt->w, d);
}

void
http_answer(struct worker *w, void *arg)
{
    struct http_wait *wt = arg;
    struct session *s = wt->s;

    (void)w;
    if (s == NULL || s->txn == NULL) {
        rest_res_free(wt->res);
        free(wt);
        return;
    }
    s->txn->wait = NULL;
    s->txn->res = wt->res;
    answer(wt->wsi, s, LATER); /* only asks for HTTP_WRITEABLE */
    free(wt);
}

/* Runs the request through the REST core and starts the response. */
static int
respond(struct lws *wsi, struct session *s, enum when when)
{
    struct worker *w = lws_context_user(lws_get_context(wsi));
    struct http_txn *t = s->txn;
    struct rest_backend be = {hub_rest_call, w->hub};
    struct rest_req req = {0};
    struct http_wait *wt = xcalloc(1, sizeof(*wt));
    int calling = WAIT_CALLING;

    atomic_init(&wt->state, WAIT_CALLING);
    wt->w = w;
    wt->s = s;
    wt->wsi = wsi;
    t->wait = wt;
    req.method = t->method;
    req.path = t->path;
    req.path_len = strlen(t->path);
    req.query = t->query.len ? buf_data(&t->query) : NULL;
    req.query_len = t->query.len;
    req.query_decoded = true; /* lws decoded every piece (collect_query) */
    req.body = t->body.len ? buf_data(&t->body) : NULL;
    req.body_len = t->body.len;
    req.now = (int64_t)time(NULL);
    rest_handle(w->cfg, &be, &req, on_done, wt);
    if (atomic_compare_exchange_strong(&wt->state, &calling, WAIT_RETURNED))
        return 0; /* answered later, through http_answer */
    t->res = wt->res;
    t->wait = NULL;
    free(wt);
    return answer(wsi, s, when);
}

/* A fixed answer before or instead of the REST core (413, root page);
 * close: the request body is left unread, so the connection cannot be reused
 * and the client is told so. */
static int
respond_text(struct lws *wsi, struct session *s, int status, const char *text, bool close)
{
    struct http_txn *t = s->txn;

    t->close_after = close;
    t->res = xcalloc(1, sizeof(*t->res));
    t->res->status = status;
    t->res->content_type = "text/plain";
    buf_puts(&t->res->body, text);
    return answer(wsi, s, IN_HEADERS); /* from HTTP or HTTP_BODY: not complete */
}

static void
method_of(struct lws *wsi, char *out, size_t outlen)
{
    static const struct {
        enum lws_token_indexes tok;
        const char *name;
    } methods[] = {
        {WSI_TOKEN_GET_URI, "GET"},     {WSI_TOKEN_POST_URI, "POST"},
        {WSI_TOKEN_PUT_URI, "PUT"},     {WSI_TOKEN_DELETE_URI, "DELETE"},
        {WSI_TOKEN_PATCH_URI, "PATCH"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
        {WSI_TOKEN_HEAD_URI, "HEAD"},
    };

    snprintf(out, outlen, "OTHER");
    for (size_t i = 0; i < ARRAY_LEN(methods); i++)
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
            snprintf(out, outlen, "%s", methods[i].name);
            return;
        }
}

/* lws hands the query as decoded fragments split at '&': join them back. */
static void
collect_query(struct lws *wsi, struct buf *q)
{
    char frag[1024];
    int n;

    for (int i = 0; (n = lws_hdr_copy_fragment(wsi, frag, sizeof(frag),
                                               WSI_TOKEN_HTTP_URI_ARGS, i)) > 0;
         i++) {
        if (i)
            buf_putc(q, '&');
        buf_append(q, frag, (size_t)n);
    }
}

static int
on_http(struct lws *wsi, struct session *s, const char *path)
{
    struct worker *w = lws_context_user(lws_get_context(wsi));
    struct http_txn *t;
    char clen[32];

    txn_free(s);
    t = s->txn = xcalloc(1, sizeof(*t));
    method_of(wsi, t->method, sizeof(t->method));
    t->path = xstrdup(path);
    collect_query(wsi, &t->query);
    if (strcmp(path, "/") == 0 && strcmp(t->method, "GET") == 0)
        return respond_text(wsi, s, 200,
                            "micronotifier-gateway: Pusher protocol 7 at /app/APP_KEY, "
                            "Pusher HTTP API at /apps/APP_ID/...\n",
                            false);
    if (strcmp(t->method, "POST") != 0)
        return respond(wsi, s, IN_HEADERS);
    if (lws_hdr_copy(wsi, clen, sizeof(clen), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
        strtoull(clen, NULL, 10) > w->cfg->max_request_bytes)
        return respond_text(wsi, s, 413, "Request body too large\n", true);
    return 0; /* the body follows */
}

int
http_callback(struct lws *wsi, enum lws_callback_reasons reason, struct session *s,
              void *in, size_t len)
{
    struct worker *w = lws_context_user(lws_get_context(wsi));
    struct http_txn *t;

    if (s == NULL) /* lws calls some close reasons before it allocated ours */
        return 0;
    t = s->txn;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http(wsi, s, in);
    case LWS_CALLBACK_HTTP_BODY:
        if (t == NULL || t->res)
            return t ? 0 : -1;
        if (len > w->cfg->max_request_bytes - t->body.len)
            return respond_text(wsi, s, 413, "Request body too large\n", true);
        buf_append(&t->body, in, len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (t == NULL)
            return -1;
        return t->res ? 0 : respond(wsi, s, COMPLETE);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (t == NULL || t->res == NULL)
            return 0;
        if (!lws_is_ssl(wsi))
            return write_answer(wsi, s);
        return t->headers_sent ? write_body(wsi, s) : start_split(wsi, t);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        txn_free(s);
        return 0;
    default:
        return 0;
    }
}
