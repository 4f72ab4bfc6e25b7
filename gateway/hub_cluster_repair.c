/* hub_cluster_repair.c - distributed mode: the member lists of a presence
 * channel's local subscribers, set right after they missed events. Redis
 * pub/sub keeps nothing for a node whose link is down, and a silent restore
 * after Redis lost the state announces nothing; so each presence channel
 * keeps the members its local subscribers were told of (c->told: set from
 * every snapshot applied, then moved by every member_added / member_removed
 * Redis delivered), and a snapshot that differs from it is first sent to
 * them as member_removed / member_added frames (the joiner, waiting for its
 * own snapshot, skips them by its seq). Repair snapshots ask for that
 * snapshot of every presence channel with local subscribers, without a
 * joiner: after the link came back (its resync done) and after a silent
 * restore (once the others restored too). Joins are hub_cluster_join.c's;
 * when a repair runs is hub_cluster.c's and hub_cluster_beat.c's. */
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "clock.h"
#include "cluster.h"
#include "log.h"
#include "mem.h"
#include "msg.h"
#include "hub_cluster_int.h"
#include "mn.h"

/* What the local subscribers were told of one member. */
struct htold {
    size_t len;
    char info[]; /* user_info JSON text, as the script publishes it */
};

static void
told_put(struct hchan *c, const char *id, size_t ilen, const char *info, size_t len)
{
    bool created;
    struct map_node *n = map_upsert(&c->told, id, ilen, &created);
    struct htold *t = xmalloc(sizeof(*t) + len);

    if (!created)
        free(n->val);
    t->len = len;
    memcpy(t->info, info, len);
    n->val = t;
}

void
hub_cluster_told_clear(struct hchan *c)
{
    size_t bucket = 0;
    struct map_node *it = NULL;

    while (map_next(&c->told, &bucket, &it))
        free(it->val);
    map_clear(&c->told);
    c->told_known = false;
}

void
hub_cluster_told_event_locked(struct hchan *c, bool added, const struct msg_member *m)
{
    size_t ilen;

    if (!c->told_known)
        return;
    ilen = strlen(m->user_id);
    if (added)
        told_put(c, m->user_id, ilen, m->user_info, m->info_len);
    else
        free(map_del(&c->told, m->user_id, ilen));
}

void
hub_cluster_told_local_locked(struct hchan *c)
{
    size_t bucket = 0;
    struct map_node *it = NULL;

    if (c->told_known)
        return;
    while (map_next(&c->members, &bucket, &it)) {
        const struct hmember *m = it->val;

        told_put(c, it->key, it->len, m->info ? m->info : "null",
                 m->info ? m->info_len : 4);
    }
    c->told_known = true;
}

/* Lock held: one frame (text in b) to c's subscribers that are not waiting. */
static void
tell(struct hub *h, size_t app, const char *chan, size_t clen, const struct hchan *c,
     struct buf *b)
{
    struct frame *f = frame_new(buf_data(b), b->len);

    hub_publish_locked(h, app, chan, clen, c, f, NULL);
    frame_unref(f);
    buf_reset(b);
}

void
hub_cluster_told_snapshot_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                                 struct hchan *c, const struct cluster_snapshot *s)
{
    struct map next = {0};
    struct buf b = BUF_INIT;
    const char *p = s->members, *end = s->members + s->members_len, *id, *info;
    size_t ilen, info_len, bucket = 0;
    struct map_node *it = NULL;
    unsigned added = 0, removed = 0;
    bool created;

    /* Garbled snapshots were refused before (cluster_snapshot_presence). */
    while (cluster_snapshot_member(&p, end, &id, &ilen, &info, &info_len) == 1) {
        struct htold *t = xmalloc(sizeof(*t) + info_len);
        struct map_node *n = map_upsert(&next, id, ilen, &created);

        t->len = info_len;
        memcpy(t->info, info, info_len);
        if (!created)
            free(n->val);
        n->val = t;
    }
    while (c->told_known && map_next(&c->told, &bucket, &it)) {
        const struct htold *was = it->val, *now = map_get(&next, it->key, it->len);

        /* Gone, or back with other user_info: removed (and added below). */
        if (now == NULL || now->len != was->len ||
            memcmp(now->info, was->info, was->len)) {
            msg_member_removed(&b, chan, clen, it->key, it->len);
            tell(h, app, chan, clen, c, &b);
            removed++;
        }
    }
    bucket = 0;
    it = NULL;
    while (c->told_known && map_next(&next, &bucket, &it)) {
        const struct htold *now = it->val, *was = map_get(&c->told, it->key, it->len);

        if (was == NULL || now->len != was->len ||
            memcmp(now->info, was->info, was->len)) {
            msg_member_added(&b, chan, clen, it->key, it->len, now->info, now->len);
            tell(h, app, chan, clen, c, &b);
            added++;
        }
    }
    if (added || removed)
        log_info("cluster: member list repaired from a snapshot channel=%.*s added=%u "
                 "removed=%u",
                 (int)clen, chan, added, removed);
    hub_cluster_told_clear(c);
    c->told = next;
    c->told_known = true;
    buf_free(&b);
}

