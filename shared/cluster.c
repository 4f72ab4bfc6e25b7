/* cluster.c - distributed mode's names, envelopes, calls into cluster.lua
 * and the parsing of their answers (cluster.h). */
#include "cluster.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "mem.h"
#include "msg.h"
#include "sign.h"

static char sha[SIGN_SHA1_LEN + 1];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void
sha_init(void)
{
    sign_sha1_hex(cluster_lua, cluster_lua_len, sha);
}

const char *
cluster_sha(void)
{
    pthread_once(&sha_once, sha_init);
    return sha;
}

/* --- names and envelopes --- */

static void
prefix(struct buf *b, unsigned db)
{
    buf_printf(b, "mn:%u:", db);
}

void
cluster_chan_name(struct buf *b, unsigned db, const char *app_id, const char *chan,
                  size_t clen)
{
    prefix(b, db);
    buf_puts(b, app_id);
    buf_putc(b, ':');
    buf_append(b, chan, clen);
}

void
cluster_node_name(struct buf *b, unsigned db, const char *node)
{
    prefix(b, db);
    buf_puts(b, "#node:");
    buf_puts(b, node);
}

void
cluster_ctl_name(struct buf *b, unsigned db)
{
    prefix(b, db);
    buf_puts(b, "#ctl");
}

void
cluster_envelope(struct buf *b, const char *node, const char *exclude, const char *frame,
                 size_t len)
{
    buf_append(b, node, CLUSTER_NODE_LEN);
    buf_putc(b, '\n');
    if (exclude)
        buf_puts(b, exclude);
    buf_putc(b, '\n');
    buf_append(b, frame, len);
}

int
cluster_envelope_parse(const char *data, size_t len, const char **node, char *exclude,
                       size_t cap, const char **frame, size_t *flen)
{
    const char *excl, *nl;

    if (len < CLUSTER_NODE_LEN + 2 || data[CLUSTER_NODE_LEN] != '\n')
        return -1;
    excl = data + CLUSTER_NODE_LEN + 1;
    nl = memchr(excl, '\n', len - CLUSTER_NODE_LEN - 1);
    if (nl == NULL || (size_t)(nl - excl) >= cap)
        return -1;
    memcpy(exclude, excl, (size_t)(nl - excl));
    exclude[nl - excl] = '\0';
    *node = data;
    *frame = nl + 1;
    *flen = len - (size_t)(nl + 1 - data);
    return 0;
}

int
cluster_chan_parse(const char *name, size_t nlen, unsigned db, const char **app_id,
                   size_t *alen, const char **chan, size_t *clen)
{
    char pre[32];
    int plen = snprintf(pre, sizeof(pre), "mn:%u:", db);
    const char *rest, *colon;

    if (plen < 0 || nlen <= (size_t)plen || memcmp(name, pre, (size_t)plen) != 0)
        return -1;
    rest = name + plen;
    /* Channel names never contain ':', app ids may. */
    colon = memrchr(rest, ':', nlen - (size_t)plen);
    if (colon == NULL)
        return -1;
    *app_id = rest;
    *alen = (size_t)(colon - rest);
    *chan = colon + 1;
    *clen = (size_t)(name + nlen - *chan);
    return 0;
}

void
cluster_cache_entry(struct buf *b, const char *event, size_t elen, const char *data,
                    size_t dlen)
{
    buf_printf(b, "%zu:", elen);
    buf_append(b, event, elen);
    buf_append(b, data, dlen);
}

/* Reads "{decimal}:" at *p (before end) and checks that many bytes follow. */
static int
netstring_len(const char **p, const char *end, size_t *len)
{
    size_t n = 0;
    const char *s = *p;

    if (s >= end || *s < '0' || *s > '9')
        return -1;
    while (s < end && *s >= '0' && *s <= '9') {
        if (n > (size_t)(end - s))
            return -1;
        n = n * 10 + (size_t)(*s++ - '0');
    }
    if (s >= end || *s != ':' || n > (size_t)(end - s - 1))
        return -1;
    *p = s + 1;
    *len = n;
    return 0;
}

