/* webhook_tls.h - TLS for the webhook sender (https:// receivers): client
 * contexts (what is trusted) and sessions that run OpenSSL over memory BIOs.
 * A session never touches a socket or blocks: webhook_http.c hands it the
 * bytes read from the TCP connection and writes out the bytes it produces, on
 * the sender's libuv loop. Used by the webhook thread only. */
#ifndef MN_WEBHOOK_TLS_H
#define MN_WEBHOOK_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

struct webhook_tls_ctx;
struct webhook_tls;

/* A client context that verifies peers against ca_file (PEM), or against the
 * system's CA store when ca_file is NULL; TLS 1.2 at least. NULL, with why in
 * err, when ca_file cannot be loaded. Free with webhook_tls_ctx_free(). */
struct webhook_tls_ctx *webhook_tls_ctx_new(const char *ca_file, struct mn_err *err);
void webhook_tls_ctx_free(struct webhook_tls_ctx *ctx);

/* A session to host (a name: sent as SNI and checked against the
 * certificate's names; an IP address: checked against its IP addresses) that
 * sends plain[0..len) once the handshake is done. plain is borrowed and must
 * outlive the session; ctx too. Free with webhook_tls_free(). */
struct webhook_tls *webhook_tls_new(struct webhook_tls_ctx *ctx, const char *host,
                                    const char *plain, size_t len);
void webhook_tls_free(struct webhook_tls *s);

/* Advances the session with cipher[0..clen) read from the peer (clen 0 to
 * start it; one read's worth, well under INT_MAX): appends the bytes to write
 * to the peer to out, and the plaintext received to in[*in_len..cap), moving
 * *in_len (what does not fit stays unread). Returns 0 while going on, 1 when the peer
 * closed the TLS session, -1 when it failed (webhook_tls_error() says why; out may then
 * hold an alert worth a best-effort write). Once it has failed it keeps failing. */
int webhook_tls_step(struct webhook_tls *s, const char *cipher, size_t clen,
                     struct buf *out, char *in, size_t cap, size_t *in_len);
/* Whether the handshake is done (the request has been handed to OpenSSL). */
bool webhook_tls_ready(const struct webhook_tls *s);
/* Why the last step failed, e.g. "certificate verify failed: self-signed
 * certificate"; "" before a failure. Valid until the session is freed. */
const char *webhook_tls_error(const struct webhook_tls *s);

#endif
