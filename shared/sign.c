/* sign.c - Pusher's signatures: HMAC-SHA256 and MD5 as lowercase hex,
 * constant-time comparison, the channel/user "auth" check and the REST API's
 * canonical string. The only file in shared/ that touches OpenSSL. It does not
 * parse requests, check timestamps or pick the app: rest.c and the gateway do. */
#include "sign.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"
#include "mem.h"
#include "mn.h"

#define SHA256_LEN 32
#define MD5_LEN 16

static const char hexdigits[] = "0123456789abcdef";

static void
to_hex(const unsigned char *md, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hexdigits[md[i] >> 4];
        out[2 * i + 1] = hexdigits[md[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

/* OpenSSL fails here only when out of memory or without its default provider:
 * like mem.h, there is no sensible way on, so log and abort. */
static void
crypto_failed(const char *what)
{
    log_err("sign: OpenSSL %s failed", what);
    abort();
}

/* OpenSSL 3 looks an algorithm up in its provider store on every fetch
 * (EVP_MAC_fetch and its "SHA256" parameter, or the implicit fetch behind
 * EVP_md5()): that was half of a REST request's signature cost. SHA-256 and
 * MD5 are fetched once per process and shared (fetched algorithms are
 * immutable and thread safe), and HMAC is RFC 2104 over the fetched SHA-256.
 * They live until exit, like OpenSSL's own store. */
static EVP_MD *sha256_alg;
static EVP_MD *md5_alg;
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

#define SHA256_BLOCK 64

static void
fetch_algs(void)
{
    sha256_alg = EVP_MD_fetch(NULL, "SHA256", NULL);
    md5_alg = EVP_MD_fetch(NULL, "MD5", NULL);
}

static void
algs(void)
{
    pthread_once(&algs_once, fetch_algs);
    if (sha256_alg == NULL || md5_alg == NULL)
        crypto_failed("algorithm fetch");
}

/* HMAC-SHA256 (RFC 2104) of the parts joined by sep (when sep is not 0) into
 * md. Streams the parts, so nothing is copied; the padded key blocks are
 * wiped before returning. */
static void
hmac_parts(const char *secret, size_t secret_len, const char *const parts[],
           const size_t lens[], size_t nparts, char sep, unsigned char md[SHA256_LEN])
{
    unsigned char key[SHA256_BLOCK] = {0}, pad[SHA256_BLOCK], inner[SHA256_LEN];
    EVP_MD_CTX *ctx;
    bool ok;

    algs();
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        crypto_failed("HMAC setup");
    /* A key longer than a block is replaced by its digest. */
    if (secret_len > SHA256_BLOCK) {
        if (!EVP_Digest(secret, secret_len, key, NULL, sha256_alg, NULL))
            crypto_failed("HMAC key");
    } else {
        memcpy(key, secret, secret_len);
    }
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        pad[i] = key[i] ^ 0x36;
    ok = EVP_DigestInit_ex2(ctx, sha256_alg, NULL) &&
         EVP_DigestUpdate(ctx, pad, SHA256_BLOCK);
    for (size_t i = 0; ok && i < nparts; i++) {
        if (i > 0 && sep != '\0')
            ok = EVP_DigestUpdate(ctx, &sep, 1);
        ok = ok && EVP_DigestUpdate(ctx, parts[i], lens[i]);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, inner, NULL);
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        pad[i] = key[i] ^ 0x5c;
    ok = ok && EVP_DigestInit_ex2(ctx, sha256_alg, NULL) &&
         EVP_DigestUpdate(ctx, pad, SHA256_BLOCK) &&
         EVP_DigestUpdate(ctx, inner, SHA256_LEN) && EVP_DigestFinal_ex(ctx, md, NULL);
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(inner, sizeof(inner));
    EVP_MD_CTX_free(ctx); /* cleanses the digest state it holds */
    if (!ok)
        crypto_failed("HMAC");
}

void
sign_hmac_hex(const char *secret, size_t secret_len, const void *msg, size_t len,
              char out[SIGN_HEX_LEN + 1])
{
    const char *parts[] = {msg};
    unsigned char md[SHA256_LEN];

    hmac_parts(secret, secret_len, parts, &len, 1, '\0', md);
    to_hex(md, sizeof(md), out);
    OPENSSL_cleanse(md, sizeof(md));
}

void
sign_md5_hex(const void *data, size_t len, char out[SIGN_MD5_LEN + 1])
{
    unsigned char md[MD5_LEN];
    unsigned int md_len = 0;

    algs();
    if (!EVP_Digest(data, len, md, &md_len, md5_alg, NULL) || md_len != MD5_LEN)
        crypto_failed("MD5");
    to_hex(md, sizeof(md), out);
}

void
sign_sha1_hex(const void *data, size_t len, char out[SIGN_SHA1_LEN + 1])
{
    unsigned char md[SIGN_SHA1_LEN / 2];
    unsigned int md_len = 0;

    if (!EVP_Digest(data, len, md, &md_len, EVP_sha1(), NULL) || md_len != sizeof(md))
        crypto_failed("SHA1");
    to_hex(md, sizeof(md), out);
}

bool
sign_equal(const char *want, size_t want_len, const char *got, size_t got_len)
{
    return want_len == got_len && CRYPTO_memcmp(want, got, want_len) == 0;
}

static bool
lower_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool
sign_check_auth(const char *app_key, const char *secret, const char *auth,
                size_t auth_len, const char *const parts[], const size_t lens[],
                size_t nparts)
{
    unsigned char md[SHA256_LEN];
    char want[SIGN_HEX_LEN + 1];
    const char *sig;
    size_t key_len;
    bool good;

    /* "<key>:<64 hex>": the signature is the tail, so a key is never split. */
    if (auth_len < SIGN_HEX_LEN + 1 || auth[auth_len - SIGN_HEX_LEN - 1] != ':')
        return false;
    key_len = auth_len - SIGN_HEX_LEN - 1;
    sig = auth + key_len + 1;
    /* Pusher signs in lowercase; refusing uppercase keeps one spelling valid. */
    if (!lower_hex(sig, SIGN_HEX_LEN))
        return false;
    hmac_parts(secret, strlen(secret), parts, lens, nparts, ':', md);
    to_hex(md, sizeof(md), want);
    /* Both compared every time, so timing does not tell which one was wrong. */
    good = sign_equal(app_key, strlen(app_key), auth, key_len);
    good &= sign_equal(want, SIGN_HEX_LEN, sig, SIGN_HEX_LEN);
    OPENSSL_cleanse(md, sizeof(md));
    OPENSSL_cleanse(want, sizeof(want));
    return good;
}

static unsigned char
lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Byte order of the ASCII-lower-cased keys; equal keys keep their input order
 * (the pointers point into one array), which makes qsort stable. */
static int
param_cmp(const void *a, const void *b)
{
    const struct sign_param *p = *(const struct sign_param *const *)a;
    const struct sign_param *q = *(const struct sign_param *const *)b;
    size_t n = p->key_len < q->key_len ? p->key_len : q->key_len;

    for (size_t i = 0; i < n; i++) {
        unsigned char x = lower((unsigned char)p->key[i]);
        unsigned char y = lower((unsigned char)q->key[i]);
        if (x != y)
            return x < y ? -1 : 1;
    }
    if (p->key_len != q->key_len)
        return p->key_len < q->key_len ? -1 : 1;
    return p < q ? -1 : p > q;
}

/* Compared after lower-casing, as Pusher's signature library drops the key. */
static bool
is_auth_signature(const struct sign_param *p)
{
    static const char name[] = "auth_signature";

    if (p->key_len != sizeof(name) - 1)
        return false;
    for (size_t i = 0; i < p->key_len; i++)
        if (lower((unsigned char)p->key[i]) != (unsigned char)name[i])
            return false;
    return true;
}

void
sign_rest_string(struct buf *out, const char *method, const char *path, size_t path_len,
                 const struct sign_param *params, size_t n)
{
    const struct sign_param **sorted;
    bool first = true;

    buf_puts(out, method);
    buf_putc(out, '\n');
    buf_append(out, path, path_len);
    buf_putc(out, '\n');
    if (n == 0)
        return;
    if (n > SIZE_MAX / sizeof(*sorted))
        abort(); /* the caller caps the parameter count: our bug */
    sorted = xmalloc(n * sizeof(*sorted));
    for (size_t i = 0; i < n; i++)
        sorted[i] = &params[i];
    qsort(sorted, n, sizeof(*sorted), param_cmp);
    for (size_t i = 0; i < n; i++) {
        const struct sign_param *p = sorted[i];
        if (is_auth_signature(p))
            continue;
        if (!first)
            buf_putc(out, '&');
        first = false;
        buf_reserve(out, p->key_len);
        for (size_t k = 0; k < p->key_len; k++)
            buf_putc(out, (char)lower((unsigned char)p->key[k]));
        buf_putc(out, '=');
        buf_append(out, p->val, p->val_len);
    }
    free(sorted);
}
