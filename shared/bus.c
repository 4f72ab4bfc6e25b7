/* bus.c - the local bus's wire format (encoding and checked decoding of
 * queries and answers, see bus.h) and the bus seam (bus_open picks the
 * implementation the config asks for). Pure apart from allocation: no
 * sockets here (bus_local.c, bus_cluster.c, gateway/bus_server.c). */
#include "bus.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "mem.h"
#include "mn.h"

#define BUS_MAGIC 'M'
#define BUS_VERSION 1
#define STR_ABSENT UINT32_MAX
#define BODY_HEADER 7             /* magic, version, kind, id */
#define MIN_EVENT (3 * 4 + 4 + 4) /* three strs, info, nchannels */
#define MIN_STAT (4 + 1 + 4 + 4 + 4 + 4 + 4)
#define INFO_ALL (REST_INFO_USER_COUNT | REST_INFO_SUBSCRIPTION_COUNT | REST_INFO_CACHE)

/* --- encoding ------------------------------------------------------------ */

static void
put_u8(struct buf *b, unsigned v)
{
    buf_putc(b, (char)(v & 0xff));
}

static void
put_u16(struct buf *b, unsigned v)
{
    unsigned char p[2] = {(unsigned char)(v >> 8), (unsigned char)v};

    buf_append(b, p, sizeof(p));
}

static void
put_u32(struct buf *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};

    buf_append(b, p, sizeof(p));
}

/* Lengths past UINT32_MAX - 1 cannot be framed; callers cap far below. */
static void
put_strn(struct buf *b, const char *s, size_t len)
{
    if (s == NULL) {
        put_u32(b, STR_ABSENT);
        return;
    }
    put_u32(b, (uint32_t)len);
    buf_append(b, s, len);
}

static void
put_str(struct buf *b, const char *s)
{
    put_strn(b, s, s ? strlen(s) : 0);
}

/* Starts a frame: a length placeholder and the body header. Returns the
 * offset of the placeholder, for end_frame. */
static size_t
begin_frame(struct buf *out, enum bus_kind kind, uint32_t id)
{
    size_t at = out->len;

    put_u32(out, 0);
    put_u8(out, BUS_MAGIC);
    put_u8(out, BUS_VERSION);
    put_u8(out, kind);
    put_u32(out, id);
    return at;
}

static void
end_frame(struct buf *out, size_t at)
{
    size_t n = out->len - at - BUS_FRAME_HEADER;
    unsigned char *p = (unsigned char *)buf_data(out) + at;

    p[0] = (unsigned char)(n >> 24);
    p[1] = (unsigned char)(n >> 16);
    p[2] = (unsigned char)(n >> 8);
    p[3] = (unsigned char)n;
}

void
bus_put_query(struct buf *out, uint32_t id, const struct rest_query *q)
{
    size_t at = begin_frame(out, BUS_QUERY, id);

    put_u8(out, q->op);
    put_str(out, q->app ? q->app->id : NULL);
    put_u32(out, q->info);
    put_strn(out, q->channel, q->channel_len);
    put_strn(out, q->prefix, q->prefix_len);
    put_strn(out, q->user_id, q->user_id_len);
    put_u32(out, (uint32_t)q->nevents);
    for (size_t e = 0; e < q->nevents; e++) {
        const struct rest_event *ev = &q->events[e];

        put_strn(out, ev->name, ev->name_len);
        put_strn(out, ev->data, ev->data_len);
        put_str(out, ev->socket_id);
        put_u32(out, ev->info);
        put_u32(out, (uint32_t)ev->nchannels);
        for (size_t c = 0; c < ev->nchannels; c++)
            put_str(out, ev->channels[c]);
    }
    end_frame(out, at);
}

void
bus_put_answer(struct buf *out, uint32_t id, const struct rest_answer *a)
{
    size_t at = begin_frame(out, BUS_ANSWER, id);

    put_u16(out, (unsigned)a->status);
    put_str(out, a->message);
    put_u32(out, (uint32_t)a->nchans);
    for (size_t i = 0; i < a->nchans; i++) {
        const struct rest_chan_stat *st = &a->chans[i];

        put_str(out, st->name);
        put_u8(out, st->occupied ? 1 : 0);
        put_u32(out, st->user_count);
        put_u32(out, st->subscription_count);
        put_strn(out, st->cache_data, st->cache_len);
        put_str(out, st->cache_event);
        put_u32(out, st->cache_ttl);
    }
    put_u32(out, (uint32_t)a->nusers);
    for (size_t i = 0; i < a->nusers; i++)
        put_str(out, a->users[i]);
    end_frame(out, at);
}

