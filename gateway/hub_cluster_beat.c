/* hub_cluster_beat.c - distributed mode's liveness, from hub_tick. Every
 * second a "beat" tells the node's state (lost: Redis lost it, restore
 * silently; dead: declared dead, restore with events) and which nodes are
 * overdue, which are reaped (their members removed, with the events and
 * webhooks they are owed). A resync tells Redis everything this node
 * holds. After the link comes back, triggers answer 503 until every live
 * node is subscribed again (settle_locked), so none misses an accepted
 * event. Two heartbeat periods after a silent restore it repairs the
 * member lists of local presence subscribers (hub_cluster_repair.c). The
 * tick also releases the delayed webhooks and answers the snapshots that
 * are overdue, and forgets repair snapshots that did not come (their files
 * do all three). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "bus_redis.h"
#include "clock.h"
#include "cluster.h"
#include "log.h"
#include "hub_cluster_int.h"
#include "mn.h"

/* After the link came back: the longest wait for the others. */
#define SETTLE_MAX_MS 2000

/* Lock held: tells Redis everything this node holds (silent: Redis lost it,
 * restore without events). */
static void
sync_locked(struct hub *h, bool silent)
{
    struct cluster_cmd c = {0};

    hub_cluster_start(h, &c, "sync", false);
    cluster_cmd_sync_mode(&c, silent);
    for (size_t a = 0; a < h->cfg->napps; a++) {
        const char *id = h->cfg->apps[a].id;
        size_t bucket = 0;
        struct map_node *it = NULL;

        while (map_next(&h->apps[a].chans, &bucket, &it)) {
            const struct hchan *ch = it->val;
            size_t mb = 0;
            struct map_node *m = NULL;

            if (ch->subs == 0 || !hub_cluster_on(h, it->key, it->len))
                continue;
            cluster_cmd_sync_count(&c, id, it->key, it->len, ch->subs);
            while (map_next(&ch->members, &mb, &m)) {
                const struct hmember *mem = m->val;

                cluster_cmd_sync_member(&c, id, it->key, it->len, m->key, m->len,
                                        mem->info, mem->info_len);
            }
        }
        bucket = 0;
        it = NULL;
        while (map_next(&h->apps[a].users, &bucket, &it))
            if (((const struct huser *)it->val)->conns)
                cluster_cmd_sync_user(&c, id, it->key, it->len);
    }
    h->cl.sync_busy = true;
    h->cl.sync_silent = silent;
    h->cl.resync = false;
    if (hub_cluster_send(h, &c, hub_cluster_on_change, hub_cluster_req(h, "sync")) < 0) {
        h->cl.sync_busy = false;
        h->cl.resync = true;
    } else {
        log_info("cluster: state sent to Redis (%s) node=%s",
                 silent ? "Redis had lost it" : "checked", h->node);
    }
}

static void
reap_locked(struct hub *h, const char *dead, size_t len)
{
    struct cluster_cmd c = {0};
    char id[CLUSTER_NODE_LEN + 1];

    if (len != CLUSTER_NODE_LEN)
        return;
    memcpy(id, dead, len);
    id[len] = '\0';
    log_info("cluster: node %s missed its heartbeats, removing its connections", id);
    hub_cluster_start(h, &c, "reap", false);
    cluster_cmd_reap(&c, id, (uint64_t)h->cfg->redis.node_timeout * 1000);
    hub_cluster_send(h, &c, hub_cluster_on_change, hub_cluster_req(h, "reap"));
}

static void
on_beat(void *arg, const struct redisReply *reply)
{
    struct creq *r = arg;
    struct hub *h = r->h;
    const char *status = cluster_status(reply);
    uint64_t now = mn_now_ms();

    pthread_mutex_lock(&h->lock);
    h->cl.beat_busy = false;
    if (status == NULL) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_warn("cluster: heartbeat failed: %s", reply->str);
    } else if (!h->cl.leaving) {
        bool lost = strcmp(status, "lost") == 0, dead = strcmp(status, "dead") == 0;

        if (dead)
            log_warn("cluster: this node was declared dead; registering again node=%s",
                     h->node);
        /* Lost: Redis forgot us (FLUSHALL, a restart without persistence):
         * restore silently, unless we never registered (all is news). */
        if ((lost || dead || h->cl.resync) && !h->cl.sync_busy)
            sync_locked(h, lost && h->cl.registered);
        else if (!lost && !dead)
            h->cl.registered = true;
        /* Right after our own link came back, the others may not have had
         * the time to beat: wait one heartbeat before declaring anyone dead. */
        if (reply->elements >= 2 && reply->element[1]->type == REDIS_REPLY_STRING &&
            !atomic_load(&h->cl.settling))
            h->cl.alive = (unsigned)strtoul(reply->element[1]->str, NULL, 10);
        if (now - h->cl.up_since_ms >=
            (uint64_t)h->cfg->redis.node_heartbeat * 1000 + BEAT_EVERY_MS)
            for (size_t i = 2; i < reply->elements; i++)
                if (reply->element[i]->type == REDIS_REPLY_STRING)
                    reap_locked(h, reply->element[i]->str, reply->element[i]->len);
    }
    pthread_mutex_unlock(&h->lock);
    free(r);
}

