/* webhook_tls.c - the TLS client side of webhook requests to https://
 * receivers: one SSL_CTX per trust store (the system's, or a receiver's
 * ca-file), and per request an SSL over two memory BIOs, so that OpenSSL
 * only ever transforms bytes and the socket stays with webhook_http.c on the
 * sender's libuv loop. The peer is verified (chain, then the URL's host name
 * with SNI, or its IP address); there is no way to switch that off. Knows
 * nothing of HTTP beyond the request bytes it is handed. */
#include "webhook_tls.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mem.h"
#include "mn.h"

#define WHY_MAX 160

struct webhook_tls_ctx {
    SSL_CTX *ssl_ctx;
};

struct webhook_tls {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl: what we read from the peer, what goes to it */
    const char *plain;
    size_t plain_len;
    bool sent; /* plain handed to SSL_write */
    char why[WHY_MAX];
};

/* The last OpenSSL error of this thread as text, or fallback. */
static void
openssl_why(char *why, size_t cap, const char *what, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    char text[128];

    if (e == 0) {
        snprintf(why, cap, "%s: %s", what, fallback);
        return;
    }
    ERR_error_string_n(e, text, sizeof(text));
    snprintf(why, cap, "%s: %s", what, text);
}

struct webhook_tls_ctx *
webhook_tls_ctx_new(const char *ca_file, struct mn_err *err)
{
    struct webhook_tls_ctx *c;
    SSL_CTX *ctx;
    char why[WHY_MAX];

    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        openssl_why(why, sizeof(why), "SSL_CTX_new", "failed");
        mn_err_set(err, 0, "%s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
                        : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        openssl_why(why, sizeof(why), ca_file ? ca_file : "the system's CA store",
                    "cannot be loaded");
        mn_err_set(err, 0, "%s", why);
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->ssl_ctx = ctx;
    return c;
}

void
webhook_tls_ctx_free(struct webhook_tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

static bool
is_ip(const char *host)
{
    unsigned char addr[16];

    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/* OpenSSL could not allocate: the policy of mem.c (log and abort), since no
 * caller checks for it. */
static void __attribute__((noreturn)) oom(const char *what)
{
    fprintf(stderr, "fatal: out of memory in OpenSSL (%s)\n", what);
    abort();
}

struct webhook_tls *
webhook_tls_new(struct webhook_tls_ctx *ctx, const char *host, const char *plain,
                size_t len)
{
    struct webhook_tls *s = xcalloc(1, sizeof(*s));
    X509_VERIFY_PARAM *param;

    s->ssl = SSL_new(ctx->ssl_ctx);
    s->rbio = BIO_new(BIO_s_mem());
    s->wbio = BIO_new(BIO_s_mem());
    if (s->ssl == NULL || s->rbio == NULL || s->wbio == NULL)
        oom("SSL_new");
    /* An empty read BIO means "wait for more", not end of file. */
    BIO_set_mem_eof_return(s->rbio, -1);
    SSL_set_bio(s->ssl, s->rbio, s->wbio);
    SSL_set_connect_state(s->ssl);
    param = SSL_get0_param(s->ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (is_ip(host)) {
        /* No SNI for an address (RFC 6066, 3); the certificate must name it. */
        if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1)
            oom("X509_VERIFY_PARAM_set1_ip_asc");
    } else if (X509_VERIFY_PARAM_set1_host(param, host, 0) != 1) {
        oom("X509_VERIFY_PARAM_set1_host");
    } else if (SSL_set_tlsext_host_name(s->ssl, host) != 1) {
        /* over 255 bytes: no DNS name is that long; the first step says so */
        snprintf(s->why, sizeof(s->why), "host name too long for SNI");
    }
    s->plain = plain;
    s->plain_len = len;
    return s;
}

void
webhook_tls_free(struct webhook_tls *s)
{
    if (s == NULL)
        return;
    SSL_free(s->ssl); /* frees both BIOs */
    free(s);
}

/* Moves what OpenSSL wrote for the peer into out. */
static void
drain(struct webhook_tls *s, struct buf *out)
{
    char chunk[4096];
    int n;

    while ((n = BIO_read(s->wbio, chunk, sizeof(chunk))) > 0)
        buf_append(out, chunk, (size_t)n);
}

/* Why SSL_* returned r, into s->why; -1. */
static int
failed(struct webhook_tls *s, int r, const char *what)
{
    long v = SSL_get_verify_result(s->ssl);

    if (v != X509_V_OK)
        snprintf(s->why, sizeof(s->why), "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    else if (SSL_get_error(s->ssl, r) == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0)
        snprintf(s->why, sizeof(s->why), "%s: unexpected end of the connection", what);
    else
        openssl_why(s->why, sizeof(s->why), what, "failed");
    return -1;
}

int
webhook_tls_step(struct webhook_tls *s, const char *cipher, size_t clen, struct buf *out,
                 char *in, size_t cap, size_t *in_len)
{
    int r, e, rc = 0;

    if (s->why[0] != '\0')
        return -1;
    ERR_clear_error();
    if (clen > 0 && BIO_write(s->rbio, cipher, (int)clen) != (int)clen)
        oom("BIO_write"); /* a memory BIO only fails to grow */
    if (!SSL_is_init_finished(s->ssl)) {
        r = SSL_do_handshake(s->ssl);
        if (r != 1) {
            e = SSL_get_error(s->ssl, r);
            rc = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE
                     ? 0
                     : failed(s, r, "tls handshake");
            drain(s, out); /* the ClientHello, or an alert */
            return rc;
        }
    }
    if (!s->sent) {
        /* A memory BIO takes everything: SSL_write writes it all at once. */
        r = SSL_write(s->ssl, s->plain,
                      s->plain_len > INT_MAX ? INT_MAX : (int)s->plain_len);
        if (r < 0 || (size_t)r != s->plain_len) {
            rc = failed(s, r, "tls write");
            drain(s, out);
            return rc;
        }
        s->sent = true;
    }
    while (*in_len < cap) {
        size_t want = cap - *in_len;

        r = SSL_read(s->ssl, in + *in_len, want > INT_MAX ? INT_MAX : (int)want);
        if (r > 0) {
            *in_len += (size_t)r;
            continue;
        }
        e = SSL_get_error(s->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN)
            rc = 1;
        else if (e != SSL_ERROR_WANT_READ)
            rc = failed(s, r, "tls read");
        break;
    }
    drain(s, out);
    return rc;
}

bool
webhook_tls_ready(const struct webhook_tls *s)
{
    return s->sent;
}

const char *
webhook_tls_error(const struct webhook_tls *s)
{
    return s->why;
}
