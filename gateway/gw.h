/* gw.h - the gateway's per-thread state shared by worker.c (the loop and the
 * lws context), ws.c (Pusher protocol on a connection) and http.c (the REST
 * API on the same port). Everything here belongs to one worker thread and is
 * touched only by it. */
#ifndef MN_GW_H
#define MN_GW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>
#include <uv.h>

#include "buf.h"
#include "chan.h"
#include "clock.h"
#include "config.h"
#include "frame.h"
#include "map.h"
#include "worker.h"

struct conn;
struct conn_user;

/* Local subscribers of one channel: a vector, so fan-out is a linear walk.
 * since[i] is the hub's publish number when v[i] subscribed: a delivery with
 * seq <= since[i] was published before and is not for it. */
/* The worker's tick (liveness checks, the hub's timers), and the slots of
 * sweep.c's timer wheel: 1,024 ticks, 256 s, beyond any idle-ping. */
#define SWEEP_TICK_MS 250
#define SWEEP_SLOTS 1024

struct wchan {
    struct conn **v;
    uint64_t *since;
    size_t n, cap;
};

struct worker {
    size_t index;
    struct hub *hub;
    const struct mn_config *cfg;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    int listen_fd;
    uv_poll_t accept_poll;
    bool accept_paused;
    pthread_t thread;
    pthread_mutex_t inbox_lock;
    struct delivery *inbox, **inbox_tail;
    /* Posts from the worker's own thread (a REST publish on its port) wake
     * no eventfd: the prepare handle drains the inbox before the loop next
     * blocks. self_posted is touched by this thread only. */
    uv_prepare_t drain;
    bool self_posted;
    atomic_bool stop_asked;
    bool stopping;
    uint64_t stop_deadline;
    struct map *chans;  /* per app: channel name -> struct wchan */
    struct map *users;  /* per app: signed-in user id -> struct wuser (users.c) */
    struct conn *conns; /* every Pusher connection of this worker */
    size_t nconns;
    /* sweep.c: connections by the tick of their next liveness check */
    struct conn *sweep_wheel[SWEEP_SLOTS];
    uint64_t sweep_tick;    /* the last tick swept (ms / SWEEP_TICK_MS) */
    struct bus_server *bus; /* worker 0: the local bus (bus_server.c), or NULL */
    /* Between ws_batch_begin and ws_batch_end (one inbox drain), plain TCP
     * connections only queue; the end writes each of them once (ws.c). */
    bool batching;
    struct conn *dirty; /* connections to write at ws_batch_end */
};

/* One channel a connection is subscribed to (value in conn->subs). */
struct sub {
    struct wchan *wc;
    size_t idx;    /* position in wc->v */
    char *user_id; /* presence member id, or NULL */
    size_t id_len;
};

struct conn {
    struct conn *prev, *next;
    struct lws *wsi;
    struct worker *w;
    const struct mn_app *app; /* NULL until the path named a known key */
    size_t app_index;
    bool counted; /* hub_conn_open succeeded */
    char socket_id[32];
    struct sendq q;
    struct map subs; /* channel name -> struct sub */
    struct buf rx;   /* a fragmented message being reassembled */
    int close_code;  /* non-zero: close once the queue is written */
    char close_msg[96];
    uint64_t last_rx_ms;
    uint64_t ping_sent_ms; /* 0: no ping outstanding */
    uint64_t rate_window_ms;
    unsigned rate_count;
    uint64_t opened_ms;     /* authorized-connections: the timeout runs from here */
    bool authorized;        /* signed in, or joined a private or presence channel */
    struct conn_user *user; /* NULL until pusher:signin succeeds (users.c) */
    /* Raw writes (plain TCP only, ws.c): set at the first WRITEABLE, when lws
     * has nothing of its own buffered; from then on our frames go out with
     * send()/sendmsg() on the fd, never lws_write. */
    bool direct;
    bool broken;     /* a raw write failed: on_writeable drops the connection */
    bool peer_close; /* the client sent a close: lws answers it, we send no more */
    size_t head_off; /* bytes of the oldest queued frame (header first) already sent */
    int fd_plus1;    /* send.c: the socket + 1 once looked up (0: not yet); saves a
                      * cache miss on lws's wsi per delivery */
    struct conn *dirty_next; /* on w->dirty while in_dirty */
    bool in_dirty;
    struct conn *sweep_next, **sweep_pprev; /* sweep.c's wheel (pprev NULL: not in it) */
};

/* What lws keeps per wsi for our protocol. */
struct session {
    struct conn *conn;    /* WebSocket phase */
    struct http_txn *txn; /* HTTP phase */
};

/* ws.c (the protocol) and send.c (writing) */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, struct session *s,
                void *in, size_t len);
void ws_deliver(struct worker *w, struct delivery *d);
/* Around several ws_deliver calls: frames for a plain TCP connection are
 * only queued, and ws_batch_end writes each connection's queue in one
 * sendmsg(). */
void ws_batch_begin(struct worker *w);
void ws_batch_end(struct worker *w);
/* sweep.c: pings silent connections and closes those that did not answer
 * or were not authorized in time, touching only those due (a timer wheel). */
void ws_sweep(struct worker *w, uint64_t now);
void sweep_add(struct worker *w, struct conn *c);
void sweep_remove(struct conn *c);
/* Closes every connection with code (4200 on shutdown). */
void ws_close_all(struct worker *w, int code, const char *why);
/* For users.c: queue f (taken) or a message built in b (then emptied) to c,
 * send pusher:error (code < 0: null), close c with code once its queue is
 * written. */
void ws_send_frame(struct conn *c, struct frame *f);
void ws_send_buf(struct conn *c, struct buf *b);
void ws_send_error(struct conn *c, int code, const char *message);
void ws_close(struct conn *c, int code, const char *why);
/* pusher:subscription_error on chan; the WRITEABLE callback. */
void ws_send_sub_error(struct conn *c, const char *chan, size_t clen, const char *type,
                       const char *error, int status);
int ws_on_writeable(struct conn *c);

/* users.c */
struct msg_in;
struct msg_member;
/* pusher:signin: checks the signature, signs c in, answers signin_success
 * (or pusher:error), and starts its watchlist. */
void users_signin(struct conn *c, const struct msg_in *m);
/* Whether c may subscribe to #server-to-user-{id} channel chan: only when
 * signed in as that id. */
bool users_may_subscribe(const struct conn *c, const char *chan, size_t clen);
/* The signed-in user of c as a presence member (copies the caller frees with
 * msg_member_free); false when c is not signed in. */
bool users_member(const struct conn *c, struct msg_member *out);
/* c is closing: undoes its sign-in (called before it is freed). */
void users_conn_closed(struct conn *c);
/* A DELIVERY_USER or DELIVERY_TERMINATE for worker w. */
void users_deliver(struct worker *w, struct delivery *d);
/* Frees w->users (worker teardown). */
void users_worker_free(struct worker *w);

/* bus_server.c: the local bus on worker w's loop (worker 0). Start before the
 * loop runs; -1 (logged) when local-socket cannot be listened on. Stop on the
 * worker's thread: closes every bus connection and removes the socket file. */
struct bus_server;
int bus_server_start(struct worker *w);
void bus_server_stop(struct worker *w);

/* http.c */
int http_callback(struct lws *wsi, enum lws_callback_reasons reason, struct session *s,
                  void *in, size_t len);
/* A DELIVERY_HTTP for worker w: writes the answer that another thread
 * produced, or frees it when its connection closed meanwhile. */
void http_answer(struct worker *w, void *wait);

#endif
