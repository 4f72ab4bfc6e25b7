/* rest_int.h - what rest.c and rest_auth.c share: the decoded query and
 * the request authentication. Not for use outside the REST core. */
#ifndef MN_REST_INT_H
#define MN_REST_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "rest.h"
#include "sign.h"

#define QUERY_MAX 8192 /* bytes of raw query string */
#define PARAMS_MAX 64  /* query parameters */

/* The decoded query: keys and values point into arena, each NUL-terminated. */
struct query {
    struct sign_param p[PARAMS_MAX];
    size_t n;
    char *arena;
};

/* Equality of (s, n) with a literal, and prefix test. Not for secrets. */
bool rest_span_eq(const char *s, size_t n, const char *lit);
bool rest_has_prefix(const char *s, size_t n, const char *lit);
/* Percent-decodes (s, n) into out (at least n bytes); plus: '+' is a space.
 * Returns 0, or -1 on a malformed escape. */
int rest_pct_decode(const char *s, size_t n, bool plus, char *out, size_t *out_len);
/* Splits a query string and percent-decodes its pieces unless decoded (the
 * transport did it); q->arena is the caller's to free. */
int rest_query_parse(const char *s, size_t n, bool decoded, struct query *q,
                     struct mn_err *err);
/* The parameter named key (first of them), and how many there are. */
const struct sign_param *rest_query_get(const struct query *q, const char *key,
                                        size_t *count);
/* Pusher's request authentication for app: 0, or -1 with a 401 in err. */
int rest_check_auth(const struct mn_app *app, const struct rest_req *req,
                    const struct query *q, struct mn_err *err);

#endif
