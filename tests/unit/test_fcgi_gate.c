/* test_fcgi_gate.c - api/fcgi_gate.c: a well-formed responder request passes
 * unchanged (whole, and fed byte by byte); what libfcgi 2.4.2 would trust and
 * die on is refused (huge or lying name-value lengths, NUL in names, a
 * GET_VALUES naming four variables); records out of order, of another
 * request id, or of another version are refused; a body over the cap ends
 * the request early with an empty FCGI_STDIN record (RELIABILITY R13). */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fcgi_gate.h"
#include "tap.h"
#include "mn.h"

static void
rec(struct buf *b, int type, int id, const void *c, size_t len)
{
    unsigned char h[8] = {1,
                          (unsigned char)type,
                          (unsigned char)(id >> 8),
                          (unsigned char)id,
                          (unsigned char)(len >> 8),
                          (unsigned char)len,
                          (unsigned char)((8 - len % 8) % 8),
                          0};
    static const unsigned char pad[8];

    buf_append(b, h, sizeof(h));
    buf_append(b, c, len);
    buf_append(b, pad, h[6]);
}

static void
pair(struct buf *b, const char *n, const char *v)
{
    unsigned char l[2] = {(unsigned char)strlen(n), (unsigned char)strlen(v)};

    buf_append(b, l, 2);
    buf_puts(b, n);
    buf_puts(b, v);
}

static const unsigned char begin[8] = {0, 1, 0, 0, 0, 0, 0, 0};

/* BEGIN, PARAMS (the pairs in p), empty PARAMS, STDIN body, empty STDIN. */
static void
request(struct buf *b, const struct buf *p, const char *body)
{
    rec(b, 1, 1, begin, 8);
    rec(b, 4, 1, buf_data(p), p->len);
    rec(b, 4, 1, NULL, 0);
    if (body[0])
        rec(b, 5, 1, body, strlen(body));
    rec(b, 5, 1, NULL, 0);
}

static enum fcgi_gate_status
feed_all(struct fcgi_gate *g, const struct buf *b, size_t max_body)
{
    size_t used;

    fcgi_gate_init(g, max_body);
    return fcgi_gate_feed(g, (const unsigned char *)buf_data(b), b->len, &used);
}

static void
test_good(void)
{
    struct buf p = BUF_INIT, b = BUF_INIT;
    struct fcgi_gate g;
    size_t used, more = 0, total = 0;
    enum fcgi_gate_status st = FCGI_GATE_MORE;

    pair(&p, "REQUEST_METHOD", "POST");
    pair(&p, "REQUEST_URI", "/apps/1/events?x=1");
    pair(&p, "CONTENT_LENGTH", "5");
    request(&b, &p, "hello");
    is_int(feed_all(&g, &b, 100), FCGI_GATE_DONE, "well-formed request is done");
    ok(g.out.len == b.len && memcmp(buf_data(&g.out), buf_data(&b), b.len) == 0,
       "and passed on unchanged");
    ok(!g.over, "not over the cap");
    fcgi_gate_free(&g);

    /* Byte by byte: whole records only are taken; done exactly at the end. */
    fcgi_gate_init(&g, 100);
    for (size_t i = 0; i < b.len && st == FCGI_GATE_MORE; i++) {
        st = fcgi_gate_feed(&g, (const unsigned char *)buf_data(&b) + total,
                            i + 1 - total, &used);
        total += used;
        more += st == FCGI_GATE_MORE;
    }
    ok(st == FCGI_GATE_DONE && total == b.len && more == b.len - 1,
       "fed byte by byte: more, more, ..., done at the last byte");
    fcgi_gate_free(&g);

    /* A GET_VALUES management record first, then the request. */
    buf_reset(&b);
    buf_reset(&p);
    pair(&p, "FCGI_MAX_CONNS", "");
    rec(&b, 9, 0, buf_data(&p), p.len);
    buf_reset(&p);
    pair(&p, "REQUEST_METHOD", "GET");
    request(&b, &p, "");
    is_int(feed_all(&g, &b, 100), FCGI_GATE_DONE,
           "GET_VALUES with one name, then a request");
    fcgi_gate_free(&g);
    buf_free(&p);
    buf_free(&b);
}

static void
expect_bad(const struct buf *b, const char *what)
{
    struct fcgi_gate g;
    enum fcgi_gate_status st = feed_all(&g, b, 100);

    ok(st == FCGI_GATE_BAD && g.why != NULL, "refused: %s (%s)", what,
       g.why ? g.why : "-");
    fcgi_gate_free(&g);
}

