/* fcgi_gate.c - the FastCGI request gate (rules in fcgi_gate.h): record
 * framing, the order of one responder request's records, and every
 * name-value length checked against the bytes that are really there.
 * Record types and layout from the FastCGI 1.0 specification. */
#include "fcgi_gate.h"

#include <stdint.h>
#include <string.h>

#include "mn.h"

#define HEADER 8
#define T_BEGIN 1
#define T_ABORT 2
#define T_PARAMS 4
#define T_STDIN 5
#define T_GET_VALUES 9

void
fcgi_gate_init(struct fcgi_gate *g, size_t max_body)
{
    memset(g, 0, sizeof(*g));
    g->max_body = max_body;
}

void
fcgi_gate_free(struct fcgi_gate *g)
{
    buf_free(&g->out);
    buf_free(&g->params);
}

static enum fcgi_gate_status
bad(struct fcgi_gate *g, const char *why)
{
    g->why = why;
    return FCGI_GATE_BAD;
}

/* One name or value length (1 or 4 bytes) from (*p, *n). */
static bool
pair_len(const unsigned char **p, size_t *n, size_t *out)
{
    const unsigned char *s = *p;

    if (*n < 1 || ((s[0] & 0x80) && *n < 4))
        return false;
    if (s[0] & 0x80) {
        *out =
            (size_t)(s[0] & 0x7f) << 24 | (size_t)s[1] << 16 | (size_t)s[2] << 8 | s[3];
        *p += 4;
        *n -= 4;
    } else {
        *out = s[0];
        *p += 1;
        *n -= 1;
    }
    return true;
}

/* Well-formed name-value pairs filling exactly n bytes, at most max of them,
 * no NUL in any name or value (libfcgi handles them as C strings). */
static bool
pairs_ok(const unsigned char *p, size_t n, size_t max)
{
    size_t count = 0, nlen, vlen;

    while (n > 0) {
        if (!pair_len(&p, &n, &nlen) || !pair_len(&p, &n, &vlen) || nlen > n ||
            vlen > n - nlen || nlen == 0 || ++count > max)
            return false;
        if (memchr(p, '\0', nlen + vlen) != NULL)
            return false;
        p += nlen + vlen;
        n -= nlen + vlen;
    }
    return true;
}

static void
keep(struct fcgi_gate *g, const unsigned char *rec, size_t len)
{
    buf_append(&g->out, rec, len);
}

/* The empty FCGI_STDIN record that ends the body's stream. */
static void
end_stdin(struct fcgi_gate *g)
{
    unsigned char h[HEADER] = {
        1, T_STDIN, (unsigned char)(g->id >> 8), (unsigned char)g->id, 0, 0, 0, 0};

    keep(g, h, sizeof(h));
    g->stage = 3;
}

/* One whole record: its header fields and content. */
static enum fcgi_gate_status
record(struct fcgi_gate *g, const unsigned char *rec, unsigned type, unsigned id,
       const unsigned char *c, size_t clen, size_t whole)
{
    if (id == 0) { /* management */
        if (type == T_GET_VALUES && !pairs_ok(c, clen, FCGI_GATE_VALUES_MAX))
            return bad(g, "FCGI_GET_VALUES with malformed or too many names");
        keep(g, rec, whole);
        return FCGI_GATE_MORE;
    }
    if (g->stage == 0) {
        if (type != T_BEGIN || clen != 8)
            return bad(g, "the first record is not FCGI_BEGIN_REQUEST");
        g->id = id;
        g->stage = 1;
        keep(g, rec, whole);
        return FCGI_GATE_MORE;
    }
    if (id != g->id)
        return bad(g, "a second request id on one connection");
    if (type == T_ABORT)
        return bad(g, "FCGI_ABORT_REQUEST");
    if (type == T_PARAMS && g->stage == 1) {
        if (clen > FCGI_GATE_PARAMS_MAX - g->params.len)
            return bad(g, "FCGI_PARAMS larger than 64 KiB");
        buf_append(&g->params, c, clen);
        if (clen == 0) {
            if (!pairs_ok((const unsigned char *)buf_data(&g->params), g->params.len,
                          SIZE_MAX))
                return bad(g, "malformed FCGI_PARAMS name-value pairs");
            g->stage = 2;
        }
        keep(g, rec, whole);
        return FCGI_GATE_MORE;
    }
    if (type == T_STDIN && g->stage == 2) {
        keep(g, rec, whole);
        if (clen == 0) {
            g->stage = 3;
            return FCGI_GATE_DONE;
        }
        g->body += clen;
        if (g->body > g->max_body) {
            g->over = true;
            end_stdin(g);
            return FCGI_GATE_DONE;
        }
        return FCGI_GATE_MORE;
    }
    return bad(g, "a record out of place for a responder request");
}

enum fcgi_gate_status
fcgi_gate_feed(struct fcgi_gate *g, const unsigned char *p, size_t len, size_t *used)
{
    enum fcgi_gate_status st = FCGI_GATE_MORE;

    *used = 0;
    while (st == FCGI_GATE_MORE && g->stage != 3 && len - *used >= HEADER) {
        const unsigned char *rec = p + *used;
        size_t clen = (size_t)rec[4] << 8 | rec[5], whole = HEADER + clen + rec[6];

        if (rec[0] != 1)
            return bad(g, "FastCGI version is not 1");
        if (len - *used < whole)
            break;
        st = record(g, rec, rec[1], (unsigned)rec[2] << 8 | rec[3], rec + HEADER, clen,
                    whole);
        if (st != FCGI_GATE_BAD)
            *used += whole;
    }
    if (st == FCGI_GATE_MORE && g->stage == 3)
        st = FCGI_GATE_DONE;
    return st;
}