/* --- repair snapshots --- */

/* A repair snapshot asked for (hub->cl.repairs, by token). */
struct crepair {
    size_t app;
    uint64_t since_ms;
    size_t clen;
    char chan[];
};

/* Lock held: whether a repair of chan is asked for already. */
static bool
repair_pending(const struct hub *h, size_t app, const char *chan, size_t clen)
{
    size_t bucket = 0;
    struct map_node *it = NULL;

    while (map_next(&h->cl.repairs, &bucket, &it)) {
        const struct crepair *r = it->val;

        if (r->app == app && r->clen == clen && memcmp(r->chan, chan, clen) == 0)
            return true;
    }
    return false;
}

/* Lock held: asks for the snapshot of one channel; false when Redis is away. */
static bool
ask_repair(struct hub *h, size_t app, const char *chan, size_t clen)
{
    struct cluster_cmd c = {0};
    struct creq *req = hub_cluster_req(h, "snapshot");
    struct crepair *r = xcalloc(1, sizeof(*r) + clen + 1);
    char key[24];
    bool created;

    r->app = app;
    r->since_ms = mn_now_ms();
    r->clen = clen;
    memcpy(r->chan, chan, clen);
    req->token = ++h->cl.next_token;
    snprintf(key, sizeof(key), "%llu", (unsigned long long)req->token);
    map_upsert(&h->cl.repairs, key, strlen(key), &created)->val = r;
    /* "sub" changing nothing (no count, no member), with a token and no
     * user: the script publishes the channel's snapshot to our name. */
    hub_cluster_start(h, &c, "sub", false);
    cluster_cmd_sub(&c, h->cfg->apps[app].id, chan, clen, -1, -1, NULL, 0, NULL, 0,
                    req->token, false, !h->cl.registered, 0);
    if (hub_cluster_send(h, &c, hub_cluster_on_change, req) < 0) {
        free(map_del(&h->cl.repairs, key, strlen(key)));
        return false;
    }
    return true;
}

void
hub_cluster_repair_locked(struct hub *h, const char *why)
{
    unsigned asked = 0;

    h->cl.repair_due_ms = 0;
    if (h->cl.leaving)
        return;
    for (size_t a = 0; a < h->cfg->napps; a++) {
        size_t bucket = 0;
        struct map_node *it = NULL;

        while (map_next(&h->apps[a].chans, &bucket, &it)) {
            const struct hchan *ch = it->val;

            /* A channel still confirming has its joiners' snapshots coming. */
            if (ch->subs == 0 || ch->confirming ||
                chan_kind_of(it->key, it->len) != CHAN_PRESENCE ||
                repair_pending(h, a, it->key, it->len))
                continue;
            if (!ask_repair(h, a, it->key, it->len))
                return; /* Redis away: the next resync repairs */
            asked++;
        }
    }
    if (asked)
        log_info("cluster: member lists checked against Redis (%s) channels=%u", why,
                 asked);
}

bool
hub_cluster_repair_snapshot(struct hub *h, const struct cluster_snapshot *s)
{
    char key[24];
    struct crepair *r;
    struct hchan *ch;
    bool ours;

    snprintf(key, sizeof(key), "%llu", (unsigned long long)s->token);
    pthread_mutex_lock(&h->lock);
    r = map_del(&h->cl.repairs, key, strlen(key));
    ours = r != NULL;
    /* Gone meanwhile (no local subscriber left): nobody to tell. */
    if (r && (ch = map_get(&h->apps[r->app].chans, r->chan, r->clen)) != NULL)
        hub_cluster_told_snapshot_locked(h, r->app, r->chan, r->clen, ch, s);
    pthread_mutex_unlock(&h->lock);
    free(r);
    return ours;
}

void
hub_cluster_repairs_expire_locked(struct hub *h, uint64_t now)
{
    size_t bucket = 0;
    struct map_node *it = NULL;

    while (map_next(&h->cl.repairs, &bucket, &it)) {
        struct crepair *r = it->val;

        if (now - r->since_ms < SNAPSHOT_MS)
            continue;
        log_warn("cluster: no repair snapshot from Redis within %d ms channel=%.*s",
                 SNAPSHOT_MS, (int)r->clen, r->chan);
        map_del(&h->cl.repairs, it->key, it->len);
        free(r);
        bucket = 0; /* the map changed: start over */
        it = NULL;
    }
}

void
hub_cluster_repairs_free(struct hub *h)
{
    size_t bucket = 0;
    struct map_node *it = NULL;

    while (map_next(&h->cl.repairs, &bucket, &it))
        free(it->val);
    map_clear(&h->cl.repairs);
}
