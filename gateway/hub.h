/* hub.h - the process-wide view of channels, shared by every worker thread
 * under one mutex: who is subscribed where (counted per worker, so an event
 * goes only to workers with subscribers), presence members counted per user,
 * connection counts per app. Workers keep their own connection lists; the
 * hub never touches a connection. */
#ifndef MN_HUB_H
#define MN_HUB_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "err.h"
#include "frame.h"
#include "rest.h"

struct hub;
struct worker;

/* A presence member as parsed from channel_data (borrowed). */
struct hub_member {
    const char *user_id;
    size_t id_len;
    const char *info; /* JSON text */
    size_t info_len;
};

struct hub *hub_new(const struct mn_config *cfg, size_t nworkers);
void hub_set_worker(struct hub *h, size_t index, struct worker *w);
void hub_free(struct hub *h);
const struct mn_config *hub_config(const struct hub *h);

/* Counts a new connection of app; -1 with *code 4004 (app quota) or 4100
 * (node capacity) when refused. */
int hub_conn_open(struct hub *h, size_t app, int *code);
void hub_conn_close(struct hub *h, size_t app);

/* Registers a subscription held by worker w. For presence, member is the
 * subscriber's member and presence_json receives the presence object to send
 * in subscription_succeeded; the user's first connection publishes
 * member_added to the others (exclude_socket is the joiner). Returns -1 with
 * err (status 4100-ish Pusher code or HTTP-like 403) when the channel is full. */
int hub_subscribe(struct hub *h, size_t app, const char *chan, size_t clen, size_t w,
                  const struct hub_member *member, const char *exclude_socket,
                  struct buf *presence_json, struct mn_err *err);
/* Removes a subscription of worker w; user_id is the presence member or NULL.
 * The user's last connection publishes member_removed. */
void hub_unsubscribe(struct hub *h, size_t app, const char *chan, size_t clen, size_t w,
                     const char *user_id, size_t id_len);

/* Queues f to every worker with subscribers of chan; each worker gets its own
 * reference. The caller keeps its reference. exclude_socket may be NULL. */
void hub_publish(struct hub *h, size_t app, const char *chan, size_t clen,
                 struct frame *f, const char *exclude_socket);

/* The REST backend over this hub (struct rest_backend's call). */
void hub_rest_call(void *hub, const struct rest_query *q, rest_answer_fn *done,
                   void *arg);

#endif
