/* redis_master.c - finding the Redis master: "host:port" lists, asking each
 * Sentinel in turn (SENTINEL get-master-addr-by-name), and checking with
 * ROLE that an address is a master. Blocking calls with short timeouts, made
 * by the Redis link's own thread (bus_redis_conn.c), never by a worker. */
#include "redis_master.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "log.h"
#include "mn.h"

#define SYNC_TIMEOUT_MS 500

bool
redis_reply_is(const redisReply *rep, const char *s)
{
    return rep && (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS) &&
           rep->len == strlen(s) && strncasecmp(rep->str, s, rep->len) == 0;
}

/* The i-th "host:port" of a comma-separated list; -1 when there is none. */
int
redis_nth_addr(const char *list, size_t i, char *host, size_t cap, int *port)
{
    const char *p = list, *end, *colon;

    for (; i > 0; i--) {
        p = strchr(p, ',');
        if (p == NULL)
            return -1;
        p++;
    }
    while (*p == ' ')
        p++;
    end = strchr(p, ',');
    if (end == NULL)
        end = p + strlen(p);
    colon = memrchr(p, ':', (size_t)(end - p));
    if (colon == NULL || (size_t)(colon - p) >= cap)
        return -1;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    *port = atoi(colon + 1);
    return *port > 0 && *port < 65536 ? 0 : -1;
}

static redisContext *
sync_connect(const char *host, int port)
{
    struct timeval tv = {0, SYNC_TIMEOUT_MS * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);

    if (c == NULL || c->err) {
        log_debug("redis: cannot connect addr=%s:%d: %s", host, port,
                  c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

int
redis_discover(const struct mn_redis *cfg, size_t *next, char *out_host, size_t cap,
               int *out_port)
{
    char host[256];
    int port;
    size_t n = 1;

    for (const char *p = cfg->address; (p = strchr(p, ',')) != NULL; p++)
        n++;
    for (size_t k = 0; k < n; k++) {
        size_t i = (*next + k) % n;
        redisContext *c;
        redisReply *rep;
        bool ok;

        if (redis_nth_addr(cfg->address, i, host, sizeof(host), &port) < 0 ||
            (c = sync_connect(host, port)) == NULL)
            continue;
        rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s", cfg->master_name);
        ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
             rep->element[0]->type == REDIS_REPLY_STRING &&
             rep->element[1]->type == REDIS_REPLY_STRING && rep->element[0]->len < cap;
        if (ok) {
            memcpy(out_host, rep->element[0]->str, rep->element[0]->len);
            out_host[rep->element[0]->len] = '\0';
            *out_port = atoi(rep->element[1]->str);
            *next = i;
        }
        freeReplyObject(rep);
        redisFree(c);
        if (ok)
            return 0;
    }
    log_warn("redis: no sentinel named the master master-name=%s", cfg->master_name);
    return -1;
}

bool
redis_is_master(const struct mn_redis *cfg, const char *host, int port)
{
    redisContext *c = sync_connect(host, port);
    redisReply *rep;
    bool ok;

    if (c == NULL)
        return false;
    if (cfg->password) {
        rep = redisCommand(c, "AUTH %s", cfg->password);
        freeReplyObject(rep);
    }
    rep = redisCommand(c, "ROLE");
    ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
         redis_reply_is(rep->element[0], "master");
    freeReplyObject(rep);
    redisFree(c);
    if (!ok)
        log_warn("redis: not a master addr=%s:%d", host, port);
    return ok;
}
