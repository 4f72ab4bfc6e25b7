/* test_cluster.c - cluster_answer_query without a Redis: the replies
 * cluster.lua gives to "channels", "channel" and "users", built by hand,
 * turned into the REST answer the gateway and micronotifier-api both send
 * (cache fields only with info=cache, cache_ttl rounded up to whole
 * seconds); a NULL, error or garbled reply answers 503 with the gateways'
 * text. done is called exactly once every time. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "buf.h"
#include "cluster.h"
#include "rest.h"
#include "tap.h"
#include "mn.h"

#define NO_REPLY (-1)
#define MAX_ELEMS 6
#define UNKNOWN "503 Redis is unreachable: the channel state is unknown"

/* One element of an array reply: a string, or an integer when str is NULL. */
struct elem {
    const char *str;
    long long integer;
};

struct answer_case {
    const char *what;
    enum rest_op op;
    unsigned info;
    int type; /* the reply's REDIS_REPLY_*, or NO_REPLY (NULL) */
    size_t n;
    struct elem el[MAX_ELEMS];
    const char *want; /* the answer as got_text() writes it */
};

static const struct answer_case cases[] = {
    {"channels: two occupied",
     REST_CHANNELS,
     REST_INFO_USER_COUNT,
     REDIS_REPLY_ARRAY,
     6,
     {{"presence-a", 0}, {NULL, 3}, {NULL, 2}, {"news", 0}, {NULL, 1}, {NULL, 0}},
     "presence-a occupied subs=3 users=2|news occupied subs=1 users=0|"},
    {"channels: none", REST_CHANNELS, 0, REDIS_REPLY_ARRAY, 0, {{NULL, 0}}, ""},
    {"channels: garbled (not triples)",
     REST_CHANNELS,
     0,
     REDIS_REPLY_ARRAY,
     2,
     {{"news", 0}, {NULL, 1}},
     UNKNOWN},
    {"channels: name not a string",
     REST_CHANNELS,
     0,
     REDIS_REPLY_ARRAY,
     3,
     {{NULL, 7}, {NULL, 1}, {NULL, 0}},
     UNKNOWN},
    {"channels: an error reply",
     REST_CHANNELS,
     0,
     REDIS_REPLY_ERROR,
     0,
     {{NULL, 0}},
     UNKNOWN},
    {"channels: no reply", REST_CHANNELS, 0, NO_REPLY, 0, {{NULL, 0}}, UNKNOWN},
    {"channel: cache asked",
     REST_CHANNEL,
     REST_INFO_CACHE,
     REDIS_REPLY_ARRAY,
     4,
     {{NULL, 2}, {NULL, 0}, {"2:ev{\"p\":1}", 0}, {NULL, 1500}},
     "cache-prices occupied subs=2 users=0 cache=ev {\"p\":1} ttl=2|"},
    {"channel: cache not asked",
     REST_CHANNEL,
     REST_INFO_SUBSCRIPTION_COUNT,
     REDIS_REPLY_ARRAY,
     4,
     {{NULL, 2}, {NULL, 0}, {"2:ev{\"p\":1}", 0}, {NULL, 1500}},
     "cache-prices occupied subs=2 users=0|"},
    {"channel: cache expired",
     REST_CHANNEL,
     REST_INFO_CACHE,
     REDIS_REPLY_ARRAY,
     4,
     {{NULL, 1}, {NULL, 0}, {"2:ev{}", 0}, {NULL, 0}},
     "cache-prices occupied subs=1 users=0|"},
    {"channel: vacant",
     REST_CHANNEL,
     0,
     REDIS_REPLY_ARRAY,
     2,
     {{NULL, 0}, {NULL, 0}},
     "cache-prices vacant subs=0 users=0|"},
    {"channel: garbled (too short)",
     REST_CHANNEL,
     0,
     REDIS_REPLY_ARRAY,
     1,
     {{NULL, 1}},
     UNKNOWN},
    {"channel: no reply", REST_CHANNEL, 0, NO_REPLY, 0, {{NULL, 0}}, UNKNOWN},
    {"users: two", REST_USERS, 0, REDIS_REPLY_ARRAY, 2, {{"1", 0}, {"u-2", 0}}, "1,u-2,"},
    {"users: none", REST_USERS, 0, REDIS_REPLY_ARRAY, 0, {{NULL, 0}}, ""},
    {"users: garbled (an integer)",
     REST_USERS,
     0,
     REDIS_REPLY_ARRAY,
     2,
     {{"1", 0}, {NULL, 3}},
     UNKNOWN},
    {"users: an error reply", REST_USERS, 0, REDIS_REPLY_ERROR, 0, {{NULL, 0}}, UNKNOWN},
};