static void
on_ready(void *arg, const struct redisReply *reply)
{
    struct creq *r = arg;
    struct hub *h = r->h;

    pthread_mutex_lock(&h->lock);
    h->cl.ready_busy = false;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1 &&
        atomic_exchange(&h->cl.settling, false))
        log_warn("cluster: every live node is subscribed again after %llu ms; triggers "
                 "accepted; refused while the others resubscribed=%u",
                 (unsigned long long)(mn_now_ms() - h->cl.up_since_ms),
                 atomic_exchange(&h->cl.settle_refused, 0));
    pthread_mutex_unlock(&h->lock);
    free(r);
}

/* Lock held: after the link came back, triggers wait (503) until every live
 * node is subscribed again, so that none misses an accepted event, or until
 * SETTLE_MAX_MS (a node that died meanwhile is still counted as live). */
static void
settle_locked(struct hub *h, uint64_t now)
{
    struct cluster_cmd c = {0};

    if (now - h->cl.up_since_ms >= SETTLE_MAX_MS) {
        atomic_store(&h->cl.settling, false);
        log_warn("cluster: not every live node subscribed again within %d ms; triggers "
                 "accepted; refused while the others resubscribed=%u",
                 SETTLE_MAX_MS, atomic_exchange(&h->cl.settle_refused, 0));
        return;
    }
    if (h->cl.ready_busy)
        return;
    hub_cluster_start(h, &c, "ready", false);
    cluster_cmd_addu(&c, (uint64_t)h->cfg->redis.node_timeout * 1000);
    cluster_cmd_addu(&c, h->cl.alive);
    h->cl.ready_busy =
        hub_cluster_send(h, &c, on_ready, hub_cluster_req(h, "ready")) == 0;
}

bool
hub_cluster_settling(struct hub *h)
{
    unsigned seen;

    /* The link came back since the tick last looked: settling already. */
    if (h->redis == NULL ||
        (!atomic_load(&h->cl.settling) &&
         ((seen = atomic_load(&h->cl.ups_seen)) == 0 || bus_redis_ups(h->redis) == seen)))
        return false;
    atomic_fetch_add(&h->cl.settle_refused, 1);
    return true;
}

void
hub_cluster_tick_locked(struct hub *h, uint64_t now)
{
    unsigned ups;

    if (h->redis == NULL || h->cl.leaving)
        return;
    if (h->cl.joins.count)
        hub_cluster_joins_expire_locked(h, now);
    if (h->cl.watches.count)
        hub_cluster_watches_expire_locked(h, now);
    hub_cluster_delays_release_locked(h, now);
    if (h->cl.repairs.count)
        hub_cluster_repairs_expire_locked(h, now);
    if (!bus_redis_up(h->redis))
        return;
    if (h->cl.repair_due_ms && now >= h->cl.repair_due_ms)
        hub_cluster_repair_locked(h, "after a silent restore");
    ups = bus_redis_ups(h->redis);
    if (ups != atomic_load(&h->cl.ups_seen)) {
        /* Back (or first up): the next beat says what Redis still knows.
         * Back, not first: the others may still be reconnecting. */
        if (atomic_load(&h->cl.ups_seen) > 0)
            atomic_store(&h->cl.settling, true);
        atomic_store(&h->cl.ups_seen, ups);
        h->cl.up_since_ms = now;
        h->cl.resync = true;
        h->cl.next_beat_ms = 0;
    }
    if (atomic_load(&h->cl.settling))
        settle_locked(h, now);
    if (h->cl.beat_busy || now < h->cl.next_beat_ms)
        return;
    {
        struct cluster_cmd c = {0};
        bool record = now >= h->cl.next_record_ms;

        /* EVAL with the whole script: it also puts the script back into a
         * Redis that lost it (SCRIPT FLUSH, a new master). */
        hub_cluster_start(h, &c, "beat", true);
        cluster_cmd_beat(&c, (uint64_t)h->cfg->redis.node_timeout * 1000, record);
        h->cl.beat_busy = true;
        h->cl.next_beat_ms = now + BEAT_EVERY_MS;
        if (record)
            h->cl.next_record_ms = now + (uint64_t)h->cfg->redis.node_heartbeat * 1000;
        if (hub_cluster_send(h, &c, on_beat, hub_cluster_req(h, "beat")) < 0)
            h->cl.beat_busy = false;
    }
}