int
cluster_cache_entry_parse(const char *e, size_t len, const char **event, size_t *elen,
                          const char **data, size_t *dlen)
{
    const char *p = e, *end = e + len;

    if (netstring_len(&p, end, elen) < 0)
        return -1;
    *event = p;
    *data = p + *elen;
    *dlen = (size_t)(end - *data);
    return 0;
}

/* --- calls --- */

void
cluster_cmd_add(struct cluster_cmd *c, const char *s, size_t len)
{
    if (c->argc == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->argv = xrealloc(c->argv, c->cap * sizeof(*c->argv));
        c->lens = xrealloc(c->lens, c->cap * sizeof(*c->lens));
    }
    c->argv[c->argc] = xmalloc(len + 1);
    memcpy(c->argv[c->argc], s, len);
    c->argv[c->argc][len] = '\0';
    c->lens[c->argc++] = len;
}

static void
add_str(struct cluster_cmd *c, const char *s)
{
    cluster_cmd_add(c, s, strlen(s));
}

void
cluster_cmd_addu(struct cluster_cmd *c, uint64_t v)
{
    char n[24];

    cluster_cmd_add(c, n, (size_t)snprintf(n, sizeof(n), "%llu", (unsigned long long)v));
}

void
cluster_cmd_free(struct cluster_cmd *c)
{
    for (size_t i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c->lens);
    memset(c, 0, sizeof(*c));
}

void
cluster_cmd_start(struct cluster_cmd *c, const char *op, unsigned db, const char *node,
                  bool full)
{
    char pre[32];

    if (full) {
        add_str(c, "EVAL");
        cluster_cmd_add(c, cluster_lua, cluster_lua_len);
    } else {
        add_str(c, "EVALSHA");
        add_str(c, cluster_sha());
    }
    add_str(c, "0");
    add_str(c, op);
    cluster_cmd_add(c, pre, (size_t)snprintf(pre, sizeof(pre), "mn:%u:", db));
    add_str(c, node ? node : "");
}

void
cluster_cmd_full(struct cluster_cmd *c)
{
    if (c->argc < 2 || strcmp(c->argv[0], "EVALSHA") != 0)
        return;
    free(c->argv[0]);
    free(c->argv[1]);
    c->argv[0] = xstrdup("EVAL");
    c->lens[0] = 4;
    c->argv[1] = xmalloc(cluster_lua_len + 1);
    memcpy(c->argv[1], cluster_lua, cluster_lua_len + 1);
    c->lens[1] = cluster_lua_len;
}

void
cluster_cmd_sub(struct cluster_cmd *c, const char *app_id, const char *chan, size_t clen,
                long count, int member, const char *user, size_t ulen, const char *info,
                size_t ilen, uint64_t token, bool cache, bool fresh, unsigned max_members)
{
    add_str(c, app_id);
    cluster_cmd_add(c, chan, clen);
    if (count < 0)
        add_str(c, "-");
    else
        cluster_cmd_addu(c, (uint64_t)count);
    add_str(c, member < 0 ? "-" : member ? "1" : "0");
    cluster_cmd_add(c, user ? user : "", user ? ulen : 0);
    if (info)
        cluster_cmd_add(c, info, ilen);
    else
        add_str(c, "null");
    if (token)
        cluster_cmd_addu(c, token);
    else
        add_str(c, "");
    add_str(c, cache ? "1" : "0");
    add_str(c, fresh ? "1" : "0");
    if (max_members)
        cluster_cmd_addu(c, max_members);
    else
        add_str(c, "");
}

void
cluster_cmd_user(struct cluster_cmd *c, const char *app_id, const char *user, size_t ulen,
                 bool present, bool fresh)
{
    add_str(c, app_id);
    cluster_cmd_add(c, user, ulen);
    add_str(c, present ? "1" : "0");
    add_str(c, fresh ? "1" : "0");
}

