/* frame.h - outgoing WebSocket payloads shared by refcount, and the bounded
 * per-connection send queue that holds them. A frame is built once per event
 * and queued to every recipient; the last unref frees it. Thread safe
 * refcounts: a frame crosses worker threads. */
#ifndef MN_FRAME_H
#define MN_FRAME_H

#include <stdatomic.h>
#include <stddef.h>

#include <libwebsockets.h>

struct frame {
    atomic_uint refs;
    size_t len; /* payload bytes after LWS_PRE */
    /* The server's (unmasked, FIN, text) WebSocket header for the payload,
     * built once and sent with raw send()s on plain TCP (ws.c). Not in the
     * LWS_PRE headroom: lws_write (TLS) writes its own header there, from
     * several worker threads at once. */
    unsigned char hdr[10];
    unsigned char hlen;   /* 2, 4 or 10 */
    unsigned char data[]; /* LWS_PRE headroom, then payload */
};

/* Returns a frame holding a copy of payload, refcount 1. Release with frame_unref(). */
struct frame *frame_new(const void *payload, size_t len);
static inline unsigned char *
frame_payload(struct frame *f)
{
    return f->data + LWS_PRE;
}
struct frame *frame_ref(struct frame *f);
void frame_unref(struct frame *f);

struct sendq {
    struct frame **ring;
    size_t head, count, slots; /* slots: allocated ring size */
    size_t bytes;              /* payload bytes queued */
};

/* Owns f from here on, also when it fails: -1 when the queue would pass
 * max_msgs or max_bytes (the frame is released and the caller must close the
 * connection as a slow consumer). */
int sendq_push_take(struct sendq *q, struct frame *f, size_t max_msgs, size_t max_bytes);
/* The oldest frame, still owned by the queue; NULL when empty. */
struct frame *sendq_peek(const struct sendq *q);
/* The i-th oldest frame (i < q->count), still owned by the queue. */
static inline struct frame *
sendq_at(const struct sendq *q, size_t i)
{
    return q->ring[(q->head + i) % q->slots];
}
/* Drops the oldest frame (releasing the queue's reference). */
void sendq_pop(struct sendq *q);
/* Releases every queued frame and the ring. */
void sendq_clear(struct sendq *q);

#endif
