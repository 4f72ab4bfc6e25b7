/* rest_auth.c - the REST core's request decoding and authentication:
 * percent-decoding, the query string, and Pusher's auth_* checks (key,
 * timestamp window, body_md5, HMAC signature in constant time). Compares
 * with no memcmp/strcmp (R9): names through rest_span_eq, digests through
 * sign_equal. Never echoes a secret or a signature. */
#include "rest_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "mn.h"

#define TS_WINDOW 600 /* seconds either side of req->now */
#define AUTH_VERSION "1.0"

/* Equality of (s, n) with a literal. Not for secrets: see sign_equal. */
bool
rest_span_eq(const char *s, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (lit[i] == '\0' || lit[i] != s[i])
            return false;
    return lit[n] == '\0';
}

bool
rest_has_prefix(const char *s, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; lit[i] != '\0'; i++)
        if (i >= n || s[i] != lit[i])
            return false;
    return true;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the %XX escapes of (s, n), and '+' as a space when plus, into out
 * (n + 1 bytes) with a NUL after it. -1 on a broken escape or a %00, so every
 * decoded string is a C string. */
int
rest_pct_decode(const char *s, size_t n, bool plus, char *out, size_t *out_len)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(s[i + 2]) : -1;

            if (lo < 0 || (hi == 0 && lo == 0))
                return -1;
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '\0') {
            return -1;
        } else {
            out[o++] = s[i];
            if (plus && s[i] == '+')
                out[o - 1] = ' ';
        }
    }
    out[o] = '\0';
    *out_len = o;
    return 0;
}

/* One key or value into out: percent-decoded, or copied when the transport
 * decoded it already. */
static int
piece(const char *s, size_t n, bool decoded, char *out, size_t *out_len)
{
    if (!decoded)
        return rest_pct_decode(s, n, true, out, out_len);
    memcpy(out, s, n);
    out[n] = '\0';
    *out_len = n;
    return 0;
}

/* Splits the query on '&' and decodes each key=value ('+' is a space) unless
 * decoded. Empty pieces are skipped. The caller frees q->arena. */
int
rest_query_parse(const char *s, size_t n, bool decoded, struct query *q,
                 struct mn_err *err)
{
    const char *end = s + n;
    size_t used = 0;

    if (n > QUERY_MAX)
        return mn_err_set(err, 400, "Query string too long (max %d bytes)", QUERY_MAX);
    q->arena = xmalloc(n + 2 * (size_t)PARAMS_MAX);
    while (s != NULL && s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(stop - s));
        const char *kend = eq ? eq : stop;
        struct sign_param *p = &q->p[q->n];

        if (stop != s) {
            if (q->n == PARAMS_MAX)
                return mn_err_set(err, 400, "Too many query parameters (max %d)",
                                  PARAMS_MAX);
            p->key = q->arena + used;
            if (piece(s, (size_t)(kend - s), decoded, q->arena + used, &p->key_len))
                return mn_err_set(err, 400, "Invalid percent-encoding in the query");
            used += p->key_len + 1;
            p->val = q->arena + used;
            if (piece(eq ? eq + 1 : stop, eq ? (size_t)(stop - eq - 1) : 0, decoded,
                      q->arena + used, &p->val_len))
                return mn_err_set(err, 400, "Invalid percent-encoding in the query");
            used += p->val_len + 1;
            q->n++;
        }
        s = amp ? amp + 1 : NULL;
    }
    return 0;
}

/* The first value of key, or NULL; *count tells how often it was given. */
const struct sign_param *
rest_query_get(const struct query *q, const char *key, size_t *count)
{
    const struct sign_param *first = NULL;
    size_t i, c = 0;

    for (i = 0; i < q->n; i++) {
        if (!rest_span_eq(q->p[i].key, q->p[i].key_len, key))
            continue;
        if (c++ == 0)
            first = &q->p[i];
    }
    if (count)
        *count = c;
    return first;
}