struct got {
    int calls;
    struct buf text;
};

/* Writes the answer as text: every string is gone once done returns. */
static void
on_answer(void *arg, const struct rest_answer *ans)
{
    struct got *g = arg;
    char line[256];

    g->calls++;
    if (ans->status) {
        snprintf(line, sizeof(line), "%d %s", ans->status, ans->message);
        buf_puts(&g->text, line);
        return;
    }
    for (size_t i = 0; i < ans->nchans; i++) {
        const struct rest_chan_stat *st = &ans->chans[i];

        snprintf(line, sizeof(line), "%s %s subs=%u users=%u", st->name,
                 st->occupied ? "occupied" : "vacant", st->subscription_count,
                 st->user_count);
        buf_puts(&g->text, line);
        if (st->cache_event) {
            snprintf(line, sizeof(line), " cache=%s %.*s ttl=%u", st->cache_event,
                     (int)st->cache_len, st->cache_data, st->cache_ttl);
            buf_puts(&g->text, line);
        }
        buf_putc(&g->text, '|');
    }
    for (size_t i = 0; i < ans->nusers; i++) {
        buf_puts(&g->text, ans->users[i]);
        buf_putc(&g->text, ',');
    }
}

static void
run(const struct answer_case *c)
{
    redisReply el[MAX_ELEMS], *elp[MAX_ELEMS];
    redisReply reply = {0};
    struct rest_query q = {0};
    struct got g = {0, BUF_INIT};

    for (size_t i = 0; i < c->n; i++) {
        memset(&el[i], 0, sizeof(el[i]));
        if (c->el[i].str) {
            el[i].type = REDIS_REPLY_STRING;
            el[i].str = (char *)c->el[i].str;
            el[i].len = strlen(c->el[i].str);
        } else {
            el[i].type = REDIS_REPLY_INTEGER;
            el[i].integer = c->el[i].integer;
        }
        elp[i] = &el[i];
    }
    reply.type = c->type;
    if (c->type == REDIS_REPLY_ERROR) {
        reply.str = (char *)"ERR boom";
        reply.len = 8;
    } else {
        reply.elements = c->n;
        reply.element = elp;
    }
    q.op = c->op;
    q.info = c->info;
    q.channel = c->op == REST_CHANNELS ? NULL : "cache-prices";
    q.channel_len = q.channel ? strlen(q.channel) : 0;
    cluster_answer_query(&q, c->type == NO_REPLY ? NULL : &reply, on_answer, &g);
    is_int(g.calls, 1, "%s: done called once", c->what);
    is_str(g.text.len ? buf_data(&g.text) : "", c->want, "%s: the answer", c->what);
    buf_free(&g.text);
}

/* cluster_snapshot_member walks a snapshot's presence part. */
#define SNAPSHOT_MEMBER_TESTS 7
static void
snapshot_members(void)
{
    static const char part[] = "2:u14:null1:v7:{\"n\":1}", bad[] = "2:u14:nul";
    const char *p = part, *end = part + sizeof(part) - 1, *id, *info;
    size_t ilen, info_len;

    is_int(cluster_snapshot_member(&p, end, &id, &ilen, &info, &info_len), 1, "first");
    ok(ilen == 2 && memcmp(id, "u1", 2) == 0 && info_len == 4 &&
           memcmp(info, "null", 4) == 0,
       "first: u1 null");
    is_int(cluster_snapshot_member(&p, end, &id, &ilen, &info, &info_len), 1, "second");
    ok(ilen == 1 && *id == 'v' && info_len == 7 && memcmp(info, "{\"n\":1}", 7) == 0,
       "second: v {\"n\":1}");
    is_int(cluster_snapshot_member(&p, end, &id, &ilen, &info, &info_len), 0, "the end");
    p = bad;
    end = bad + sizeof(bad) - 1;
    is_int(cluster_snapshot_member(&p, end, &id, &ilen, &info, &info_len), -1,
           "cut short: -1");
    p = end = part;
    is_int(cluster_snapshot_member(&p, end, &id, &ilen, &info, &info_len), 0,
           "no members");
}

int
main(void)
{
    plan(2 * (int)ARRAY_LEN(cases) + SNAPSHOT_MEMBER_TESTS);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        run(&cases[i]);
    snapshot_members();
    return done_testing();
}
