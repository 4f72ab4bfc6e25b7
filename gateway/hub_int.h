/* hub_int.h - the hub's state, for the files that implement the hub
 * (hub.c, backend.c). Everything here is guarded by hub->lock. */
#ifndef MN_HUB_INT_H
#define MN_HUB_INT_H

#include <pthread.h>
#include <stddef.h>

#include "hub.h"
#include "map.h"

struct hmember {
    unsigned conns; /* this user's subscribed connections */
    char *info;     /* user_info JSON of the first connection */
    size_t info_len;
};

struct hchan {
    unsigned subs;        /* subscribed connections, all workers */
    unsigned *per_worker; /* subscribed connections per worker */
    struct map members;   /* presence: user id -> struct hmember */
};

struct happ {
    struct map chans; /* name -> struct hchan */
    unsigned conns;
};

struct hub {
    pthread_mutex_t lock;
    const struct mn_config *cfg;
    size_t nworkers;
    struct worker **workers;
    struct happ *apps;
    unsigned conns;
};

/* Lock held: queues f to every worker holding subscribers of c. */
void hub_publish_locked(struct hub *h, size_t app, const char *chan, size_t clen,
                        const struct hchan *c, struct frame *f, const char *exclude);

#endif