void
cluster_cmd_watch(struct cluster_cmd *c, const char *app_id, uint64_t token,
                  const char *const *ids, const size_t *lens, size_t n)
{
    add_str(c, app_id);
    cluster_cmd_addu(c, token);
    for (size_t i = 0; i < n; i++)
        cluster_cmd_add(c, ids[i], lens[i]);
}

void
cluster_cmd_beat(struct cluster_cmd *c, uint64_t timeout_ms, bool record)
{
    cluster_cmd_addu(c, timeout_ms);
    add_str(c, record ? "1" : "0");
}

void
cluster_cmd_reap(struct cluster_cmd *c, const char *dead, uint64_t timeout_ms)
{
    add_str(c, dead);
    cluster_cmd_addu(c, timeout_ms);
}

void
cluster_cmd_sync_mode(struct cluster_cmd *c, bool silent)
{
    add_str(c, silent ? "1" : "0");
}

void
cluster_cmd_sync_count(struct cluster_cmd *c, const char *app_id, const char *chan,
                       size_t clen, unsigned count)
{
    add_str(c, "n");
    add_str(c, app_id);
    cluster_cmd_add(c, chan, clen);
    cluster_cmd_addu(c, count);
}

void
cluster_cmd_sync_user(struct cluster_cmd *c, const char *app_id, const char *user,
                      size_t ulen)
{
    add_str(c, "u");
    add_str(c, app_id);
    cluster_cmd_add(c, user, ulen);
}

void
cluster_cmd_sync_member(struct cluster_cmd *c, const char *app_id, const char *chan,
                        size_t clen, const char *user, size_t ulen, const char *info,
                        size_t ilen)
{
    add_str(c, "m");
    add_str(c, app_id);
    cluster_cmd_add(c, chan, clen);
    cluster_cmd_add(c, user, ulen);
    if (info)
        cluster_cmd_add(c, info, ilen);
    else
        add_str(c, "null");
}

void
cluster_cmd_confirm(struct cluster_cmd *c, char kind, const char *app_id,
                    const char *chan, size_t clen, const char *user, size_t ulen,
                    const char *token, size_t tlen)
{
    cluster_cmd_add(c, kind == 'v' ? "v" : "r", 1);
    add_str(c, app_id);
    cluster_cmd_add(c, chan, clen);
    if (kind != 'v')
        cluster_cmd_add(c, user, ulen);
    cluster_cmd_add(c, token, tlen);
}

void
cluster_cmd_cache(struct cluster_cmd *c, const char *app_id, const char *chan,
                  size_t clen, const char *event, size_t elen, const char *data,
                  size_t dlen, uint64_t ttl_ms)
{
    struct buf e = BUF_INIT;

    add_str(c, app_id);
    cluster_cmd_add(c, chan, clen);
    cluster_cache_entry(&e, event, elen, data, dlen);
    cluster_cmd_add(c, buf_data(&e), e.len);
    buf_free(&e);
    cluster_cmd_addu(c, ttl_ms ? ttl_ms : 1);
}

void
cluster_cmd_channels(struct cluster_cmd *c, const char *app_id, const char *pre)
{
    add_str(c, app_id);
    add_str(c, pre ? pre : "");
}

void
cluster_cmd_channel(struct cluster_cmd *c, const char *app_id, const char *chan)
{
    add_str(c, app_id);
    add_str(c, chan);
}

void
cluster_cmd_users(struct cluster_cmd *c, const char *app_id, const char *chan)
{
    add_str(c, app_id);
    add_str(c, chan);
}

/* --- answers --- */

static bool
is_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS;
}

const char *
cluster_status(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0 ||
        !is_str(r->element[0]))
        return NULL;
    return r->element[0]->str;
}

