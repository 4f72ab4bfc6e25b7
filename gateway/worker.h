/* worker.h - one event-loop thread: a libuv loop, an lws context listening on
 * the shared port (SO_REUSEPORT), its own connections and the local list of
 * subscribers per channel. Other threads talk to it only through
 * worker_post(), which is thread safe. */
#ifndef MN_WORKER_H
#define MN_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "chan.h"
#include "frame.h"

struct hub;
struct worker;

enum delivery_kind {
    DELIVERY_CHANNEL = 0, /* frame to the subscribers of channel */
    DELIVERY_USER,        /* frame to the connections signed in as user id `channel` */
    DELIVERY_TERMINATE,   /* close the connections signed in as user id `channel` */
    DELIVERY_HTTP,        /* a REST answer from another thread for `ptr` (http.c) */
    DELIVERY_REFUSE,      /* distributed mode: the presence channel was full when the
                           * socket in exclude joined: subscription_error, unsubscribed */
    DELIVERY_READY,       /* Redis subscribed to channel: answer its waiting subscribers;
                           * with exclude set, only that socket: frame is its
                           * subscription_succeeded, ptr NULL or the frame after it */
};

/* One event for one channel (or user), handed to a worker. */
struct delivery {
    struct delivery *next;
    enum delivery_kind kind; /* DELIVERY_CHANNEL from delivery_new */
    uint64_t seq;            /* the hub's publish number; 0 from delivery_new */
    size_t app;
    struct frame *frame;                  /* one reference owned; NULL: terminate */
    char exclude[CHAN_SOCKET_ID_MAX + 1]; /* "" for none */
    void *ptr; /* DELIVERY_HTTP: the struct http_wait; NULL from delivery_new */
    size_t clen;
    char channel[]; /* NUL-terminated */
};

struct delivery *delivery_new(size_t app, const char *chan, size_t clen, struct frame *f,
                              const char *exclude);
/* Takes d; thread safe. */
void worker_post(struct worker *w, struct delivery *d);

/* Builds worker index (its loop and lws context) in the calling thread.
 * Returns NULL when lws cannot listen. */
struct worker *worker_new(struct hub *hub, size_t index);
/* Runs the loop in a new thread. */
int worker_start(struct worker *w);
/* Asks the worker to close its connections with 4200 and stop; thread safe. */
void worker_stop(struct worker *w);
/* Waits for the thread and frees everything. */
void worker_join_free(struct worker *w);

#endif
