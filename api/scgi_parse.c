/* scgi_parse.c - the SCGI request header parser (see scgi.h for the rules).
 * Pure and bounded: it looks at no byte past len, allocates nothing, and
 * refuses a length before it could matter (no arithmetic past the cap).
 * Reading from sockets and deadlines are in scgi.c. */
#include "scgi.h"

#include <stdbool.h>
#include <string.h>

#include "mn.h"

#define CL_DIGITS_MAX 15 /* a CONTENT_LENGTH needs fewer; more is garbage */

static enum scgi_status
bad(const char **why, const char *reason)
{
    *why = reason;
    return SCGI_BAD;
}

static bool
name_is(const char *name, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

static bool
plain_decimal(const char *s, size_t len, size_t *out)
{
    size_t n = 0;

    if (len == 0 || len > CL_DIGITS_MAX || (s[0] == '0' && len > 1))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        n = n * 10 + (size_t)(s[i] - '0');
    }
    *out = n;
    return true;
}

/* The headers we use, and where each goes; each may be given once. */
static const char **
slot_of(struct scgi_req *r, const char *name, size_t len)
{
    static const struct {
        const char *name;
        size_t off;
    } slots[] = {
        {"REQUEST_METHOD", offsetof(struct scgi_req, method)},
        {"REQUEST_URI", offsetof(struct scgi_req, request_uri)},
        {"SCRIPT_NAME", offsetof(struct scgi_req, script_name)},
        {"PATH_INFO", offsetof(struct scgi_req, path_info)},
        {"QUERY_STRING", offsetof(struct scgi_req, query)},
    };

    for (size_t i = 0; i < ARRAY_LEN(slots); i++)
        if (name_is(name, len, slots[i].name))
            return (const char **)((char *)r + slots[i].off);
    return NULL;
}

/* The pairs of content [p, end), whose last byte is a NUL. */
static enum scgi_status
parse_pairs(const char *p, const char *end, struct scgi_req *out, const char **why)
{
    bool scgi = false;

    for (size_t idx = 0; p < end; idx++) {
        const char *name = p, *nul = memchr(p, '\0', (size_t)(end - p)), *val, **slot;
        size_t nlen = (size_t)(nul - name), vlen;

        if (nlen == 0)
            return bad(why, "empty header name (NUL in a name)");
        for (size_t i = 0; i < nlen; i++)
            if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7f)
                return bad(why, "header name with a byte outside '!'..'~'");
        val = nul + 1;
        if (val >= end)
            return bad(why, "header name without a value");
        nul = memchr(val, '\0', (size_t)(end - val));
        vlen = (size_t)(nul - val);
        p = nul + 1;
        if (idx == 0 && !name_is(name, nlen, "CONTENT_LENGTH"))
            return bad(why, "CONTENT_LENGTH is not the first header");
        if (name_is(name, nlen, "CONTENT_LENGTH")) {
            if (idx != 0)
                return bad(why, "CONTENT_LENGTH given twice");
            if (!plain_decimal(val, vlen, &out->content_length))
                return bad(why, "CONTENT_LENGTH is not a plain decimal");
        } else if (name_is(name, nlen, "SCGI")) {
            if (scgi || vlen != 1 || val[0] != '1')
                return bad(why, "SCGI must be given once, as \"1\"");
            scgi = true;
        } else if ((slot = slot_of(out, name, nlen)) != NULL) {
            if (*slot != NULL)
                return bad(why, "a request header given twice");
            *slot = val;
        }
    }
    if (!scgi)
        return bad(why, "SCGI header missing");
    return SCGI_DONE;
}

enum scgi_status
scgi_parse(const char *buf, size_t len, struct scgi_req *out, const char **why)
{
    size_t n = 0, i, end;
    enum scgi_status st;

    memset(out, 0, sizeof(*out));
    *why = NULL;
    for (i = 0; i < len && buf[i] != ':'; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return bad(why, "netstring length is not decimal");
        if (i == 0 && buf[i] == '0')
            return bad(why, "netstring length with a leading zero");
        n = n * 10 + (size_t)(buf[i] - '0');
        if (n > SCGI_HEADERS_MAX)
            return bad(why, "header netstring too large");
    }
    if (i == len)
        return SCGI_MORE;
    if (i == 0)
        return bad(why, "empty netstring length");
    end = i + 1 + n; /* the ',' goes here */
    if (len <= end)
        return SCGI_MORE;
    if (buf[end] != ',')
        return bad(why, "no ',' where the netstring length says the headers end");
    if (buf[end - 1] != '\0')
        return bad(why, "headers do not end with a NUL");
    st = parse_pairs(buf + i + 1, buf + end, out, why);
    if (st != SCGI_DONE) {
        memset(out, 0, sizeof(*out));
        return st;
    }
    out->header_len = end + 1;
    return SCGI_DONE;
}