void
cluster_transitions(const redisReply *r, cluster_transition_fn *fn, void *arg)
{
    if (cluster_status(r) == NULL)
        return;
    for (size_t i = 1; i + 5 <= r->elements; i += 5) {
        redisReply *const *e = r->element + i;
        struct cluster_transition t;

        if (!is_str(e[0]) || !is_str(e[1]) || !is_str(e[2]) || !is_str(e[3]) ||
            !is_str(e[4]) || e[0]->len != 1)
            return;
        t.kind = e[0]->str[0];
        t.app_id = e[1]->str;
        t.alen = e[1]->len;
        t.chan = e[2]->str;
        t.clen = e[2]->len;
        t.a = e[3]->str;
        t.a_len = e[3]->len;
        t.b = e[4]->str;
        t.b_len = e[4]->len;
        fn(arg, &t);
    }
}

int
cluster_snapshot_parse(const char *data, size_t len, struct cluster_snapshot *s)
{
    const char *p = data, *end = data + len;
    uint64_t tok = 0;

    memset(s, 0, sizeof(*s));
    while (p < end && *p >= '0' && *p <= '9')
        tok = tok * 10 + (uint64_t)(*p++ - '0');
    if (p == data || p + 2 > end || *p++ != '\n')
        return -1;
    s->token = tok;
    s->cache = *p++;
    if (s->cache == 'c') {
        if (netstring_len(&p, end, &s->entry_len) < 0)
            return -1;
        s->entry = p;
        p += s->entry_len;
    } else if (s->cache != 'x' && s->cache != '-' && s->cache != 'w' && s->cache != 'f') {
        return -1;
    }
    s->members = p;
    s->members_len = (size_t)(end - p);
    return 0;
}

int
cluster_snapshot_member(const char **p, const char *end, const char **id, size_t *ilen,
                        const char **info, size_t *info_len)
{
    const char *s = *p;

    if (s >= end)
        return 0;
    if (netstring_len(&s, end, ilen) < 0)
        return -1;
    *id = s;
    s += *ilen;
    if (netstring_len(&s, end, info_len) < 0)
        return -1;
    *info = s;
    *p = s + *info_len;
    return 1;
}

int
cluster_snapshot_presence(const struct cluster_snapshot *s, struct buf *out)
{
    const char *p = s->members, *end = s->members + s->members_len;
    size_t n = 0, cap = 16;
    const char **ids = xmalloc(cap * sizeof(*ids)),
               **infos = xmalloc(cap * sizeof(*infos));
    size_t *id_lens = xmalloc(cap * sizeof(*id_lens));
    size_t *info_lens = xmalloc(cap * sizeof(*info_lens));
    int rc = 0;

    while (p < end) {
        size_t a, b;
        const char *id;

        if (netstring_len(&p, end, &a) < 0) {
            rc = -1;
            break;
        }
        id = p;
        p += a;
        if (netstring_len(&p, end, &b) < 0) {
            rc = -1;
            break;
        }
        if (n == cap) {
            cap *= 2;
            ids = xrealloc(ids, cap * sizeof(*ids));
            infos = xrealloc(infos, cap * sizeof(*infos));
            id_lens = xrealloc(id_lens, cap * sizeof(*id_lens));
            info_lens = xrealloc(info_lens, cap * sizeof(*info_lens));
        }
        ids[n] = id;
        id_lens[n] = a;
        infos[n] = p;
        info_lens[n] = b;
        p += b;
        n++;
    }
    if (rc == 0)
        msg_presence_object(out, ids, id_lens, infos, info_lens, n);
    free(ids);
    free(infos);
    free(id_lens);
    free(info_lens);
    return rc;
}

static unsigned
as_uint(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer > 0 ? (unsigned)r->integer : 0;
    if (is_str(r))
        return (unsigned)strtoul(r->str, NULL, 10);
    return 0;
}