static void
test_bad(void)
{
    static const unsigned char huge_name[] = {0xff, 0xff, 0xff, 0xff, 0x01, 'A', 'B'};
    static const unsigned char lying[] = {0x85, 0, 0, 0, 0x01, 'A', 'B'};
    static const unsigned char nul_name[] = {3, 1, 'A', 0, 'B', 'v'};
    static const unsigned char empty_name[] = {0, 1, 'v'};
    static const unsigned char cut[] = {0x80, 0};
    struct buf b = BUF_INIT, p = BUF_INIT;

    rec(&b, 1, 1, begin, 8);
    rec(&b, 4, 1, huge_name, sizeof(huge_name));
    rec(&b, 4, 1, NULL, 0);
    expect_bad(&b, "a 2 GiB name length with 2 bytes behind it");

    buf_reset(&b);
    rec(&b, 1, 1, begin, 8);
    rec(&b, 4, 1, lying, sizeof(lying));
    rec(&b, 4, 1, NULL, 0);
    expect_bad(&b, "a name length past the parameters' end");

    buf_reset(&b);
    rec(&b, 1, 1, begin, 8);
    rec(&b, 4, 1, cut, sizeof(cut));
    rec(&b, 4, 1, NULL, 0);
    expect_bad(&b, "a four-byte length cut short");

    buf_reset(&b);
    rec(&b, 1, 1, begin, 8);
    rec(&b, 4, 1, nul_name, sizeof(nul_name));
    rec(&b, 4, 1, NULL, 0);
    expect_bad(&b, "NUL in a name");

    buf_reset(&b);
    rec(&b, 1, 1, begin, 8);
    rec(&b, 4, 1, empty_name, sizeof(empty_name));
    rec(&b, 4, 1, NULL, 0);
    expect_bad(&b, "an empty name");

    buf_reset(&b);
    for (int i = 0; i < 4; i++)
        pair(&p, "FCGI_MAX_CONNS", "");
    rec(&b, 9, 0, buf_data(&p), p.len);
    expect_bad(&b, "GET_VALUES naming four variables (libfcgi's 64-byte buffer)");

    buf_reset(&b);
    rec(&b, 9, 0, huge_name, sizeof(huge_name));
    expect_bad(&b, "GET_VALUES with a 2 GiB name length");

    buf_reset(&b);
    rec(&b, 4, 1, NULL, 0);
    expect_bad(&b, "PARAMS before BEGIN_REQUEST");

    buf_reset(&b);
    rec(&b, 1, 1, begin, 7);
    expect_bad(&b, "BEGIN_REQUEST of 7 bytes");

    buf_reset(&b);
    rec(&b, 1, 1, begin, 8);
    rec(&b, 5, 1, "x", 1);
    expect_bad(&b, "STDIN before the parameters end");

    buf_reset(&b);
    rec(&b, 1, 1, begin, 8);
    rec(&b, 4, 2, NULL, 0);
    expect_bad(&b, "a second request id");

    buf_reset(&b);
    rec(&b, 1, 1, begin, 8);
    rec(&b, 2, 1, NULL, 0);
    expect_bad(&b, "ABORT_REQUEST");

    buf_reset(&b);
    rec(&b, 1, 1, begin, 8);
    rec(&b, 8, 1, "d", 1);
    expect_bad(&b, "a DATA record");

    buf_reset(&b);
    rec(&b, 1, 1, begin, 8);
    {
        char *first = buf_data(&b);
        first[0] = 2;
    }
    expect_bad(&b, "version 2");

    buf_reset(&b);
    rec(&b, 1, 1, begin, 8);
    buf_reset(&p);
    buf_reserve(&p, 70000);
    for (int i = 0; i < 600; i++)
        pair(&p, "HTTP_X_PADDING_HEADER",
             "........................................"
             "..............................................."
             "...............");
    for (size_t off = 0; off < p.len; off += 60000)
        rec(&b, 4, 1, buf_data(&p) + off, p.len - off < 60000 ? p.len - off : 60000);
    expect_bad(&b, "parameters over 64 KiB");
    buf_free(&p);
    buf_free(&b);
}

static void
test_over(void)
{
    struct buf p = BUF_INIT, b = BUF_INIT;
    struct fcgi_gate g;
    char body[40];
    const unsigned char *tail;

    memset(body, 'x', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    pair(&p, "CONTENT_LENGTH", "39");
    request(&b, &p, body);
    buf_reset(&b);
    rec(&b, 1, 1, begin, 8);
    rec(&b, 4, 1, buf_data(&p), p.len);
    rec(&b, 4, 1, NULL, 0);
    rec(&b, 5, 1, body, 20);
    rec(&b, 5, 1, body, 19); /* never completed by an empty STDIN record */
    is_int(feed_all(&g, &b, 30), FCGI_GATE_DONE, "a body over the cap ends the request");
    ok(g.over, "marked over");
    tail = (const unsigned char *)buf_data(&g.out) + g.out.len - 8;
    ok(tail[1] == 5 && tail[4] == 0 && tail[5] == 0,
       "with an empty STDIN record of ours");
    fcgi_gate_free(&g);
    buf_free(&p);
    buf_free(&b);
}

int
main(void)
{
    test_good();
    test_bad();
    test_over();
    return done_testing();
}
