/* webhook_http.h - one HTTP/1.1 POST on a libuv loop, without blocking it:
 * resolve (uv_getaddrinfo), connect, (for https, the TLS handshake through
 * webhook_tls.c,) write the request, read the status line and headers, close;
 * a uv_timer bounds the whole exchange. Used by the webhook thread only. */
#ifndef MN_WEBHOOK_HTTP_H
#define MN_WEBHOOK_HTTP_H

#include <stddef.h>

#include <uv.h>

#include "webhook_tls.h"

struct webhook_http;

/* status: the HTTP status, or WEBHOOK_HTTP_FAILED (resolve, connect, TLS
 * (the certificate does not verify, ...), I/O or a malformed answer),
 * WEBHOOK_HTTP_TIMEOUT (at any step: a hung TLS handshake too),
 * WEBHOOK_HTTP_CANCELLED. why says what failed ("connect: connection
 * refused", "certificate verify failed: self-signed certificate", "timed out
 * during the tls handshake"), "" for an HTTP status; it is valid during the
 * call only and never holds request bytes. */
#define WEBHOOK_HTTP_FAILED (-1)
#define WEBHOOK_HTTP_TIMEOUT (-2)
#define WEBHOOK_HTTP_CANCELLED (-3)
typedef void webhook_http_done_fn(void *arg, int status, const char *why);

/* Sends req[0..len) (copied) to host:port, over TLS verified against tls when
 * tls is not NULL (tls must outlive the exchange), and calls done exactly
 * once, from the loop, never from inside this call. Returns the exchange,
 * valid until done is called. */
struct webhook_http *webhook_http_post(uv_loop_t *loop, const char *host, unsigned port,
                                       struct webhook_tls_ctx *tls, const char *req,
                                       size_t len, unsigned timeout_ms,
                                       webhook_http_done_fn *done, void *arg);
/* Ends the exchange early: done is called with WEBHOOK_HTTP_CANCELLED (at once). */
void webhook_http_cancel(struct webhook_http *x);

#endif
