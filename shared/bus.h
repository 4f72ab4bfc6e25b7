/* bus.h - how micronotifier-api reaches the channel state: the seam
 * (struct bus, used as a struct rest_backend) with its two implementations
 * (bus_local.c: the gateway's local socket in standalone mode; bus_cluster.c:
 * Redis in distributed mode), and the wire format of the local bus, a Unix
 * socket the gateway listens on (gateway/bus_server.c) and the API daemon
 * connects to (bus_local.c).
 *
 * Wire format, every integer big-endian:
 *   frame   u32 length of the body | body
 *   body    u8 'M' | u8 version (1) | u8 kind (1 query, 2 answer) | u32 id | payload
 *   query   u8 op | str app id | u32 info | str channel | str prefix | str user id |
 *           u32 nevents | nevents x (str name | str data | str socket_id | u32 info |
 *                                    u32 nchannels | nchannels x str)
 *   answer  u16 status | str message | u32 nchans | nchans x (str name | u8 occupied |
 *           u32 user_count | u32 subscription_count | str cache data |
 *           str cache event | u32 cache ttl) | u32 nusers | nusers x str
 *   str     u32 length | bytes; length 0xffffffff is "absent" (NULL)
 * A query frame is at most bus_query_cap(cfg) bytes, an answer BUS_ANSWER_CAP.
 * The decoder checks every length against what is left before it allocates,
 * refuses NUL in names, and checks a query against the config's rules
 * (known app, valid channel and event names, counts and sizes), so a garbled
 * message is refused, never acted on. */
#ifndef MN_BUS_H
#define MN_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "err.h"
#include "rest.h"

#define BUS_FRAME_HEADER 4
#define BUS_MARGIN ((size_t)64 << 10)
#define BUS_ANSWER_CAP (((size_t)16 << 20) + BUS_MARGIN)
#define BUS_TIMEOUT_MS 2000 /* a call's deadline: connect, send, answer */

/* The seam: one implementation per bus (local socket, Redis). */
struct bus;
struct bus_ops {
    /* Runs q and calls done exactly once; both buses block until then. */
    void (*call)(struct bus *b, const struct rest_query *q, rest_answer_fn *done,
                 void *arg);
    void (*close)(struct bus *b);
};
struct bus {
    const struct bus_ops *ops;
};

/* The bus the config asks for: Redis in distributed mode ("redis"), else the
 * gateway's local socket. NULL with err when the config names neither. Free
 * with bus_close(). */
struct bus *bus_open(const struct mn_config *cfg, struct mn_err *err);
/* struct rest_backend's call over a struct bus (be is the bus). Thread safe. */
void bus_call(void *be, const struct rest_query *q, rest_answer_fn *done, void *arg);
/* Closes connections and frees b; bus_close(NULL) does nothing. */
void bus_close(struct bus *b);

/* bus_local.c: the client of the gateway's local-socket. */
struct bus *bus_local_open(const struct mn_config *cfg, struct mn_err *err);
/* bus_cluster.c: the cluster state in Redis, over synchronous hiredis
 * connections (cfg must outlive the bus). */
struct bus *bus_cluster_open(const struct mn_config *cfg, struct mn_err *err);

/* --- the wire format (bus.c) --- */

enum bus_kind { BUS_QUERY = 1, BUS_ANSWER = 2 };

/* A decoded message; owns everything it points to. */
struct bus_msg {
    enum bus_kind kind;
    uint32_t id;
    struct rest_query q;          /* BUS_QUERY: q.app points into the config */
    struct rest_answer a;         /* BUS_ANSWER */
    struct rest_event *events;    /* q.events; each owns its channels array */
    struct rest_chan_stat *stats; /* a.chans */
    const char **users;           /* a.users */
    char *arena;                  /* the NUL-terminated copies of every string */
};

/* Largest query frame body: max(1 MiB, max-request-size) plus a margin. */
size_t bus_query_cap(const struct mn_config *cfg);
/* Appends one whole frame (length included) to out. */
void bus_put_query(struct buf *out, uint32_t id, const struct rest_query *q);
void bus_put_answer(struct buf *out, uint32_t id, const struct rest_answer *a);
/* The body length announced by a frame's first BUS_FRAME_HEADER bytes. */
uint32_t bus_frame_len(const void *header);
/* Decodes a frame body of len bytes (after the length). A query is checked
 * against cfg (and q.app resolved in it); cfg may be NULL for answers.
 * Returns NULL with err (status 400 for a refused query, 404 for an unknown
 * app) when the message is garbled or breaks a rule. */
struct bus_msg *bus_msg_decode(const void *body, size_t len, const struct mn_config *cfg,
                               struct mn_err *err);
/* bus_msg_free(NULL) does nothing. */
void bus_msg_free(struct bus_msg *m);

#endif
