/* redis_master.h - where the Redis master is: address lists, Sentinel
 * discovery, the ROLE check. Blocking; for the Redis link's thread only. */
#ifndef MN_REDIS_MASTER_H
#define MN_REDIS_MASTER_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "config.h"

/* Whether rep is a string or status reply equal to s (ASCII case ignored). */
bool redis_reply_is(const redisReply *rep, const char *s);
/* The i-th "host:port" of a comma-separated list into host (cap bytes) and
 * port; -1 when there is none or it is malformed. */
int redis_nth_addr(const char *list, size_t i, char *host, size_t cap, int *port);
/* Asks each sentinel of cfg->address in turn, starting at *next (updated to
 * the one that answered), for the address of cfg->master_name. 0, or -1 when
 * none named it. */
int redis_discover(const struct mn_redis *cfg, size_t *next, char *host, size_t cap,
                   int *port);
/* Whether host:port answers ROLE as a master (AUTH first with a password). */
bool redis_is_master(const struct mn_redis *cfg, const char *host, int port);

#endif