uint32_t
bus_frame_len(const void *header)
{
    const unsigned char *p = header;

    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t
bus_query_cap(const struct mn_config *cfg)
{
    size_t body = (size_t)1 << 20;

    if (cfg != NULL && cfg->max_request_bytes > body)
        body = cfg->max_request_bytes;
    return body + BUS_MARGIN;
}

/* --- decoding ------------------------------------------------------------ */

/* A cursor over the body. The first failure sticks: later reads return
 * zeros, so a decoder checks once per element, not once per field. */
struct rd {
    const unsigned char *p;
    size_t left;
    char *arena; /* where the next string copy goes */
    const char *why;
};

static bool
rd_fail(struct rd *r, const char *why)
{
    if (r->why == NULL)
        r->why = why;
    r->left = 0;
    return false;
}

static const unsigned char *
rd_take(struct rd *r, size_t n)
{
    const unsigned char *p = r->p;

    if (r->why != NULL || n > r->left) {
        rd_fail(r, "truncated");
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return p;
}

static unsigned
rd_u8(struct rd *r)
{
    const unsigned char *p = rd_take(r, 1);

    return p ? p[0] : 0;
}

static unsigned
rd_u16(struct rd *r)
{
    const unsigned char *p = rd_take(r, 2);

    return p ? (unsigned)p[0] << 8 | p[1] : 0;
}

static uint32_t
rd_u32(struct rd *r)
{
    const unsigned char *p = rd_take(r, 4);

    return p ? bus_frame_len(p) : 0;
}

/* A count of elements of at least min bytes each: never more than what is
 * left could hold, so nothing is allocated for elements that are not there. */
static size_t
rd_count(struct rd *r, size_t min)
{
    uint32_t n = rd_u32(r);

    if (r->why == NULL && n > r->left / min)
        rd_fail(r, "count larger than the message");
    return r->why ? 0 : n;
}

/* A string copied NUL-terminated into the arena; NULL when absent (or on
 * failure). name: a name or id, which may not hold a NUL byte. */
static const char *
rd_str(struct rd *r, size_t *len, bool name)
{
    uint32_t n = rd_u32(r);
    const unsigned char *p;
    char *s;

    if (len)
        *len = 0;
    if (r->why != NULL || n == STR_ABSENT)
        return NULL;
    p = rd_take(r, n);
    if (p == NULL)
        return NULL;
    if (name && memchr(p, '\0', n) != NULL) {
        rd_fail(r, "NUL byte in a name");
        return NULL;
    }
    s = r->arena;
    memcpy(s, p, n);
    s[n] = '\0';
    r->arena += n + 1;
    if (len)
        *len = n;
    return s;
}

static bool
chan_ok(const char *s, size_t len)
{
    return s != NULL && chan_kind_of(s, len) != CHAN_INVALID;
}

static bool
rd_event(struct rd *r, const struct mn_app *app, struct rest_event *ev)
{
    const char *sid;
    size_t sid_len, len;
    const char **chans;

    ev->name = rd_str(r, &ev->name_len, true);
    ev->data = rd_str(r, &ev->data_len, false);
    ev->socket_id = sid = rd_str(r, &sid_len, true);
    ev->info = rd_u32(r);
    ev->nchannels = rd_count(r, 4);
    if (r->why != NULL)
        return false;
    if (ev->name == NULL || !chan_event_name_ok(ev->name, ev->name_len))
        return rd_fail(r, "invalid event name");
    if (ev->data == NULL || ev->data_len > app->max_event_bytes)
        return rd_fail(r, "missing or oversized event data");
    if (sid != NULL && !chan_socket_id_ok(sid, sid_len))
        return rd_fail(r, "invalid socket_id");
    if ((ev->info & ~(unsigned)INFO_ALL) != 0)
        return rd_fail(r, "unknown info bits");
    if (ev->nchannels == 0 || ev->nchannels > app->max_trigger_channels)
        return rd_fail(r, "channel count out of range");
    chans = xcalloc(ev->nchannels, sizeof(*chans));
    ev->channels = chans;
    for (size_t c = 0; c < ev->nchannels; c++) {
        chans[c] = rd_str(r, &len, true);
        if (!chan_ok(chans[c], len))
            return rd_fail(r, "invalid channel name");
    }
    return true;
}

/* The query payload, checked against the app's rules. */
static int
rd_query(struct rd *r, const struct mn_config *cfg, struct bus_msg *m, struct mn_err *err)
{
    struct rest_query *q = &m->q;
    const char *app_id;
    size_t app_len;

    q->op = (enum rest_op)rd_u8(r);
    app_id = rd_str(r, &app_len, true);
    q->info = rd_u32(r);
    q->channel = rd_str(r, &q->channel_len, true);
    q->prefix = rd_str(r, &q->prefix_len, true);
    q->user_id = rd_str(r, &q->user_id_len, true);
    q->nevents = rd_count(r, MIN_EVENT);
    if (r->why != NULL)
        return mn_err_set(err, 400, "garbled query: %s", r->why);
    if (q->op > REST_TERMINATE || (q->info & ~(unsigned)INFO_ALL) != 0)
        return mn_err_set(err, 400, "garbled query: unknown operation or info");
    if (cfg == NULL || app_id == NULL ||
        (q->app = config_app_by_id(cfg, app_id, app_len)) == NULL)
        return mn_err_set(err, 404, "Unknown app");
    switch (q->op) {
    case REST_PUBLISH:
        if (q->nevents == 0 || q->nevents > q->app->max_batch_events)
            return mn_err_set(err, 400, "garbled query: event count out of range");
        break;
    case REST_CHANNEL:
    case REST_USERS:
        if (!chan_ok(q->channel, q->channel_len))
            return mn_err_set(err, 400, "garbled query: invalid channel name");
        break;
    case REST_TERMINATE:
        if (q->user_id == NULL || q->user_id_len == 0 ||
            q->user_id_len > q->app->max_user_id_len)
            return mn_err_set(err, 400, "garbled query: invalid user id");
        break;
    case REST_CHANNELS:
        break;
    }
    if (q->op != REST_PUBLISH && q->nevents != 0)
        return mn_err_set(err, 400, "garbled query: events outside a publish");
    m->events = q->nevents ? xcalloc(q->nevents, sizeof(*m->events)) : NULL;
    q->events = m->events;
    for (size_t e = 0; e < q->nevents; e++)
        if (!rd_event(r, q->app, &m->events[e]))
            return mn_err_set(err, 400, "garbled query: %s", r->why);
    return 0;
}

static int
rd_answer(struct rd *r, struct bus_msg *m, struct mn_err *err)
{
    struct rest_answer *a = &m->a;

    a->status = (int)rd_u16(r);
    a->message = rd_str(r, NULL, true);
    a->nchans = rd_count(r, MIN_STAT);
    if (r->why == NULL && a->status != 0 && (a->status < 400 || a->status > 599))
        rd_fail(r, "status out of range");
    if (r->why != NULL)
        return mn_err_set(err, 400, "garbled answer: %s", r->why);
    m->stats = a->nchans ? xcalloc(a->nchans, sizeof(*m->stats)) : NULL;
    a->chans = m->stats;
    for (size_t i = 0; i < a->nchans && r->why == NULL; i++) {
        struct rest_chan_stat *st = &m->stats[i];

        st->name = rd_str(r, NULL, true);
        st->occupied = rd_u8(r) != 0;
        st->user_count = rd_u32(r);
        st->subscription_count = rd_u32(r);
        st->cache_data = rd_str(r, &st->cache_len, false);
        st->cache_event = rd_str(r, NULL, true);
        st->cache_ttl = rd_u32(r);
    }
    a->nusers = rd_count(r, 4);
    m->users = a->nusers ? xcalloc(a->nusers, sizeof(*m->users)) : NULL;
    a->users = m->users;
    for (size_t i = 0; i < a->nusers && r->why == NULL; i++)
        if ((m->users[i] = rd_str(r, NULL, true)) == NULL)
            rd_fail(r, "absent user id");
    if (r->why != NULL)
        return mn_err_set(err, 400, "garbled answer: %s", r->why);
    return 0;
}

struct bus_msg *
bus_msg_decode(const void *body, size_t len, const struct mn_config *cfg,
               struct mn_err *err)
{
    struct bus_msg *m = xcalloc(1, sizeof(*m));
    struct rd r = {body, len, NULL, NULL};
    unsigned magic, version;
    int rc;

    /* Every string costs 4 bytes of length, so copies with their NULs fit
     * in len + len / 4 bytes. */
    m->arena = xmalloc(len + len / 4 + 1);
    r.arena = m->arena;
    magic = rd_u8(&r);
    version = rd_u8(&r);
    m->kind = (enum bus_kind)rd_u8(&r);
    m->id = rd_u32(&r);
    if (r.why != NULL || magic != BUS_MAGIC || version != BUS_VERSION) {
        mn_err_set(err, 400, "garbled message: bad header");
        goto fail;
    }
    if (m->kind == BUS_QUERY)
        rc = rd_query(&r, cfg, m, err);
    else if (m->kind == BUS_ANSWER)
        rc = rd_answer(&r, m, err);
    else
        rc = mn_err_set(err, 400, "garbled message: unknown kind %u", (unsigned)m->kind);
    if (rc == 0 && r.left != 0)
        rc = mn_err_set(err, 400, "garbled message: %zu bytes after the end", r.left);
    if (rc == 0)
        return m;
fail:
    bus_msg_free(m);
    return NULL;
}

void
bus_msg_free(struct bus_msg *m)
{
    if (m == NULL)
        return;
    for (size_t e = 0; m->events && e < m->q.nevents; e++)
        free((void *)m->events[e].channels);
    free(m->events);
    free(m->stats);
    free(m->users);
    free(m->arena);
    free(m);
}

/* --- the seam ------------------------------------------------------------ */

struct bus *
bus_open(const struct mn_config *cfg, struct mn_err *err)
{
    if (cfg->has_redis)
        return bus_cluster_open(cfg, err);
    return bus_local_open(cfg, err);
}

void
bus_call(void *be, const struct rest_query *q, rest_answer_fn *done, void *arg)
{
    struct bus *b = be;

    b->ops->call(b, q, done, arg);
}

void
bus_close(struct bus *b)
{
    if (b != NULL)
        b->ops->close(b);
}
