/* webhook.h - the webhook sender: a thread of its own with its own libuv loop,
 * fed through a mutex-guarded inbox, so that nothing a receiver does (slow,
 * hung, refusing) reaches the threads that deliver WebSocket frames.
 *
 * Whoever saw a state transition posts it (today the hub, under its lock, so
 * the sender sees transitions in the order they happened; in distributed mode
 * it will be the node whose Redis update made the transition). The sender
 * owns everything after that: the 3 s delay of channel_vacated and
 * member_removed and the suppression of a vacated/occupied or
 * removed/added pair inside it, cache_miss de-duplication, batching, the
 * request, retries and the bounded queues. */
#ifndef MN_WEBHOOK_H
#define MN_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "webhook_msg.h"

struct webhook;

/* The sender for cfg, or NULL when no application has webhooks (every
 * function below accepts NULL and then does nothing). cfg must outlive it. */
struct webhook *webhook_new(const struct mn_config *cfg);
/* Starts the thread; -1 (logged) when it cannot. */
int webhook_start(struct webhook *wh);
/* Stops the thread (what is still queued or delayed is dropped and counted
 * in the log) and frees everything. Post nothing after or during this call. */
void webhook_stop_free(struct webhook *wh);

/* Whether app has a receiver that wants kind: callers skip building events
 * nobody gets. Thread safe (reads the immutable config). */
bool webhook_wanted(const struct webhook *wh, size_t app, enum webhook_kind kind);
/* Queues ev (copied) for app's receivers. Thread safe, never blocks on I/O:
 * takes the inbox lock for a list append. A full inbox drops ev (counted and
 * logged). */
void webhook_post(struct webhook *wh, size_t app, const struct webhook_event *ev);

#endif