/* The single value of an auth parameter: 401 when given twice, or when
 * missing and required; *out is NULL when missing and optional. */
static int
auth_param(const struct query *q, const char *key, bool required,
           const struct sign_param **out, struct mn_err *err)
{
    size_t count;

    *out = rest_query_get(q, key, &count);
    if (count > 1)
        return mn_err_set(err, 401, "Duplicate %s", key);
    if (count == 0 && required)
        return mn_err_set(err, 401, "Missing %s", key);
    return 0;
}

/* auth_timestamp: decimal digits only, within TS_WINDOW of now. Digits past
 * what fits saturate (they are out of the window anyway): no overflow. */
static int
check_timestamp(const struct sign_param *ts, int64_t now, struct mn_err *err)
{
    uint64_t v = 0;
    size_t i;

    if (ts->val_len == 0)
        return mn_err_set(err, 401, "Invalid auth_timestamp: expected Unix seconds");
    for (i = 0; i < ts->val_len; i++) {
        unsigned d = (unsigned char)ts->val[i] - '0';

        if (d > 9)
            return mn_err_set(err, 401, "Invalid auth_timestamp: expected Unix seconds");
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    if (v <= INT64_MAX) {
        /* Both in int64 range: the unsigned difference of the larger minus the
         * smaller is exact. */
        uint64_t diff = (int64_t)v >= now ? v - (uint64_t)now : (uint64_t)now - v;

        if (diff <= TS_WINDOW)
            return 0;
    }
    return mn_err_set(err, 401,
                      "Timestamp expired: Given timestamp (%.*s) not within %ds of "
                      "server time (%lld)",
                      (int)(ts->val_len > 24 ? 24 : ts->val_len), ts->val, TS_WINDOW,
                      (long long)now);
}

/* Pusher's request authentication. Never echoes the secret or a signature. */
int
rest_check_auth(const struct mn_app *app, const struct rest_req *req,
                const struct query *q, struct mn_err *err)
{
    const struct sign_param *key, *ts, *ver, *sig, *md5;
    char want[SIGN_HEX_LEN + 1];
    struct buf s = BUF_INIT;
    bool good;

    if (auth_param(q, "auth_key", true, &key, err) ||
        auth_param(q, "auth_timestamp", true, &ts, err) ||
        auth_param(q, "auth_version", true, &ver, err) ||
        auth_param(q, "auth_signature", true, &sig, err) ||
        auth_param(q, "body_md5", req->body_len > 0, &md5, err))
        return -1;
    if (!sign_equal(app->key, strlen(app->key), key->val, key->val_len))
        return mn_err_set(err, 401, "Unknown auth_key");
    if (!rest_span_eq(ver->val, ver->val_len, AUTH_VERSION))
        return mn_err_set(err, 401, "Unsupported auth_version (want " AUTH_VERSION ")");
    if (check_timestamp(ts, req->now, err))
        return -1;
    /* No library signs a body_md5 for an empty body (R6): one that comes was
     * signed for a body we did not get. */
    if (md5 != NULL && req->body_len == 0)
        return mn_err_set(err, 401, "body_md5 given without a body");
    if (md5 != NULL) {
        char md5_want[SIGN_MD5_LEN + 1];

        sign_md5_hex(req->body, req->body_len, md5_want);
        if (!sign_equal(md5_want, SIGN_MD5_LEN, md5->val, md5->val_len))
            return mn_err_set(err, 401, "Invalid body_md5");
    }
    sign_rest_string(&s, req->method, req->path, req->path_len, q->p, q->n);
    sign_hmac_hex(app->secret, strlen(app->secret), buf_data(&s), s.len, want);
    buf_free(&s);
    good = sign_equal(want, SIGN_HEX_LEN, sig->val, sig->val_len);
    explicit_bzero(want, sizeof(want));
    if (!good)
        return mn_err_set(err, 401, "Invalid signature");
    return 0;
}