int
cluster_parse_channels(const redisReply *r, struct rest_chan_stat **out, size_t *n)
{
    struct rest_chan_stat *st;

    *out = NULL;
    *n = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 3 != 0)
        return -1;
    st = xcalloc(r->elements / 3 + 1, sizeof(*st));
    for (size_t i = 0; i < r->elements; i += 3) {
        struct rest_chan_stat *s = &st[i / 3];

        if (!is_str(r->element[i])) {
            cluster_stats_free(st, i / 3);
            return -1;
        }
        s->name = xstrndup(r->element[i]->str, r->element[i]->len);
        s->occupied = true;
        s->subscription_count = as_uint(r->element[i + 1]);
        s->user_count = as_uint(r->element[i + 2]);
    }
    *out = st;
    *n = r->elements / 3;
    return 0;
}

int
cluster_parse_channel(const redisReply *r, const char *chan, struct rest_chan_stat *st)
{
    const redisReply *e;

    memset(st, 0, sizeof(*st));
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2)
        return -1;
    st->name = xstrdup(chan);
    st->subscription_count = as_uint(r->element[0]);
    st->user_count = as_uint(r->element[1]);
    st->occupied = st->subscription_count > 0;
    if (r->elements >= 4 && is_str(e = r->element[2])) {
        const char *ev, *data;
        size_t elen, dlen;
        long long ttl =
            r->element[3]->type == REDIS_REPLY_INTEGER ? r->element[3]->integer : 0;

        if (ttl > 0 &&
            cluster_cache_entry_parse(e->str, e->len, &ev, &elen, &data, &dlen) == 0) {
            st->cache_event = xstrndup(ev, elen);
            st->cache_data = xstrndup(data, dlen);
            st->cache_len = dlen;
            st->cache_ttl = (unsigned)((ttl + 999) / 1000);
        }
    }
    return 0;
}

int
cluster_parse_users(const redisReply *r, char ***ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return -1;
    *ids = xcalloc(r->elements + 1, sizeof(**ids));
    for (size_t i = 0; i < r->elements; i++) {
        if (!is_str(r->element[i])) {
            cluster_users_free(*ids, *n);
            *ids = NULL;
            *n = 0;
            return -1;
        }
        (*ids)[(*n)++] = xstrndup(r->element[i]->str, r->element[i]->len);
    }
    return 0;
}

void
cluster_answer_query(const struct rest_query *q, const redisReply *reply,
                     rest_answer_fn *done, void *arg)
{
    struct rest_answer ans = {0};
    struct rest_chan_stat *st = NULL, one;
    enum rest_op op = q->op; /* q is the caller's until done returns */
    char **users = NULL;
    size_t n = 0;
    int rc;

    switch (op) {
    case REST_CHANNELS:
        rc = cluster_parse_channels(reply, &st, &n);
        ans.chans = st;
        ans.nchans = n;
        break;
    case REST_CHANNEL:
        rc = cluster_parse_channel(reply, q->channel, &one);
        if (rc == 0 && !(q->info & REST_INFO_CACHE)) {
            free((char *)one.cache_data);
            free((char *)one.cache_event);
            one.cache_data = one.cache_event = NULL;
        }
        ans.chans = &one;
        ans.nchans = 1;
        break;
    default:
        rc = cluster_parse_users(reply, &users, &n);
        ans.users = (const char *const *)users;
        ans.nusers = n;
        break;
    }
    if (rc < 0) {
        memset(&ans, 0, sizeof(ans));
        ans.status = 503;
        ans.message = "Redis is unreachable: the channel state is unknown";
    }
    done(arg, &ans);
    if (rc == 0 && op == REST_CHANNEL)
        cluster_stat_clear(&one);
    cluster_stats_free(st, op == REST_CHANNELS ? n : 0);
    cluster_users_free(users, op == REST_USERS ? n : 0);
}

void
cluster_stat_clear(struct rest_chan_stat *st)
{
    free((char *)st->name);
    free((char *)st->cache_data);
    free((char *)st->cache_event);
    memset(st, 0, sizeof(*st));
}

void
cluster_stats_free(struct rest_chan_stat *st, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cluster_stat_clear(&st[i]);
    free(st);
}

void
cluster_users_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}
