/* hub_cluster_rest.c - distributed mode's REST side of the hub: GET
 * /channels, /channels/{ch} and /channels/{ch}/users answered from Redis
 * (the script's reply turned into the answer by cluster_answer_query, as
 * micronotifier-api does), a trigger's info answered with the fleet's
 * counts, a cache channel's last event kept in Redis too, and
 * terminate_connections told to the other nodes on P#ctl. The triggers'
 * PUBLISHes are hub_redis.c's. */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "bus_redis.h"
#include "cluster.h"
#include "log.h"
#include "mem.h"
#include "hub_cluster_int.h"
#include "mn.h"

static void
on_query(void *arg, const struct redisReply *reply)
{
    struct creq *r = arg;

    if (reply && reply->type == REDIS_REPLY_ERROR)
        log_warn("cluster: query failed: %s", reply->str);
    cluster_answer_query(r->q, reply, r->done, r->arg);
    free(r);
}

bool
hub_cluster_rest(struct hub *h, size_t app, const struct rest_query *q,
                 rest_answer_fn *done, void *arg)
{
    struct cluster_cmd c = {0};
    struct creq *r;
    const char *id = h->cfg->apps[app].id;

    if (h->redis == NULL ||
        (q->op != REST_CHANNELS && q->op != REST_CHANNEL && q->op != REST_USERS))
        return false;
    if (q->op == REST_CHANNELS) {
        char *pre = q->prefix ? xstrndup(q->prefix, q->prefix_len) : NULL;

        hub_cluster_start(h, &c, "channels", false);
        cluster_cmd_channels(&c, id, pre);
        free(pre);
    } else {
        char *chan = xstrndup(q->channel, q->channel_len);

        hub_cluster_start(h, &c, q->op == REST_CHANNEL ? "channel" : "users", false);
        if (q->op == REST_CHANNEL)
            cluster_cmd_channel(&c, id, chan);
        else
            cluster_cmd_users(&c, id, chan);
        free(chan);
    }
    r = hub_cluster_req(h, "query");
    r->q = q;
    r->done = done;
    r->arg = arg;
    if (hub_cluster_send(h, &c, on_query, r) < 0) {
        struct rest_answer ans = {0};

        ans.status = 503;
        ans.message = "Redis is unreachable: the channel state is unknown";
        done(arg, &ans);
    }
    return true;
}

/* A publish waiting for the fleet's counts of its channels. */
struct cinfo {
    struct hub *h;
    size_t app;
    const struct rest_query *q;
    struct frame **frames;
    size_t total;
    rest_answer_fn *done;
    void *arg;
};

static void
on_counts(void *arg, const struct redisReply *reply)
{
    struct cinfo *ci = arg;
    unsigned *fleet = NULL;

    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 * ci->total) {
        fleet = xcalloc(2 * ci->total, sizeof(*fleet));
        for (size_t i = 0; i < reply->elements; i++)
            if (reply->element[i]->type == REDIS_REPLY_INTEGER &&
                reply->element[i]->integer > 0)
                fleet[i] = (unsigned)reply->element[i]->integer;
    }
    /* Without an answer: this node's counts, as in standalone mode. */
    hub_publish_local(ci->h, ci->app, ci->q, fleet, ci->frames, ci->total, ci->done,
                      ci->arg);
    free(fleet);
    free(ci);
}

void
hub_cluster_publish_info(struct hub *h, size_t app, const struct rest_query *q,
                         struct frame **frames, size_t total, rest_answer_fn *done,
                         void *arg)
{
    struct cluster_cmd c = {0};
    struct cinfo *ci;
    bool info = false;

    for (size_t e = 0; e < q->nevents; e++)
        info |= q->events[e].info != 0;
    if (!info) {
        hub_publish_local(h, app, q, NULL, frames, total, done, arg);
        return;
    }
    ci = xcalloc(1, sizeof(*ci));
    ci->h = h;
    ci->app = app;
    ci->q = q;
    ci->frames = frames;
    ci->total = total;
    ci->done = done;
    ci->arg = arg;
    hub_cluster_start(h, &c, "counts", false);
    cluster_cmd_add(&c, h->cfg->apps[app].id, strlen(h->cfg->apps[app].id));
    for (size_t e = 0; e < q->nevents; e++)
        for (size_t k = 0; k < q->events[e].nchannels; k++)
            cluster_cmd_add(&c, q->events[e].channels[k],
                            strlen(q->events[e].channels[k]));
    if (bus_redis_command(h->redis, c.argc, (const char *const *)c.argv, c.lens,
                          on_counts, ci) < 0)
        on_counts(ci, NULL);
    cluster_cmd_free(&c);
}

void
hub_cluster_cache_put(struct hub *h, size_t app, const char *chan, size_t clen,
                      const char *event, size_t elen, const char *data, size_t dlen)
{
    struct cluster_cmd c = {0};

    if (h->redis == NULL)
        return;
    hub_cluster_start(h, &c, "cache", false);
    cluster_cmd_cache(&c, h->cfg->apps[app].id, chan, clen, event, elen, data, dlen,
                      (uint64_t)h->cfg->apps[app].cache_ttl * 1000);
    hub_cluster_send(h, &c, NULL, NULL);
}

void
hub_cluster_terminate(struct hub *h, size_t app, const char *user, size_t ulen)
{
    struct buf name = BUF_INIT, msg = BUF_INIT;

    if (h->redis == NULL)
        return;
    cluster_ctl_name(&name, h->cfg->redis.database);
    buf_putc(&msg, CLUSTER_CTL_TERMINATE);
    buf_putc(&msg, '\n');
    buf_puts(&msg, h->cfg->apps[app].id);
    buf_putc(&msg, '\n');
    buf_append(&msg, user, ulen);
    if (bus_redis_publish(h->redis, buf_data(&name), name.len, buf_data(&msg), msg.len,
                          NULL, NULL) < 0)
        log_warn("cluster: Redis down, terminate_connections reached this node only");
    buf_free(&name);
    buf_free(&msg);
}
